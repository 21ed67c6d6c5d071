//! Local-path and file:// sources against repositories made with the git CLI.

mod support;

use driftless_source::{Credentials, SourceCache, SourceError};
use support::{Upstream, has_object};

fn cache() -> (tempfile::TempDir, SourceCache) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = SourceCache::new(dir.path().join("cache"));
    (dir, cache)
}

/// main with two commits, a `dev` branch, a lightweight tag and an annotated tag.
fn upstream() -> Upstream {
    let up = Upstream::new("deploy");
    up.commit_file("apps/web/deploy.yaml", b"replicas: 1\n", "first");
    up.git(&["tag", "v1-light"]);
    up.git(&["tag", "-a", "v1", "-m", "release one"]);
    up.git(&["checkout", "-q", "-b", "dev"]);
    up.commit_file("apps/web/deploy.yaml", b"replicas: 3\n", "scale on dev");
    up.git(&["checkout", "-q", "main"]);
    up.commit_file(
        "README.md",
        b"hello\n",
        "Add a readme\n\nExplains what this repository deploys.\n",
    );
    up
}

#[test]
fn resolves_branches_tags_and_commit_ids_from_a_local_path_and_a_file_url() {
    let up = upstream();
    let (_dir, cache) = cache();
    for url in [
        up.path().display().to_string(),
        format!("file://{}", up.path().display()),
    ] {
        let repo = cache.repo(&url, Credentials::default()).expect("repo");
        assert_eq!(
            repo.resolve("main").unwrap(),
            up.git(&["rev-parse", "main"]),
            "{url}"
        );
        assert_eq!(repo.resolve("dev").unwrap(), up.git(&["rev-parse", "dev"]));
        assert_eq!(
            repo.resolve("refs/heads/dev").unwrap(),
            up.git(&["rev-parse", "dev"])
        );
        assert_eq!(
            repo.resolve("v1-light").unwrap(),
            up.git(&["rev-parse", "v1-light"])
        );
        // The annotated tag resolves to the commit, not to the tag object.
        let tag_commit = up.git(&["rev-parse", "v1^{commit}"]);
        assert_ne!(
            tag_commit,
            up.git(&["rev-parse", "v1"]),
            "v1 is an annotated tag"
        );
        assert_eq!(repo.resolve("v1").unwrap(), tag_commit);
        assert_eq!(
            repo.remote_ref("v1").unwrap().as_deref(),
            Some(tag_commit.as_str())
        );
        let first = up.git(&["rev-parse", "main~1"]);
        assert_eq!(repo.resolve(&first).unwrap(), first);
        assert_eq!(repo.resolve(&first.to_uppercase()).unwrap(), first);
        assert_eq!(repo.update("main").unwrap(), up.head());
        assert_eq!(repo.update("HEAD").unwrap(), up.head());
    }
}

#[test]
fn abbreviated_commit_ids_resolve_like_git_log_shows_them() {
    let up = upstream();
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .expect("repo");
    repo.fetch().expect("fetch");
    let first = up.git(&["rev-parse", "main~1"]);
    let short = up.git(&["rev-parse", "--short=7", "main~1"]);
    assert_eq!(short.len(), 7);
    assert_eq!(repo.resolve(&short).unwrap(), first);
    assert_eq!(repo.resolve(&first[..12]).unwrap(), first);
    // Hex that matches no object is an unknown ref, with the usual advice.
    let missing = if first.starts_with("0000") {
        "ffff"
    } else {
        "0000"
    };
    let err = repo.resolve(&format!("{missing}fff")).unwrap_err();
    assert!(matches!(err, SourceError::UnknownRef { .. }), "{err}");
}

#[test]
fn unknown_refs_name_the_ref_and_the_repository() {
    let up = upstream();
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .unwrap();
    for bad in [
        "no-such-branch",
        "0123456789012345678901234567890123456789",
        "bad..name",
    ] {
        let err = repo.update(bad).unwrap_err();
        assert!(
            matches!(err, SourceError::UnknownRef { .. }),
            "{bad}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&format!("unknown ref {bad:?}")), "{msg}");
        assert!(msg.contains(&up.path().display().to_string()), "{msg}");
        assert_eq!(err.reason(), "unknown_ref");
        assert!(!err.is_transient());
        let err = repo.resolve(bad).unwrap_err();
        assert!(
            matches!(err, SourceError::UnknownRef { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(repo.remote_ref("no-such-branch").unwrap(), None);
}

#[test]
fn a_ref_to_a_tree_is_not_a_commit() {
    let up = upstream();
    up.git(&["tag", "tree-tag", "HEAD^{tree}"]);
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .unwrap();
    let err = repo.update("tree-tag").unwrap_err();
    assert!(matches!(err, SourceError::NotACommit { .. }), "{err:?}");
    assert!(err.to_string().contains("ref \"tree-tag\""), "{err}");
    assert!(
        err.to_string().contains("points to a tree, not a commit"),
        "{err}"
    );
}

#[test]
fn handles_and_trees_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<SourceCache>();
    assert_send_sync::<driftless_source::RepoHandle>();
    assert_send_sync::<driftless_source::GitTree>();
    assert_send_sync::<driftless_source::DirTree>();
    assert_send_sync::<SourceError>();
}

#[test]
fn a_missing_local_repository_is_reported_as_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, cache) = cache();
    let missing = dir.path().join("nothing-here");
    let repo = cache
        .repo(&missing.display().to_string(), Credentials::default())
        .unwrap();
    let err = repo.update("main").unwrap_err();
    assert!(matches!(err, SourceError::RepoNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("nothing-here"), "{err}");
    assert!(err.to_string().contains("no such directory"), "{err}");
    let not_git = dir.path().join("plain");
    std::fs::create_dir(&not_git).unwrap();
    let repo = cache
        .repo(&not_git.display().to_string(), Credentials::default())
        .unwrap();
    let err = repo.fetch().unwrap_err();
    assert!(err.to_string().contains("not a Git repository"), "{err}");
}

#[test]
fn commit_info_matches_git_log() {
    let up = upstream();
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .unwrap();
    let id = repo.update("main").unwrap();
    let info = repo.commit_info(&id).unwrap();
    let log = up.git(&["log", "-1", "--format=%H%n%an%n%ae%n%at%n%s", "main"]);
    let fields: Vec<&str> = log.lines().collect();
    assert_eq!(info.id, fields[0]);
    assert_eq!(info.author_name, fields[1]);
    assert_eq!(info.author_email, fields[2]);
    assert_eq!(info.time.to_string(), fields[3]);
    assert_eq!(info.subject, fields[4]);
    assert_eq!(info.subject, "Add a readme");
    assert_eq!(
        info.message.trim_end(),
        up.git(&["log", "-1", "--format=%B", "main"])
    );
}

#[test]
fn remote_ref_sees_a_new_commit_without_fetching_it() {
    let up = upstream();
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .unwrap();
    let first = repo.update("main").unwrap();
    assert_eq!(repo.fetch_count(), 1);
    let new = up.commit_file("apps/web/deploy.yaml", b"replicas: 5\n", "scale up");
    assert_eq!(
        repo.remote_ref("main").unwrap().as_deref(),
        Some(new.as_str())
    );
    assert!(
        !has_object(repo.cache_path(), &new),
        "remote_ref must not fetch"
    );
    assert_eq!(repo.fetch_count(), 1);
    // The cache still knows the old tip until it fetches.
    assert_eq!(repo.resolve("main").unwrap(), first);
    assert_eq!(repo.update("main").unwrap(), new);
    assert!(has_object(repo.cache_path(), &new));
    assert_eq!(repo.fetch_count(), 2);
    // Nothing moved: no further fetch.
    assert_eq!(repo.update("main").unwrap(), new);
    assert_eq!(repo.fetch_count(), 2);
    assert_eq!(repo.resolve("main").unwrap(), new);
}

#[test]
fn spellings_of_one_url_share_one_cache() {
    let up = upstream();
    let (_dir, cache) = cache();
    let plain = up.path().display().to_string();
    let a = cache.repo(&plain, Credentials::default()).unwrap();
    let b = cache
        .repo(&format!("{plain}/"), Credentials::default())
        .unwrap();
    let c = cache
        .repo(&format!("file://{plain}"), Credentials::default())
        .unwrap();
    assert_eq!(a.cache_path(), b.cache_path());
    assert_eq!(a.cache_path(), c.cache_path());
    a.update("main").unwrap();
    assert_eq!(b.update("main").unwrap(), up.head());
    assert_eq!(
        c.fetch_count(),
        1,
        "the second app reused the first app's fetch"
    );
    let other = Upstream::new("other");
    other.commit_file("x", b"x", "x");
    let d = cache
        .repo(&other.path().display().to_string(), Credentials::default())
        .unwrap();
    assert_ne!(a.cache_path(), d.cache_path());
}

#[test]
fn eight_concurrent_updates_share_one_fetch() {
    let up = upstream();
    let (_dir, cache) = cache();
    let url = up.path().display().to_string();
    let expected = up.head();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let cache = cache.clone();
            // Half of the apps spell the URL differently.
            let url = if i % 2 == 0 {
                url.clone()
            } else {
                format!("file://{url}/")
            };
            std::thread::spawn(move || {
                let repo = cache.repo(&url, Credentials::default()).unwrap();
                (repo.update("main").unwrap(), repo.fetch_count())
            })
        })
        .collect();
    for handle in handles {
        let (revision, _) = handle.join().expect("thread");
        assert_eq!(revision, expected);
    }
    let repo = cache.repo(&url, Credentials::default()).unwrap();
    assert_eq!(repo.fetch_count(), 1);

    // A new commit, eight apps again: one more fetch in total.
    let new = up.commit_file("b.txt", b"b", "b");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let repo = repo.clone();
            std::thread::spawn(move || repo.update("main").unwrap())
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("thread"), new);
    }
    assert_eq!(repo.fetch_count(), 2);
}

#[test]
fn ancestry_validates_rollbacks() {
    let up = upstream();
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .unwrap();
    repo.fetch().unwrap();
    let old = up.git(&["rev-parse", "main~1"]);
    let dev = up.git(&["rev-parse", "dev"]);
    assert!(repo.is_ancestor(&old, "main").unwrap());
    assert!(repo.is_ancestor(&up.head(), "main").unwrap());
    assert!(!repo.is_ancestor(&dev, "main").unwrap());
}

#[test]
fn a_cache_survives_a_restart() {
    let up = upstream();
    let dir = tempfile::tempdir().unwrap();
    let url = up.path().display().to_string();
    {
        let cache = SourceCache::new(dir.path().to_owned());
        cache
            .repo(&url, Credentials::default())
            .unwrap()
            .update("main")
            .unwrap();
    }
    let cache = SourceCache::new(dir.path().to_owned());
    let repo = cache.repo(&url, Credentials::default()).unwrap();
    assert_eq!(repo.update("main").unwrap(), up.head());
    assert_eq!(
        repo.fetch_count(),
        0,
        "the commit was already cached on disk"
    );
}

/// Regression: every fetch that receives objects adds a pack; gix's object store has a
/// fixed number of index slots per process, and packs must not pile up without bound.
#[test]
fn many_fetches_in_one_process_keep_working_and_packs_stay_bounded() {
    let up = Upstream::new("busy");
    up.commit_file("n.txt", b"0", "0");
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .unwrap();
    repo.update("main").unwrap();
    let tree = repo.tree("main").unwrap();
    for i in 1..=45 {
        let id = up.commit_file("n.txt", i.to_string().as_bytes(), &i.to_string());
        assert_eq!(repo.update("main").unwrap(), id, "update {i}");
    }
    assert_eq!(repo.fetch_count(), 46);
    let packs = std::fs::read_dir(repo.cache_path().join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
        .count();
    assert!(packs <= 25, "{packs} packs");
    // Every revision is still readable, also through a tree made before the repacks.
    use driftless_model::Tree;
    assert_eq!(tree.read("n.txt").unwrap(), b"0");
    let first = up.git(&["rev-list", "--max-parents=0", "main"]);
    assert_eq!(repo.tree(&first).unwrap().read("n.txt").unwrap(), b"0");
    assert_eq!(repo.tree("main").unwrap().read("n.txt").unwrap(), b"45");
}
