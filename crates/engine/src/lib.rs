//! Engine: the app registry, per-app scheduling (interval, jitter, backoff), the
//! reconcile loop, sync, self-heal, rollback and suspend.
//!
//! It owns retries and concurrency. It must not parse HTTP or print for humans: the
//! server and the CLI are faces on it.
//!
//! # Flow
//! Every app runs in its own task and handles one step at a time (per-app concurrency 1;
//! apps run in parallel). A step: ask the source where the ref points (cheap), render
//! only when the revision changed, plan against live state (the periodic full check),
//! then apply when the policy says so: a new revision with `auto`, drift with `selfHeal`,
//! or an explicit sync or rollback.
//!
//! # Guarantees
//! - A revision that fails to render applies nothing; the last good revision stays live.
//! - Before an apply the inventory is widened to include everything about to be written,
//!   so a crash mid-apply never forgets an object that exists; prune only ever deletes
//!   inventory entries.
//! - Two apps claiming one object both fail with a conflict; neither applies it.

mod app;
pub mod config;
mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use driftless_model::Plan;
use driftless_source::SourceCache;
use driftless_store::{EventRecord, Store, SyncRecord};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use config::{AppConfig, Config, ConfigError, SyncPolicy, TargetConfig};
pub use status::{AppStatus, CommitSummary, LastPlan, ObjectStatus};

use app::{AppRuntime, Command, Shared};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No app has that name.
    #[error("no app named {0:?}")]
    UnknownApp(String),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[from] driftless_store::StoreError),
    /// The app's step failed; the message says what and where.
    #[error("{0}")]
    Failed(String),
    /// The engine is shutting down.
    #[error("driftless is shutting down")]
    ShuttingDown,
}

/// Where the engine keeps its state and caches, and whether it runs on its own.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// SQLite database and other state.
    pub state_dir: PathBuf,
    /// Shared Git cache.
    pub cache_dir: PathBuf,
    /// `true` for `serve`: poll on intervals and watch for drift. `false` for one-shot
    /// commands (`plan`, `apply`): apps act only when asked.
    pub background: bool,
}

/// One look at a Git source: how long asking where the ref points (and fetching, when it
/// moved) took, and the error's metric reason when it failed.
#[derive(Debug)]
pub struct FetchReport<'a> {
    pub app: &'a str,
    pub repo: &'a str,
    pub duration: std::time::Duration,
    pub error: Option<&'static str>,
}

/// Called after every look at a Git source (for metrics); must not block.
pub type FetchObserver = Arc<dyn Fn(&FetchReport<'_>) + Send + Sync>;

/// The result of an explicit sync: the history row, or `None` when live already matched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    pub app: String,
    pub revision: String,
    pub record: Option<SyncRecord>,
}

struct AppEntry {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

/// The running engine. Cheap to clone; all clones drive the same apps.
#[derive(Clone)]
pub struct Engine {
    apps: Arc<BTreeMap<String, AppEntry>>,
    store: Store,
    events: broadcast::Sender<EventRecord>,
    shutdown: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    fetch_observer: Arc<Mutex<Option<FetchObserver>>>,
}

impl Engine {
    /// Opens the store, marks syncs a crash left running as interrupted, and starts one
    /// task per app. Must be called inside a tokio runtime.
    pub fn start(config: &Config, options: EngineOptions) -> Result<Engine, EngineError> {
        let store = Store::open(&options.state_dir)?;
        // Only the daemon owns "running" rows; a one-shot command must not mark its syncs.
        if options.background {
            for interrupted in store.interrupt_unfinished()? {
                tracing::warn!(app = %interrupted.app, sync = interrupted.id, "sync was interrupted by a restart; resuming from live state");
            }
        }
        let sources = SourceCache::new(options.cache_dir.clone());
        let (events, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        let claims = Arc::new(Mutex::new(app::Claims::default()));
        let startup = Arc::new(app::StartupGate::new(config.apps.len()));
        let mut apps = BTreeMap::new();
        let mut runtimes = Vec::new();
        for app_config in &config.apps {
            let (tx, rx) = mpsc::channel(64);
            let shared = Arc::new(Shared::new(app_config, &store));
            apps.insert(
                app_config.name().to_owned(),
                AppEntry {
                    shared: shared.clone(),
                    commands: tx.clone(),
                },
            );
            runtimes.push((app_config.clone(), shared, tx, rx));
        }
        let peers: BTreeMap<String, mpsc::Sender<Command>> = apps
            .iter()
            .map(|(name, entry)| (name.clone(), entry.commands.clone()))
            .collect();
        let peers = Arc::new(peers);
        let mut tasks = Vec::new();
        let fetch_observer: Arc<Mutex<Option<FetchObserver>>> = Arc::default();
        let kube_connections = driftless_target_kube::KubeConnections::default();
        for (app_config, shared, tx, rx) in runtimes {
            let runtime = AppRuntime::new(
                app_config,
                shared,
                store.clone(),
                sources.clone(),
                events.clone(),
                claims.clone(),
                peers.clone(),
                tx,
                startup.clone(),
                fetch_observer.clone(),
                kube_connections.clone(),
            );
            tasks.push(tokio::spawn(runtime.run(
                rx,
                shutdown.subscribe(),
                options.background,
            )));
        }
        Ok(Engine {
            apps: Arc::new(apps),
            store,
            events,
            shutdown,
            tasks: Arc::new(Mutex::new(tasks)),
            fetch_observer,
        })
    }

    /// Calls `observer` after every look at a Git source from now on (metrics).
    pub fn observe_fetches(&self, observer: FetchObserver) {
        *self.fetch_observer.lock().expect("observer lock poisoned") = Some(observer);
    }

    /// The store, for read-only queries (history, events, audit).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Live events (sync started/finished, drift, errors) as they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.events.subscribe()
    }

    /// Status of every app, sorted by name.
    pub fn apps(&self) -> Vec<AppStatus> {
        self.apps
            .values()
            .map(|entry| entry.shared.snapshot())
            .collect()
    }

    /// Status of one app.
    pub fn app(&self, name: &str) -> Result<AppStatus, EngineError> {
        Ok(self.entry(name)?.shared.snapshot())
    }

    /// Sync history of one app, newest first.
    pub fn history(&self, name: &str, limit: usize) -> Result<Vec<SyncRecord>, EngineError> {
        self.entry(name)?;
        Ok(self.store.history(name, limit)?)
    }

    /// The plan the app's last full step computed (kept in memory, redacted as
    /// [`Engine::plan`] redacts), without touching Git or the target: what a viewer's
    /// diff shows. `None` until the app has planned once since the start.
    pub fn last_plan(&self, name: &str) -> Result<Option<LastPlan>, EngineError> {
        Ok(self.entry(name)?.shared.last_plan())
    }

    /// Computes the plan (diff against live) for the app's current revision now: asks
    /// Git where the ref points and plans against the target; changes nothing. This is
    /// an explicit refresh; prefer [`Engine::last_plan`] for showing a diff.
    pub async fn plan(&self, name: &str) -> Result<Plan, EngineError> {
        self.ask(name, |reply| Command::Plan { reply }).await
    }

    /// Syncs the app now to its current revision (latest, or pinned after a rollback).
    pub async fn sync(&self, name: &str, who: &str) -> Result<SyncReport, EngineError> {
        let who = who.to_owned();
        self.ask(name, |reply| Command::Sync { who, reply }).await
    }

    /// Pins the app to `revision` and syncs it; auto-sync stays paused until `resume`.
    pub async fn rollback(
        &self,
        name: &str,
        revision: &str,
        who: &str,
    ) -> Result<SyncReport, EngineError> {
        let (revision, who) = (revision.to_owned(), who.to_owned());
        self.ask(name, |reply| Command::Rollback {
            revision,
            who,
            reply,
        })
        .await
    }

    /// Stops automatic syncs and self-heal for the app until `resume`.
    pub async fn suspend(&self, name: &str, who: &str) -> Result<AppStatus, EngineError> {
        let who = who.to_owned();
        self.ask(name, |reply| Command::Suspend { who, reply })
            .await
    }

    /// Clears a suspension and a rollback pin; the app follows its ref again.
    pub async fn resume(&self, name: &str, who: &str) -> Result<AppStatus, EngineError> {
        let who = who.to_owned();
        self.ask(name, |reply| Command::Resume { who, reply }).await
    }

    /// Asks the app to look at its source now (webhook, post-receive hook). Returns at once.
    pub fn refresh(&self, name: &str) -> Result<(), EngineError> {
        let entry = self.entry(name)?;
        // A full queue already holds a pending step that will see the new revision.
        let _ = entry.commands.try_send(Command::Refresh);
        Ok(())
    }

    /// Lets every app finish the step in flight, then stops them.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("task list lock poisoned"));
        for task in tasks {
            let _ = task.await;
        }
    }

    fn entry(&self, name: &str) -> Result<&AppEntry, EngineError> {
        self.apps
            .get(name)
            .ok_or_else(|| EngineError::UnknownApp(name.to_owned()))
    }

    async fn ask<T>(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<Result<T, EngineError>>) -> Command,
    ) -> Result<T, EngineError> {
        let entry = self.entry(name)?;
        let (reply, answer) = oneshot::channel();
        entry
            .commands
            .send(make(reply))
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }
}
