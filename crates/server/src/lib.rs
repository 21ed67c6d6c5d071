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
mod guard;
pub mod hooks;
mod metrics;
pub mod notify;
mod openapi;
mod serve;
mod tls;
pub mod ui;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use driftless_engine::config::Role;
use driftless_engine::{Config, Engine, EngineError};
use driftless_store::{NewAudit, Retention};
use serde::{Deserialize, Serialize};

pub use api::MAX_LIMIT;
pub use auth::{Caller, hash_token, new_token};
pub use events::REPLAY_PAGE;
pub use hooks::HookSecretError;
pub use serve::ConnectionLimits;
pub use tls::{TlsConfig, TlsError};

/// A header any client may send to mark a state-changing call as deliberate (the CLI
/// and the web UI do); a web page cannot send it cross-origin without a CORS preflight,
/// which the server never grants.
pub const REQUEST_HEADER: &str = "x-driftless-request";

/// How a server guards and bounds itself; the defaults suit `serve` and `quickstart`.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Host names (`name` for any port, or `name:port`) the server answers to besides
    /// its listen address and `localhost`/`127.0.0.1`/`[::1]` with its port; an
    /// `Origin` naming one of them is accepted too. On a token server, setting any turns
    /// the Host check on (config: `server.allowedHosts`).
    pub allowed_hosts: Vec<String>,
    /// Timeouts and the connection cap.
    pub limits: ConnectionLimits,
    /// What the store keeps; applied when serving starts and every `retention_interval`.
    pub retention: Retention,
    pub retention_interval: Duration,
    /// Denied calls recorded in the audit log: at most `audit_burst` at once, refilled
    /// at `audit_per_second`; the rest are counted and the count recorded with the next.
    pub audit_burst: u32,
    pub audit_per_second: f64,
}

impl ServerOptions {
    /// The options `server:` of `driftless.yaml` asks for; defaults for the rest.
    pub fn from_config(server: &driftless_engine::config::ServerConfig) -> ServerOptions {
        let defaults = ServerOptions::default();
        let limits = &server.limits;
        ServerOptions {
            allowed_hosts: server.allowed_hosts.clone(),
            limits: ConnectionLimits {
                header_read_timeout: limits
                    .header_read_timeout
                    .unwrap_or(defaults.limits.header_read_timeout),
                idle_timeout: limits.idle_timeout.unwrap_or(defaults.limits.idle_timeout),
                max_connections: limits
                    .max_connections
                    .unwrap_or(defaults.limits.max_connections),
            },
            retention: server.retention.policy(),
            ..defaults
        }
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            allowed_hosts: Vec::new(),
            limits: ConnectionLimits::default(),
            retention: Retention::default(),
            retention_interval: Duration::from_secs(3600),
            audit_burst: 60,
            audit_per_second: 1.0,
        }
    }
}

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
            // The name comes from the caller: answer with it only when it is short.
            EngineError::UnknownApp(name) => {
                return Failure::new(
                    StatusCode::NOT_FOUND,
                    format!("no app named {}", api::shown(name)),
                );
            }
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
    pub(crate) options: ServerOptions,
    /// Rate limit on recording denied calls.
    pub(crate) denied: Mutex<AuditBucket>,
}

/// A token bucket for audit rows anyone can cause; counts what it drops.
pub(crate) struct AuditBucket {
    tokens: f64,
    at: Instant,
    pub(crate) dropped: u64,
}

impl AuditBucket {
    fn new(burst: u32) -> AuditBucket {
        AuditBucket {
            tokens: f64::from(burst),
            at: Instant::now(),
            dropped: 0,
        }
    }

    /// Takes a token; `Some(dropped since the last one taken)` when allowed.
    pub(crate) fn take(&mut self, burst: u32, per_second: f64) -> Option<u64> {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * per_second;
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.dropped))
        } else {
            self.dropped += 1;
            None
        }
    }
}

/// The HTTP face of one engine. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<Inner>,
}

impl Server {
    /// A server with the config's tokens and webhook secrets (read now, so a missing
    /// secret fails at start-up) and default options. Starts the metrics feeder; call
    /// inside a tokio runtime.
    pub fn new(engine: Engine, config: &Config) -> Result<Server, ServerError> {
        Server::with_options(engine, config, ServerOptions::default())
    }

    /// As [`Server::new`], with `options`.
    pub fn with_options(
        engine: Engine,
        config: &Config,
        options: ServerOptions,
    ) -> Result<Server, ServerError> {
        Ok(Server::build(
            engine,
            auth::Tokens::new(&config.server.tokens),
            hooks::Hooks::new(config)?,
            options,
        ))
    }

    /// An open server: no tokens, no webhooks (loopback use, tests).
    pub fn open(engine: Engine) -> Server {
        Server::open_with(engine, ServerOptions::default())
    }

    /// As [`Server::open`], with `options`.
    pub fn open_with(engine: Engine, options: ServerOptions) -> Server {
        Server::build(
            engine,
            auth::Tokens::default(),
            hooks::Hooks::empty(),
            options,
        )
    }

    fn build(
        engine: Engine,
        tokens: auth::Tokens,
        hooks: hooks::Hooks,
        options: ServerOptions,
    ) -> Server {
        let server = Server {
            inner: Arc::new(Inner {
                tokens,
                hooks,
                metrics: metrics::Metrics::new(),
                closing: tokio::sync::watch::channel(false).0,
                denied: Mutex::new(AuditBucket::new(options.audit_burst)),
                options,
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

    /// Records a denied call, at a bounded rate (anyone who reaches the port can cause
    /// one); the number of calls not recorded goes with the next one that is.
    pub(crate) fn audit_denied(&self, mut record: NewAudit) {
        let options = &self.inner.options;
        let allowed = self
            .inner
            .denied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take(options.audit_burst, options.audit_per_second);
        match allowed {
            None => {}
            Some(0) => self.audit(record),
            Some(dropped) => {
                tracing::warn!(
                    dropped,
                    "denied calls not recorded in the audit log (rate limit)"
                );
                record.detail = Some(format!(
                    "{dropped} more denied calls before this one were not recorded (rate limit)"
                ));
                self.audit(record);
            }
        }
    }

    /// The whole HTTP surface, ready to serve or to test with `oneshot`. Without a
    /// listen address the Host rule accepts the loopback names on any port.
    pub fn router(&self) -> Router {
        self.router_for(None)
    }

    /// The HTTP surface as served on `listen`.
    pub fn router_for(&self, listen: Option<SocketAddr>) -> Router {
        let guard = guard::Guard::new(
            self.requires_tokens(),
            &self.inner.options.allowed_hosts,
            listen,
        );
        routes(self)
            .merge(ui::router())
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::map_response(json_errors))
            .layer(from_fn_with_state(guard, guard::check))
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
    get "/api/v1/apps/{name}/diff", VIEWER, api::diff_app, 200 "Plan {revision, tasks: [op, object id, diff], computedAt}; 503 before the app's first plan", "What a sync would change, as of the app's last check (served from memory); changes nothing.";
    post "/api/v1/apps/{name}/diff", OPERATOR, api::refresh_diff, 200 "Plan {revision, tasks, computedAt}", "Plan now against Git and the target, and return the plan; changes nothing.";
    get "/api/v1/apps/{name}/history", VIEWER, api::history, 200 "Array of SyncSummary (a SyncRecord with change counts `changes` instead of `changeSet`, no `postSyncOutput`), newest first (?limit=, default 50, max 200)", "Past syncs.";
    get "/api/v1/apps/{name}/history/{id}", VIEWER, api::history_entry, 200 "SyncRecord with its whole changeSet and postSyncOutput", "One past sync.";
    post "/api/v1/apps/{name}/sync", OPERATOR, api::sync_app, 200 "SyncReport {app, revision, record}", "Sync now to the current revision.";
    post "/api/v1/apps/{name}/refresh", OPERATOR, api::refresh_app, 202 "Empty; the app looks at its source soon", "Look at the Git source now (what a webhook does).";
    post "/api/v1/apps/{name}/rollback", OPERATOR, api::rollback_app, 200 "SyncReport; body {\"revision\": \"<commit, tag or branch>\"}", "Pin to an earlier revision and sync it.";
    post "/api/v1/apps/{name}/suspend", OPERATOR, api::suspend_app, 200 "AppStatus", "Stop automatic syncs and self-heal.";
    post "/api/v1/apps/{name}/resume", OPERATOR, api::resume_app, 200 "AppStatus", "Follow Git again (clears suspension and rollback pin).";
    get "/api/v1/events", VIEWER, events::events, 200 "Array of EventRecord (?app=, ?limit=, default 100, max 200); with Accept: text/event-stream a live SSE stream (event = kind, id = event id, data = EventRecord JSON; Last-Event-ID replays)", "Events: stored, or live as Server-Sent Events.";
    get "/api/v1/audit", ADMIN, api::audit, 200 "Array of AuditRecord, newest first (?app=, ?limit=, default 100, max 200)", "Who asked for what, and how it went.";
    post "/hooks/{provider}", OPEN, hooks::receive, 202 "{\"apps\": [names refreshed]}; provider is github, gitlab, gitea or generic; signed, max 1 MiB", "Git host push webhook.";
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics_text(axum::extract::State(server): axum::extract::State<Server>) -> Response {
    let text = server.inner.metrics.render(&server.inner.engine);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// Every error answer is a JSON [`ApiError`]: rejections made by the framework (a path
/// that is not UTF-8, a body that is not JSON…) come as plain text and are wrapped here,
/// their text kept (bounded) as the detail.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        driftless_store::truncate(&text, 512).into_owned()
    };
    let mut wrapped = Failure::new(status, detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            wrapped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    wrapped
}

async fn method_not_allowed(method: axum::http::Method) -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not served on this path (see /api/v1/openapi.json)"),
    )
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
    serve_open(engine, ServerOptions::default(), listener, shutdown).await
}

/// As [`serve`], with `options`.
pub async fn serve_open(
    engine: Engine,
    options: ServerOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_server(
        Server::open_with(engine, options),
        Vec::new(),
        listener,
        None,
        shutdown,
    )
    .await
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
    serve_config_with(
        engine,
        config,
        ServerOptions::from_config(&config.server),
        listener,
        tls,
        shutdown,
    )
    .await
}

/// As [`serve_config`], with `options`.
pub async fn serve_config_with(
    engine: Engine,
    config: &Config,
    options: ServerOptions,
    listener: tokio::net::TcpListener,
    tls: Option<&TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let server = Server::with_options(engine, config, options)?;
    let sinks = config.notifications.clone();
    serve_server(server, sinks, listener, tls.cloned(), shutdown).await?;
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

async fn serve_server(
    server: Server,
    sinks: Vec<driftless_engine::config::NotificationConfig>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    if tls.is_none() && server.requires_tokens() && !local.ip().is_loopback() {
        tracing::warn!(
            listen = %local,
            "API tokens travel in clear text: serving plain HTTP on a non-loopback address; use --tls-cert/--tls-key or a TLS-terminating proxy"
        );
    }
    let engine = server.inner.engine.clone();
    let notifier = notify::spawn(engine.clone(), sinks);
    let retention = spawn_retention(&server);
    let app = server.router_for(Some(local));
    let closing = server.inner.closing.clone();
    let limits = server.inner.options.limits;
    let served = serve::serve(app, listener, tls, limits, async move {
        shutdown.await;
        // Live event streams end so that the graceful shutdown can finish.
        let _ = closing.send(true);
    })
    .await;
    retention.abort();
    engine.shutdown().await;
    if let Some(notifier) = notifier {
        notifier.abort();
    }
    served
}

/// Applies the retention policy now and then every `retention_interval`, off the
/// async threads (a pass may delete many rows).
fn spawn_retention(server: &Server) -> tokio::task::JoinHandle<()> {
    let store = server.inner.engine.store().clone();
    let policy = server.inner.options.retention;
    let every = server
        .inner
        .options
        .retention_interval
        .max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.apply_retention(&policy)).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::warn!(%err, "retention pass failed; retrying later"),
                Err(err) => tracing::warn!(%err, "retention pass panicked"),
            }
        }
    })
}
