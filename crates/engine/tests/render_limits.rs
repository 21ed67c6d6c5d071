//! `render.limits` of an app reach its renders: a file past the app's cap fails the
//! revision, naming the cap, and nothing of it is applied.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_render_limits_refuse_a_revision_past_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new(&tmp.path().join("repo"));
    repo.write("site/index.html", "small\n");
    repo.commit("small");
    let live = tmp.path().join("live");
    let engine = start(
        &format!(
            "apps:\n  - name: web\n    source: {{ repo: {}, path: site }}\n    target: {{ files: {{ root: {} }} }}\n    render: {{ limits: {{ maxFileBytes: 1000 }} }}\n",
            repo.dir.display(),
            live.display()
        ),
        tmp.path(),
    );
    engine
        .sync("web", "test")
        .await
        .expect("a small file syncs");
    assert!(live.join("index.html").exists());

    repo.write("site/big.html", "x".repeat(2000));
    repo.commit("big");
    let err = engine
        .sync("web", "test")
        .await
        .expect_err("a file over the app's cap fails the render")
        .to_string();
    assert!(err.contains("big.html"), "{err}");
    assert!(err.contains("1000"), "names the cap: {err}");
    assert!(
        !live.join("big.html").exists(),
        "nothing of the revision applied"
    );
    eventually(
        "the status to show the error",
        Duration::from_secs(10),
        || {
            engine
                .app("web")
                .ok()
                .and_then(|s| s.error)
                .filter(|e| e.contains("big.html"))
        },
    )
    .await;
}
