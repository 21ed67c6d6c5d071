//! The database schema, as an ordered list of migrations. `PRAGMA user_version` holds the
//! number of migrations applied. Never edit a released migration: append a new one.

/// Migration `i` (0-based) brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: history, events, audit, inventories, app state.
    r#"
    CREATE TABLE syncs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        app              TEXT    NOT NULL,
        revision         TEXT    NOT NULL,
        commit_author    TEXT,
        commit_email     TEXT,
        commit_time      INTEGER,
        commit_subject   TEXT,
        commit_message   TEXT,
        trigger          TEXT    NOT NULL,
        requested_by     TEXT,
        started_at       INTEGER NOT NULL,
        finished_at      INTEGER,
        result           TEXT    NOT NULL,
        change_set       TEXT    NOT NULL,
        error            TEXT,
        post_sync_output TEXT
    );
    CREATE INDEX syncs_by_app ON syncs (app, id);
    CREATE INDEX syncs_running ON syncs (result) WHERE result = 'running';

    CREATE TABLE events (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        INTEGER NOT NULL,
        app       TEXT,
        kind      TEXT    NOT NULL,
        severity  TEXT    NOT NULL,
        message   TEXT    NOT NULL,
        object    TEXT,
        revision  TEXT
    );
    CREATE INDEX events_by_app ON events (app, id);

    CREATE TABLE audit (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       INTEGER NOT NULL,
        actor    TEXT    NOT NULL,
        action   TEXT    NOT NULL,
        app      TEXT,
        detail   TEXT,
        outcome  TEXT    NOT NULL
    );
    CREATE INDEX audit_by_app ON audit (app, id);

    CREATE TABLE inventory (
        app        TEXT NOT NULL,
        obj_group  TEXT NOT NULL,
        kind       TEXT NOT NULL,
        namespace  TEXT NOT NULL,
        name       TEXT NOT NULL,
        PRIMARY KEY (app, obj_group, kind, namespace, name)
    ) WITHOUT ROWID;

    CREATE TABLE app_state (
        app                   TEXT PRIMARY KEY,
        suspended             INTEGER NOT NULL,
        pinned_revision       TEXT,
        last_applied_revision TEXT,
        updated_at            INTEGER NOT NULL
    );
    "#,
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).expect("a handful of migrations fits in i64")
}
