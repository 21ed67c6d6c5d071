//! One app's task: its schedule, its reconcile step and its commands.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use driftless_model::{
    Action, DesiredSet, DriftEvent, Health, Inventory, ObjectRef, Plan, SyncOptions, SyncStatus,
    Target, Task, TaskOp,
};
use driftless_render::{Decryption, Identities, KeySources, SecretSet, SopsError};
use driftless_source::{Credentials, RepoHandle, SourceCache};
use driftless_store::{
    AppState, CommitMeta, EventRecord, NewAudit, NewEvent, NewSync, Severity, Store, SyncOutcome,
    SyncResult, Trigger,
};
use driftless_target_files::FilesTarget;
use driftless_target_kube::{KubeConnections, KubeTarget};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::{AppConfig, CredentialsConfig, SourceConfig, TargetConfig};
use crate::status::{AppStatus, CommitSummary, LastPlan, LastSync, ObjectStatus};
use crate::{EngineError, SyncReport};

/// The longest wait between retries after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Live changes arriving this close together are handled in one step.
const DRIFT_COALESCE: Duration = Duration::from_millis(50);
/// A live change of at most this many objects is planned for those objects alone.
const FOCUS_LIMIT: usize = 64;
/// The longest an app waits at startup for the other apps to claim their objects.
const STARTUP_GATE_LIMIT: Duration = Duration::from_secs(30);
/// While a watch reports live changes, a scheduled check only asks Git whether the ref
/// moved; a full plan (a dry run per object) still runs at least this often, in case the
/// watch missed something.
const FULL_RESYNC: Duration = Duration::from_secs(600);

/// The target as the engine drives it, plus the files target itself for `postSync`.
type TargetPair = (Arc<dyn Target>, Option<Arc<FilesTarget>>);

type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

pub(crate) enum Command {
    Refresh,
    /// The watch saw this object change.
    Drift(ObjectRef),
    Plan {
        reply: Reply<Plan>,
    },
    Sync {
        who: String,
        reply: Reply<SyncReport>,
    },
    Rollback {
        revision: String,
        who: String,
        reply: Reply<SyncReport>,
    },
    Suspend {
        who: String,
        reply: Reply<AppStatus>,
    },
    Resume {
        who: String,
        reply: Reply<AppStatus>,
    },
}

/// Which app claims which live object, so that two apps never fight over one.
/// Keyed by a target-wide object key (for files: the absolute path).
#[derive(Default)]
pub(crate) struct Claims {
    by_key: BTreeMap<String, BTreeSet<String>>,
    by_app: BTreeMap<String, BTreeSet<String>>,
}

impl Claims {
    /// Replaces `app`'s claims and returns, per other app, the keys both claim.
    fn replace(&mut self, app: &str, keys: BTreeSet<String>) -> BTreeMap<String, Vec<String>> {
        if let Some(old) = self.by_app.remove(app) {
            for key in old {
                if let Some(owners) = self.by_key.get_mut(&key) {
                    owners.remove(app);
                    if owners.is_empty() {
                        self.by_key.remove(&key);
                    }
                }
            }
        }
        let mut clashes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in &keys {
            let owners = self.by_key.entry(key.clone()).or_default();
            for other in owners.iter() {
                clashes.entry(other.clone()).or_default().push(key.clone());
            }
            owners.insert(app.to_owned());
        }
        self.by_app.insert(app.to_owned(), keys);
        clashes
    }
}

/// Holds back every app's first apply until each app has claimed its objects (or failed
/// before it could), so that two apps claiming one object cannot race to write it at
/// startup: the first to render would otherwise apply before the other claimed anything.
pub(crate) struct StartupGate {
    apps: usize,
    claimed: watch::Sender<BTreeSet<String>>,
}

impl StartupGate {
    pub(crate) fn new(apps: usize) -> StartupGate {
        StartupGate {
            apps,
            claimed: watch::Sender::new(BTreeSet::new()),
        }
    }

    /// `app` has claimed its objects, or its first step failed before it could.
    fn mark(&self, app: &str) {
        self.claimed
            .send_if_modified(|claimed| claimed.insert(app.to_owned()));
    }

    /// Waits until every app is marked; `false` when `limit` passed first.
    async fn wait(&self, limit: Duration) -> bool {
        let mut claimed = self.claimed.subscribe();
        let all = claimed.wait_for(|claimed| claimed.len() >= self.apps);
        matches!(tokio::time::timeout(limit, all).await, Ok(Ok(_)))
    }
}

/// State shared between the app's task and readers (API, CLI).
pub(crate) struct Shared {
    status: Mutex<AppStatus>,
    /// The last full plan, already redacted, for viewers' diffs.
    last_plan: Mutex<Option<LastPlan>>,
}

impl Shared {
    pub(crate) fn new(config: &AppConfig, store: &Store) -> Shared {
        let state = store.app_state(config.name()).unwrap_or_default();
        let last_sync = store.last_sync(config.name(), false).ok().flatten();
        Shared {
            status: Mutex::new(AppStatus {
                name: config.name().to_owned(),
                source: SourceConfig {
                    repo: driftless_source::redact_url(&config.source.repo),
                    ..config.source.clone()
                },
                target: config.target.to_string(),
                sync_policy: config.sync,
                sync_status: SyncStatus::Unknown,
                health: Health::Unknown,
                revision: None,
                commit: None,
                applied_revision: state.last_applied_revision.clone(),
                last_sync: last_sync.as_ref().map(LastSync::from),
                error: None,
                suspended: state.suspended,
                pinned_revision: state.pinned_revision,
                drifted: Vec::new(),
                objects: Vec::new(),
                last_checked_at: None,
                next_retry_at: None,
            }),
            last_plan: Mutex::new(None),
        }
    }

    pub(crate) fn last_plan(&self) -> Option<LastPlan> {
        self.last_plan.lock().expect("plan lock poisoned").clone()
    }

    fn set_last_plan(&self, plan: Plan) {
        let at = now_ms();
        *self.last_plan.lock().expect("plan lock poisoned") = Some(LastPlan {
            revision: plan.revision.clone(),
            computed_at: at,
            plan,
        });
    }

    /// Folds a focused plan of a few objects into the last full plan, so a viewer's
    /// diff agrees with the status those objects now show: their tasks replace the old
    /// ones, or, when the step applied them (a heal), they are shown unchanged.
    fn merge_last_plan(&self, focused: Plan, applied: bool) {
        let mut guard = self.last_plan.lock().expect("plan lock poisoned");
        let Some(last) = guard.as_mut() else {
            return;
        };
        if last.revision != focused.revision {
            return;
        }
        for mut task in focused.tasks {
            // Held conflicts (`sync.force: false`) were not applied: they still differ.
            if applied && !task.conflict {
                task.op = TaskOp::Unchanged;
                task.diff = None;
                task.changed_by.clear();
            }
            match last.plan.tasks.iter_mut().find(|t| t.id == task.id) {
                Some(old) => *old = task,
                None => last.plan.tasks.push(task),
            }
        }
        last.computed_at = now_ms();
    }

    pub(crate) fn snapshot(&self) -> AppStatus {
        self.status.lock().expect("status lock poisoned").clone()
    }

    fn update(&self, change: impl FnOnce(&mut AppStatus)) {
        change(&mut self.status.lock().expect("status lock poisoned"));
    }
}

/// A rendered revision, kept so that an unchanged revision is never rendered twice.
struct Rendered {
    revision: String,
    commit: Option<CommitMeta>,
    desired: Arc<DesiredSet>,
    /// Values and paths that came out of SOPS decryption: never shown.
    secrets: Arc<SecretSet>,
}

/// Why a step stopped early; decides the retry delay.
enum StepError {
    /// Worth retrying soon (network, I/O): exponential backoff.
    Transient(String),
    /// Will not change until Git or the config does: wait for the normal interval.
    Permanent(String),
}

impl StepError {
    fn message(&self) -> &str {
        match self {
            StepError::Transient(m) | StepError::Permanent(m) => m,
        }
    }
}

impl From<driftless_store::StoreError> for StepError {
    fn from(err: driftless_store::StoreError) -> Self {
        StepError::Transient(format!("state store: {err}"))
    }
}

/// Added to a render error about an encrypted file in an app that did not opt in.
const NOT_OPTED_IN: &str = "\nthis app has no `decryption:`, so it decrypts nothing (not even with the daemon's SOPS_AGE_KEY_FILE / SOPS_AGE_KEY); add `decryption: { sops: { ageKeyFile: … } }` to the app, or remove the encrypted file from its source";

/// Longest a scheduled poll reuses the ref advertisement another app on the same
/// repository got (see `desired_revision`).
const SHARED_REFS_MAX_AGE: Duration = Duration::from_secs(5);

/// Why a step runs: decides whether it may apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Scheduled poll, webhook/refresh or live change: apply only as the policy allows.
    Check(Trigger),
    /// An explicit sync or rollback: apply whatever the plan says.
    Force(Trigger),
    /// Only compute the plan.
    PlanOnly,
}

pub(crate) struct AppRuntime {
    config: AppConfig,
    name: String,
    /// The repository URL as it may be shown (see [`driftless_source::redact_url`]).
    repo_display: String,
    shared: Arc<Shared>,
    store: Store,
    sources: SourceCache,
    events: broadcast::Sender<EventRecord>,
    claims: Arc<Mutex<Claims>>,
    peers: Arc<BTreeMap<String, mpsc::Sender<Command>>>,
    own_commands: mpsc::Sender<Command>,
    fetch_observer: Arc<Mutex<Option<crate::FetchObserver>>>,
    /// Kubernetes clients and watchers shared by the engine's apps.
    kube_connections: KubeConnections,
    repo: Option<RepoHandle>,
    target: Option<TargetPair>,
    /// The same target as a Kubernetes one, for reading decryption keys from Secrets.
    kube_target: Option<Arc<KubeTarget>>,
    rendered: Option<Rendered>,
    /// The decrypted values of the revision rendered before the current one: an apply
    /// or prune of the old revision's objects may still quote them.
    previous_secrets: Option<Arc<SecretSet>>,
    /// The ids whose live content came out of decryption, as the inventory in the store
    /// records them (loaded on the first step); their content is never shown.
    decrypted: Option<BTreeSet<ObjectRef>>,
    /// The revision whose render failed, with the error, so it is reported once.
    failed_revision: Option<(String, String)>,
    watch_guard: Option<Box<dyn Any + Send>>,
    watched: BTreeSet<ObjectRef>,
    /// The revision and time of the last step that planned in full and succeeded.
    last_full_check: Option<(String, std::time::Instant)>,
    /// The objects the watch reported, for the next step to plan alone (see FOCUS_LIMIT).
    focus: Option<BTreeSet<ObjectRef>>,
    /// The last step planned only the focus.
    step_focused: bool,
    /// A watch was (re)installed by the last step: a change made between that step's plan
    /// and the watch's first list was seen by neither, so the next poll plans in full.
    watch_new: bool,
    /// Set when a watch report found the command queue full: the next step plans in full.
    drift_overflow: Arc<std::sync::atomic::AtomicBool>,
    failures: u32,
    /// Drift already reported, so an unhealed drift is not reported again every poll.
    reported_drift: BTreeSet<ObjectRef>,
    /// Apps this one is in an ownership conflict with, woken once when it began.
    conflicts_with: BTreeSet<String>,
    startup: Arc<StartupGate>,
    /// The startup gate was passed (or timed out); never waited on again.
    started: bool,
    background: bool,
}

impl AppRuntime {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: AppConfig,
        shared: Arc<Shared>,
        store: Store,
        sources: SourceCache,
        events: broadcast::Sender<EventRecord>,
        claims: Arc<Mutex<Claims>>,
        peers: Arc<BTreeMap<String, mpsc::Sender<Command>>>,
        own_commands: mpsc::Sender<Command>,
        startup: Arc<StartupGate>,
        fetch_observer: Arc<Mutex<Option<crate::FetchObserver>>>,
        kube_connections: KubeConnections,
    ) -> AppRuntime {
        AppRuntime {
            name: config.name().to_owned(),
            repo_display: driftless_source::redact_url(&config.source.repo),
            config,
            shared,
            store,
            sources,
            events,
            claims,
            peers,
            own_commands,
            fetch_observer,
            kube_connections,
            repo: None,
            target: None,
            kube_target: None,
            rendered: None,
            previous_secrets: None,
            decrypted: None,
            failed_revision: None,
            watch_guard: None,
            watched: BTreeSet::new(),
            last_full_check: None,
            focus: None,
            step_focused: false,
            watch_new: false,
            drift_overflow: Arc::default(),
            failures: 0,
            reported_drift: BTreeSet::new(),
            conflicts_with: BTreeSet::new(),
            startup,
            started: false,
            background: false,
        }
    }

    /// The app's task: one step at a time until shutdown, finishing the step in flight.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
        background: bool,
    ) {
        self.background = background;
        let mut next_delay = if background {
            Some(Duration::ZERO)
        } else {
            None
        };
        // The first scheduled step after a start is recorded as `startup`.
        let mut started = false;
        loop {
            let timer = async {
                match next_delay {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => std::future::pending().await,
                }
            };
            let outcome = tokio::select! {
                _ = shutdown.changed() => break,
                _ = timer => {
                    let trigger = if started { Trigger::Poll } else { Trigger::Startup };
                    started = true;
                    Some(self.scheduled_check(trigger).await)
                }
                command = commands.recv() => match command {
                    None => break,
                    Some(command) => self.handle(command, &mut commands).await,
                },
            };
            if *shutdown.borrow() {
                break;
            }
            if let Some(result) = outcome
                && background
            {
                next_delay = Some(self.delay_after(&result));
            }
        }
        self.watch_guard = None;
        self.claims
            .lock()
            .expect("claims lock poisoned")
            .replace(&self.name, BTreeSet::new());
    }

    /// Handles one command; returns the step's outcome when it ran one.
    async fn handle(
        &mut self,
        command: Command,
        queue: &mut mpsc::Receiver<Command>,
    ) -> Option<Result<(), StepError>> {
        match command {
            Command::Refresh => Some(self.step(Why::Check(Trigger::Webhook)).await.map(|_| ())),
            Command::Drift(first) => {
                // Let a burst of live changes settle, then handle them in one step.
                tokio::time::sleep(DRIFT_COALESCE).await;
                let mut deferred = Vec::new();
                let mut changed = BTreeSet::from([first]);
                while let Ok(next) = queue.try_recv() {
                    match next {
                        Command::Drift(id) => {
                            changed.insert(id);
                        }
                        other => deferred.push(other),
                    }
                }
                let overflowed = self
                    .drift_overflow
                    .swap(false, std::sync::atomic::Ordering::SeqCst);
                self.focus = (!overflowed && changed.len() <= FOCUS_LIMIT).then_some(changed);
                let result = self.step(Why::Check(Trigger::Watch)).await.map(|_| ());
                self.focus = None;
                for command in deferred {
                    // Re-queue what arrived meanwhile; order among them is kept.
                    let _ = self.own_commands.try_send(command);
                }
                Some(result)
            }
            Command::Plan { reply } => {
                let result = self.step(Why::PlanOnly).await;
                let answer = match &result {
                    Ok(done) => Ok(self.shareable(&done.plan)),
                    Err(err) => Err(EngineError::Failed(err.message().to_owned())),
                };
                let _ = reply.send(answer);
                Some(result.map(|_| ()))
            }
            Command::Sync { who, reply } => {
                let result = self.explicit_sync(Trigger::Manual, &who).await;
                self.audit(&who, "sync", None, &result);
                let _ = reply.send(result);
                Some(Ok(()))
            }
            Command::Rollback {
                revision,
                who,
                reply,
            } => {
                let result = self
                    .rollback(&revision, &who)
                    .await
                    .map_err(|err| match err {
                        EngineError::Failed(m) => EngineError::Failed(self.sanitize(&m)),
                        other => other,
                    });
                self.audit(&who, "rollback", Some(revision), &result);
                let _ = reply.send(result);
                Some(Ok(()))
            }
            Command::Suspend { who, reply } => {
                let result = self.set_state(&who, |st| st.suspended = true);
                self.audit(&who, "suspend", None, &result);
                let _ = reply.send(result);
                None
            }
            Command::Resume { who, reply } => {
                let result = self.set_state(&who, |st| {
                    st.suspended = false;
                    st.pinned_revision = None;
                });
                self.audit(&who, "resume", None, &result);
                let _ = reply.send(result);
                // Follow the ref again right away.
                Some(self.step(Why::Check(Trigger::Manual)).await.map(|_| ()))
            }
        }
    }

    /// When to step again: the interval after a success; after a failure, exponential
    /// backoff (1 s, 2 s, 4 s, … up to 5 min), never sooner than the interval when only a
    /// change in Git or the config can help. Says when it retries, in the log and status.
    fn delay_after(&mut self, result: &Result<(), StepError>) -> Duration {
        let interval = self.config.source.interval;
        let err = match result {
            Ok(()) => {
                self.failures = 0;
                self.shared.update(|s| s.next_retry_at = None);
                return jitter(interval);
            }
            Err(err) => err,
        };
        self.failures = self.failures.saturating_add(1);
        let backoff =
            Duration::from_secs(1u64 << self.failures.min(9).saturating_sub(1)).min(MAX_BACKOFF);
        let delay = match err {
            StepError::Transient(_) => backoff,
            StepError::Permanent(_) => backoff.max(jitter(interval)),
        };
        tracing::warn!(
            app = %self.name,
            error = %err.message(),
            failures = self.failures,
            retry_in_s = delay.as_secs_f64(),
            "reconcile step failed; retrying in {}",
            humantime_secs(delay)
        );
        let at = now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        self.shared.update(|s| s.next_retry_at = Some(at));
        delay
    }

    fn set_state(
        &mut self,
        who: &str,
        change: impl FnOnce(&mut AppState),
    ) -> Result<AppStatus, EngineError> {
        let mut state = self.store.app_state(&self.name)?;
        change(&mut state);
        self.store.save_app_state(&self.name, &state)?;
        self.shared.update(|s| {
            s.suspended = state.suspended;
            s.pinned_revision = state.pinned_revision.clone();
        });
        tracing::info!(app = %self.name, who, suspended = state.suspended, "app state changed");
        Ok(self.shared.snapshot())
    }

    fn audit<T>(
        &self,
        who: &str,
        action: &str,
        detail: Option<String>,
        result: &Result<T, EngineError>,
    ) {
        let record = NewAudit {
            actor: who.to_owned(),
            action: action.to_owned(),
            app: Some(self.name.clone()),
            detail,
            outcome: match result {
                Ok(_) => "ok".to_owned(),
                Err(err) => err.to_string(),
            },
        };
        if let Err(err) = self.store.record_audit(&record) {
            tracing::error!(app = %self.name, %err, "could not write the audit log");
        }
    }

    async fn explicit_sync(
        &mut self,
        trigger: Trigger,
        who: &str,
    ) -> Result<SyncReport, EngineError> {
        match self.step_as(Why::Force(trigger), Some(who)).await {
            Ok(done) => Ok(SyncReport {
                app: self.name.clone(),
                revision: done.plan.revision.clone(),
                record: done.record,
            }),
            Err(err) => Err(EngineError::Failed(err.message().to_owned())),
        }
    }

    async fn rollback(&mut self, revision: &str, who: &str) -> Result<SyncReport, EngineError> {
        let repo = self
            .repo()
            .map_err(|e| EngineError::Failed(e.message().to_owned()))?;
        let wanted = revision.to_owned();
        let resolved = blocking(move || repo.resolve(&wanted))
            .await
            .map_err(|err| {
                EngineError::Failed(format!("cannot roll back to {revision:?}: {err}"))
            })?;
        self.set_state(who, |st| st.pinned_revision = Some(resolved))?;
        self.explicit_sync(Trigger::Rollback, who).await
    }

    async fn step(&mut self, why: Why) -> Result<StepDone, StepError> {
        self.step_as(why, None).await
    }

    /// A scheduled check. With the watch up, the ref where the last full plan left it and
    /// that plan recent, live state cannot have changed unseen: the watch would have
    /// started a step. So only the ref is looked at (one shared ref listing), not every
    /// object (a dry run each). Anything else, or any doubt, takes the full step.
    async fn scheduled_check(&mut self, trigger: Trigger) -> Result<(), StepError> {
        let recent = self
            .last_full_check
            .as_ref()
            .filter(|(_, at)| at.elapsed() < FULL_RESYNC)
            .map(|(revision, _)| revision.clone());
        if let Some(planned) = recent
            && trigger == Trigger::Poll
            && self.watch_guard.is_some()
        {
            let state = self.store.app_state(&self.name)?;
            if let Ok(now) = self.desired_revision(&state, Why::Check(trigger)).await
                && now == planned
                && state.last_applied_revision.as_deref() == Some(now.as_str())
            {
                let now = now_ms();
                self.shared.update(|s| s.last_checked_at = Some(now));
                return Ok(());
            }
        }
        self.step(Why::Check(trigger)).await.map(|_| ())
    }

    /// One reconcile step. Records the outcome in the shared status either way.
    async fn step_as(&mut self, why: Why, who: Option<&str>) -> Result<StepDone, StepError> {
        // Every step error reaches the status, the log, API replies, the audit log and
        // notifications from here: sanitize it once, here.
        let result = self.try_step(why, who).await.map_err(|err| match err {
            StepError::Transient(m) => StepError::Transient(self.sanitize(&m)),
            StepError::Permanent(m) => StepError::Permanent(self.sanitize(&m)),
        });
        self.last_full_check = match (&result, why) {
            (Ok(_), _) if self.step_focused => self.last_full_check.take(),
            (Ok(done), Why::Check(_) | Why::Force(_)) => {
                Some((done.plan.revision.clone(), std::time::Instant::now()))
            }
            (Ok(_), Why::PlanOnly) => self.last_full_check.take(),
            (Err(_), _) => None,
        };
        if std::mem::take(&mut self.watch_new) {
            self.last_full_check = None;
        }
        if self.background {
            // A step that failed before claiming must not hold the other apps back.
            self.startup.mark(&self.name);
        }
        let now = now_ms();
        match &result {
            Ok(_) => self.shared.update(|s| {
                s.error = None;
                s.last_checked_at = Some(now);
            }),
            Err(err) => {
                let message = err.message().to_owned();
                if !self.background {
                    // The background loop logs failures with their retry time instead.
                    tracing::warn!(app = %self.name, error = %message, "reconcile step failed");
                }
                self.shared.update(|s| {
                    s.error = Some(message);
                    s.last_checked_at = Some(now);
                    if s.sync_status != SyncStatus::OutOfSync {
                        s.sync_status = SyncStatus::Failed;
                    }
                });
            }
        }
        result
    }

    async fn try_step(&mut self, why: Why, who: Option<&str>) -> Result<StepDone, StepError> {
        let state = self.store.app_state(&self.name)?;
        let revision = self.desired_revision(&state, why).await?;
        let (desired, commit) = self.render(&revision).await?;
        let claimed = self.check_claims(&desired);
        if self.background && !self.started {
            self.startup.mark(&self.name);
            claimed?;
            if !self.startup.wait(STARTUP_GATE_LIMIT).await {
                tracing::warn!(app = %self.name, "other apps have not claimed their objects yet; applying anyway");
            }
            self.started = true;
            // The others have claimed meanwhile: look again.
            self.check_claims(&desired)?;
        } else {
            claimed?;
        }
        let (target, files_target) = self.target().await?;
        let inventory = self.inventory(&target).await?;
        if self.decrypted.is_none() {
            self.decrypted = Some(self.store.inventory(&self.name)?.split_decrypted().1);
        }
        if let Some(files) = &files_target {
            let names = self
                .decrypted_in(&desired)
                .into_iter()
                .map(|id| id.name)
                .collect();
            files.set_decrypted(names);
        }
        let options = SyncOptions {
            prune: self.config.sync.prune,
            force_conflicts: self.config.sync.force,
        };
        let new_revision = state.last_applied_revision.as_deref() != Some(revision.as_str());
        // A live change of a few objects, on the revision last planned in full: plan those
        // objects alone (a dry run each, not one per object of the app), so a heal is quick
        // however big the app. Nothing is pruned from a focused plan.
        let focused: Option<(DesiredSet, Inventory)> = self
            .focus
            .take()
            .filter(|_| {
                why == Why::Check(Trigger::Watch)
                    && !new_revision
                    && self
                        .last_full_check
                        .as_ref()
                        .is_some_and(|(planned, _)| *planned == revision)
            })
            .map(|ids| {
                let objects = desired
                    .objects
                    .iter()
                    .filter(|o| ids.contains(&o.id))
                    .cloned()
                    .collect();
                let entries = inventory.entries.intersection(&ids).cloned().collect();
                (
                    DesiredSet {
                        revision: desired.revision.clone(),
                        objects,
                    },
                    Inventory { entries },
                )
            });
        self.step_focused = focused.is_some();
        let (plan_desired, plan_inventory): (&DesiredSet, &Inventory) = focused
            .as_ref()
            .map_or((&*desired, &inventory), |(d, i)| (d, i));
        let plan = target
            .plan(plan_desired, plan_inventory, options)
            .await
            .map_err(target_error)?;

        let drifted: BTreeSet<ObjectRef> = if new_revision {
            BTreeSet::new()
        } else {
            plan.tasks
                .iter()
                .filter(|t| t.op != TaskOp::Unchanged)
                .map(|t| t.id.clone())
                .collect()
        };
        // Objects whose fields other managers hold and the policy may not take
        // (`sync.force: false`): reported, never applied by the loop, so one conflict is
        // one OutOfSync state rather than a sync failing on every retry. An explicit sync
        // still tries them and says why it fails.
        let held: BTreeSet<ObjectRef> = match why {
            Why::Check(_) => plan
                .tasks
                .iter()
                .filter(|t| t.conflict)
                .map(|t| t.id.clone())
                .collect(),
            _ => BTreeSet::new(),
        };
        let healable = drifted.difference(&held).count();
        let policy = self.config.sync;
        let (apply, trigger) = match why {
            Why::PlanOnly => (false, Trigger::Manual),
            Why::Force(trigger) => (true, trigger),
            Why::Check(trigger) if state.suspended => (false, trigger),
            // A rollback pin pauses auto-sync of new revisions; self-heal still guards the pin.
            Why::Check(trigger) if new_revision => {
                (policy.auto && state.pinned_revision.is_none(), trigger)
            }
            Why::Check(_) => (policy.self_heal && healable > 0, Trigger::SelfHeal),
        };

        if !drifted.is_empty() && !apply {
            self.report_drift(&drifted, &plan, &held, &revision);
        }

        let mut record = None;
        let apply_plan = without_held(&plan, &held);
        if apply && (apply_plan.has_changes() || new_revision) {
            if !drifted.is_empty() {
                self.report_drift(&drifted, &plan, &held, &revision);
            }
            let sync = self
                .apply(
                    &apply_plan,
                    plan_desired,
                    &inventory,
                    commit.clone(),
                    trigger,
                    who,
                    &target,
                    files_target.as_deref(),
                )
                .await?;
            if sync.result == SyncResult::Succeeded && healable > 0 {
                let healed: Vec<&Task> = plan
                    .tasks
                    .iter()
                    .filter(|t| drifted.contains(&t.id) && !held.contains(&t.id))
                    .collect();
                let ids: Vec<String> = healed.iter().map(|t| t.id.to_string()).collect();
                self.event(
                    "drift-healed",
                    Severity::Info,
                    format!(
                        "reverted live changes to {}{}",
                        list_some(&ids),
                        made_by(healed.iter().copied())
                    ),
                    Some(&revision),
                );
                self.reported_drift.retain(|id| held.contains(id));
            }
            let failed = sync.result != SyncResult::Succeeded;
            let error = sync.error.clone();
            record = Some(sync);
            if failed {
                self.refresh_status(&revision, commit.as_ref(), &desired, None)
                    .await;
                return Err(StepError::Permanent(
                    error.unwrap_or_else(|| "sync failed".to_owned()),
                ));
            }
        }
        if drifted.is_empty() {
            self.reported_drift.clear();
        }
        if focused.is_some() {
            // Only these objects changed (often just their status, as controllers work):
            // update their entries, not the whole app's.
            self.refresh_focused_status(&plan, record.is_some(), &target)
                .await;
        } else {
            let live_plan = if record.is_some() { None } else { Some(&plan) };
            self.refresh_status(&revision, commit.as_ref(), &desired, live_plan)
                .await;
        }
        if self.background {
            self.ensure_watch(&desired, &target).await;
        }
        Ok(StepDone { plan, record })
    }

    /// The revision to reconcile: the rollback pin, or where the ref points now.
    /// Scheduled steps share one recent ref advertisement per repository with the other
    /// apps on it (at most half an interval, at most 5 s old); webhook, manual and
    /// resume steps ask the server, so that a push is never missed.
    async fn desired_revision(&mut self, state: &AppState, why: Why) -> Result<String, StepError> {
        if let Some(pin) = &state.pinned_revision {
            return Ok(pin.clone());
        }
        let repo = self.repo()?;
        let reference = self.config.source.reference.clone();
        let max_age = match why {
            Why::Check(Trigger::Poll | Trigger::Startup | Trigger::Watch) => {
                Some((self.config.source.interval / 2).min(SHARED_REFS_MAX_AGE))
            }
            _ => None,
        };
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || match max_age {
            Some(max_age) => repo.update_within(&reference, max_age),
            None => repo.update(&reference),
        })
        .await
        .map_err(|join| StepError::Permanent(format!("internal error while fetching: {join}")))?;
        let observer = self
            .fetch_observer
            .lock()
            .expect("observer lock poisoned")
            .clone();
        if let Some(observe) = observer {
            observe(&crate::FetchReport {
                app: &self.name,
                repo: &self.repo_display,
                duration: started.elapsed(),
                error: outcome.as_ref().err().map(|e| e.reason()),
            });
        }
        outcome.map_err(|err| {
            let message = format!("source {}: {err}", self.repo_display);
            if err.is_transient() {
                StepError::Transient(message)
            } else {
                StepError::Permanent(message)
            }
        })
    }

    /// Renders `revision` unless it is the one rendered last.
    async fn render(
        &mut self,
        revision: &str,
    ) -> Result<(Arc<DesiredSet>, Option<CommitMeta>), StepError> {
        if let Some(rendered) = &self.rendered
            && rendered.revision == revision
        {
            return Ok((rendered.desired.clone(), rendered.commit.clone()));
        }
        if let Some((failed, error)) = &self.failed_revision
            && failed == revision
        {
            return Err(StepError::Permanent(error.clone()));
        }
        let repo = self.repo()?;
        let rev = revision.to_owned();
        let path = driftless_model::normalize_rel_path(&self.config.source.path)
            .map_err(|e| StepError::Permanent(e.to_string()))?;
        let files_mode = matches!(self.config.target, TargetConfig::Files(_));
        let decryption = self.decryption().await?;
        let opted_in = decryption.is_some();
        let render_limits = self.config.render.limits.limits();
        let outcome = blocking(move || {
            let commit = repo.commit_info(&rev).map_err(|e| e.to_string())?;
            let tree = repo.tree(&rev).map_err(|e| e.to_string())?;
            let limits = render_limits;
            let rendered = if files_mode {
                driftless_render::render_files_with(&tree, &path, &limits, decryption.as_deref())
            } else {
                driftless_render::render_source_with(&tree, &path, &limits, decryption.as_deref())
            };
            let rendered = rendered.map_err(|errors| {
                let mut text = format!("revision {} does not render:\n{errors}", short(&rev));
                if !opted_in && text.to_ascii_lowercase().contains("sops") {
                    text.push_str(NOT_OPTED_IN);
                }
                text
            })?;
            Ok::<_, String>((commit, rendered))
        })
        .await;
        match outcome {
            Ok((commit, rendered)) => {
                let driftless_render::Rendered {
                    objects, secrets, ..
                } = rendered;
                let secrets = Arc::new(secrets);
                let meta = CommitMeta {
                    author: commit.author_name,
                    email: commit.author_email,
                    time: commit.time,
                    subject: commit.subject,
                    message: commit.message,
                };
                let desired = Arc::new(DesiredSet {
                    revision: revision.to_owned(),
                    objects,
                });
                self.failed_revision = None;
                if let Some(old) = self.rendered.take() {
                    self.previous_secrets = Some(old.secrets);
                }
                self.rendered = Some(Rendered {
                    revision: revision.to_owned(),
                    commit: Some(meta.clone()),
                    desired: desired.clone(),
                    secrets,
                });
                Ok((desired, Some(meta)))
            }
            Err(error) => {
                self.failed_revision = Some((revision.to_owned(), error.clone()));
                self.event(
                    "render-failed",
                    Severity::Error,
                    error.clone(),
                    Some(revision),
                );
                self.shared.update(|s| {
                    // Show the revision that was refused, not the last one that rendered.
                    s.revision = Some(revision.to_owned());
                    s.commit = None;
                    s.sync_status = SyncStatus::Failed;
                });
                Err(StepError::Permanent(error))
            }
        }
    }

    /// Registers this app's objects and fails when another app claims any of them; the
    /// other app is woken so that it shows the conflict too.
    fn check_claims(&mut self, desired: &DesiredSet) -> Result<(), StepError> {
        let keys = desired
            .objects
            .iter()
            .map(|o| self.claim_key(&o.id))
            .collect();
        let clashes = self
            .claims
            .lock()
            .expect("claims lock poisoned")
            .replace(&self.name, keys);
        if clashes.is_empty() {
            self.conflicts_with.clear();
            return Ok(());
        }
        self.conflicts_with
            .retain(|other| clashes.contains_key(other));
        let mut parts = Vec::new();
        for (other, keys) in &clashes {
            // Wake the other app once per conflict so that it shows it too; waking it on
            // every step would make the two apps wake each other forever.
            if self.conflicts_with.insert(other.clone())
                && let Some(peer) = self.peers.get(other)
            {
                let _ = peer.try_send(Command::Refresh);
            }
            let shown: Vec<&str> = keys.iter().take(3).map(String::as_str).collect();
            let more = keys.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            parts.push(format!(
                "app {other:?} also manages {}{more}",
                shown.join(", ")
            ));
        }
        Err(StepError::Permanent(format!(
            "ownership conflict: {}; each object may belong to one app only — remove it from one of them",
            parts.join("; ")
        )))
    }

    fn claim_key(&self, id: &ObjectRef) -> String {
        match &self.config.target {
            TargetConfig::Files(files) => files.root.join(&id.name).display().to_string(),
            TargetConfig::Kubernetes(kube) => {
                // Unnamespaced ids get the app's namespace, as the target will give them;
                // for cluster-scoped kinds the target's own label check catches clashes.
                let mut id = id.clone();
                if id.namespace.is_empty() {
                    id.namespace = kube
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".to_owned());
                }
                let cluster = kube
                    .kubeconfig
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                format!(
                    "kube:{cluster}:{}:{id}",
                    kube.context.as_deref().unwrap_or("")
                )
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &mut self,
        plan: &Plan,
        desired: &DesiredSet,
        inventory: &Inventory,
        commit: Option<CommitMeta>,
        trigger: Trigger,
        who: Option<&str>,
        target: &Arc<dyn Target>,
        files_target: Option<&FilesTarget>,
    ) -> Result<driftless_store::SyncRecord, StepError> {
        let revision = plan.revision.clone();
        let id = self.store.begin_sync(&NewSync {
            app: self.name.clone(),
            revision: revision.clone(),
            commit,
            trigger,
            requested_by: who.map(str::to_owned),
        })?;
        let (create, update, delete, _) = plan.counts();
        self.event(
            "sync-started",
            Severity::Info,
            format!(
                "syncing {} ({create} to create, {update} to update, {delete} to prune)",
                short(&revision)
            ),
            Some(&revision),
        );
        // Widen the inventory first: a crash during apply must not forget a new object,
        // nor that what is about to be written was decrypted.
        let mut widened = inventory.clone();
        widened.entries.extend(desired.ids());
        let secret_now = self.decrypted_in(desired);
        let mut marks = self.decrypted.clone().unwrap_or_default();
        marks.extend(secret_now.iter().cloned());
        self.save_inventory(target, &widened, &marks).await?;

        let options = SyncOptions {
            prune: self.config.sync.prune,
            force_conflicts: self.config.sync.force,
        };
        let applied = target.apply(plan, options).await;
        let (change_set, error) = match applied {
            Ok(changes) => {
                let failures: Vec<String> = changes
                    .changes
                    .iter()
                    .filter(|c| c.action == Action::Failed)
                    .map(|c| format!("{}: {}", c.id, c.detail.as_deref().unwrap_or("failed")))
                    .collect();
                let error = (!failures.is_empty()).then(|| failures.join("\n"));
                (changes, error)
            }
            Err(err) => (Default::default(), Some(err.to_string())),
        };
        // Narrow it again: what Git wants, plus whatever still exists and is ours.
        let deleted: BTreeSet<&ObjectRef> = change_set
            .changes
            .iter()
            .filter(|c| c.action == Action::Deleted)
            .map(|c| &c.id)
            .collect();
        let mut narrowed = widened.clone();
        narrowed.entries.retain(|id| !deleted.contains(id));
        // A mark goes only once its decrypted content is gone from live: deleted, or
        // overwritten by (or found equal to) content that was not decrypted.
        for change in &change_set.changes {
            let plain_now = matches!(
                change.action,
                Action::Created | Action::Configured | Action::Unchanged
            ) && !secret_now.contains(&change.id);
            if change.action == Action::Deleted || plain_now {
                marks.remove(&change.id);
            }
        }
        self.save_inventory(target, &narrowed, &marks).await?;
        self.decrypted = Some(marks);

        let mut post_sync_output = None;
        let mut error = error;
        // After a failed sync the command runs again even when no file changes this time:
        // otherwise a retry would record success for a reload that never succeeded.
        let retry = self
            .shared
            .snapshot()
            .last_sync
            .is_some_and(|last| last.result == SyncResult::Failed);
        let post_sync = match files_target {
            Some(files) if change_set.changed_anything() || retry => files.run_post_sync().await,
            _ => None,
        };
        if let Some(result) = post_sync {
            if !result.success && error.is_none() {
                error = Some(format!(
                    "postSync command failed (exit code {}): {}",
                    result
                        .exit_code
                        .map_or_else(|| "none".to_owned(), |c| c.to_string()),
                    result.output.trim()
                ));
            }
            post_sync_output = Some(result.output);
        }
        let result = if error.is_some() {
            SyncResult::Failed
        } else {
            SyncResult::Succeeded
        };
        // History rows are sanitized like events: postSync output and apply errors may
        // quote a decrypted value.
        let error = error.map(|e| self.sanitize(&e));
        let mut change_set = change_set;
        for change in &mut change_set.changes {
            change.detail = change.detail.as_deref().map(|d| self.sanitize(d));
        }
        self.store.finish_sync(
            id,
            &SyncOutcome {
                result,
                change_set: change_set.clone(),
                error: error.clone(),
                post_sync_output: post_sync_output.map(|o| self.sanitize(&o)),
            },
        )?;
        if result == SyncResult::Succeeded {
            let mut state = self.store.app_state(&self.name)?;
            state.last_applied_revision = Some(revision.clone());
            self.store.save_app_state(&self.name, &state)?;
        }
        let summary = format!(
            "{} created, {} configured, {} deleted, {} unchanged",
            change_set.count(Action::Created),
            change_set.count(Action::Configured),
            change_set.count(Action::Deleted),
            change_set.count(Action::Unchanged)
        );
        match &error {
            None => self.event(
                "sync-succeeded",
                Severity::Info,
                format!("synced {}: {summary}", short(&revision)),
                Some(&revision),
            ),
            Some(err) => self.event(
                "sync-failed",
                Severity::Error,
                format!("sync of {} failed: {err}", short(&revision)),
                Some(&revision),
            ),
        }
        let record = self.store.sync(id)?.ok_or_else(|| {
            StepError::Transient(format!("sync {id} vanished from the state store"))
        })?;
        self.shared.update(|s| {
            s.last_sync = Some(LastSync::from(&record));
            if result == SyncResult::Succeeded {
                s.applied_revision = Some(revision.clone());
            }
        });
        Ok(record)
    }

    /// The app's inventory: the target's own copy when it keeps one, else the store's.
    /// (Takes what it needs up front: `self` is not `Sync`, so it may not live across an await.)
    fn inventory(
        &self,
        target: &Arc<dyn Target>,
    ) -> impl Future<Output = Result<Inventory, StepError>> + Send + use<> {
        let (store, name, target) = (self.store.clone(), self.name.clone(), target.clone());
        async move {
            // The store's copy also holds the decrypted marks; they are not objects.
            match target.load_inventory().await.map_err(target_error)? {
                Some(inventory) => Ok(inventory.split_decrypted().0),
                None => Ok(store.inventory(&name)?.split_decrypted().0),
            }
        }
    }

    /// Saves the inventory in the store, with the marks of what was decrypted, and,
    /// when it keeps one, with the target (without the marks: they are not objects).
    fn save_inventory(
        &self,
        target: &Arc<dyn Target>,
        inventory: &Inventory,
        decrypted: &BTreeSet<ObjectRef>,
    ) -> impl Future<Output = Result<(), StepError>> + Send + use<> {
        let (store, name, target, inventory) = (
            self.store.clone(),
            self.name.clone(),
            target.clone(),
            inventory.clone(),
        );
        let stored = inventory.with_decrypted(decrypted);
        async move {
            store.save_inventory(&name, &stored)?;
            target
                .save_inventory(&inventory)
                .await
                .map_err(target_error)
        }
    }

    /// One `drift-detected` event for the drifted objects not reported yet, naming who
    /// changed them; `held` are those kept because their fields may not be forced.
    fn report_drift(
        &mut self,
        drifted: &BTreeSet<ObjectRef>,
        plan: &Plan,
        held: &BTreeSet<ObjectRef>,
        revision: &str,
    ) {
        let fresh: Vec<&Task> = plan
            .tasks
            .iter()
            .filter(|t| drifted.contains(&t.id) && !self.reported_drift.contains(&t.id))
            .collect();
        if fresh.is_empty() {
            return;
        }
        self.reported_drift.extend(drifted.iter().cloned());
        let (kept, healing): (Vec<&Task>, Vec<&Task>) =
            fresh.into_iter().partition(|t| held.contains(&t.id));
        let mut parts = Vec::new();
        if !healing.is_empty() {
            let ids: Vec<String> = healing.iter().map(|t| t.id.to_string()).collect();
            let what = if self.config.sync.self_heal {
                "reverting"
            } else {
                "selfHeal is off; run `driftless app sync` to revert"
            };
            parts.push(format!(
                "live state differs from Git for {}{} ({what})",
                list_some(&ids),
                made_by(healing.iter().copied())
            ));
        }
        if !kept.is_empty() {
            let ids: Vec<String> = kept.iter().map(|t| t.id.to_string()).collect();
            parts.push(format!(
                "live state differs from Git for {}{}: kept as it is (OutOfSync) because \
                 another manager owns fields Git declares and sync.force is false; set \
                 sync.force: true to take them over",
                list_some(&ids),
                made_by(kept.iter().copied())
            ));
        }
        self.event(
            "drift-detected",
            Severity::Warning,
            parts.join("; "),
            Some(revision),
        );
    }

    /// Recomputes per-object status and health. `plan` is the plan that was not applied
    /// (its pending tasks make objects OutOfSync); `None` after a sync, when live state
    /// is re-read.
    async fn refresh_status(
        &mut self,
        revision: &str,
        commit: Option<&CommitMeta>,
        desired: &DesiredSet,
        plan: Option<&Plan>,
    ) {
        let Ok((target, _)) = self.target().await else {
            return;
        };
        let fresh_plan;
        let plan = match plan {
            Some(plan) => plan,
            None => {
                let inventory = self.inventory(&target).await.unwrap_or_default();
                let options = SyncOptions {
                    prune: self.config.sync.prune,
                    force_conflicts: self.config.sync.force,
                };
                match target.plan(desired, &inventory, options).await {
                    Ok(plan) => {
                        fresh_plan = plan;
                        &fresh_plan
                    }
                    Err(_) => return,
                }
            }
        };
        self.shared.set_last_plan(self.shareable(plan));
        // The plan's ids, not the rendered ones: a target may complete them (Kubernetes
        // fills in the default namespace), and statuses are keyed by the plan's.
        let ids: Vec<ObjectRef> = plan
            .tasks
            .iter()
            .filter(|t| t.op != TaskOp::Delete)
            .map(|t| t.id.clone())
            .collect();
        let healths = target.health(&ids).await.unwrap_or_default();
        let health_of: BTreeMap<&ObjectRef, _> = healths.iter().map(|h| (&h.id, h)).collect();
        let mut objects: Vec<ObjectStatus> = plan
            .tasks
            .iter()
            .map(|task| {
                let health = health_of.get(&task.id);
                ObjectStatus {
                    id: task.id.clone(),
                    status: if task.op == TaskOp::Unchanged {
                        SyncStatus::Synced
                    } else {
                        SyncStatus::OutOfSync
                    },
                    health: match (task.op, health) {
                        (TaskOp::Delete, _) => Health::Healthy,
                        (_, Some(h)) => h.health,
                        (_, None) => Health::Unknown,
                    },
                    message: health.and_then(|h| h.message.as_deref().map(|m| self.sanitize(m))),
                }
            })
            .collect();
        objects.sort_by(|a, b| a.id.cmp(&b.id));
        let app_health = Health::worst(objects.iter().map(|o| o.health));
        let out_of_sync = plan.has_changes();
        let drifted: Vec<ObjectRef> = self.reported_drift.iter().cloned().collect();
        self.shared.update(|s| {
            s.revision = Some(revision.to_owned());
            s.commit = commit.map(|c| CommitSummary {
                revision: revision.to_owned(),
                author: c.author.clone(),
                email: c.email.clone(),
                time: c.time,
                subject: c.subject.clone(),
            });
            s.sync_status = if out_of_sync {
                SyncStatus::OutOfSync
            } else {
                SyncStatus::Synced
            };
            s.health = app_health;
            s.objects = objects;
            s.drifted = drifted;
        });
    }

    /// Updates the status entries of the objects a focused step planned (and perhaps
    /// applied: a failed apply never gets here), then the app's sync status and health.
    async fn refresh_focused_status(
        &mut self,
        plan: &Plan,
        applied: bool,
        target: &Arc<dyn Target>,
    ) {
        self.shared.merge_last_plan(self.shareable(plan), applied);
        let ids: Vec<ObjectRef> = plan.tasks.iter().map(|t| t.id.clone()).collect();
        let healths = target.health(&ids).await.unwrap_or_default();
        let health_of: BTreeMap<&ObjectRef, _> = healths.iter().map(|h| (&h.id, h)).collect();
        let drifted: Vec<ObjectRef> = self.reported_drift.iter().cloned().collect();
        self.shared.update(|s| {
            for object in s.objects.iter_mut() {
                let Some(task) = plan.tasks.iter().find(|t| t.id == object.id) else {
                    continue;
                };
                object.status = if applied || task.op == TaskOp::Unchanged {
                    SyncStatus::Synced
                } else {
                    SyncStatus::OutOfSync
                };
                match health_of.get(&object.id) {
                    Some(h) => {
                        object.health = h.health;
                        object.message = h.message.as_deref().map(|m| self.sanitize(m));
                    }
                    None => object.health = Health::Unknown,
                }
            }
            s.health = Health::worst(s.objects.iter().map(|o| o.health));
            s.sync_status = if s.objects.iter().any(|o| o.status == SyncStatus::OutOfSync) {
                SyncStatus::OutOfSync
            } else {
                SyncStatus::Synced
            };
            s.drifted = drifted;
        });
    }

    /// Watches the desired objects for live changes; re-created when the set changes.
    async fn ensure_watch(&mut self, desired: &DesiredSet, target: &Arc<dyn Target>) {
        let ids = desired.ids();
        if self.watch_guard.is_some() && ids == self.watched {
            return;
        }
        let commands = self.own_commands.clone();
        let overflow = self.drift_overflow.clone();
        let notify: driftless_model::DriftNotifier = Arc::new(move |event: DriftEvent| {
            // A full queue already has a step coming; it must then look at everything.
            if commands.try_send(Command::Drift(event.id)).is_err() {
                overflow.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        match target.watch(ids.clone(), notify).await {
            Ok(guard) => {
                self.watch_guard = Some(guard);
                self.watched = ids;
                self.watch_new = true;
            }
            Err(err) => {
                tracing::warn!(app = %self.name, %err, "cannot watch for drift; relying on the periodic check");
            }
        }
    }

    /// The app's SOPS keys, by the key isolation rule (see [`crate::config::SopsConfig`]):
    /// an app without `decryption.sops` decrypts nothing; with it, only its own key
    /// source (`secretRef`, else `ageKeyFile`), and the daemon's `SOPS_AGE_KEY_FILE` /
    /// `SOPS_AGE_KEY` only when it names neither.
    async fn decryption(&mut self) -> Result<Option<Arc<Decryption>>, StepError> {
        let Some(sops) = self.config.decryption.as_ref().map(|d| d.sops.clone()) else {
            return Ok(None);
        };
        if let Some(secret) = &sops.secret_ref {
            self.target().await?;
            let kube = self.kube_target.clone().ok_or_else(|| {
                StepError::Permanent(
                    "decryption.sops.secretRef needs a kubernetes target".to_owned(),
                )
            })?;
            let bytes = kube
                .secret_value(secret.namespace.as_deref(), &secret.name, &secret.key)
                .await
                .map_err(|err| {
                    let message = format!("decryption.sops.secretRef: {err}");
                    if err.is_transient() {
                        StepError::Transient(message)
                    } else {
                        StepError::Permanent(message)
                    }
                })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                StepError::Permanent(
                    "decryption.sops.secretRef: the key is not UTF-8 text".to_owned(),
                )
            })?;
            let identities = Identities::parse(&text)
                .map_err(|err| StepError::Permanent(format!("decryption.sops.secretRef: {err}")))?;
            return Ok(Some(Arc::new(Decryption::new(identities))));
        }
        let identities = match sops.age_key_file.as_deref() {
            // The app's own file and nothing else: another app's key in the daemon's
            // environment must not open this app's files.
            Some(file) => Identities::from_sources(KeySources {
                key_file: Some(file),
                env_key_file: None,
                env_key: None,
                env_ssh_key_file: None,
            }),
            None => Identities::from_env_and_file(None),
        };
        match identities {
            Ok(identities) => Ok(Some(Arc::new(Decryption::new(identities)))),
            Err(SopsError::NoKeys) if sops.age_key_file.is_none() => Err(StepError::Permanent(
                "decryption.sops names no key source and neither SOPS_AGE_KEY_FILE nor \
                     SOPS_AGE_KEY is set; set decryption.sops.ageKeyFile (or secretRef)"
                    .to_owned(),
            )),
            Err(err) => Err(StepError::Permanent(format!("decryption.sops: {err}"))),
        }
    }

    fn repo(&mut self) -> Result<RepoHandle, StepError> {
        if let Some(repo) = &self.repo {
            return Ok(repo.clone());
        }
        let credentials = credentials(self.config.source.credentials.as_ref())?;
        let repo = self
            .sources
            .repo(&self.config.source.repo, credentials)
            .map_err(|err| StepError::Permanent(format!("source {}: {err}", self.repo_display)))?;
        self.repo = Some(repo.clone());
        Ok(repo)
    }

    async fn target(&mut self) -> Result<TargetPair, StepError> {
        if let Some((target, files)) = &self.target {
            return Ok((target.clone(), files.clone()));
        }
        let made: TargetPair = match &self.config.target {
            TargetConfig::Files(files) => {
                let mut target = FilesTarget::new(files.root.clone(), files.post_sync.clone())
                    .map_err(|err| {
                        StepError::Transient(format!("target {}: {err}", self.config.target))
                    })?;
                if let Some(mode) = files.decrypted_mode {
                    target = target.with_decrypted_mode(mode);
                }
                let target = Arc::new(target);
                (target.clone() as Arc<dyn Target>, Some(target))
            }
            TargetConfig::Kubernetes(kube) => {
                let target = self
                    .kube_connections
                    .connect(
                        kube.kubeconfig.as_deref(),
                        &self.name,
                        kube.context.as_deref(),
                        kube.namespace.as_deref(),
                    )
                    .await
                    .map_err(|err| {
                        let message = format!("target {}: {err}", self.config.target);
                        if err.is_transient() {
                            StepError::Transient(message)
                        } else {
                            StepError::Permanent(message)
                        }
                    })?
                    .with_create_namespace(self.config.sync.create_namespace);
                let target = Arc::new(target);
                self.kube_target = Some(target.clone());
                (target as Arc<dyn Target>, None)
            }
        };
        self.target = Some(made.clone());
        Ok(made)
    }

    /// `plan` fit to leave the process (see [`shareable_plan`]).
    fn shareable(&self, plan: &Plan) -> Plan {
        let none = BTreeSet::new();
        shareable_plan(
            plan,
            self.rendered.as_ref().map(|r| &*r.secrets),
            self.decrypted.as_ref().unwrap_or(&none),
        )
    }

    /// The objects of `desired` whose content came out of decryption.
    fn decrypted_in(&self, desired: &DesiredSet) -> BTreeSet<ObjectRef> {
        let Some(rendered) = &self.rendered else {
            return BTreeSet::new();
        };
        desired
            .objects
            .iter()
            .filter(|o| is_decrypted(o, &rendered.secrets))
            .map(|o| o.id.clone())
            .collect()
    }

    /// Every string that leaves the engine (events and their log lines, status errors
    /// and messages, history rows, API replies, and what notifications are built from)
    /// passes here: decrypted values of the current and the previous revision become
    /// `<redacted:sops>`, and URL credentials are removed. One choke point, so a new
    /// message cannot forget it.
    fn sanitize(&self, text: &str) -> String {
        let mut text = driftless_source::redact_url(text);
        let current = self.rendered.as_ref().map(|r| &r.secrets);
        for secrets in [current, self.previous_secrets.as_ref()]
            .into_iter()
            .flatten()
        {
            text = secrets.redact(&text);
        }
        text
    }

    fn event(&self, kind: &str, severity: Severity, message: String, revision: Option<&str>) {
        let event = NewEvent {
            app: Some(self.name.clone()),
            kind: kind.to_owned(),
            severity,
            message: self.sanitize(&message),
            object: None,
            revision: revision.map(str::to_owned),
        };
        match severity {
            Severity::Error => tracing::error!(app = %self.name, kind, "{}", event.message),
            Severity::Warning => tracing::warn!(app = %self.name, kind, "{}", event.message),
            Severity::Info => tracing::info!(app = %self.name, kind, "{}", event.message),
        }
        match self.store.record_event(&event) {
            Ok(record) => {
                let _ = self.events.send(record);
            }
            Err(err) => tracing::error!(app = %self.name, %err, "could not record an event"),
        }
    }
}

/// What a successful step produced.
struct StepDone {
    plan: Plan,
    record: Option<driftless_store::SyncRecord>,
}

/// Whether `object`'s content came out of decryption: a file rendered from a decrypted
/// file, or an object read from one.
fn is_decrypted(object: &driftless_model::Object, secrets: &SecretSet) -> bool {
    (object.id.is_file() && secrets.is_secret_path(&object.id.name))
        || secrets.is_secret_path(&object.origin.file)
}

/// A plan fit to leave the process: no desired contents, and nothing decrypted in a
/// diff: neither what the current revision decrypted nor what an earlier one did and
/// still is live (`decrypted`, from the inventory: a pruned, renamed or now plain file).
fn shareable_plan(
    plan: &Plan,
    secrets: Option<&SecretSet>,
    decrypted: &BTreeSet<ObjectRef>,
) -> Plan {
    let mut plan = plan.clone();
    for task in &mut plan.tasks {
        let desired = task.desired.take();
        let secret_now = match (secrets, &desired) {
            (Some(secrets), Some(object)) => is_decrypted(object, secrets),
            (Some(secrets), None) => task.id.is_file() && secrets.is_secret_path(&task.id.name),
            (None, _) => false,
        };
        if secret_now || decrypted.contains(&task.id) {
            if task.diff.is_some() {
                task.diff = Some(format!(
                    "{}: decrypted content differs (not shown)\n",
                    task.id
                ));
            }
            continue;
        }
        let Some(secrets) = secrets else { continue };
        if secrets.is_secret_path(&task.id.name) {
            if task.diff.is_some() {
                task.diff = Some(format!(
                    "SOPS-decrypted file {}: contents differ (not shown)\n",
                    task.id.name
                ));
            }
        } else if let Some(diff) = &task.diff {
            task.diff = Some(secrets.redact(diff));
        }
    }
    plan
}

fn target_error(err: driftless_model::TargetError) -> StepError {
    if err.is_transient() {
        StepError::Transient(err.to_string())
    } else {
        StepError::Permanent(err.to_string())
    }
}

fn credentials(config: Option<&CredentialsConfig>) -> Result<Credentials, StepError> {
    let Some(config) = config else {
        return Ok(Credentials::default());
    };
    let env = |name: &Option<String>| -> Result<Option<String>, StepError> {
        match name {
            None => Ok(None),
            Some(var) => std::env::var(var).map(Some).map_err(|_| {
                StepError::Permanent(format!(
                    "credentials: environment variable {var} is not set"
                ))
            }),
        }
    };
    let mut password = env(&config.password_env)?;
    if let Some(file) = &config.password_file {
        let text = std::fs::read_to_string(file).map_err(|err| {
            StepError::Permanent(format!(
                "credentials: cannot read {}: {err}",
                file.display()
            ))
        })?;
        password = Some(text.trim_end().to_owned());
    }
    Ok(Credentials {
        username: env(&config.username_env)?,
        password,
        ssh_key_file: config.ssh_key_file.clone(),
        ssh_known_hosts: config.known_hosts_file.clone(),
    })
}

/// The first few names of a list and how many more, so that one event stays readable
/// when a thousand objects drift at once.
/// ` (changed by field manager "kubectl-edit")` for the tasks whose target could tell
/// who changed them; empty when none could.
fn made_by<'t>(tasks: impl Iterator<Item = &'t Task>) -> String {
    let mut managers: Vec<&str> = Vec::new();
    for task in tasks {
        for manager in &task.changed_by {
            if !managers.contains(&manager.as_str()) {
                managers.push(manager);
            }
        }
    }
    match managers.len() {
        0 => String::new(),
        1 => format!(" (changed by field manager {:?})", managers[0]),
        _ => {
            let names: Vec<String> = managers.iter().map(|m| format!("{m:?}")).collect();
            format!(" (changed by field managers {})", list_some(&names))
        }
    }
}

/// `plan` with the `held` objects left as they are (their tasks made Unchanged).
fn without_held<'p>(plan: &'p Plan, held: &BTreeSet<ObjectRef>) -> std::borrow::Cow<'p, Plan> {
    if held.is_empty() {
        return std::borrow::Cow::Borrowed(plan);
    }
    let mut out = plan.clone();
    for task in &mut out.tasks {
        if held.contains(&task.id) {
            task.op = TaskOp::Unchanged;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `8s`, `2m8s`: a retry delay as people read it.
fn humantime_secs(delay: Duration) -> String {
    let secs = delay.as_secs().max(1);
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

fn list_some(names: &[String]) -> String {
    const SHOWN: usize = 10;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

/// Runs blocking Git work off the async threads.
async fn blocking<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(join) => Err(format!("internal error: {join}")),
    }
}

/// `interval` ± 10 %, so that many apps on one interval do not poll in lockstep.
fn jitter(interval: Duration) -> Duration {
    let mut bytes = [0u8; 2];
    let spread = if getrandom::fill(&mut bytes).is_ok() {
        f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX)
    } else {
        0.5
    };
    interval.mul_f64(0.9 + 0.2 * spread)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The first 7 characters of a commit id, as Git shows it.
pub(crate) fn short(revision: &str) -> &str {
    revision.get(..7).unwrap_or(revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_of_objects_are_cut_with_a_count() {
        let few: Vec<String> = (0..3).map(|n| format!("cm-{n}")).collect();
        assert_eq!(list_some(&few), "cm-0, cm-1, cm-2");
        let many: Vec<String> = (0..1000).map(|n| format!("cm-{n}")).collect();
        let text = list_some(&many);
        assert!(text.starts_with("cm-0, cm-1, "), "{text}");
        assert!(text.ends_with("cm-9 and 990 more"), "{text}");
    }
}
