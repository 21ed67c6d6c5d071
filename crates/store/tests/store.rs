//! The store against real SQLite files in temporary directories.

use std::collections::BTreeSet;

use driftless_model::{Action, ChangeSet, Inventory, ObjectRef};
use driftless_store::{
    AppState, CommitMeta, NewAudit, NewEvent, NewSync, Severity, Store, StoreError, SyncOutcome,
    SyncResult, Trigger,
};

fn new_sync(app: &str, revision: &str) -> NewSync {
    NewSync {
        app: app.into(),
        revision: revision.into(),
        commit: Some(CommitMeta {
            author: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            time: 1_700_000_000,
            subject: "Bump replicas".into(),
            message: "Bump replicas\n\nBecause load.\n".into(),
        }),
        trigger: Trigger::Webhook,
        requested_by: None,
    }
}

fn changes() -> ChangeSet {
    let mut cs = ChangeSet::default();
    cs.push(ObjectRef::file("etc/a.conf"), Action::Created, None);
    cs.push(
        ObjectRef::file("etc/b.conf"),
        Action::Failed,
        Some("permission denied".into()),
    );
    cs
}

fn inventory(names: &[&str]) -> Inventory {
    Inventory {
        entries: names.iter().map(|n| ObjectRef::file(*n)).collect(),
    }
}

#[test]
fn a_sync_round_trips_from_begin_to_finish() {
    let store = Store::open_in_memory().expect("open");
    let before = now_ms();
    let id = store.begin_sync(&new_sync("web", "abc123")).expect("begin");
    let running = store.sync(id).expect("read").expect("exists");
    assert_eq!(running.result, SyncResult::Running);
    assert_eq!(running.app, "web");
    assert_eq!(running.revision, "abc123");
    assert_eq!(running.trigger, Trigger::Webhook);
    assert_eq!(running.commit, new_sync("web", "abc123").commit);
    assert!(running.started_at >= before && running.started_at <= now_ms());
    assert_eq!(running.finished_at, None);
    assert_eq!(running.change_set, ChangeSet::default());

    let outcome = SyncOutcome {
        result: SyncResult::Failed,
        change_set: changes(),
        error: Some("1 of 2 objects failed".into()),
        post_sync_output: Some("reloaded\n".into()),
    };
    store.finish_sync(id, &outcome).expect("finish");
    let done = store.sync(id).expect("read").expect("exists");
    assert_eq!(done.result, SyncResult::Failed);
    assert_eq!(done.change_set, changes());
    assert_eq!(done.error.as_deref(), Some("1 of 2 objects failed"));
    assert_eq!(done.post_sync_output.as_deref(), Some("reloaded\n"));
    let finished = done.finished_at.expect("finished");
    assert!(finished >= done.started_at);

    assert!(store.sync(id + 100).expect("read").is_none());
    let err = store
        .finish_sync(id + 100, &outcome)
        .expect_err("unknown id");
    assert_eq!(
        err.to_string(),
        format!("store: no sync with id {}", id + 100)
    );
}

#[test]
fn a_sync_without_commit_or_requester_round_trips() {
    let store = Store::open_in_memory().expect("open");
    let mut s = new_sync("files", "");
    s.commit = None;
    s.trigger = Trigger::SelfHeal;
    s.requested_by = Some("ci".into());
    let id = store.begin_sync(&s).expect("begin");
    let rec = store.sync(id).expect("read").expect("exists");
    assert_eq!(rec.commit, None);
    assert_eq!(rec.trigger, Trigger::SelfHeal);
    assert_eq!(rec.requested_by.as_deref(), Some("ci"));
}

#[test]
fn history_is_newest_first_per_app_and_limited() {
    let store = Store::open_in_memory().expect("open");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .begin_sync(&new_sync("web", &format!("r{i}")))
                .expect("begin"),
        );
        store
            .begin_sync(&new_sync("api", &format!("x{i}")))
            .expect("begin");
    }
    let hist = store.history("web", 3).expect("history");
    let revs: Vec<_> = hist.iter().map(|r| r.revision.as_str()).collect();
    assert_eq!(revs, ["r4", "r3", "r2"]);
    assert!(hist.iter().all(|r| r.app == "web"));
    assert_eq!(store.history("web", 100).expect("history").len(), 5);
    assert!(store.history("nope", 10).expect("history").is_empty());

    // last_sync: newest overall vs newest that succeeded.
    let ok = |result| SyncOutcome {
        result,
        change_set: ChangeSet::default(),
        error: None,
        post_sync_output: None,
    };
    store
        .finish_sync(ids[1], &ok(SyncResult::Succeeded))
        .expect("finish");
    store
        .finish_sync(ids[3], &ok(SyncResult::Failed))
        .expect("finish");
    let last = store.last_sync("web", false).expect("last").expect("some");
    assert_eq!(last.revision, "r4");
    let good = store.last_sync("web", true).expect("last").expect("some");
    assert_eq!(good.revision, "r1");
    assert!(store.last_sync("nope", false).expect("last").is_none());
}

#[test]
fn unfinished_syncs_are_marked_interrupted_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, finished) = {
        let store = Store::open(dir.path()).expect("open");
        let running = store.begin_sync(&new_sync("web", "r1")).expect("begin");
        let finished = store.begin_sync(&new_sync("web", "r2")).expect("begin");
        store
            .finish_sync(
                finished,
                &SyncOutcome {
                    result: SyncResult::Succeeded,
                    change_set: changes(),
                    error: None,
                    post_sync_output: None,
                },
            )
            .expect("finish");
        (running, finished)
    };
    // "Restart": a new Store on the same directory.
    let store = Store::open(dir.path()).expect("reopen");
    let interrupted = store.interrupt_unfinished().expect("interrupt");
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].id, running);
    assert_eq!(interrupted[0].result, SyncResult::Interrupted);
    let stored = store.sync(running).expect("read").expect("exists");
    assert_eq!(stored, interrupted[0]);
    assert_eq!(
        stored.error.as_deref(),
        Some(driftless_store::INTERRUPTED_ERROR)
    );
    assert!(stored.finished_at.is_some());
    let untouched = store.sync(finished).expect("read").expect("exists");
    assert_eq!(untouched.result, SyncResult::Succeeded);
    // Once is enough.
    assert!(store.interrupt_unfinished().expect("again").is_empty());
}

#[test]
fn events_page_newest_first_or_after_an_id_oldest_first() {
    let store = Store::open_in_memory().expect("open");
    let mut recorded = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { "web" } else { "api" };
        let e = NewEvent {
            app: Some(app.into()),
            kind: "drift-detected".into(),
            severity: if i == 5 {
                Severity::Error
            } else {
                Severity::Warning
            },
            message: format!("event {i}"),
            object: Some(ObjectRef::file(format!("f{i}"))),
            revision: Some("abc".into()),
        };
        let rec = store.record_event(&e).expect("record");
        assert_eq!(rec.message, e.message);
        assert_eq!(rec.object, e.object);
        recorded.push(rec);
    }
    store
        .record_event(&NewEvent {
            app: None,
            kind: "started".into(),
            severity: Severity::Info,
            message: "driftless started".into(),
            object: None,
            revision: None,
        })
        .expect("record");

    let all = store.events(None, None, 100).expect("events");
    let msgs: Vec<_> = all.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "driftless started",
            "event 5",
            "event 4",
            "event 3",
            "event 2",
            "event 1",
            "event 0"
        ]
    );
    assert_eq!(
        all[1], recorded[5],
        "what record_event returned is what is stored"
    );
    assert_eq!(all[0].object, None);

    let web = store.events(Some("web"), None, 2).expect("events");
    let msgs: Vec<_> = web.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["event 4", "event 2"]);

    let after = store.events(None, Some(recorded[2].id), 3).expect("events");
    let msgs: Vec<_> = after.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["event 3", "event 4", "event 5"]);

    let after_web = store
        .events(Some("web"), Some(recorded[0].id), 10)
        .expect("events");
    let msgs: Vec<_> = after_web.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["event 2", "event 4"]);
}

#[test]
fn audit_round_trips_newest_first() {
    let store = Store::open_in_memory().expect("open");
    for (i, app) in [Some("web"), None, Some("web"), Some("api")]
        .iter()
        .enumerate()
    {
        store
            .record_audit(&NewAudit {
                actor: if i == 1 { "local".into() } else { "ci".into() },
                action: format!("action{i}"),
                app: app.map(str::to_owned),
                detail: Some(format!("detail {i}")),
                outcome: if i == 2 {
                    "permission denied".into()
                } else {
                    "ok".into()
                },
            })
            .expect("audit");
    }
    let all = store.audit(None, 10).expect("audit");
    let actions: Vec<_> = all.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["action3", "action2", "action1", "action0"]);
    assert_eq!(all[1].outcome, "permission denied");
    assert_eq!(all[2].actor, "local");
    assert_eq!(all[2].app, None);
    let web = store.audit(Some("web"), 1).expect("audit");
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].action, "action2");
    assert_eq!(web[0].detail.as_deref(), Some("detail 2"));
}

#[test]
fn inventories_replace_whole_and_are_per_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.inventory("web").expect("read"), Inventory::default());
        store
            .save_inventory("web", &inventory(&["a", "b", "c"]))
            .expect("save");
        store
            .save_inventory("api", &inventory(&["x"]))
            .expect("save");
        store
            .save_inventory("web", &inventory(&["b", "d"]))
            .expect("save");
        let mut kube = inventory(&[]);
        kube.entries.insert(ObjectRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "web".into(),
            name: "api".into(),
        });
        kube.entries.insert(ObjectRef {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: "web".into(),
        });
        store.save_inventory("kube", &kube).expect("save");
        assert_eq!(store.inventory("kube").expect("read"), kube);
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.inventory("web").expect("read"),
        inventory(&["b", "d"])
    );
    assert_eq!(store.inventory("api").expect("read"), inventory(&["x"]));
    store
        .save_inventory("api", &Inventory::default())
        .expect("save empty");
    assert_eq!(store.inventory("api").expect("read"), Inventory::default());
}

#[test]
fn app_state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pinned = AppState {
        suspended: true,
        pinned_revision: Some("0123abcd".into()),
        last_applied_revision: Some("0123abcd".into()),
    };
    {
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.app_state("web").expect("read"), AppState::default());
        store
            .save_app_state("web", &AppState::default())
            .expect("save");
        store.save_app_state("web", &pinned).expect("save");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.app_state("web").expect("read"), pinned);
    assert_eq!(store.app_state("api").expect("read"), AppState::default());
}

#[test]
fn records_serialise_for_the_api_in_camel_case() {
    let store = Store::open_in_memory().expect("open");
    let id = store.begin_sync(&new_sync("web", "abc")).expect("begin");
    let rec = store.sync(id).expect("read").expect("exists");
    let json = serde_json::to_value(&rec).expect("json");
    assert_eq!(json["result"], "running");
    assert_eq!(json["trigger"], "webhook");
    assert_eq!(json["startedAt"], rec.started_at);
    assert_eq!(json["commit"]["subject"], "Bump replicas");
    assert!(json.get("changeSet").is_some() && json.get("postSyncOutput").is_some());
}

#[test]
fn open_creates_the_state_directory_and_uses_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("deep/state");
    let store = Store::open(&state).expect("open");
    assert_eq!(store.path(), Some(state.join("driftless.db").as_path()));
    store
        .save_inventory("web", &inventory(&["a"]))
        .expect("save");
    // Read the journal mode with an independent SQLite connection.
    let conn = rusqlite::Connection::open(state.join("driftless.db")).expect("open raw");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(version, 1);
}

#[test]
fn open_refuses_a_state_path_that_is_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("state");
    std::fs::write(&file, b"not a directory").expect("write");
    let err = Store::open(&file).expect_err("a file is not a directory");
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot create state directory {}: ",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn open_refuses_a_database_from_a_newer_driftless() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("open"));
    let conn = rusqlite::Connection::open(dir.path().join("driftless.db")).expect("raw");
    conn.pragma_update(None, "user_version", 99).expect("bump");
    drop(conn);
    let err = Store::open(dir.path()).expect_err("too new");
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "database {} has schema version 99, newer than the 1 this driftless knows; \
             upgrade driftless or use another --state directory",
            dir.path().join("driftless.db").display()
        )
    );
}

#[test]
fn open_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("driftless.db"), vec![b'x'; 4096]).expect("write");
    let err = Store::open(dir.path()).expect_err("garbage");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot open database {}: ",
            dir.path().join("driftless.db").display()
        )),
        "{err}"
    );
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[test]
fn a_damaged_row_is_reported_with_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let id = store.begin_sync(&new_sync("web", "r")).expect("begin");
    let conn = rusqlite::Connection::open(dir.path().join("driftless.db")).expect("raw");
    conn.execute("UPDATE syncs SET trigger = 'telepathy' WHERE id = ?1", [id])
        .expect("damage");
    let err = store.history("web", 10).expect_err("damaged");
    assert_eq!(
        err.to_string(),
        format!("store: syncs row {id}: unknown trigger \"telepathy\"")
    );
}

#[test]
fn a_damaged_event_is_reported_with_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let ev = store
        .record_event(&NewEvent {
            app: None,
            kind: "x".into(),
            severity: Severity::Info,
            message: "m".into(),
            object: Some(ObjectRef::file("f")),
            revision: None,
        })
        .expect("event");
    let conn = rusqlite::Connection::open(dir.path().join("driftless.db")).expect("raw");
    conn.execute(
        "UPDATE events SET object = '{not json' WHERE id = ?1",
        [ev.id],
    )
    .expect("damage");
    let err = store.events(None, None, 10).expect_err("damaged");
    assert!(
        err.to_string()
            .starts_with(&format!("store: events row {}: object: ", ev.id)),
        "{err}"
    );
}

#[test]
fn four_threads_write_concurrently_through_clones_and_separate_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = Store::open(dir.path()).expect("open");
    const N: usize = 50;
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = if t % 2 == 0 {
                shared.clone()
            } else {
                // Its own connection: contends on SQLite's file lock, not our mutex.
                Store::open(dir.path()).expect("open second connection")
            };
            s.spawn(move || {
                let app = format!("app{t}");
                for i in 0..N {
                    let id = store
                        .begin_sync(&new_sync(&app, &format!("r{i}")))
                        .expect("begin");
                    let names: Vec<String> = (0..=i).map(|k| format!("t{t}/f{k}")).collect();
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    store.save_inventory(&app, &inventory(&refs)).expect("save");
                    store
                        .record_event(&NewEvent {
                            app: Some(app.clone()),
                            kind: "sync-finished".into(),
                            severity: Severity::Info,
                            message: format!("{app} {i}"),
                            object: None,
                            revision: None,
                        })
                        .expect("event");
                    store
                        .finish_sync(
                            id,
                            &SyncOutcome {
                                result: SyncResult::Succeeded,
                                change_set: changes(),
                                error: None,
                                post_sync_output: None,
                            },
                        )
                        .expect("finish");
                }
            });
        }
    });
    for t in 0..4 {
        let app = format!("app{t}");
        let hist = shared.history(&app, 1000).expect("history");
        assert_eq!(hist.len(), N);
        let revs: Vec<String> = hist.iter().map(|r| r.revision.clone()).collect();
        let expected: Vec<String> = (0..N).rev().map(|i| format!("r{i}")).collect();
        assert_eq!(revs, expected, "each thread's syncs in its order");
        assert!(hist.iter().all(|r| r.result == SyncResult::Succeeded));
        let inv = shared.inventory(&app).expect("inventory");
        let expected: BTreeSet<_> = (0..N)
            .map(|k| ObjectRef::file(format!("t{t}/f{k}")))
            .collect();
        assert_eq!(inv.entries, expected);
        assert_eq!(
            shared.events(Some(&app), None, 1000).expect("events").len(),
            N
        );
    }
    let ids: Vec<i64> = shared
        .events(None, None, 1000)
        .expect("events")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 4 * N);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "unique, newest first");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

#[test]
fn store_is_clone_send_and_sync() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Store>();
}
