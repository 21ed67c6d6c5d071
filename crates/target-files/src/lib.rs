//! Host files target: makes a folder hold exactly the files of a revision, atomically
//! per file, prunes only inventory entries, and watches for drift.
//!
//! It owns every write under its root. It must not write outside the root, follow a
//! symlink out of it, or touch a file it does not manage.
//!
//! # Flow
//! - [`Target::plan`] reads live files (never through a symlink) and compares bytes and
//!   the executable bit: Create, Update (with a diff), Unchanged, and with prune a Delete
//!   for each inventory entry that left Git.
//! - [`Target::apply`] writes each file atomically (temp file in the same directory,
//!   fsync, rename, fsync of the directory) with mode 0644 or 0755, and deletes pruned
//!   files, removing directories that became empty. Files the engine names as decrypted
//!   ([`FilesTarget::set_decrypted`]) are written with [`DEFAULT_DECRYPTED_MODE`] (0600)
//!   or the mode set by [`FilesTarget::with_decrypted_mode`] instead, and a decrypted
//!   file whose live mode differs is planned as an update.
//! - [`Target::watch`] reports inotify events on managed paths.
//! - [`FilesTarget::run_post_sync`] runs the optional command after a sync.
//!
//! # Guarantees
//! - Names that are absolute, contain `..` or are not normalized are refused, and so is
//!   any path whose parent directory inside the root is a symlink or a file.
//! - A reader of a managed file sees the old or the new content, never a mix; a crash
//!   leaves at worst a `.driftless-tmp-*` file next to the destination.
//! - Prune deletes only inventory entries and only removes empty directories.
//!
//! - Every read, write and delete walks from the root one directory at a time with
//!   `openat(O_NOFOLLOW)` and acts relative to the open parent directory, so a symlink
//!   planted anywhere under the root, even in the middle of a sync, cannot redirect it
//!   outside the root.
//!
//! # Caveats
//! The root itself is trusted: its own path may contain symlinks (resolved once, at
//! [`FilesTarget::new`]).

// `TargetError` is the shared model's type, fixed by the `Target` trait; its size is
// the model's to change (see the helper report), not worth boxing per call here.
#![allow(clippy::result_large_err)]

mod fsops;
mod paths;
mod post_sync;
mod watch;

use std::any::Any;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use driftless_model::{
    Action, ChangeSet, Content, DesiredSet, DriftNotifier, Health, Inventory, ObjectHealth,
    ObjectRef, Plan, SyncOptions, Target, TargetError, Task, TaskOp,
};

pub use post_sync::{MAX_OUTPUT_BYTES, PostSyncResult};

use paths::{Live, locate};

/// The mode of a file that came out of SOPS decryption: readable by the owner only.
pub const DEFAULT_DECRYPTED_MODE: u32 = 0o600;

/// How long a post-sync command may run before it is killed.
pub const DEFAULT_POST_SYNC_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A folder on this host that driftless keeps equal to a revision's files.
#[derive(Debug, Clone)]
pub struct FilesTarget {
    root: Arc<PathBuf>,
    /// Leftover temp files are swept once, before the first apply (never by `plan`).
    swept: Arc<std::sync::Once>,
    post_sync: Option<Vec<String>>,
    post_sync_timeout: Duration,
    /// Names (paths under the root) whose desired content was decrypted.
    decrypted: Arc<std::sync::RwLock<Arc<BTreeSet<String>>>>,
    decrypted_mode: u32,
}

impl FilesTarget {
    /// A target writing under `root`, created if missing. `post_sync` is an argv (no
    /// shell) run in `root` after a sync that changed something.
    ///
    /// Errors: `root` exists and is not a directory, or cannot be created; `post_sync`
    /// is an empty list.
    pub fn new(root: PathBuf, post_sync: Option<Vec<String>>) -> Result<Self, TargetError> {
        if let Some(argv) = &post_sync
            && argv.first().is_none_or(|p| p.is_empty())
        {
            return Err(TargetError::Unsupported(
                "postSync: the command is empty; give a program and its arguments".to_owned(),
            ));
        }
        match std::fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(TargetError::Unsupported(format!(
                    "files target root {} exists and is not a directory",
                    root.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&root).map_err(|source| TargetError::Io {
                    context: format!("creating files target root {}", root.display()),
                    source,
                })?;
            }
            Err(source) => {
                return Err(TargetError::Io {
                    context: format!("inspecting files target root {}", root.display()),
                    source,
                });
            }
        }
        // Absolute and free of symlinks, so that watch events map back to names and a
        // later change of working directory does not matter.
        let root = root.canonicalize().map_err(|source| TargetError::Io {
            context: format!("resolving files target root {}", root.display()),
            source,
        })?;
        Ok(Self {
            swept: Arc::new(std::sync::Once::new()),
            root: Arc::new(root),
            post_sync,
            post_sync_timeout: DEFAULT_POST_SYNC_TIMEOUT,
            decrypted: Arc::default(),
            decrypted_mode: DEFAULT_DECRYPTED_MODE,
        })
    }

    /// Sets the mode of decrypted files (default [`DEFAULT_DECRYPTED_MODE`]); only the
    /// permission bits (`0o777`) are kept.
    pub fn with_decrypted_mode(mut self, mode: u32) -> Self {
        self.decrypted_mode = mode & 0o777;
        self
    }

    /// Names (paths under the root, as in the file ids) whose desired content came out
    /// of decryption; later plans and applies write them with the decrypted mode.
    pub fn set_decrypted(&self, names: BTreeSet<String>) {
        *self.decrypted.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(names);
    }

    fn decrypted(&self) -> Arc<BTreeSet<String>> {
        self.decrypted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets how long the post-sync command may run (default
    /// [`DEFAULT_POST_SYNC_TIMEOUT`]).
    pub fn with_post_sync_timeout(mut self, timeout: Duration) -> Self {
        self.post_sync_timeout = timeout;
        self
    }

    /// The root folder (absolute, symlinks resolved).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs the post-sync command in the root and reports how it went; `None` when none
    /// is configured. Never fails: a command that cannot start is reported as
    /// unsuccessful with the reason in `output`.
    pub async fn run_post_sync(&self) -> Option<PostSyncResult> {
        let argv = self.post_sync.as_ref()?;
        let result = post_sync::run(argv, &self.root, self.post_sync_timeout).await;
        if result.success {
            tracing::info!(root = %self.root.display(), "postSync succeeded");
        } else {
            tracing::warn!(root = %self.root.display(), exit_code = ?result.exit_code, "postSync failed");
        }
        Some(result)
    }
}

/// The desired bytes and executable bit of a file object, or why it is not one.
fn file_content(obj: &driftless_model::Object) -> Result<(&[u8], bool), TargetError> {
    if !obj.id.is_file() {
        return Err(TargetError::Unsupported(format!(
            "{}: the files target only takes files, not {} objects (from {})",
            obj.id, obj.id.kind, obj.origin
        )));
    }
    match &obj.content {
        Content::File { data, executable } => Ok((data, *executable)),
        Content::Manifest(_) => Err(TargetError::Unsupported(format!(
            "{}: the files target only takes files, not manifests (from {})",
            obj.id, obj.origin
        ))),
    }
}

/// `old mode 100644` / `new mode 100600`, as git prints a mode change.
fn mode_change(old: u32, new: u32) -> String {
    format!("old mode 100{old:03o}\nnew mode 100{new:03o}\n")
}

/// The modes each file is written with.
struct Modes<'a> {
    decrypted: &'a BTreeSet<String>,
    decrypted_mode: u32,
}

impl Modes<'_> {
    /// `Some(mode)` for a decrypted file, `None` for one written as Git has it.
    fn decrypted_mode(&self, name: &str) -> Option<u32> {
        self.decrypted.contains(name).then_some(self.decrypted_mode)
    }
}

fn plan_blocking(
    root: &Path,
    desired: &DesiredSet,
    inventory: &Inventory,
    options: SyncOptions,
    modes: &Modes<'_>,
) -> Result<Plan, TargetError> {
    let mut tasks = Vec::with_capacity(desired.objects.len());
    for obj in &desired.objects {
        let (data, executable) = file_content(obj)?;
        let name = &obj.id.name;
        let loc = locate(root, name, false).map_err(|r| TargetError::Unsupported(r.0))?;
        let (op, diff) = match loc.live {
            Live::Absent => (
                TaskOp::Create,
                driftless_diff::file_diff(None, Some(data), name),
            ),
            Live::File {
                executable: live_exec,
                mode: live_mode,
            } => {
                let live_data = loc.read().map_err(|source| TargetError::Io {
                    context: format!("reading {}", root.join(name).display()),
                    source,
                })?;
                let mut diff = String::new();
                let secret = modes.decrypted_mode(name);
                let wanted = fsops::mode_for(executable, secret);
                // Plain files keep Git's view (only the executable bit counts); a
                // decrypted file must have exactly its mode, or it is readable by more
                // than it should be.
                let differs = match secret {
                    Some(_) => live_mode & 0o777 != wanted,
                    None => live_exec != executable,
                };
                if differs {
                    diff.push_str(&mode_change(live_mode & 0o777, wanted));
                }
                diff.push_str(&driftless_diff::file_diff(
                    Some(&live_data),
                    Some(data),
                    name,
                ));
                if diff.is_empty() {
                    (TaskOp::Unchanged, diff)
                } else {
                    (TaskOp::Update, diff)
                }
            }
            Live::Symlink => (
                TaskOp::Update,
                format!("{name}: live path is a symlink; it will be replaced by a regular file\n"),
            ),
            Live::Dir => (
                TaskOp::Update,
                format!("{name}: live path is a directory; a regular file is desired\n"),
            ),
            Live::Other => (
                TaskOp::Update,
                format!(
                    "{name}: live path is a socket, FIFO or device; a regular file is desired\n"
                ),
            ),
        };
        tasks.push(Task {
            phase: 0,
            wave: 0,
            id: obj.id.clone(),
            op,
            desired: Some(obj.clone()),
            diff: (!diff.is_empty()).then_some(diff),
            changed_by: Vec::new(),
            conflict: false,
        });
    }
    if options.prune {
        let wanted = desired.ids();
        for id in inventory.orphans(&wanted) {
            if !id.is_file() {
                tracing::warn!(%id, "inventory entry of a files target is not a file; not pruning it");
                continue;
            }
            let diff = match locate(root, &id.name, false) {
                Ok(loc) if matches!(loc.live, Live::File { .. }) => match loc.read() {
                    Ok(old) => Some(driftless_diff::file_diff(Some(&old), None, &id.name)),
                    Err(e) => Some(format!("{id}: cannot read before deleting: {e}\n")),
                },
                Ok(_) => None,
                Err(refused) => {
                    tracing::warn!(%id, reason = %refused.0, "inventory entry refused; not pruning it");
                    continue;
                }
            };
            tasks.push(Task {
                phase: 0,
                wave: 0,
                id: id.clone(),
                op: TaskOp::Delete,
                desired: None,
                diff,
                changed_by: Vec::new(),
                conflict: false,
            });
        }
    }
    Ok(Plan::new(desired.revision.clone(), tasks))
}

fn apply_blocking(root: &Path, plan: &Plan, modes: &Modes<'_>) -> ChangeSet {
    let mut changes = ChangeSet::default();
    for task in &plan.tasks {
        let id = task.id.clone();
        match task.op {
            TaskOp::Unchanged => changes.push(id, Action::Unchanged, None),
            TaskOp::Create | TaskOp::Update => {
                let Some(obj) = &task.desired else {
                    changes.push(
                        id,
                        Action::Failed,
                        Some("plan task has no desired content".into()),
                    );
                    continue;
                };
                let (data, executable) = match file_content(obj) {
                    Ok(c) => c,
                    Err(e) => {
                        changes.push(id, Action::Failed, Some(e.to_string()));
                        continue;
                    }
                };
                let mode = fsops::mode_for(executable, modes.decrypted_mode(&id.name));
                match fsops::write_file(root, &id.name, data, mode) {
                    Ok(fsops::Written::Created) => changes.push(id, Action::Created, None),
                    Ok(fsops::Written::Replaced) => changes.push(id, Action::Configured, None),
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "file write failed");
                        changes.push(id, Action::Failed, Some(e));
                    }
                }
            }
            TaskOp::Delete => {
                if !id.is_file() {
                    changes.push(id, Action::Skipped, Some("not a file".into()));
                    continue;
                }
                match fsops::delete_file(root, &id.name) {
                    Ok(fsops::Deleted::Removed) => changes.push(id, Action::Deleted, None),
                    Ok(fsops::Deleted::AlreadyAbsent) => {
                        changes.push(id, Action::Deleted, Some("already absent".into()));
                    }
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "file delete failed");
                        changes.push(id, Action::Failed, Some(e));
                    }
                }
            }
        }
    }
    changes
}

fn health_blocking(root: &Path, ids: &[ObjectRef]) -> Vec<ObjectHealth> {
    ids.iter()
        .map(|id| {
            let (health, message) = if !id.is_file() {
                (Health::Unknown, Some(format!("{id} is not a file")))
            } else {
                match locate(root, &id.name, false).map(|loc| loc.live) {
                    Ok(Live::File { .. }) => (Health::Healthy, None),
                    Ok(Live::Absent) => (Health::Missing, Some("file is missing".to_owned())),
                    Ok(Live::Symlink) => (
                        Health::Degraded,
                        Some("a symlink stands where the file should be".to_owned()),
                    ),
                    Ok(Live::Dir) => (
                        Health::Degraded,
                        Some("a directory stands where the file should be".to_owned()),
                    ),
                    Ok(Live::Other) => (
                        Health::Degraded,
                        Some("a socket, FIFO or device stands where the file should be".to_owned()),
                    ),
                    Err(refused) => (Health::Degraded, Some(refused.0)),
                }
            };
            ObjectHealth {
                id: id.clone(),
                health,
                message,
            }
        })
        .collect()
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TargetError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TargetError::Unavailable(format!("{what} task failed: {e}")))
}

#[async_trait]
impl Target for FilesTarget {
    fn describe(&self) -> String {
        format!("files:{}", self.root.display())
    }

    async fn plan(
        &self,
        desired: &DesiredSet,
        inventory: &Inventory,
        options: SyncOptions,
    ) -> Result<Plan, TargetError> {
        let root = Arc::clone(&self.root);
        let desired = desired.clone();
        let inventory = inventory.clone();
        let (decrypted, decrypted_mode) = (self.decrypted(), self.decrypted_mode);
        blocking("plan", move || {
            let modes = Modes {
                decrypted: &decrypted,
                decrypted_mode,
            };
            plan_blocking(&root, &desired, &inventory, options, &modes)
        })
        .await?
    }

    async fn apply(&self, plan: &Plan, _options: SyncOptions) -> Result<ChangeSet, TargetError> {
        let root = Arc::clone(&self.root);
        let swept = Arc::clone(&self.swept);
        let plan = plan.clone();
        let (decrypted, decrypted_mode) = (self.decrypted(), self.decrypted_mode);
        let changes = blocking("apply", move || {
            swept.call_once(|| sweep_temp_files(&root));
            let modes = Modes {
                decrypted: &decrypted,
                decrypted_mode,
            };
            apply_blocking(&root, &plan, &modes)
        })
        .await?;
        tracing::info!(
            root = %self.root.display(),
            created = changes.count(Action::Created),
            configured = changes.count(Action::Configured),
            deleted = changes.count(Action::Deleted),
            failed = changes.count(Action::Failed),
            "files applied"
        );
        Ok(changes)
    }

    async fn health(&self, ids: &[ObjectRef]) -> Result<Vec<ObjectHealth>, TargetError> {
        let root = Arc::clone(&self.root);
        let ids = ids.to_vec();
        blocking("health", move || health_blocking(&root, &ids)).await
    }

    async fn watch(
        &self,
        ids: BTreeSet<ObjectRef>,
        notify: DriftNotifier,
    ) -> Result<Box<dyn Any + Send>, TargetError> {
        let guard = watch::start(self.root.as_ref().clone(), ids, notify)?;
        Ok(Box::new(guard))
    }
}

/// Removes `.driftless-tmp-*` files that a process killed mid-write left behind. The
/// prefix is reserved (no managed file may use it), so nothing else can match. Symlinks
/// are never followed; failures are logged and left for the next start.
fn sweep_temp_files(root: &std::path::Path) {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file()
                && entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(paths::TMP_PREFIX)
            {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(path = %entry.path().display(), "removed a temporary file left by an interrupted write")
                    }
                    Err(err) => {
                        tracing::warn!(path = %entry.path().display(), %err, "cannot remove a leftover temporary file")
                    }
                }
            }
        }
    }
}
