//! Store: SQLite (WAL) under the state directory for sync history, events, the audit log
//! and per-app inventories; survives a kill -9.
//!
//! It owns the database schema. It must not decide anything: it records and answers.
//!
//! # Guarantees
//! - Every call is one SQLite transaction: a reader never sees half of a write, and a
//!   crash (kill -9, panic, OOM kill) at any point leaves either the old or the new
//!   state, never a mix.
//! - The journal is a write-ahead log with `synchronous=NORMAL`: a committed write
//!   survives the death of the process, since the log is in the OS page cache. Only an
//!   OS crash or power loss can drop the last commits of history, events and audit.
//! - Inventories and app state are written with `synchronous=FULL` (the log is fsynced
//!   before the call returns), so they survive an OS crash too: an inventory that
//!   forgot an object after a power cut would leave that object unpruned for ever.
//! - Timestamps are unix milliseconds stamped by the store at write time; order is by
//!   row id, which never goes backwards even when the clock does.
//!
//! # Caveats
//! Calls block on a mutex around one connection and on SQLite's own locks (with a busy
//! timeout for other processes). They are short, but a caller on an async runtime that
//! cares should wrap them in `spawn_blocking`.

mod records;
mod retention;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use driftless_model::{ChangeSet, Inventory, ObjectRef};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

pub use records::{
    AppState, AuditRecord, ChangeCounts, CommitMeta, EventRecord, NewAudit, NewEvent, NewSync,
    Severity, SyncOutcome, SyncRecord, SyncResult, SyncSummary, Trigger, UnknownName,
};
pub use retention::{
    AUDIT_LONG_FIELD, AUDIT_SHORT_FIELD, Bound, Pruned, Retention, SyncBound, truncate,
};

/// The database file's name inside the state directory.
pub const DB_FILE: &str = "driftless.db";

/// How long a call waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows deleted per statement by a retention pass.
const RETENTION_BATCH: i64 = 5_000;

/// The error recorded on syncs that were still running when driftless stopped.
pub const INTERRUPTED_ERROR: &str = "driftless stopped before this sync finished";

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created; fix its permissions or choose another
    /// `--state` directory. Fatal at startup.
    #[error("cannot create state directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or configured (not a database, read-only,
    /// disk full). Fatal at startup.
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer driftless; refusing to touch it. Fatal.
    #[error(
        "database {} has schema version {found}, newer than the {supported} this driftless knows; upgrade driftless or use another --state directory",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// Upgrading the schema failed; nothing was changed. Fatal at startup.
    #[error("cannot upgrade database schema to version {version}: {source}")]
    Migrate {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed. Transient when the database was busy (see
    /// [`StoreError::is_transient`]); otherwise the disk or the file is in trouble.
    #[error("store: {op}: {source}")]
    Query {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// No sync has this id.
    #[error("store: no sync with id {0}")]
    NoSuchSync(i64),
    /// A stored value could not be decoded (hand-edited or damaged database).
    #[error("store: {table} row {id}: {reason}")]
    Corrupt {
        table: &'static str,
        id: String,
        reason: String,
    },
    /// A value could not be encoded as JSON for storage.
    #[error("store: cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether retrying later may succeed: the database was locked by someone else for
    /// longer than the busy timeout.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            StoreError::Query { source, .. } | StoreError::Open { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// The history, events, audit log, inventories and app state of one driftless.
/// Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: Option<PathBuf>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "Store({})", p.display()),
            None => f.write_str("Store(:memory:)"),
        }
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn query_err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

/// Unix milliseconds now; 0 if the clock is before 1970.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) `<state_dir>/driftless.db`, creating `state_dir`
    /// too, and brings its schema up to date.
    pub fn open(state_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "SQLite refused WAL mode; using it anyway");
        }
        Self::configure(&conn).map_err(open_err)?;
        Self::migrate(&conn, &path)?;
        tracing::debug!(path = %path.display(), "store opened");
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: Some(path),
        })
    }

    /// A private database in memory, for tests and one-shot commands.
    pub fn open_in_memory() -> Result<Store> {
        let path = PathBuf::from(":memory:");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(open_err)?;
        Self::configure(&conn).map_err(open_err)?;
        Self::migrate(&conn, &path)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: None,
        })
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn configure(conn: &Connection) -> rusqlite::Result<()> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(())
    }

    fn migrate(conn: &Connection, path: &Path) -> Result<()> {
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        let supported = schema::current_version();
        if found > supported {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                supported,
            });
        }
        for (version, sql) in (1..)
            .zip(schema::MIGRATIONS)
            .skip(usize::try_from(found).unwrap_or(0))
        {
            let run = || -> rusqlite::Result<()> {
                // IMMEDIATE: two processes starting at once must not both migrate.
                conn.execute_batch("BEGIN IMMEDIATE")?;
                let now: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                if now < version {
                    conn.execute_batch(sql)?;
                    conn.pragma_update(None, "user_version", version)?;
                }
                conn.execute_batch("COMMIT")
            };
            if let Err(source) = run() {
                // Best effort: the transaction may not have started.
                let _ = conn.execute_batch("ROLLBACK");
                return Err(StoreError::Migrate { version, source });
            }
            tracing::info!(version, "store schema migrated");
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open (rusqlite rolls
        // back on drop), so the connection is still good.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ---- sync history -------------------------------------------------------------

    /// Records the start of a sync (result `Running`, `started_at` now); returns its id.
    pub fn begin_sync(&self, s: &NewSync) -> Result<i64> {
        let change_set = encode(&ChangeSet::default(), "change set")?;
        let c = s.commit.as_ref();
        let conn = self.lock();
        conn.prepare_cached(
            "INSERT INTO syncs (app, revision, commit_author, commit_email, commit_time,
                commit_subject, commit_message, trigger, requested_by, started_at, result,
                change_set)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .and_then(|mut st| {
            st.execute(params![
                s.app,
                s.revision,
                c.map(|c| &c.author),
                c.map(|c| &c.email),
                c.map(|c| c.time),
                c.map(|c| &c.subject),
                c.map(|c| &c.message),
                s.trigger.as_str(),
                s.requested_by,
                now_ms(),
                SyncResult::Running.as_str(),
                change_set,
            ])
        })
        .map_err(query_err("begin sync"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records how sync `id` ended (`finished_at` now).
    pub fn finish_sync(&self, id: i64, outcome: &SyncOutcome) -> Result<()> {
        let change_set = encode(&outcome.change_set, "change set")?;
        let conn = self.lock();
        let n = conn
            .prepare_cached(
                "UPDATE syncs SET finished_at = ?2, result = ?3, change_set = ?4, error = ?5,
                    post_sync_output = ?6
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    now_ms(),
                    outcome.result.as_str(),
                    change_set,
                    outcome.error,
                    outcome.post_sync_output,
                ])
            })
            .map_err(query_err("finish sync"))?;
        if n == 0 {
            return Err(StoreError::NoSuchSync(id));
        }
        Ok(())
    }

    /// The latest `limit` syncs of `app`, newest first.
    pub fn history(&self, app: &str, limit: usize) -> Result<Vec<SyncRecord>> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(&format!(
                "{SYNC_COLUMNS} WHERE app = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(query_err("read history"))?;
        let rows = st
            .query_map(params![app, sql_limit(limit)], sync_row)
            .map_err(query_err("read history"))?;
        collect_rows(rows, "read history")
    }

    /// The latest `limit` syncs of `app`, newest first, with their change sets as counts
    /// (counted by SQLite, so a huge change set is never loaded to answer a list).
    pub fn history_summaries(&self, app: &str, limit: usize) -> Result<Vec<SyncSummary>> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT id, app, revision, commit_author, commit_email, commit_time,
                    commit_subject, commit_message, trigger, requested_by, started_at,
                    finished_at, result,
                    (SELECT json_array(
                        count(*) FILTER (WHERE json_extract(value, '$.action') = 'created'),
                        count(*) FILTER (WHERE json_extract(value, '$.action') = 'configured'),
                        count(*) FILTER (WHERE json_extract(value, '$.action') = 'unchanged'),
                        count(*) FILTER (WHERE json_extract(value, '$.action') = 'deleted'),
                        count(*) FILTER (WHERE json_extract(value, '$.action') = 'skipped'),
                        count(*) FILTER (WHERE json_extract(value, '$.action') = 'failed'))
                     FROM json_each(change_set, '$.changes')),
                    error
                 FROM syncs WHERE app = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(query_err("read history"))?;
        let rows = st
            .query_map(params![app, sql_limit(limit)], summary_row)
            .map_err(query_err("read history"))?;
        collect_rows(rows, "read history")
    }

    /// One sync by id.
    pub fn sync(&self, id: i64) -> Result<Option<SyncRecord>> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(&format!("{SYNC_COLUMNS} WHERE id = ?1"))
            .map_err(query_err("read sync"))?;
        let row = st
            .query_row([id], sync_row)
            .optional()
            .map_err(query_err("read sync"))?;
        row.transpose()
    }

    /// The newest sync of `app`, or the newest that succeeded.
    pub fn last_sync(&self, app: &str, only_succeeded: bool) -> Result<Option<SyncRecord>> {
        let conn = self.lock();
        let sql = if only_succeeded {
            format!(
                "{SYNC_COLUMNS} WHERE app = ?1 AND result = 'succeeded' ORDER BY id DESC LIMIT 1"
            )
        } else {
            format!("{SYNC_COLUMNS} WHERE app = ?1 ORDER BY id DESC LIMIT 1")
        };
        let mut st = conn
            .prepare_cached(&sql)
            .map_err(query_err("read last sync"))?;
        let row = st
            .query_row([app], sync_row)
            .optional()
            .map_err(query_err("read last sync"))?;
        row.transpose()
    }

    /// Marks every sync still `Running` — left so by a crash — as `Interrupted`, with
    /// `finished_at` now and an error saying so. Call once at startup, before any new
    /// sync begins. Returns the updated records, oldest first.
    pub fn interrupt_unfinished(&self) -> Result<Vec<SyncRecord>> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query_err("interrupt unfinished syncs"))?;
        let mut records = {
            let mut st = tx
                .prepare_cached(&format!(
                    "{SYNC_COLUMNS} WHERE result = 'running' ORDER BY id"
                ))
                .map_err(query_err("interrupt unfinished syncs"))?;
            let rows = st
                .query_map([], sync_row)
                .map_err(query_err("interrupt unfinished syncs"))?;
            collect_rows(rows, "interrupt unfinished syncs")?
        };
        let now = now_ms();
        for r in &mut records {
            r.result = SyncResult::Interrupted;
            r.finished_at = Some(now);
            r.error = Some(
                r.error
                    .take()
                    .unwrap_or_else(|| INTERRUPTED_ERROR.to_owned()),
            );
            tx.execute(
                "UPDATE syncs SET result = ?2, finished_at = ?3, error = ?4 WHERE id = ?1",
                params![r.id, r.result.as_str(), now, r.error],
            )
            .map_err(query_err("interrupt unfinished syncs"))?;
        }
        tx.commit()
            .map_err(query_err("interrupt unfinished syncs"))?;
        if !records.is_empty() {
            tracing::warn!(
                count = records.len(),
                "syncs interrupted by a previous stop"
            );
        }
        Ok(records)
    }

    // ---- events -------------------------------------------------------------------

    /// Stores an event stamped now and returns it with its id.
    pub fn record_event(&self, e: &NewEvent) -> Result<EventRecord> {
        let object = e
            .object
            .as_ref()
            .map(|o| encode(o, "event object"))
            .transpose()?;
        let at = now_ms();
        let conn = self.lock();
        conn.prepare_cached(
            "INSERT INTO events (at, app, kind, severity, message, object, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                at,
                e.app,
                e.kind,
                e.severity.as_str(),
                e.message,
                object,
                e.revision
            ])
        })
        .map_err(query_err("record event"))?;
        Ok(EventRecord {
            id: conn.last_insert_rowid(),
            at,
            app: e.app.clone(),
            kind: e.kind.clone(),
            severity: e.severity,
            message: e.message.clone(),
            object: e.object.clone(),
            revision: e.revision.clone(),
        })
    }

    /// Events, of one app or all. Without `after_id`: the latest `limit`, newest first.
    /// With `after_id`: the first `limit` with a greater id, oldest first (for catching
    /// up a stream).
    pub fn events(
        &self,
        app: Option<&str>,
        after_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let mut sql = String::from(
            "SELECT id, at, app, kind, severity, message, object, revision FROM events WHERE 1",
        );
        if app.is_some() {
            sql.push_str(" AND app = ?1");
        }
        if after_id.is_some() {
            sql.push_str(" AND id > ?2 ORDER BY id ASC");
        } else {
            sql.push_str(" ORDER BY id DESC");
        }
        sql.push_str(" LIMIT ?3");
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(&sql)
            .map_err(query_err("read events"))?;
        let rows = st
            .query_map(params![app, after_id, sql_limit(limit)], event_row)
            .map_err(query_err("read events"))?;
        collect_rows(rows, "read events")
    }

    // ---- audit --------------------------------------------------------------------

    /// Stores an audit entry stamped now. Every field is cut to a bounded length
    /// ([`AUDIT_SHORT_FIELD`] for actor, action and app, [`AUDIT_LONG_FIELD`] for detail
    /// and outcome): audit rows can be caused by anyone who reaches the port.
    pub fn record_audit(&self, a: &NewAudit) -> Result<()> {
        let short = |v: &str| truncate(v, AUDIT_SHORT_FIELD).into_owned();
        let long = |v: &str| truncate(v, AUDIT_LONG_FIELD).into_owned();
        let a = NewAudit {
            actor: short(&a.actor),
            action: short(&a.action),
            app: a.app.as_deref().map(short),
            detail: a.detail.as_deref().map(long),
            outcome: long(&a.outcome),
        };
        let conn = self.lock();
        conn.prepare_cached(
            "INSERT INTO audit (at, actor, action, app, detail, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                now_ms(),
                a.actor,
                a.action,
                a.app,
                a.detail,
                a.outcome
            ])
        })
        .map_err(query_err("record audit"))?;
        Ok(())
    }

    /// The latest `limit` audit entries, of one app or all, newest first.
    pub fn audit(&self, app: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>> {
        let sql = if app.is_some() {
            "SELECT id, at, actor, action, app, detail, outcome FROM audit
             WHERE app = ?1 ORDER BY id DESC LIMIT ?2"
        } else {
            "SELECT id, at, actor, action, app, detail, outcome FROM audit
             WHERE ?1 IS NULL ORDER BY id DESC LIMIT ?2"
        };
        let conn = self.lock();
        let mut st = conn.prepare_cached(sql).map_err(query_err("read audit"))?;
        let rows = st
            .query_map(params![app, sql_limit(limit)], |r| {
                Ok(AuditRecord {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    app: r.get(4)?,
                    detail: r.get(5)?,
                    outcome: r.get(6)?,
                })
            })
            .map_err(query_err("read audit"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(query_err("read audit"))
    }

    // ---- retention ----------------------------------------------------------------

    /// Deletes what `policy` no longer keeps, as of now. See [`Store::apply_retention_at`].
    pub fn apply_retention(&self, policy: &Retention) -> Result<Pruned> {
        self.apply_retention_at(policy, SystemTime::now())
    }

    /// Deletes events, syncs and audit entries that `policy` no longer keeps, as if the
    /// time were `now`: older than a table's `max_age`, or beyond its `max_rows` (oldest
    /// first). Deletes in batches, taking the lock per batch, so that writers are never
    /// held up for long. Running syncs and each app's newest successful sync are kept.
    pub fn apply_retention_at(&self, policy: &Retention, now: SystemTime) -> Result<Pruned> {
        let cutoff = |age: Option<Duration>| {
            age.map(|age| {
                let at = now.checked_sub(age).unwrap_or(UNIX_EPOCH);
                at.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            })
        };
        let mut pruned = Pruned::default();
        for (table, bound, count) in [
            ("events", &policy.events, &mut pruned.events),
            ("audit", &policy.audit, &mut pruned.audit),
        ] {
            if let Some(before) = cutoff(bound.max_age) {
                *count += self.delete_batched(
                    &format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE at < ?1 LIMIT ?2)"),
                    before,
                )?;
            }
            if let Some(max) = bound.max_rows {
                let newest_dropped: Option<i64> = self
                    .lock()
                    .query_row(
                        &format!("SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?1"),
                        [i64::try_from(max).unwrap_or(i64::MAX)],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(query_err("apply retention"))?;
                if let Some(last) = newest_dropped {
                    *count += self.delete_batched(
                        &format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE id <= ?1 ORDER BY id LIMIT ?2)"),
                        last,
                    )?;
                }
            }
        }
        if policy.syncs.max_age.is_some() || policy.syncs.max_per_app.is_some() {
            let apps: Vec<String> = {
                let conn = self.lock();
                let mut st = conn
                    .prepare("SELECT DISTINCT app FROM syncs")
                    .map_err(query_err("apply retention"))?;
                st.query_map([], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(query_err("apply retention"))?
            };
            // Kept whatever the policy says: running syncs (the engine will finish them)
            // and the app's newest successful sync (what it last applied).
            const PRUNABLE: &str = "app = ?3 AND result != 'running' AND id != coalesce(
                (SELECT max(id) FROM syncs WHERE app = ?3 AND result = 'succeeded'), -1)";
            for app in apps {
                if let Some(before) = cutoff(policy.syncs.max_age) {
                    pruned.syncs += self.delete_batched_for(
                        &format!("DELETE FROM syncs WHERE id IN (SELECT id FROM syncs WHERE started_at < ?1 AND {PRUNABLE} LIMIT ?2)"),
                        before,
                        &app,
                    )?;
                }
                if let Some(max) = policy.syncs.max_per_app {
                    let newest_dropped: Option<i64> = self
                        .lock()
                        .query_row(
                            "SELECT id FROM syncs WHERE app = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
                            params![app, i64::try_from(max).unwrap_or(i64::MAX)],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(query_err("apply retention"))?;
                    if let Some(last) = newest_dropped {
                        pruned.syncs += self.delete_batched_for(
                            &format!("DELETE FROM syncs WHERE id IN (SELECT id FROM syncs WHERE id <= ?1 AND {PRUNABLE} ORDER BY id LIMIT ?2)"),
                            last,
                            &app,
                        )?;
                    }
                }
            }
        }
        if pruned != Pruned::default() {
            tracing::info!(
                events = pruned.events,
                syncs = pruned.syncs,
                audit = pruned.audit,
                "retention: old rows deleted"
            );
        }
        Ok(pruned)
    }

    /// Runs `sql` (params: `?1` = `value`, `?2` = batch size) until it deletes less
    /// than a batch; returns how many rows went.
    fn delete_batched(&self, sql: &str, value: i64) -> Result<u64> {
        self.delete_batches(|conn| conn.execute(sql, params![value, RETENTION_BATCH]))
    }

    /// As [`Store::delete_batched`], with `?3` = `app`.
    fn delete_batched_for(&self, sql: &str, value: i64, app: &str) -> Result<u64> {
        self.delete_batches(|conn| conn.execute(sql, params![value, RETENTION_BATCH, app]))
    }

    fn delete_batches(
        &self,
        mut batch: impl FnMut(&Connection) -> rusqlite::Result<usize>,
    ) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = batch(&self.lock()).map_err(query_err("apply retention"))?;
            total += n as u64;
            if n < RETENTION_BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// Moves the write-ahead log into the database file and truncates the log (for
    /// measuring the database's size, and after a large retention pass).
    pub fn checkpoint(&self) -> Result<()> {
        self.lock()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(query_err("checkpoint"))
    }

    // ---- inventories --------------------------------------------------------------

    /// The inventory of `app`; empty when none was saved.
    pub fn inventory(&self, app: &str) -> Result<Inventory> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached("SELECT obj_group, kind, namespace, name FROM inventory WHERE app = ?1")
            .map_err(query_err("read inventory"))?;
        let rows = st
            .query_map([app], |r| {
                Ok(ObjectRef {
                    group: r.get(0)?,
                    kind: r.get(1)?,
                    namespace: r.get(2)?,
                    name: r.get(3)?,
                })
            })
            .map_err(query_err("read inventory"))?;
        let entries = rows
            .collect::<rusqlite::Result<_>>()
            .map_err(query_err("read inventory"))?;
        Ok(Inventory { entries })
    }

    /// Replaces the inventory of `app` in one transaction, fsynced before returning:
    /// after a crash of the process or of the OS, the stored inventory is either the
    /// old one or this one, whole.
    pub fn save_inventory(&self, app: &str, inv: &Inventory) -> Result<()> {
        self.durable_write("save inventory", |tx| {
            tx.execute("DELETE FROM inventory WHERE app = ?1", [app])?;
            let mut st = tx.prepare_cached(
                "INSERT INTO inventory (app, obj_group, kind, namespace, name)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for id in &inv.entries {
                st.execute(params![app, id.group, id.kind, id.namespace, id.name])?;
            }
            Ok(())
        })
    }

    // ---- app state ----------------------------------------------------------------

    /// The persisted state of `app`; the default when none was saved.
    pub fn app_state(&self, app: &str) -> Result<AppState> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT suspended, pinned_revision, last_applied_revision FROM app_state
                 WHERE app = ?1",
            )
            .map_err(query_err("read app state"))?;
        let state = st
            .query_row([app], |r| {
                Ok(AppState {
                    suspended: r.get(0)?,
                    pinned_revision: r.get(1)?,
                    last_applied_revision: r.get(2)?,
                })
            })
            .optional()
            .map_err(query_err("read app state"))?;
        Ok(state.unwrap_or_default())
    }

    /// Saves the state of `app`, fsynced before returning (a suspension or rollback pin
    /// must not come undone by a power cut).
    pub fn save_app_state(&self, app: &str, st: &AppState) -> Result<()> {
        self.durable_write("save app state", |tx| {
            tx.execute(
                "INSERT INTO app_state (app, suspended, pinned_revision, last_applied_revision,
                    updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (app) DO UPDATE SET suspended = excluded.suspended,
                    pinned_revision = excluded.pinned_revision,
                    last_applied_revision = excluded.last_applied_revision,
                    updated_at = excluded.updated_at",
                params![
                    app,
                    st.suspended,
                    st.pinned_revision,
                    st.last_applied_revision,
                    now_ms()
                ],
            )?;
            Ok(())
        })
    }

    /// Runs `f` in an IMMEDIATE transaction committed with `synchronous=FULL`, so that
    /// the commit is on disk (write-ahead log fsynced) when this returns.
    fn durable_write(
        &self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        let mut conn = self.lock();
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(query_err(op))?;
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            f(&tx)?;
            tx.commit()
        })();
        let restored = conn.pragma_update(None, "synchronous", "NORMAL");
        result.map_err(query_err(op))?;
        restored.map_err(query_err(op))
    }
}

fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

const SYNC_COLUMNS: &str = "SELECT id, app, revision, commit_author, commit_email,
    commit_time, commit_subject, commit_message, trigger, requested_by, started_at,
    finished_at, result, change_set, error, post_sync_output FROM syncs";

/// The commit columns (3–7) of a sync row; `None` when the sync recorded no commit.
fn commit_meta(r: &Row<'_>) -> rusqlite::Result<Option<CommitMeta>> {
    let Some(author) = r.get::<_, Option<String>>(3)? else {
        return Ok(None);
    };
    Ok(Some(CommitMeta {
        author,
        email: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        time: r.get::<_, Option<i64>>(5)?.unwrap_or_default(),
        subject: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
        message: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
    }))
}

/// Decodes a sync row. The outer result is SQLite's; the inner one reports values that
/// SQLite returned fine but that do not decode (a damaged row).
fn sync_row(r: &Row<'_>) -> rusqlite::Result<Result<SyncRecord>> {
    let id: i64 = r.get(0)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "syncs",
        id: id.to_string(),
        reason,
    };
    let commit = commit_meta(r)?;
    let trigger: String = r.get(8)?;
    let result: String = r.get(12)?;
    let change_set: String = r.get(13)?;
    let decoded = (|| {
        Ok(SyncRecord {
            id,
            app: r.get(1)?,
            revision: r.get(2)?,
            commit,
            trigger: trigger
                .parse()
                .map_err(|e: UnknownName| corrupt(e.to_string()))?,
            requested_by: r.get(9)?,
            started_at: r.get(10)?,
            finished_at: r.get(11)?,
            result: result
                .parse()
                .map_err(|e: UnknownName| corrupt(e.to_string()))?,
            change_set: serde_json::from_str(&change_set)
                .map_err(|e| corrupt(format!("change set: {e}")))?,
            error: r.get(14)?,
            post_sync_output: r.get(15)?,
        })
    })();
    match decoded {
        Ok(rec) => Ok(Ok(rec)),
        Err(DecodeError::Sql(e)) => Err(e),
        Err(DecodeError::Store(e)) => Ok(Err(e)),
    }
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<Result<EventRecord>> {
    let id: i64 = r.get(0)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "events",
        id: id.to_string(),
        reason,
    };
    let severity: String = r.get(4)?;
    let object: Option<String> = r.get(6)?;
    let decoded = (|| {
        Ok(EventRecord {
            id,
            at: r.get(1)?,
            app: r.get(2)?,
            kind: r.get(3)?,
            severity: severity
                .parse()
                .map_err(|e: UnknownName| corrupt(e.to_string()))?,
            message: r.get(5)?,
            object: object
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt(format!("object: {e}")))?,
            revision: r.get(7)?,
        })
    })();
    match decoded {
        Ok(rec) => Ok(Ok(rec)),
        Err(DecodeError::Sql(e)) => Err(e),
        Err(DecodeError::Store(e)) => Ok(Err(e)),
    }
}

fn summary_row(r: &Row<'_>) -> rusqlite::Result<Result<SyncSummary>> {
    let id: i64 = r.get(0)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "syncs",
        id: id.to_string(),
        reason,
    };
    let commit = commit_meta(r)?;
    let trigger: String = r.get(8)?;
    let result: String = r.get(12)?;
    let counts: Option<String> = r.get(13)?;
    let decoded = (|| {
        let counts: [u64; 6] = match counts {
            Some(counts) => {
                serde_json::from_str(&counts).map_err(|e| corrupt(format!("change set: {e}")))?
            }
            None => return Err(corrupt("change set: not a JSON change set".to_owned()).into()),
        };
        let [created, configured, unchanged, deleted, skipped, failed] = counts;
        Ok(SyncSummary {
            id,
            app: r.get(1)?,
            revision: r.get(2)?,
            commit,
            trigger: trigger
                .parse()
                .map_err(|e: UnknownName| corrupt(e.to_string()))?,
            requested_by: r.get(9)?,
            started_at: r.get(10)?,
            finished_at: r.get(11)?,
            result: result
                .parse()
                .map_err(|e: UnknownName| corrupt(e.to_string()))?,
            changes: ChangeCounts {
                created,
                configured,
                unchanged,
                deleted,
                skipped,
                failed,
            },
            error: r.get(14)?,
        })
    })();
    match decoded {
        Ok(rec) => Ok(Ok(rec)),
        Err(DecodeError::Sql(e)) => Err(e),
        Err(DecodeError::Store(e)) => Ok(Err(e)),
    }
}

/// Either kind of failure while decoding a row.
enum DecodeError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for DecodeError {
    fn from(e: rusqlite::Error) -> Self {
        DecodeError::Sql(e)
    }
}

impl From<StoreError> for DecodeError {
    fn from(e: StoreError) -> Self {
        DecodeError::Store(e)
    }
}

fn collect_rows<T>(
    rows: impl Iterator<Item = rusqlite::Result<Result<T>>>,
    op: &'static str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(query_err(op))??);
    }
    Ok(out)
}
