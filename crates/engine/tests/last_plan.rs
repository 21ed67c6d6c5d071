//! Viewers' diffs come from the plan the app's last full step computed, not from a fresh
//! Git listing and plan per request (issue 14, item 10).

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_plan_is_served_from_memory_and_refreshed_only_by_plan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new(&tmp.path().join("repo"));
    repo.write("site/index.html", "one\n");
    let first = repo.commit("one");
    let live = tmp.path().join("live");
    let engine = start(
        &format!(
            "apps:\n  - name: web\n    source: {{ repo: {}, path: site }}\n    target: {{ files: {{ root: {} }} }}\n",
            repo.dir.display(),
            live.display()
        ),
        tmp.path(),
    );
    assert!(
        engine.last_plan("web").expect("known app").is_none(),
        "nothing planned yet"
    );
    assert!(engine.last_plan("nope").is_err(), "unknown app");

    engine.sync("web", "test").await.expect("sync");
    let after_sync = engine
        .last_plan("web")
        .expect("known app")
        .expect("the sync's step planned");
    assert_eq!(after_sync.revision, first);
    assert!(
        !after_sync.plan.has_changes(),
        "after a sync the last plan is the re-read live state: {:?}",
        after_sync.plan
    );

    // A new commit is not seen by last_plan: it asks neither Git nor the target.
    repo.write("site/index.html", "two\n");
    let second = repo.commit("two");
    let still = engine.last_plan("web").expect("app").expect("plan");
    assert_eq!(still, after_sync, "last_plan must not plan again");

    // An explicit plan refreshes it.
    let fresh = engine.plan("web").await.expect("plan");
    assert_eq!(fresh.revision, second);
    let last = engine.last_plan("web").expect("app").expect("plan");
    assert_eq!(last.revision, second);
    assert!(last.computed_at >= after_sync.computed_at);
    let task = last
        .plan
        .tasks
        .iter()
        .find(|t| t.id.name == "index.html")
        .expect("index.html task");
    assert!(task.desired.is_none(), "desired contents never leave");
    assert!(
        task.diff.as_deref().is_some_and(|d| d.contains("+two")),
        "{task:?}"
    );
    engine.shutdown().await;
}
