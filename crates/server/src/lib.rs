//! Server: the HTTP face on the engine — REST API, webhooks, server-sent events,
//! Prometheus metrics and the web UI.
//!
//! It holds no reconcile logic of its own: every action is a call into the engine.
//! This first version serves the JSON API the CLI needs; it runs without tokens and so
//! only ever listens on loopback (enforced by the CLI's `serve`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use driftless_engine::{Engine, EngineError};
use serde::{Deserialize, Serialize};

/// Header a local client may use to say who is asking (recorded in history and audit).
pub const ACTOR_HEADER: &str = "x-driftless-actor";

/// A JSON error body: `{ "error": "...", "detail": "..." }`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

struct Failure(StatusCode, ApiError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<EngineError> for Failure {
    fn from(err: EngineError) -> Self {
        let (status, error) = match &err {
            EngineError::UnknownApp(_) => (StatusCode::NOT_FOUND, "not found"),
            EngineError::Failed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "sync failed"),
            EngineError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
            EngineError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "state store error"),
        };
        Failure(
            status,
            ApiError {
                error: error.to_owned(),
                detail: Some(err.to_string()),
            },
        )
    }
}

type ApiResult<T> = Result<Json<T>, Failure>;

/// The whole HTTP surface, ready to serve or to test with `oneshot`.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/api/v1/apps", get(list_apps))
        .route("/api/v1/apps/{name}", get(get_app))
        .route("/api/v1/apps/{name}/diff", get(diff_app))
        .route("/api/v1/apps/{name}/history", get(history))
        .route("/api/v1/apps/{name}/sync", post(sync_app))
        .route("/api/v1/apps/{name}/refresh", post(refresh_app))
        .route("/api/v1/apps/{name}/rollback", post(rollback_app))
        .route("/api/v1/apps/{name}/suspend", post(suspend_app))
        .route("/api/v1/apps/{name}/resume", post(resume_app))
        .route("/api/v1/events", get(list_events))
        .fallback(|| async {
            Failure(
                StatusCode::NOT_FOUND,
                ApiError {
                    error: "not found".to_owned(),
                    detail: Some("no such route; the API lives under /api/v1".to_owned()),
                },
            )
        })
        .with_state(engine)
}

/// Who is asking: the client's word for it on loopback without tokens.
fn actor(headers: &HeaderMap) -> String {
    headers
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| "local".to_owned(), |v| format!("local:{v}"))
}

async fn list_apps(State(engine): State<Engine>) -> Json<Vec<driftless_engine::AppStatus>> {
    Json(engine.apps())
}

async fn get_app(
    State(engine): State<Engine>,
    Path(name): Path<String>,
) -> ApiResult<driftless_engine::AppStatus> {
    Ok(Json(engine.app(&name)?))
}

async fn diff_app(
    State(engine): State<Engine>,
    Path(name): Path<String>,
) -> ApiResult<driftless_model::Plan> {
    Ok(Json(engine.plan(&name).await?))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
    app: Option<String>,
}

async fn history(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    Query(query): Query<Limit>,
) -> ApiResult<Vec<driftless_store::SyncRecord>> {
    Ok(Json(
        engine.history(&name, query.limit.unwrap_or(50).min(1000))?,
    ))
}

async fn sync_app(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<driftless_engine::SyncReport> {
    Ok(Json(engine.sync(&name, &actor(&headers)).await?))
}

async fn refresh_app(
    State(engine): State<Engine>,
    Path(name): Path<String>,
) -> Result<StatusCode, Failure> {
    engine.refresh(&name)?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    revision: String,
}

async fn rollback_app(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<RollbackRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<driftless_engine::SyncReport> {
    let Json(request) = body.map_err(|rejection| {
        Failure(
            StatusCode::BAD_REQUEST,
            ApiError {
                error: "bad request".to_owned(),
                detail: Some(format!("expected a JSON body {{\"revision\": \"<commit id, tag or branch>\"}}: {rejection}")),
            },
        )
    })?;
    Ok(Json(
        engine
            .rollback(&name, &request.revision, &actor(&headers))
            .await?,
    ))
}

async fn suspend_app(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<driftless_engine::AppStatus> {
    Ok(Json(engine.suspend(&name, &actor(&headers)).await?))
}

async fn resume_app(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<driftless_engine::AppStatus> {
    Ok(Json(engine.resume(&name, &actor(&headers)).await?))
}

async fn list_events(
    State(engine): State<Engine>,
    Query(query): Query<Limit>,
) -> ApiResult<Vec<driftless_store::EventRecord>> {
    let events = engine
        .store()
        .events(
            query.app.as_deref(),
            None,
            query.limit.unwrap_or(100).min(1000),
        )
        .map_err(|err| Failure::from(EngineError::Store(err)))?;
    Ok(Json(events))
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the engine finish
/// the step in flight.
pub async fn serve(
    engine: Engine,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(engine.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    engine.shutdown().await;
    Ok(())
}
