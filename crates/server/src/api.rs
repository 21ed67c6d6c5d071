//! The JSON handlers under `/api/v1`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use driftless_engine::{AppStatus, EngineError, SyncReport};
use driftless_store::{AuditRecord, NewAudit, SyncRecord, SyncSummary};
use serde::{Deserialize, Serialize};

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

/// The most rows any list answers with, whatever `?limit=` asks: a list is for people
/// and scripts paging through recent rows, not for dumping the database.
pub const MAX_LIMIT: usize = 200;

/// `text` as it may appear in an answer or the audit log: itself (quoted) when short,
/// else only its length. Names in paths come from anyone who can reach the port.
pub(crate) fn shown(text: &str) -> String {
    const SHOWN: usize = 64;
    if text.len() <= SHOWN {
        format!("{text:?}")
    } else {
        format!("<{} bytes>", text.len())
    }
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

/// A diff as the API serves it: the plan, and when it was computed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiffResponse {
    #[serde(flatten)]
    plan: driftless_model::Plan,
    /// When the plan was computed (Unix milliseconds).
    computed_at: i64,
}

/// The plan of the app's last full step, from memory: a viewer's read never makes the
/// server ask Git or plan against the target (`POST …/diff` does that, for operators).
pub(crate) async fn diff_app(
    State(server): State<Server>,
    Path(name): Path<String>,
) -> ApiResult<DiffResponse> {
    match server.inner.engine.last_plan(&name)? {
        Some(last) => Ok(Json(DiffResponse {
            plan: last.plan,
            computed_at: last.computed_at,
        })),
        None => Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "app {name:?} has not planned since the server started; try again in a \
                 moment, or POST /api/v1/apps/{name}/diff (operator) to plan now"
            ),
        )),
    }
}

/// Plans now (asks Git where the ref points, dry-runs against the target) and returns
/// the plan; changes nothing. An operator action, since it costs Git and target calls.
pub(crate) async fn refresh_diff(
    State(server): State<Server>,
    Path(name): Path<String>,
) -> ApiResult<DiffResponse> {
    let plan = server.inner.engine.plan(&name).await?;
    Ok(Json(DiffResponse {
        plan,
        computed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    }))
}

impl ListQuery {
    /// `?limit=`, else `default`, never more than [`MAX_LIMIT`].
    pub(crate) fn limit(&self, default: usize) -> usize {
        self.limit.unwrap_or(default).min(MAX_LIMIT)
    }
}

fn store_failure(err: driftless_store::StoreError) -> Failure {
    Failure::from(EngineError::Store(err))
}

/// The list: change sets as counts. One sync whole: [`history_entry`].
pub(crate) async fn history(
    State(server): State<Server>,
    Path(name): Path<String>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Vec<SyncSummary>> {
    let q = query(q)?;
    server.inner.engine.app(&name)?;
    let store = server.inner.engine.store().clone();
    let limit = q.limit(50);
    let rows = tokio::task::spawn_blocking(move || store.history_summaries(&name, limit))
        .await
        .map_err(|err| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?
        .map_err(store_failure)?;
    Ok(Json(rows))
}

/// `GET …/history/{id}`: one sync with its whole change set and postSync output.
pub(crate) async fn history_entry(
    State(server): State<Server>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<SyncRecord> {
    server.inner.engine.app(&name)?;
    let not_found = || {
        Failure::new(
            StatusCode::NOT_FOUND,
            format!("app {name:?} has no sync with id {}", shown(&id)),
        )
    };
    let Ok(number) = id.parse::<i64>() else {
        return Err(not_found());
    };
    let record = server
        .inner
        .engine
        .store()
        .sync(number)
        .map_err(store_failure)?
        .filter(|record| record.app == name)
        .ok_or_else(not_found)?;
    Ok(Json(record))
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
    // Only names of configured apps are recorded as they were sent.
    let known = !matches!(result, Err(EngineError::UnknownApp(_)));
    server.audit(NewAudit {
        actor: caller.name,
        action: "refresh".to_owned(),
        app: known.then(|| name.clone()),
        detail: None,
        outcome: match &result {
            Ok(()) => "ok".to_owned(),
            Err(EngineError::UnknownApp(_)) => format!("no app named {}", shown(&name)),
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
        .audit(q.app.as_deref(), q.limit(100))
        .map_err(store_failure)?;
    Ok(Json(records))
}
