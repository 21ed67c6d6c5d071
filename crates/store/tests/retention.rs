//! Retention, bounded audit rows and history summaries, against real SQLite files.

use std::time::{Duration, SystemTime};

use driftless_model::{Action, ChangeSet, ObjectRef};
use driftless_store::{
    AUDIT_LONG_FIELD, AUDIT_SHORT_FIELD, Bound, NewAudit, NewEvent, NewSync, Retention, Severity,
    Store, SyncBound, SyncOutcome, SyncResult, Trigger,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn event(app: &str, i: usize) -> NewEvent {
    NewEvent {
        app: Some(app.into()),
        kind: "sync-succeeded".into(),
        severity: Severity::Info,
        message: format!("event {i}"),
        object: None,
        revision: None,
    }
}

fn audit(i: usize) -> NewAudit {
    NewAudit {
        actor: "ci".into(),
        action: "sync".into(),
        app: Some("web".into()),
        detail: None,
        outcome: format!("ok {i}"),
    }
}

fn sync(store: &Store, app: &str, result: SyncResult) -> i64 {
    let id = store
        .begin_sync(&NewSync {
            app: app.into(),
            revision: "abc".into(),
            commit: None,
            trigger: Trigger::Poll,
            requested_by: None,
        })
        .expect("begin");
    if result != SyncResult::Running {
        store
            .finish_sync(
                id,
                &SyncOutcome {
                    result,
                    change_set: ChangeSet::default(),
                    error: None,
                    post_sync_output: None,
                },
            )
            .expect("finish");
    }
    id
}

fn event_ids(store: &Store) -> Vec<i64> {
    let mut ids: Vec<i64> = store
        .events(None, None, 1_000_000)
        .expect("events")
        .iter()
        .map(|e| e.id)
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn retention_by_count_keeps_the_newest_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for i in 0..250 {
        store.record_event(&event("web", i)).expect("event");
        store.record_audit(&audit(i)).expect("audit");
    }
    let before = event_ids(&store);
    let policy = Retention {
        events: Bound {
            max_age: None,
            max_rows: Some(100),
        },
        audit: Bound {
            max_age: None,
            max_rows: Some(30),
        },
        ..Retention::KEEP_ALL
    };
    let pruned = store.apply_retention(&policy).expect("retention");
    assert_eq!((pruned.events, pruned.audit, pruned.syncs), (150, 220, 0));
    assert_eq!(
        event_ids(&store),
        before[150..].to_vec(),
        "the newest 100 stay"
    );
    let audit = store.audit(None, 1000).expect("audit");
    assert_eq!(audit.len(), 30);
    assert_eq!(audit[0].outcome, "ok 249", "newest first, newest kept");
    assert_eq!(audit[29].outcome, "ok 220");
    // A second pass has nothing left to do.
    assert_eq!(
        store.apply_retention(&policy).expect("retention"),
        Default::default()
    );
}

#[test]
fn retention_by_age_deletes_only_rows_older_than_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for i in 0..20 {
        store.record_event(&event("web", i)).expect("event");
        store.record_audit(&audit(i)).expect("audit");
    }
    let policy = Retention::default();
    // Today nothing is 30 days old.
    assert_eq!(
        store.apply_retention(&policy).expect("retention"),
        Default::default()
    );
    assert_eq!(event_ids(&store).len(), 20);
    // 31 days later the events are gone but the audit log (90 days) stays.
    let later = SystemTime::now() + 31 * DAY;
    let pruned = store.apply_retention_at(&policy, later).expect("retention");
    assert_eq!((pruned.events, pruned.audit), (20, 0));
    assert!(event_ids(&store).is_empty());
    assert_eq!(store.audit(None, 100).expect("audit").len(), 20);
    // A new event is kept; 91 days on, the audit entries go too.
    store.record_event(&event("web", 99)).expect("event");
    let pruned = store
        .apply_retention_at(&policy, SystemTime::now() + 91 * DAY)
        .expect("retention");
    assert_eq!((pruned.events, pruned.audit), (1, 20));
    assert!(store.audit(None, 100).expect("audit").is_empty());
}

#[test]
fn sync_retention_is_per_app_and_keeps_running_and_last_good_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let last_good = sync(&store, "web", SyncResult::Succeeded);
    let running = sync(&store, "web", SyncResult::Running);
    let mut failed = Vec::new();
    for _ in 0..20 {
        failed.push(sync(&store, "web", SyncResult::Failed));
    }
    let api: Vec<i64> = (0..3)
        .map(|_| sync(&store, "api", SyncResult::Succeeded))
        .collect();
    let policy = Retention {
        syncs: SyncBound {
            max_age: None,
            max_per_app: Some(5),
        },
        ..Retention::KEEP_ALL
    };
    let pruned = store.apply_retention(&policy).expect("retention");
    assert_eq!(pruned.syncs, 15);
    let mut web: Vec<i64> = store
        .history("web", 100)
        .expect("history")
        .iter()
        .map(|r| r.id)
        .collect();
    web.sort_unstable();
    let mut expected = vec![last_good, running];
    expected.extend(&failed[15..]);
    assert_eq!(web, expected);
    let mut kept_api: Vec<i64> = store
        .history("api", 100)
        .expect("history")
        .iter()
        .map(|r| r.id)
        .collect();
    kept_api.sort_unstable();
    assert_eq!(kept_api, api, "another app's history is not touched");

    // By age: everything old goes but the running sync and the last good one.
    let policy = Retention {
        syncs: SyncBound {
            max_age: Some(DAY),
            max_per_app: None,
        },
        ..Retention::KEEP_ALL
    };
    store
        .apply_retention_at(&policy, SystemTime::now() + 2 * DAY)
        .expect("retention");
    let mut web: Vec<i64> = store
        .history("web", 100)
        .expect("history")
        .iter()
        .map(|r| r.id)
        .collect();
    web.sort_unstable();
    assert_eq!(web, vec![last_good, running]);
    assert_eq!(store.history("api", 100).expect("history").len(), 1);
}

#[test]
fn audit_fields_are_bounded() {
    let store = Store::open_in_memory().expect("open");
    let huge = "x".repeat(60_000);
    store
        .record_audit(&NewAudit {
            actor: huge.clone(),
            action: format!("POST /api/v1/apps/{huge}/sync"),
            app: Some(huge.clone()),
            detail: Some(huge.clone()),
            outcome: huge.clone(),
        })
        .expect("audit");
    let row = &store.audit(None, 1).expect("audit")[0];
    assert!(row.actor.len() <= AUDIT_SHORT_FIELD, "{}", row.actor.len());
    assert!(row.action.len() <= AUDIT_SHORT_FIELD);
    assert!(row.action.starts_with("POST /api/v1/apps/xxx"));
    assert!(row.app.as_ref().expect("app").len() <= AUDIT_SHORT_FIELD);
    assert!(row.detail.as_ref().expect("detail").len() <= AUDIT_LONG_FIELD);
    assert!(row.outcome.len() <= AUDIT_LONG_FIELD);
    assert!(row.outcome.ends_with("more bytes]"), "{}", row.outcome);
}

#[test]
fn history_summaries_count_the_change_set_without_it() {
    let store = Store::open_in_memory().expect("open");
    let id = sync(&store, "web", SyncResult::Running);
    let mut cs = ChangeSet::default();
    for i in 0..7 {
        cs.push(
            ObjectRef::file(format!("f{i}")),
            Action::Created,
            Some("x".repeat(100)),
        );
    }
    cs.push(ObjectRef::file("g"), Action::Deleted, None);
    cs.push(ObjectRef::file("h"), Action::Failed, Some("denied".into()));
    store
        .finish_sync(
            id,
            &SyncOutcome {
                result: SyncResult::Failed,
                change_set: cs.clone(),
                error: Some("1 failed".into()),
                post_sync_output: Some("out".into()),
            },
        )
        .expect("finish");
    let empty = sync(&store, "web", SyncResult::Succeeded);
    let list = store.history_summaries("web", 10).expect("summaries");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, empty);
    assert_eq!(list[0].changes.total(), 0);
    let s = &list[1];
    assert_eq!(
        (
            s.changes.created,
            s.changes.deleted,
            s.changes.failed,
            s.changes.total()
        ),
        (7, 1, 1, 9)
    );
    assert_eq!(s.error.as_deref(), Some("1 failed"));
    let json = serde_json::to_value(s).expect("json");
    assert!(json.get("changeSet").is_none() && json.get("postSyncOutput").is_none());
    assert_eq!(json["changes"]["created"], 7);
    // The full record is still there for one sync.
    assert_eq!(store.sync(id).expect("read").expect("some").change_set, cs);
}
