//! The shared cache of bare repositories, one per normalized URL, and the per-caller
//! handle that lists, fetches and resolves refs.
//!
//! # Flow
//! `SourceCache::repo(url, credentials)` normalizes the URL and returns a [`RepoHandle`]
//! sharing one bare repository under the cache directory with every other handle on the
//! same repository. [`RepoHandle::update`] asks the server where the ref points (ref
//! advertisement only), fetches only when that commit is missing locally, and returns it.
//! [`RepoHandle::update_within`] does the same from one advertisement of all branches
//! and tags shared by every handle on the repository, asked again only when older than
//! the caller's `max_age` (concurrent callers wait for one request).
//!
//! # Guarantees
//! - Fetches of one repository are serialized by a per-repository mutex; a caller that
//!   waited for another's fetch re-checks before fetching again.
//! - No global or user Git configuration is read, no credential helper runs and nothing
//!   prompts: https credentials come only from [`Credentials`] (or the URL), ssh runs in
//!   batch mode with the given key.
//! - No message or log line contains a password or token.
//!
//! # Caveats
//! - One [`SourceCache`] per process: two processes sharing a cache directory are not
//!   coordinated.
//! - Branches deleted on the server stay in the cache (they are not pruned); `update`
//!   still reports them as unknown because it asks the server first.
//! - Each fetch that receives objects adds one pack; above 24 packs the cache is
//!   consolidated with `git repack` (gix cannot repack), so `git` should be installed.
//!   Without it lookups slow down as packs accumulate, but keep working.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::credentials::helper::Action;
use gix::protocol::handshake::Ref;
use gix::protocol::transport::client::blocking_io::{Transport, connect, ssh};
use gix::remote::Direction;

use crate::error::{SourceError, classify};
use crate::git_tree::GitTree;
use crate::url::{Location, cache_dir_name};

/// Default for [`SourceCache::with_network_timeout`].
const NETWORK_TIMEOUT: Duration = Duration::from_secs(60);

/// Packs in a cache repository above which it is repacked after a fetch.
const MAX_PACKS: usize = 24;

/// Index slots of a cache repository's object store: enough for `MAX_PACKS` with room
/// for packs that appear while others read.
fn object_store_slots() -> gix::odb::store::init::Slots {
    gix::odb::store::init::Slots::AsNeededByDiskState {
        multiplier: 2.0,
        minimum: 256,
    }
}

fn count_pack_indices(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects").join("pack"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
                .count()
        })
        .unwrap_or(0)
}

/// Refspecs of the cache: every branch and tag, mirrored under the same names.
const FETCH_SPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// How to authenticate to a repository. All fields are optional; nothing else (no Git
/// configuration, no credential helper, no prompt) is consulted.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Username for https. Defaults to the URL's user, then to `git` (token hosts accept
    /// any non-empty name).
    pub username: Option<String>,
    /// Password or access token for https.
    pub password: Option<String>,
    /// Private key file for ssh (`ssh -i FILE -o IdentitiesOnly=yes`).
    pub ssh_key_file: Option<PathBuf>,
    /// A known_hosts file for ssh; when set, only keys in it are accepted
    /// (`StrictHostKeyChecking=yes`). Otherwise ssh's own known_hosts apply, in batch mode.
    pub ssh_known_hosts: Option<PathBuf>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ssh_key_file", &self.ssh_key_file)
            .field("ssh_known_hosts", &self.ssh_known_hosts)
            .finish()
    }
}

/// Who made a commit and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full 40-hex commit id.
    pub id: String,
    pub author_name: String,
    pub author_email: String,
    /// Author time, seconds since the Unix epoch.
    pub time: i64,
    /// The subject line (first paragraph, joined into one line, as `git log --format=%s`).
    pub subject: String,
    /// The full message as stored.
    pub message: String,
}

/// The process-wide cache of bare repositories. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct SourceCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    dir: PathBuf,
    network_timeout: Duration,
    repos: Mutex<HashMap<String, Arc<Shared>>>,
}

/// State shared by every handle on one normalized URL.
struct Shared {
    path: PathBuf,
    fetch_lock: Mutex<()>,
    repo: Mutex<Option<gix::ThreadSafeRepository>>,
    fetches: AtomicU64,
    /// The shared ref advertisement, per set of credentials (a handle never sees an
    /// answer obtained with credentials other than its own).
    adverts: Mutex<HashMap<String, Advert>>,
    /// Signalled whenever a shared advertisement request ends.
    advert_done: Condvar,
    /// Ref advertisements requested from the server (`remote_ref` and shared listings).
    advertisements: AtomicU64,
}

/// Every advertised ref name (`HEAD`, branches, tags) and the commit it points to
/// (annotated tags peeled); `None` for an unborn `HEAD`.
type RefTable = HashMap<String, Option<String>>;

/// The shared advertisement of one repository for one set of credentials.
#[derive(Default)]
struct Advert {
    /// The answer (or failure) of the request that started last among those that
    /// ended, so that it never goes back to an older state of the server.
    latest: Option<Answer>,
    /// Requests to the server running now; callers that may reuse an answer wait
    /// for theirs.
    in_flight: usize,
}

struct Answer {
    started: Instant,
    received: Instant,
    outcome: Result<Arc<RefTable>, SourceError>,
}

/// What the shared listing asks the server for (protocol v2 `ls-refs` prefixes).
const LIST_SPECS: [&str; 3] = [
    "HEAD",
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
];

/// Whether a full ref name is part of the shared listing (see `LIST_SPECS`).
fn listed(name: &str) -> bool {
    name == "HEAD" || name.starts_with("refs/heads/") || name.starts_with("refs/tags/")
}

/// Ends a shared advertisement request: stores its outcome and wakes the waiters, also
/// when the requesting thread panics.
struct InFlight<'a> {
    shared: &'a Shared,
    key: &'a str,
    started: Instant,
    outcome: Option<Result<Arc<RefTable>, SourceError>>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut adverts = lock(&self.shared.adverts);
        if let Some(slot) = adverts.get_mut(self.key) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            let newer = slot
                .latest
                .as_ref()
                .is_none_or(|latest| latest.started <= self.started);
            if let Some(outcome) = self.outcome.take()
                && newer
            {
                slot.latest = Some(Answer {
                    started: self.started,
                    received: Instant::now(),
                    outcome,
                });
            }
        }
        drop(adverts);
        self.shared.advert_done.notify_all();
    }
}

impl SourceCache {
    /// A cache keeping its bare repositories under `cache_dir` (created on first fetch).
    pub fn new(cache_dir: PathBuf) -> Self {
        SourceCache {
            inner: Arc::new(CacheInner {
                dir: cache_dir,
                network_timeout: NETWORK_TIMEOUT,
                repos: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How long a git:// or ssh connection may wait for the server (to connect, to answer,
    /// to accept data) before the operation fails as unreachable; 60 s by default. Over
    /// https the HTTP client's own limits apply (20 s to connect, 30 s per read).
    /// Set it before creating handles.
    pub fn with_network_timeout(self, timeout: Duration) -> Self {
        let inner = CacheInner {
            dir: self.inner.dir.clone(),
            network_timeout: timeout.max(Duration::from_secs(1)),
            repos: Mutex::new(lock(&self.inner.repos).clone()),
        };
        SourceCache {
            inner: Arc::new(inner),
        }
    }

    /// The directory the cache lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A handle on the repository at `url`, sharing its cache with every other handle on
    /// the same normalized URL (`https://Host/org/repo.git/` equals
    /// `https://host/org/repo`; `git@host:org/repo` equals `ssh://git@host/org/repo`;
    /// a local path equals its `file://` URL). A password in the URL is used as a
    /// credential unless `credentials` has one, and is never shown.
    pub fn repo(&self, url: &str, credentials: Credentials) -> Result<RepoHandle, SourceError> {
        let location = crate::url::parse(url)?;
        let shared = {
            let mut repos = lock(&self.inner.repos);
            repos
                .entry(location.key.clone())
                .or_insert_with(|| {
                    Arc::new(Shared {
                        path: self.inner.dir.join(cache_dir_name(&location.key)),
                        fetch_lock: Mutex::new(()),
                        repo: Mutex::new(None),
                        fetches: AtomicU64::new(0),
                        adverts: Mutex::new(HashMap::new()),
                        advert_done: Condvar::new(),
                        advertisements: AtomicU64::new(0),
                    })
                })
                .clone()
        };
        Ok(RepoHandle {
            shared,
            location,
            credentials,
            timeout: self.inner.network_timeout,
        })
    }
}

/// One caller's view of a cached repository: its spelling of the URL and its
/// credentials. Cheap to clone; `Send + Sync`; every method blocks (call it from
/// `spawn_blocking`).
#[derive(Clone)]
pub struct RepoHandle {
    shared: Arc<Shared>,
    location: Location,
    credentials: Credentials,
    timeout: Duration,
}

impl std::fmt::Debug for RepoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoHandle")
            .field("url", &self.location.display)
            .field("cache", &self.shared.path)
            .finish()
    }
}

impl RepoHandle {
    /// The URL as given, without secrets; safe to show.
    pub fn url(&self) -> &str {
        &self.location.display
    }

    /// The normalized URL that identifies the repository (and its cache).
    pub fn key(&self) -> &str {
        &self.location.key
    }

    /// The bare cache repository on disk.
    pub fn cache_path(&self) -> &Path {
        &self.shared.path
    }

    /// How many fetches this process ran against the cache of this repository (all
    /// handles on it together). For metrics and tests.
    pub fn fetch_count(&self) -> u64 {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// How many ref advertisements (ls-remote) this process requested from the server of
    /// this repository, by [`remote_ref`](Self::remote_ref), [`update`](Self::update)
    /// and [`update_within`](Self::update_within) (all handles on it together; the
    /// handshake of a fetch is not counted). For metrics and tests.
    pub fn advertisement_count(&self) -> u64 {
        self.shared.advertisements.load(Ordering::SeqCst)
    }

    /// Where `reference` points on the server, from the ref advertisement alone (like
    /// `git ls-remote`; no pack is transferred). Annotated tags are peeled to their
    /// commit. `None` when the server has no such ref. A full 40-hex commit id is
    /// returned as is without asking the server (commit ids never move).
    ///
    /// A plain name is looked up as `refs/<name>`, `refs/tags/<name>` and
    /// `refs/heads/<name>`, in that order, as `git rev-parse` does.
    pub fn remote_ref(&self, reference: &str) -> Result<Option<String>, SourceError> {
        if let Some(id) = full_hex(reference) {
            return Ok(Some(id.to_string()));
        }
        let candidates = self.candidates(reference)?;
        let repo = self.local_repo()?;
        let remote = repo
            .remote_at(self.location.fetch.clone())
            .and_then(|r| {
                r.with_fetch_tags(gix::remote::fetch::Tags::None)
                    .with_refspecs(candidates.iter().map(String::as_str), Direction::Fetch)
            })
            .map_err(|err| self.git_error("ls-remote", &err))?;
        let advertised = self.advertise(remote)?;
        for candidate in &candidates {
            for (name, id) in &advertised {
                if name == candidate {
                    tracing::debug!(url = %self.url(), reference, found = %name, "ref advertised");
                    return Ok(id.clone());
                }
            }
        }
        Ok(None)
    }

    /// Fetches every branch and tag into the cache (a clone on first use). Waits while
    /// another caller fetches the same repository.
    pub fn fetch(&self) -> Result<(), SourceError> {
        let _guard = lock(&self.shared.fetch_lock);
        self.fetch_locked()
    }

    /// The commit `reference` points to in the cache: a branch or tag name, `refs/…`,
    /// or a full 40-hex commit id; `HEAD` asks the server. Fetches once when it is not in
    /// the cache yet. Unknown refs are [`SourceError::UnknownRef`].
    pub fn resolve(&self, reference: &str) -> Result<String, SourceError> {
        if reference == "HEAD" {
            return self.update(reference);
        }
        if let Some(id) = self.resolve_local(reference)? {
            return Ok(id.to_string());
        }
        self.fetch_unless(|handle| Ok(handle.resolve_local(reference)?.is_some()))?;
        self.resolve_local(reference)?
            .map(|id| id.to_string())
            .ok_or_else(|| self.unknown(reference))
    }

    /// Where is `reference` on the server now (always asked), fetch only if that commit
    /// is not cached yet, and return it. Concurrent callers on one repository share a
    /// single fetch. The engine calls it for webhooks and explicit syncs; scheduled
    /// polls use [`update_within`](Self::update_within).
    ///
    /// For `HEAD`, branches and tags the answer also renews the one
    /// [`update_within`](Self::update_within) shares, so that a later `update_within`
    /// never returns an older commit than this.
    pub fn update(&self, reference: &str) -> Result<String, SourceError> {
        if full_hex(reference).is_some() {
            return self.resolve(reference);
        }
        let candidates = self.candidates(reference)?;
        let remote = if candidates.iter().all(|name| listed(name)) {
            let table = self.shared_advertisement(None)?;
            lookup(&table, &candidates)
        } else {
            self.remote_ref(reference)?
        };
        self.settle(reference, remote)
    }

    /// Like [`update`](Self::update), but where the ref points is taken from one
    /// advertisement of `HEAD` and all branches and tags shared by every handle on this
    /// repository (with the same credentials): the server is asked again only when the
    /// last answer is `max_age` old or older, and callers arriving while it is being
    /// asked wait for that one answer. A failure is shared the same way. So N apps
    /// polling one repository within `max_age` cause one ref advertisement, and a push
    /// is seen at most `max_age` (plus one request) later than with `update`.
    ///
    /// Refs outside branches and tags (say `refs/pull/1/head`, or `a/b`, which may be
    /// `refs/a/b`) are not in the shared listing and are always asked as `update` does.
    pub fn update_within(&self, reference: &str, max_age: Duration) -> Result<String, SourceError> {
        if full_hex(reference).is_some() {
            return self.resolve(reference);
        }
        let candidates = self.candidates(reference)?;
        if !candidates.iter().all(|name| listed(name)) {
            return self.update(reference);
        }
        let table = self.shared_advertisement(Some(max_age))?;
        self.settle(reference, lookup(&table, &candidates))
    }

    /// The rest of `update` once the server's answer is known: fetch unless that
    /// commit is cached, check it is a commit, return it.
    fn settle(&self, reference: &str, remote: Option<String>) -> Result<String, SourceError> {
        let Some(remote) = remote else {
            return Err(self.unknown(reference));
        };
        let id = ObjectId::from_hex(remote.as_bytes()).map_err(|err| SourceError::Git {
            op: "ls-remote",
            url: self.url().to_owned(),
            detail: format!("server advertised an invalid object id {remote:?}: {err}"),
        })?;
        let fetched = self.fetch_unless(|handle| Ok(handle.local_repo()?.has_object(id)))?;
        let repo = self.local_repo()?;
        if repo.has_object(id) {
            self.check_commit(&repo, id, reference)?;
            if fetched {
                tracing::info!(url = %self.url(), reference, revision = %id, "new revision fetched");
            }
            return Ok(remote);
        }
        // The ref moved again between the advertisement and the fetch: use what we got.
        tracing::debug!(url = %self.url(), reference, "ref moved during fetch; using the fetched tip");
        self.resolve_local(reference)?
            .map(|id| id.to_string())
            .ok_or_else(|| self.unknown(reference))
    }

    /// Author, time and message of a cached commit (`revision` as accepted by
    /// [`resolve`](Self::resolve), looked up in the cache only).
    pub fn commit_info(&self, revision: &str) -> Result<CommitInfo, SourceError> {
        let id = self
            .resolve_local(revision)?
            .ok_or_else(|| self.unknown(revision))?;
        let repo = self.local_repo()?;
        let bad = |err: gix::Error| self.git_error("read commit", &err);
        let commit = repo.find_commit(id).map_err(bad)?;
        let author = commit.author().map_err(bad)?;
        let time = author
            .time()
            .map_err(|err| self.git_error("read commit", &err))?;
        let raw = commit.message_raw().map_err(bad)?;
        let subject = commit.message().map_err(bad)?.summary().to_string();
        Ok(CommitInfo {
            id: id.to_string(),
            author_name: author.name.to_string(),
            author_email: author.email.to_string(),
            time: time.seconds,
            subject,
            message: raw.to_string(),
        })
    }

    /// A read-only view of the tree of cached commit `revision`.
    pub fn tree(&self, revision: &str) -> Result<GitTree, SourceError> {
        let id = self
            .resolve_local(revision)?
            .ok_or_else(|| self.unknown(revision))?;
        let repo = self.local_repo()?;
        let commit = repo
            .find_commit(id)
            .map_err(|err| self.git_error("read commit", &err))?;
        let tree = commit
            .tree_id()
            .map_err(|err| self.git_error("read commit", &err))?
            .detach();
        let shared = lock(&self.shared.repo)
            .as_ref()
            .expect("local_repo() opened the repository")
            .clone();
        Ok(GitTree::new(shared, id, tree))
    }

    /// Whether cached commit `revision` is `reference`'s current tip or one of its
    /// ancestors (a rollback target must be). `reference` is resolved in the cache.
    pub fn is_ancestor(&self, revision: &str, reference: &str) -> Result<bool, SourceError> {
        let target = self
            .resolve_local(revision)?
            .ok_or_else(|| self.unknown(revision))?;
        let tip = self
            .resolve_local(reference)?
            .ok_or_else(|| self.unknown(reference))?;
        let repo = self.local_repo()?;
        let walk = repo
            .rev_walk([tip])
            .all()
            .map_err(|err| self.git_error("walk history", &err))?;
        for info in walk {
            let info = info.map_err(|err| self.git_error("walk history", &err))?;
            if info.id == target {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ---- internals ----

    /// The shared listing of this repository for our credentials: with `max_age`,
    /// the last answer if received less than `max_age` ago, else one request for all
    /// concurrent callers; without, a new request in any case (and its answer is
    /// shared from then on).
    fn shared_advertisement(
        &self,
        max_age: Option<Duration>,
    ) -> Result<Arc<RefTable>, SourceError> {
        let key = self.credential_key();
        let mut adverts = lock(&self.shared.adverts);
        loop {
            let slot = adverts.entry(key.clone()).or_default();
            let Some(max_age) = max_age else {
                slot.in_flight += 1;
                break;
            };
            if let Some(latest) = &slot.latest
                && latest.received.elapsed() < max_age
            {
                tracing::trace!(url = %self.url(), "ref advertisement reused");
                return match &latest.outcome {
                    Ok(table) => Ok(Arc::clone(table)),
                    Err(err) => Err(err.duplicate()),
                };
            }
            if slot.in_flight == 0 {
                slot.in_flight = 1;
                break;
            }
            adverts = self
                .shared
                .advert_done
                .wait(adverts)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(adverts);
        let mut flight = InFlight {
            shared: &self.shared,
            key: &key,
            started: Instant::now(),
            outcome: None,
        };
        let outcome = self
            .list_refs()
            .map(|refs| Arc::new(refs.into_iter().collect::<RefTable>()));
        let answer = match &outcome {
            Ok(table) => Ok(Arc::clone(table)),
            Err(err) => Err(err.duplicate()),
        };
        flight.outcome = Some(outcome);
        drop(flight);
        answer
    }

    /// One advertisement of `HEAD`, every branch and every tag.
    fn list_refs(&self) -> Result<Vec<(String, Option<String>)>, SourceError> {
        let repo = self.local_repo()?;
        let remote = repo
            .remote_at(self.location.fetch.clone())
            .and_then(|r| {
                r.with_fetch_tags(gix::remote::fetch::Tags::None)
                    .with_refspecs(LIST_SPECS, Direction::Fetch)
            })
            .map_err(|err| self.git_error("ls-remote", &err))?;
        self.advertise(remote)
    }

    /// Asks the server for the refs `remote`'s refspecs select (ls-remote): each
    /// advertised name with its (peeled) commit id.
    fn advertise(
        &self,
        remote: gix::Remote<'_>,
    ) -> Result<Vec<(String, Option<String>)>, SourceError> {
        self.shared.advertisements.fetch_add(1, Ordering::SeqCst);
        let ssh_log = self.ssh_log();
        let connection = remote
            .to_connection_with_transport(self.transport("ls-remote", ssh_log.as_ref())?)
            .with_credentials(self.authenticate());
        let (ref_map, _) = connection
            .ref_map(gix::progress::Discard, Default::default())
            .map_err(|err| self.classify("ls-remote", &err, ssh_log.as_ref()))?;
        Ok(ref_map
            .remote_refs
            .iter()
            .map(|advertised| match advertised {
                Ref::Direct {
                    full_ref_name,
                    object,
                }
                | Ref::Peeled {
                    full_ref_name,
                    object,
                    ..
                }
                | Ref::Symbolic {
                    full_ref_name,
                    object,
                    ..
                } => (full_ref_name.to_string(), Some(object.to_string())),
                Ref::Unborn { full_ref_name, .. } => (full_ref_name.to_string(), None),
            })
            .collect())
    }

    /// Identifies the credentials this handle authenticates with (the URL's and the
    /// explicit ones), so that shared answers are only shared between equals.
    fn credential_key(&self) -> String {
        format!(
            "{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}",
            self.credentials.username,
            self.location.url_username,
            self.credentials.password,
            self.location.url_password,
            self.credentials.ssh_key_file,
            self.credentials.ssh_known_hosts,
        )
    }

    fn candidates(&self, reference: &str) -> Result<Vec<String>, SourceError> {
        let bad = || SourceError::UnknownRef {
            reference: reference.to_owned(),
            url: self.url().to_owned(),
        };
        if reference.is_empty() {
            return Err(bad());
        }
        let names: Vec<String> = if reference == "HEAD" || reference.starts_with("refs/") {
            vec![reference.to_owned()]
        } else if reference.contains('/') {
            vec![
                format!("refs/{reference}"),
                format!("refs/tags/{reference}"),
                format!("refs/heads/{reference}"),
            ]
        } else {
            vec![
                format!("refs/tags/{reference}"),
                format!("refs/heads/{reference}"),
            ]
        };
        for name in &names {
            if gix::refs::FullName::try_from(name.as_str()).is_err() {
                return Err(bad());
            }
        }
        Ok(names)
    }

    /// Looks `reference` up in the cache only.
    fn resolve_local(&self, reference: &str) -> Result<Option<ObjectId>, SourceError> {
        let repo = self.local_repo()?;
        if let Some(id) = full_hex(reference) {
            if !repo.has_object(id) {
                return Ok(None);
            }
            return self.check_commit(&repo, id, reference).map(Some);
        }
        if reference == "HEAD" {
            return Ok(None);
        }
        let found_ref = self.resolve_ref_name(&repo, reference)?;
        if found_ref.is_some() || !is_abbreviated_hex(reference) {
            return Ok(found_ref);
        }
        // An abbreviated commit id, as `git log --oneline` and our history show it.
        let prefix = gix::hash::Prefix::from_hex(reference).map_err(|err| SourceError::Git {
            op: "resolve",
            url: self.url().to_owned(),
            detail: format!("{reference:?}: {err}"),
        })?;
        let found = repo
            .objects
            .lookup_prefix(prefix, None)
            .map_err(|err| self.git_error("resolve", &err))?;
        match found {
            Some(Ok(id)) => self.check_commit(&repo, id, reference).map(Some),
            Some(Err(())) => Err(SourceError::Git {
                op: "resolve",
                url: self.url().to_owned(),
                detail: format!(
                    "{reference:?} is ambiguous; give more characters of the commit id"
                ),
            }),
            None => Ok(None),
        }
    }

    /// Looks up `reference` as a ref name (tags, then branches) in the cache.
    fn resolve_ref_name(
        &self,
        repo: &gix::Repository,
        reference: &str,
    ) -> Result<Option<ObjectId>, SourceError> {
        for name in self.candidates(reference)? {
            let found = repo
                .try_find_reference(name.as_str())
                .map_err(|err| self.git_error("read ref", &err))?;
            if let Some(mut found) = found {
                let id = found
                    .peel_to_id()
                    .map_err(|err| self.git_error("read ref", &err))?
                    .detach();
                return self.check_commit(repo, id, reference).map(Some);
            }
        }
        Ok(None)
    }

    /// Peels `id` to a commit, or says what it is instead.
    fn check_commit(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        reference: &str,
    ) -> Result<ObjectId, SourceError> {
        let object = repo
            .find_object(id)
            .map_err(|err| self.git_error("read object", &err))?;
        let kind = object.kind;
        match object.peel_to_commit() {
            Ok(commit) => Ok(commit.id),
            Err(_) => Err(SourceError::NotACommit {
                reference: reference.to_owned(),
                url: self.url().to_owned(),
                kind: kind.to_string(),
            }),
        }
    }

    /// Takes the fetch lock; fetches unless `done` already holds (checked under the
    /// lock, so waiters on a concurrent fetch do not fetch again). Returns whether it
    /// fetched.
    fn fetch_unless(
        &self,
        done: impl Fn(&Self) -> Result<bool, SourceError>,
    ) -> Result<bool, SourceError> {
        let _guard = lock(&self.shared.fetch_lock);
        if done(self)? {
            return Ok(false);
        }
        self.fetch_locked()?;
        Ok(true)
    }

    fn fetch_locked(&self) -> Result<(), SourceError> {
        let repo = self.local_repo()?;
        let start = Instant::now();
        tracing::info!(url = %self.url(), cache = %self.shared.path.display(), "fetching");
        let remote = repo
            .remote_at(self.location.fetch.clone())
            .and_then(|r| {
                r.with_fetch_tags(gix::remote::fetch::Tags::None)
                    .with_refspecs(FETCH_SPECS, Direction::Fetch)
            })
            .map_err(|err| self.git_error("fetch", &err))?;
        let ssh_log = self.ssh_log();
        let connection = remote
            .to_connection_with_transport(self.transport("fetch", ssh_log.as_ref())?)
            .with_credentials(self.authenticate());
        let interrupt = AtomicBool::new(false);
        let (reporter, progress) = crate::progress::Reporter::start(self.url());
        let outcome = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .and_then(|prepare| prepare.receive(progress, &interrupt))
            .map_err(|err| self.classify("fetch", &err, ssh_log.as_ref()))?;
        drop(reporter);
        self.shared.fetches.fetch_add(1, Ordering::SeqCst);
        let elapsed_ms = start.elapsed().as_millis();
        match outcome.status {
            gix::remote::fetch::Status::Change {
                write_pack_bundle,
                update_refs,
                ..
            } => {
                tracing::info!(
                    url = %self.url(),
                    objects = write_pack_bundle.index.num_objects,
                    refs_updated = update_refs.edits.len(),
                    elapsed_ms,
                    "fetched"
                );
                if let Some(keep) = write_pack_bundle.keep_path {
                    // The refs now point into the pack; it needs no protection any more.
                    let _ = std::fs::remove_file(keep);
                }
            }
            gix::remote::fetch::Status::NoPackReceived { update_refs, .. } => {
                tracing::info!(url = %self.url(), refs_updated = update_refs.edits.len(), elapsed_ms, "fetched: already up to date");
            }
        }
        self.maintain();
        Ok(())
    }

    /// Keeps the number of packs small: every fetch that receives objects adds one, and
    /// many packs slow lookups down and use up the object store's index slots. Packs
    /// are consolidated with `git repack` (gix cannot repack yet); without git the
    /// repository is reopened so the store sizes its slots for what is on disk.
    /// Called with the fetch lock held.
    fn maintain(&self) {
        let packs = count_pack_indices(&self.shared.path);
        if packs <= MAX_PACKS {
            return;
        }
        let start = Instant::now();
        let repacked = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&self.shared.path)
            .args(["repack", "-a", "-d", "-q"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .output();
        match repacked {
            Ok(out) if out.status.success() => {
                tracing::info!(url = %self.url(), packs, elapsed_ms = start.elapsed().as_millis(), "cache repacked");
            }
            Ok(out) => tracing::warn!(
                url = %self.url(),
                packs,
                stderr = %String::from_utf8_lossy(&out.stderr).trim(),
                "git repack of the cache failed; lookups slow down as packs accumulate"
            ),
            Err(err) => tracing::warn!(
                url = %self.url(),
                packs,
                error = %err,
                "cannot run git to repack the cache; install git, or lookups slow down as packs accumulate"
            ),
        }
        if count_pack_indices(&self.shared.path) > MAX_PACKS {
            // Reopen so that the object store's slot count follows the packs on disk.
            let mut slot = lock(&self.shared.repo);
            match open_or_init(&self.shared.path, self.url()) {
                Ok(repo) => *slot = Some(repo),
                Err(err) => {
                    tracing::warn!(url = %self.url(), error = %err, "cannot reopen the cache repository")
                }
            }
        }
    }

    /// A thread-local handle on the cache repository, creating it on first use.
    fn local_repo(&self) -> Result<gix::Repository, SourceError> {
        let mut slot = lock(&self.shared.repo);
        if slot.is_none() {
            *slot = Some(open_or_init(&self.shared.path, self.url())?);
        }
        let mut repo = slot.as_ref().expect("set above").to_thread_local();
        repo.object_cache_size_if_unset(4 * 1024 * 1024);
        Ok(repo)
    }

    /// The transport for our URL: protocol v2, and for ssh a batch-mode `ssh` command
    /// with the configured key and known_hosts.
    fn transport(
        &self,
        op: &'static str,
        ssh_log: Option<&SshLog>,
    ) -> Result<Box<dyn Transport + Send>, SourceError> {
        self.refuse_clear_text_credentials()?;
        if self.location.fetch.scheme == gix::url::Scheme::File {
            // `git upload-pack` on a bad path only says so on stderr, which the transport
            // does not surface: check first.
            let path = gix::path::from_bstring(self.location.fetch.path.clone())
                .map_err(|err| self.git_error(op, &err))?;
            let detail = if !path.is_dir() {
                Some("no such directory")
            } else if !(path.join("HEAD").is_file() || path.join(".git").exists()) {
                Some("the directory is not a Git repository")
            } else {
                None
            };
            if let Some(detail) = detail {
                return Err(SourceError::RepoNotFound {
                    url: self.url().to_owned(),
                    detail: detail.to_owned(),
                });
            }
        }
        if self.location.fetch.scheme == gix::url::Scheme::Git {
            return self.git_daemon_transport(op);
        }
        let options = connect::Options {
            version: gix::protocol::transport::Protocol::V2,
            ssh: match ssh_log {
                Some(log) => self.ssh_options(log),
                None => ssh::connect::Options::default(),
            },
            trace: false,
        };
        connect::connect(self.location.fetch.clone(), options)
            .map_err(|err| self.classify(op, &err, ssh_log))
    }

    /// git:// with socket timeouts (gix sets none after connecting), so a server that
    /// stops answering fails the fetch instead of holding the repository's fetch lock.
    fn git_daemon_transport(
        &self,
        op: &'static str,
    ) -> Result<Box<dyn Transport + Send>, SourceError> {
        use std::net::{TcpStream, ToSocketAddrs};
        let url = &self.location.fetch;
        let host = url.host().unwrap_or_default().to_owned();
        let port = url.port.unwrap_or(9418);
        let unreachable = |detail: String| SourceError::Unreachable {
            url: self.url().to_owned(),
            detail,
        };
        let addrs: Vec<_> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|err| unreachable(format!("could not resolve {host}: {err}")))?
            .collect();
        let mut last_err = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(err) => last_err = Some(err),
            }
        }
        let read = stream.ok_or_else(|| {
            unreachable(
                last_err.map_or_else(|| format!("no address for {host}"), |e| e.to_string()),
            )
        })?;
        let setup = |s: &TcpStream| {
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            s.try_clone()
        };
        let write = setup(&read).map_err(|err| SourceError::Git {
            op,
            url: self.url().to_owned(),
            detail: err.to_string(),
        })?;
        Ok(Box::new(
            gix::protocol::transport::client::git::blocking_io::Connection::new(
                read,
                write,
                gix::protocol::transport::Protocol::V2,
                url.path.clone(),
                Some((host, url.port)),
                gix::protocol::transport::client::git::ConnectMode::Daemon,
                false,
            ),
        ))
    }

    /// Credentials never travel in clear text over the network: plain `http://` with a
    /// password is only allowed to a loopback address.
    fn refuse_clear_text_credentials(&self) -> Result<(), SourceError> {
        let url = &self.location.fetch;
        let has_password =
            self.credentials.password.is_some() || self.location.url_password.is_some();
        if url.scheme != gix::url::Scheme::Http || !has_password {
            return Ok(());
        }
        let host = url.host().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
        Err(SourceError::BadUrl {
            url: self.url().to_owned(),
            reason: "refusing to send a password or token in clear text over http; use https"
                .to_owned(),
        })
    }

    /// For ssh: a file that ssh writes its own messages to (`-E`), so that a refused
    /// key or host key can be told apart; gix does not pass ssh's stderr on.
    fn ssh_log(&self) -> Option<SshLog> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        self.location.is_ssh().then(|| {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            SshLog(
                self.shared
                    .path
                    .with_extension(format!("ssh-{}-{n}.log", std::process::id())),
            )
        })
    }

    fn ssh_options(&self, log: &SshLog) -> ssh::connect::Options {
        // Batch mode never prompts; the timeouts keep a dead server from holding the
        // repository's fetch lock forever.
        let secs = self.timeout.as_secs().max(1);
        let mut command = format!(
            "ssh -o BatchMode=yes -o ConnectTimeout={secs} -o ServerAliveInterval={} -o ServerAliveCountMax=4 -E ",
            secs.div_ceil(4)
        );
        command.push_str(&shell_quote(&log.0));
        if let Some(key) = &self.credentials.ssh_key_file {
            command.push_str(" -o IdentitiesOnly=yes -i ");
            command.push_str(&shell_quote(key));
        }
        if let Some(known) = &self.credentials.ssh_known_hosts {
            command.push_str(" -o StrictHostKeyChecking=yes -o UserKnownHostsFile=");
            command.push_str(&shell_quote(known));
        }
        ssh::connect::Options {
            command: Some(OsString::from(command)),
            disallow_shell: false,
            kind: Some(ssh::ProgramKind::Ssh),
        }
    }

    /// The credential callback handed to gix in place of Git's helpers and prompt.
    fn authenticate(
        &self,
    ) -> impl FnMut(Action) -> gix::Result<Option<gix::credentials::protocol::Outcome>> + 'static
    {
        let username = self
            .credentials
            .username
            .clone()
            .or_else(|| self.location.url_username.clone());
        let password = self
            .credentials
            .password
            .clone()
            .or_else(|| self.location.url_password.clone());
        let ssh = self.location.is_ssh();
        move |action| match action {
            Action::Get(context) => match &password {
                Some(password) => Ok(Some(gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: username.clone().unwrap_or_else(|| "git".to_owned()),
                        password: password.clone(),
                        oauth_refresh_token: None,
                    },
                    next: context.into(),
                })),
                None if ssh => {
                    Err(gix::error::message("the server refused the ssh key")
                        .unauthenticated_error())
                }
                None => {
                    Err(gix::error::message("no credentials configured").unauthenticated_error())
                }
            },
            Action::Store(_) | Action::Erase(_) => Ok(None),
        }
    }

    fn secrets(&self) -> Vec<&str> {
        [&self.credentials.password, &self.location.url_password]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    fn classify(
        &self,
        op: &'static str,
        err: &gix::Error,
        ssh_log: Option<&SshLog>,
    ) -> SourceError {
        let ssh_text = ssh_log.map(SshLog::text).unwrap_or_default();
        classify(op, self.url(), err, &ssh_text, &self.secrets())
    }

    fn git_error(&self, op: &'static str, err: &gix::Error) -> SourceError {
        let mut detail = err
            .iter_errors()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        for secret in self.secrets() {
            detail = detail.replace(secret, "***");
        }
        SourceError::Git {
            op,
            url: self.url().to_owned(),
            detail: crate::error::redact_url(&detail),
        }
    }

    fn unknown(&self, reference: &str) -> SourceError {
        SourceError::UnknownRef {
            reference: reference.to_owned(),
            url: self.url().to_owned(),
        }
    }
}

/// ssh's log file for one connection; removed when dropped.
struct SshLog(PathBuf);

impl SshLog {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for SshLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn open_or_init(path: &Path, url: &str) -> Result<gix::ThreadSafeRepository, SourceError> {
    let git_err = |op: &'static str, err: gix::Error| SourceError::Git {
        op,
        url: url.to_owned(),
        detail: format!("cache {}: {}", path.display(), err),
    };
    if path.exists() {
        match gix::open_opts(
            path,
            gix::open::Options::isolated().object_store_slots(object_store_slots()),
        ) {
            Ok(repo) => return Ok(repo.into_sync()),
            Err(err) => {
                tracing::warn!(cache = %path.display(), error = %err, "cache repository unusable; recreating it");
                std::fs::remove_dir_all(path).map_err(|e| SourceError::io(path, e))?;
            }
        }
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| SourceError::io(parent, e))?;
    // Initialize beside the final place and rename, so a crash never leaves half a
    // repository under the real name.
    let staging = parent.join(format!(
        ".{}.init-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| SourceError::io(&staging, e))?;
    }
    gix::init_bare(&staging).map_err(|err| git_err("init cache", err))?;
    std::fs::rename(&staging, path).map_err(|e| SourceError::io(path, e))?;
    gix::open_opts(
        path,
        gix::open::Options::isolated().object_store_slots(object_store_slots()),
    )
    .map(gix::Repository::into_sync)
    .map_err(|err| git_err("open cache", err))
}

/// Where the first of `candidates` that the server advertised points.
fn lookup(table: &RefTable, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .find_map(|name| table.get(name))
        .and_then(Clone::clone)
}

fn full_hex(reference: &str) -> Option<ObjectId> {
    if reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        ObjectId::from_hex(reference.to_ascii_lowercase().as_bytes()).ok()
    } else {
        None
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves nothing half-written in memory that later
    // callers rely on (the repository on disk is updated atomically by gix).
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 4 to 39 hex digits: an abbreviated commit id.
fn is_abbreviated_hex(text: &str) -> bool {
    (4..40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}
