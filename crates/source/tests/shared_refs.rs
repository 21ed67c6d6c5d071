//! `update_within`: one ref advertisement per repository shared by all its handles.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use driftless_source::{Credentials, SourceCache, SourceError};
use support::{GitDaemon, Upstream};

const LONG: Duration = Duration::from_secs(3600);

fn cache() -> (tempfile::TempDir, SourceCache) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = SourceCache::new(dir.path().join("cache"));
    (dir, cache)
}

fn upstream() -> Upstream {
    let up = Upstream::new("mono");
    up.commit_file("apps/a/deploy.yaml", b"replicas: 1\n", "first");
    up.git(&["tag", "-a", "v1", "-m", "release one"]);
    up
}

/// Lines the daemon's access hook wrote: one per service request (`upload-pack …`).
fn upload_pack_requests(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("upload-pack"))
        .count()
}

#[test]
fn fifty_concurrent_update_within_calls_cause_one_ref_advertisement() {
    let up = upstream();
    let hooks = tempfile::tempdir().expect("tempdir");
    let log = hooks.path().join("requests.log");
    let hook = hooks.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1 $2\" >> '{}'\n", log.display()),
    )
    .expect("write hook");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .expect("chmod");
    let daemon = GitDaemon::start_with(
        up.base.path(),
        &[&format!("--access-hook={}", hook.display())],
    );
    let (_dir, cache) = cache();
    let url = daemon.url("mono");
    let first = cache.repo(&url, Credentials::default()).expect("repo");
    first.fetch().expect("initial clone");
    let fetches = first.fetch_count();
    let advertisements = first.advertisement_count();
    let served = upload_pack_requests(&log);
    assert_eq!(served, 1, "the clone is one upload-pack request");

    let start = Arc::new(Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            let url = url.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let repo = cache.repo(&url, Credentials::default()).expect("repo");
                start.wait();
                repo.update_within("main", LONG)
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().expect("thread").unwrap(), up.head());
    }
    assert_eq!(first.advertisement_count(), advertisements + 1);
    assert_eq!(upload_pack_requests(&log), served + 1, "server side count");
    assert_eq!(
        first.fetch_count(),
        fetches,
        "the commit was cached already"
    );

    // Later callers within max_age reuse the answer; the fresh `update` always asks.
    assert_eq!(first.update_within("v1", LONG).unwrap(), up.head());
    assert_eq!(upload_pack_requests(&log), served + 1);
    assert_eq!(first.update("main").unwrap(), up.head());
    assert_eq!(upload_pack_requests(&log), served + 2);
}

#[test]
fn a_new_commit_is_seen_once_max_age_has_passed_and_always_by_update() {
    let up = upstream();
    let (_dir, cache) = cache();
    let url = format!("file://{}", up.path().display());
    let repo = cache.repo(&url, Credentials::default()).expect("repo");
    let other = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .expect("same repository, other spelling");
    let c1 = up.head();
    assert_eq!(repo.update_within("main", LONG).unwrap(), c1);

    let c2 = up.commit_file("apps/a/deploy.yaml", b"replicas: 2\n", "scale");
    // Within max_age: the shared answer (also for another handle on the repository).
    assert_eq!(repo.update_within("main", LONG).unwrap(), c1);
    assert_eq!(other.update_within("main", LONG).unwrap(), c1);
    // `update` always asks the server, and update_within never goes back behind it.
    assert_eq!(repo.update("main").unwrap(), c2);
    assert_eq!(other.update_within("main", LONG).unwrap(), c2);
    assert!(repo.tree(&c2).is_ok(), "the new commit was fetched");

    let c3 = up.commit_file("apps/a/deploy.yaml", b"replicas: 3\n", "scale more");
    assert_eq!(repo.update_within("main", LONG).unwrap(), c2);
    // max_age passed (zero): asked again, and the answer is shared from then on.
    assert_eq!(other.update_within("main", Duration::ZERO).unwrap(), c3);
    assert_eq!(repo.update_within("main", LONG).unwrap(), c3);

    let c4 = up.commit_file("apps/a/deploy.yaml", b"replicas: 4\n", "scale again");
    assert_eq!(repo.update_within("main", LONG).unwrap(), c3);
    assert_eq!(repo.update("main").unwrap(), c4);
}

#[test]
fn refs_outside_branches_and_tags_and_unknown_refs() {
    let up = upstream();
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .expect("repo");
    let head = up.head();
    assert_eq!(repo.update_within("HEAD", LONG).unwrap(), head);
    // Not in the shared listing: asked on its own, every time.
    up.git(&["update-ref", "refs/pull/1/head", &head]);
    let before = repo.advertisement_count();
    assert_eq!(repo.update_within("refs/pull/1/head", LONG).unwrap(), head);
    assert_eq!(repo.update_within("pull/1/head", LONG).unwrap(), head);
    assert_eq!(repo.advertisement_count(), before + 2);

    let err = repo.update_within("nope", LONG).unwrap_err();
    assert!(matches!(err, SourceError::UnknownRef { .. }), "{err:?}");
    assert!(
        err.to_string().contains("unknown ref \"nope\"")
            && err.to_string().contains(&up.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_failure_is_shared_with_the_callers_that_waited_for_it() {
    let missing = tempfile::tempdir().expect("tempdir");
    let (_dir, cache) = cache();
    let url = missing.path().join("gone").display().to_string();
    let repo = cache.repo(&url, Credentials::default()).expect("repo");
    let err = repo.update_within("main", LONG).unwrap_err();
    assert!(matches!(err, SourceError::RepoNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no such directory"), "{err}");
    // Within max_age the same failure is reported without asking again.
    let asked = repo.advertisement_count();
    assert_eq!(asked, 1);
    let again = repo.update_within("main", LONG).unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
    assert_eq!(repo.advertisement_count(), asked);
    // update_within with max_age zero asks again.
    let fresh = repo.update_within("main", Duration::ZERO).unwrap_err();
    assert_eq!(fresh.to_string(), err.to_string());
    assert_eq!(repo.advertisement_count(), asked + 1);
}
