//! The JSON handlers under `/api/v1`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use driftless_engine::{AppStatus, EngineError, SyncReport};
use driftless_store::{AuditRecord, NewAudit, SyncRecord};
use serde::Deserialize;

use crate::auth::Caller;
use crate::{ACTOR_HEADER, Failure, Server};

pub(crate) type ApiResult<T> = Result<Json<T>, Failure>;

/// Who is asking on an open (token-less, loopback) server: the client's word for it.
pub(crate) fn local_actor(headers: &HeaderMap) -> String {
    headers
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| "local".to_owned(), |v| format!("local:{v}"))
}

/// `?limit=&app=` on list endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    pub(crate) limit: Option<usize>,
    pub(crate) app: Option<String>,
}

pub(crate) fn query(query: Result<Query<ListQuery>, QueryRejection>) -> Result<ListQuery, Failure> {
    query.map(|Query(q)| q).map_err(|rejection| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("bad query string: {}", rejection.body_text()),
        )
    })
}

pub(crate) async fn list_apps(State(server): State<Server>) -> Json<Vec<AppStatus>> {
    Json(server.inner.engine.apps())
}

pub(crate) async fn get_app(
    State(server): State<Server>,
    Path(name): Path<String>,
) -> ApiResult<AppStatus> {
    Ok(Json(server.inner.engine.app(&name)?))
}

pub(crate) async fn diff_app(
    State(server): State<Server>,
    Path(name): Path<String>,
) -> ApiResult<driftless_model::Plan> {
    Ok(Json(server.inner.engine.plan(&name).await?))
}

pub(crate) async fn history(
    State(server): State<Server>,
    Path(name): Path<String>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Vec<SyncRecord>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50).min(1000);
    Ok(Json(server.inner.engine.history(&name, limit)?))
}

pub(crate) async fn sync_app(
    State(server): State<Server>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<SyncReport> {
    Ok(Json(server.inner.engine.sync(&name, &caller.name).await?))
}

pub(crate) async fn refresh_app(
    State(server): State<Server>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, Failure> {
    let result = server.inner.engine.refresh(&name);
    server.audit(NewAudit {
        actor: caller.name,
        action: "refresh".to_owned(),
        app: Some(name),
        detail: None,
        outcome: match &result {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        },
    });
    result?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST …/rollback` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackRequest {
    revision: String,
}

pub(crate) async fn rollback_app(
    State(server): State<Server>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Result<Json<RollbackRequest>, JsonRejection>,
) -> ApiResult<SyncReport> {
    let Json(request) = body.map_err(|rejection| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!(
                "expected a JSON body {{\"revision\": \"<commit id, tag or branch>\"}}: {}",
                rejection.body_text()
            ),
        )
    })?;
    // Unknown apps are a 404 before the body is looked at any further.
    server.inner.engine.app(&name)?;
    Ok(Json(
        server
            .inner
            .engine
            .rollback(&name, &request.revision, &caller.name)
            .await?,
    ))
}

pub(crate) async fn suspend_app(
    State(server): State<Server>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<AppStatus> {
    Ok(Json(
        server.inner.engine.suspend(&name, &caller.name).await?,
    ))
}

pub(crate) async fn resume_app(
    State(server): State<Server>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<AppStatus> {
    Ok(Json(server.inner.engine.resume(&name, &caller.name).await?))
}

pub(crate) async fn audit(
    State(server): State<Server>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Vec<AuditRecord>> {
    let q = query(q)?;
    let records = server
        .inner
        .engine
        .store()
        .audit(q.app.as_deref(), q.limit.unwrap_or(100).min(1000))
        .map_err(|err| Failure::from(EngineError::Store(err)))?;
    Ok(Json(records))
}
