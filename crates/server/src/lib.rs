//! Server: the HTTP face on the engine — REST API, bearer-token auth, webhooks,
//! server-sent events, Prometheus metrics and notification sinks.
//!
//! It holds no reconcile logic of its own: every action is a call into the engine.
//! Without tokens the API is open, and the CLI's `serve` then only listens on loopback;
//! with tokens every route but `/healthz`, `/readyz`, `/metrics` and the signed
//! `/hooks/*` needs one (viewer for reads, operator for actions, admin for the audit log). The route table below drives both the router and the OpenAPI
//! document at `/api/v1/openapi.json`, so the two cannot disagree.

mod api;
pub mod auth;
mod events;
pub mod hooks;
mod metrics;
pub mod notify;
mod openapi;
mod tls;
pub mod ui;

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use driftless_engine::config::Role;
use driftless_engine::{Config, Engine, EngineError};
use driftless_store::NewAudit;
use serde::{Deserialize, Serialize};

pub use auth::{Caller, hash_token, new_token};
pub use hooks::HookSecretError;
pub use tls::{TlsConfig, TlsError, TlsListener};

/// Header a local client may use to say who is asking (recorded in history and audit)
/// on an open, token-less server. Ignored when tokens are configured.
pub const ACTOR_HEADER: &str = "x-driftless-actor";

/// A JSON error body: `{ "error": "...", "detail": "..." }`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// The HTTP status in words, e.g. `forbidden`.
    pub error: String,
    /// What went wrong and what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An error answer: a status and an [`ApiError`] body.
#[derive(Debug)]
pub(crate) struct Failure(StatusCode, ApiError);

impl Failure {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Failure {
        Failure(
            status,
            ApiError {
                error: status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase(),
                detail: Some(detail.into()),
            },
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<EngineError> for Failure {
    fn from(err: EngineError) -> Self {
        let status = match &err {
            EngineError::UnknownApp(_) => StatusCode::NOT_FOUND,
            EngineError::Failed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EngineError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            EngineError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure::new(status, err.to_string())
    }
}

/// Why a server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A webhook secret could not be read.
    #[error(transparent)]
    HookSecret(#[from] HookSecretError),
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) tokens: auth::Tokens,
    pub(crate) hooks: hooks::Hooks,
    pub(crate) metrics: metrics::Metrics,
    /// Set when the server stops; live streams watch it.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
}

/// The HTTP face of one engine. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<Inner>,
}

impl Server {
    /// A server with the config's tokens and webhook secrets (read now, so a missing
    /// secret fails at start-up). Starts the metrics feeder; call inside a tokio runtime.
    pub fn new(engine: Engine, config: &Config) -> Result<Server, ServerError> {
        let server = Server {
            inner: Arc::new(Inner {
                tokens: auth::Tokens::new(&config.server.tokens),
                hooks: hooks::Hooks::new(config)?,
                metrics: metrics::Metrics::new(),
                closing: tokio::sync::watch::channel(false).0,
                engine,
            }),
        };
        server.feed_metrics();
        Ok(server)
    }

    /// An open server: no tokens, no webhooks (loopback use, tests).
    pub fn open(engine: Engine) -> Server {
        let server = Server {
            inner: Arc::new(Inner {
                tokens: auth::Tokens::default(),
                hooks: hooks::Hooks::empty(),
                metrics: metrics::Metrics::new(),
                closing: tokio::sync::watch::channel(false).0,
                engine,
            }),
        };
        server.feed_metrics();
        server
    }

    /// Whether API calls need a token.
    pub fn requires_tokens(&self) -> bool {
        !self.inner.tokens.is_open()
    }

    /// The engine behind this server.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn feed_metrics(&self) {
        let weak = Arc::downgrade(&self.inner);
        let for_fetches = weak.clone();
        self.inner.engine.observe_fetches(Arc::new(move |report| {
            if let Some(inner) = for_fetches.upgrade() {
                inner.metrics.fetch(report);
            }
        }));
        let mut events = self.inner.engine.subscribe();
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(inner) = weak.upgrade() else { return };
                inner.metrics.observe(&inner.engine, &event);
            }
        });
    }

    pub(crate) fn audit(&self, record: NewAudit) {
        if let Err(err) = self.inner.engine.store().record_audit(&record) {
            tracing::error!(%err, "could not write the audit log");
        }
    }

    /// The whole HTTP surface, ready to serve or to test with `oneshot`.
    pub fn router(&self) -> Router {
        routes(self)
            .merge(ui::router())
            .fallback(not_found)
            .with_state(self.clone())
    }
}

/// One row of the route table: enough to document the route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    /// `None`: open to everyone.
    pub role: Option<Role>,
    pub summary: &'static str,
    /// The success status and what the body holds.
    pub ok: (u16, &'static str),
}

macro_rules! route_table {
    ($( $method:ident $path:literal, $role:expr, $handler:path, $ok:literal $okdoc:literal, $summary:literal; )*) => {
        /// Every route, in the order the OpenAPI document lists them.
        pub const ROUTES: &[RouteDoc] = &[
            $( RouteDoc {
                method: stringify!($method),
                path: $path,
                role: $role,
                summary: $summary,
                ok: ($ok, $okdoc),
            }, )*
        ];

        fn routes(server: &Server) -> Router<Server> {
            let mut router = Router::new();
            $(
                let role: Option<Role> = $role;
                let method_router = $method($handler);
                let method_router = match role {
                    Some(role) => method_router.route_layer(from_fn_with_state(
                        (server.clone(), role),
                        auth::require,
                    )),
                    None => method_router,
                };
                router = router.route($path, method_router);
            )*
            router
        }
    };
}

const VIEWER: Option<Role> = Some(Role::Viewer);
const OPERATOR: Option<Role> = Some(Role::Operator);
const ADMIN: Option<Role> = Some(Role::Admin);
const OPEN: Option<Role> = None;

route_table! {
    get "/healthz", OPEN, healthz, 200 "`ok`", "Liveness: the process answers.";
    get "/readyz", OPEN, healthz, 200 "`ok`", "Readiness: the engine is running.";
    get "/metrics", OPEN, metrics_text, 200 "Prometheus/OpenMetrics text", "Metrics for Prometheus.";
    get "/api/v1/openapi.json", VIEWER, openapi::document, 200 "This OpenAPI 3.1 document", "The API description, generated from the route table.";
    get "/api/v1/apps", VIEWER, api::list_apps, 200 "Array of AppStatus", "List apps with sync status, health and revision.";
    get "/api/v1/apps/{name}", VIEWER, api::get_app, 200 "AppStatus", "One app: status, revision, error, objects.";
    get "/api/v1/apps/{name}/diff", VIEWER, api::diff_app, 200 "Plan: tasks with op, object id and diff", "What a sync would change now; changes nothing.";
    get "/api/v1/apps/{name}/history", VIEWER, api::history, 200 "Array of SyncRecord, newest first (?limit=, default 50, max 1000)", "Past syncs.";
    post "/api/v1/apps/{name}/sync", OPERATOR, api::sync_app, 200 "SyncReport {app, revision, record}", "Sync now to the current revision.";
    post "/api/v1/apps/{name}/refresh", OPERATOR, api::refresh_app, 202 "Empty; the app looks at its source soon", "Look at the Git source now (what a webhook does).";
    post "/api/v1/apps/{name}/rollback", OPERATOR, api::rollback_app, 200 "SyncReport; body {\"revision\": \"<commit, tag or branch>\"}", "Pin to an earlier revision and sync it.";
    post "/api/v1/apps/{name}/suspend", OPERATOR, api::suspend_app, 200 "AppStatus", "Stop automatic syncs and self-heal.";
    post "/api/v1/apps/{name}/resume", OPERATOR, api::resume_app, 200 "AppStatus", "Follow Git again (clears suspension and rollback pin).";
    get "/api/v1/events", VIEWER, events::events, 200 "Array of EventRecord (?app=, ?limit=); with Accept: text/event-stream a live SSE stream (event = kind, id = event id, data = EventRecord JSON; Last-Event-ID replays)", "Events: stored, or live as Server-Sent Events.";
    get "/api/v1/audit", ADMIN, api::audit, 200 "Array of AuditRecord, newest first (?app=, ?limit=)", "Who asked for what, and how it went.";
    post "/hooks/{provider}", OPEN, hooks::receive, 202 "{\"apps\": [names refreshed]}; provider is github, gitlab, gitea or generic; signed, max 1 MiB", "Git host push webhook.";
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics_text(axum::extract::State(server): axum::extract::State<Server>) -> Response {
    let text = server.inner.metrics.render(&server.inner.engine);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn not_found() -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "no such route; the API lives under /api/v1 (see /api/v1/openapi.json)",
    )
}

/// An open router on `engine` (no tokens, no webhooks).
pub fn router(engine: Engine) -> Router {
    Server::open(engine).router()
}

/// Serves an open server on `listener` until `shutdown` resolves, then lets the engine
/// finish the step in flight. The caller keeps it on loopback.
pub async fn serve(
    engine: Engine,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_server(Server::open(engine), Vec::new(), listener, shutdown).await
}

/// Serves `config`'s server (tokens, webhooks) and starts its notification sinks; over
/// TLS when `tls` is given.
pub async fn serve_config(
    engine: Engine,
    config: &Config,
    listener: tokio::net::TcpListener,
    tls: Option<&TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let server = Server::new(engine, config)?;
    let sinks = config.notifications.clone();
    match tls {
        Some(tls) => {
            serve_server(server, sinks, TlsListener::new(listener, tls)?, shutdown).await?
        }
        None => serve_server(server, sinks, listener, shutdown).await?,
    }
    Ok(())
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The server could not be set up.
    #[error(transparent)]
    Setup(#[from] ServerError),
    /// The listener failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

async fn serve_server<L>(
    server: Server,
    sinks: Vec<driftless_engine::config::NotificationConfig>,
    listener: L,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let engine = server.inner.engine.clone();
    let notifier = notify::spawn(engine.clone(), sinks);
    let app = server.router();
    let closing = server.inner.closing.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Live event streams end so that the graceful shutdown can finish.
            let _ = closing.send(true);
        })
        .await?;
    engine.shutdown().await;
    if let Some(notifier) = notifier {
        notifier.abort();
    }
    Ok(())
}
