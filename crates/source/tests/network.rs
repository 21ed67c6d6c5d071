//! git:// through `git daemon` and smart HTTP through `git http-backend` with Basic auth.

mod support;

use driftless_source::{Credentials, SourceCache, SourceError};
use support::{GitDaemon, HttpGit, Upstream, free_port, has_object};

const USER: &str = "deployer";
const PASSWORD: &str = "s3cret-t0ken";

fn cache() -> (tempfile::TempDir, SourceCache) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = SourceCache::new(dir.path().join("cache"));
    (dir, cache)
}

fn upstream() -> Upstream {
    let up = Upstream::new("deploy");
    up.commit_file("apps/web/deploy.yaml", b"replicas: 1\n", "first");
    up.git(&["tag", "-a", "v1", "-m", "release one"]);
    up.commit_file("apps/web/deploy.yaml", b"replicas: 2\n", "second");
    up
}

fn creds(password: &str) -> Credentials {
    Credentials {
        username: Some(USER.into()),
        password: Some(password.into()),
        ..Credentials::default()
    }
}

#[test]
fn git_daemon_clone_update_and_shared_cache() {
    let up = upstream();
    let daemon = GitDaemon::start(up.base.path());
    let (_dir, cache) = cache();
    let repo = cache
        .repo(&daemon.url("deploy"), Credentials::default())
        .unwrap();
    assert_eq!(
        repo.remote_ref("main").unwrap().as_deref(),
        Some(up.head().as_str())
    );
    assert!(!has_object(repo.cache_path(), &up.head()) || repo.fetch_count() == 0);
    assert_eq!(repo.update("main").unwrap(), up.head());
    assert_eq!(
        repo.resolve("v1").unwrap(),
        up.git(&["rev-parse", "v1^{commit}"])
    );
    assert_eq!(repo.fetch_count(), 1);

    let new = up.commit_file("apps/web/deploy.yaml", b"replicas: 3\n", "third");
    assert_eq!(
        repo.remote_ref("main").unwrap().as_deref(),
        Some(new.as_str())
    );
    assert!(
        !has_object(repo.cache_path(), &new),
        "remote_ref must not fetch"
    );

    // Another app spells the URL with a trailing slash: same cache, and its update does
    // the one fetch both need.
    let other_url = format!("{}/", daemon.url("deploy"));
    let other = cache.repo(&other_url, Credentials::default()).unwrap();
    assert_eq!(other.cache_path(), repo.cache_path());
    assert_eq!(other.update("main").unwrap(), new);
    assert_eq!(repo.update("main").unwrap(), new);
    assert_eq!(repo.fetch_count(), 2);
    let tree = repo.tree(&new).unwrap();
    use driftless_model::Tree;
    assert_eq!(tree.read("apps/web/deploy.yaml").unwrap(), b"replicas: 3\n");

    let err = repo.update("nope").unwrap_err();
    assert!(err.to_string().contains("unknown ref \"nope\""), "{err}");
    assert!(err.to_string().contains(&daemon.url("deploy")), "{err}");

    let missing = cache
        .repo(&daemon.url("missing"), Credentials::default())
        .unwrap();
    let err = missing.update("main").unwrap_err();
    assert!(matches!(err, SourceError::RepoNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("repository not found: "),
        "{err}"
    );
}

#[test]
fn concurrent_updates_over_git_daemon_fetch_once() {
    let up = upstream();
    let daemon = GitDaemon::start(up.base.path());
    let (_dir, cache) = cache();
    let url = daemon.url("deploy");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                cache
                    .repo(&url, Credentials::default())
                    .unwrap()
                    .update("main")
                    .unwrap()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), up.head());
    }
    assert_eq!(
        cache
            .repo(&url, Credentials::default())
            .unwrap()
            .fetch_count(),
        1
    );
}

#[test]
fn unreachable_hosts_are_transient_and_say_so() {
    let (_dir, cache) = cache();
    let port = free_port();
    for url in [
        format!("git://127.0.0.1:{port}/deploy"),
        format!("http://127.0.0.1:{port}/deploy"),
    ] {
        let repo = cache.repo(&url, creds(PASSWORD)).unwrap();
        let err = repo.update("main").unwrap_err();
        assert!(
            matches!(err, SourceError::Unreachable { .. }),
            "{url}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("cannot reach {url}")), "{msg}");
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
        assert!(err.is_transient());
        assert_eq!(err.reason(), "unreachable");
        assert!(!msg.contains(PASSWORD), "{msg}");
    }
}

#[test]
fn a_git_server_that_stops_answering_times_out() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let dir = tempfile::tempdir().unwrap();
    let cache = SourceCache::new(dir.path().to_owned())
        .with_network_timeout(std::time::Duration::from_secs(1));
    let url = format!("git://127.0.0.1:{port}/deploy");
    let repo = cache.repo(&url, Credentials::default()).unwrap();
    let started = std::time::Instant::now();
    let err = repo.update("main").unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!("cannot reach {url}")),
        "{err}"
    );
    assert!(err.is_transient());
    drop(held.join());
}

#[test]
fn http_with_the_right_password_clones_and_fetches() {
    let up = upstream();
    let server = HttpGit::start(up.base.path(), USER, PASSWORD);
    let (_dir, cache) = cache();
    let repo = cache.repo(&server.url("deploy"), creds(PASSWORD)).unwrap();
    assert_eq!(repo.update("main").unwrap(), up.head());
    assert_eq!(
        repo.resolve("v1").unwrap(),
        up.git(&["rev-parse", "v1^{commit}"])
    );
    let packs = server
        .pack_requests
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(packs, 1, "one clone");

    let new = up.commit_file("x.yaml", b"x: 1\n", "more");
    assert_eq!(
        repo.remote_ref("main").unwrap().as_deref(),
        Some(new.as_str())
    );
    assert_eq!(
        server
            .pack_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "ls-remote transfers no pack"
    );
    assert!(!has_object(repo.cache_path(), &new));
    assert_eq!(repo.update("main").unwrap(), new);
    assert_eq!(
        server
            .pack_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert!(has_object(repo.cache_path(), &new));

    let err = repo.update("no-such-tag").unwrap_err();
    assert!(matches!(err, SourceError::UnknownRef { .. }), "{err:?}");
    assert!(
        err.to_string().contains("unknown ref \"no-such-tag\""),
        "{err}"
    );

    // Credentials in the URL work too and never show up in messages.
    let url = server
        .url("deploy")
        .replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let in_url = cache.repo(&url, Credentials::default()).unwrap();
    assert_eq!(in_url.cache_path(), repo.cache_path());
    assert_eq!(
        in_url.remote_ref("main").unwrap().as_deref(),
        Some(new.as_str())
    );
    assert!(!in_url.url().contains(PASSWORD), "{}", in_url.url());
    let err = in_url.update("no-such-tag").unwrap_err();
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
}

#[test]
fn http_with_a_wrong_or_missing_password_fails_with_an_auth_error() {
    let up = upstream();
    let server = HttpGit::start(up.base.path(), USER, PASSWORD);
    let (_dir, cache) = cache();
    let url = server.url("deploy");

    let wrong = cache.repo(&url, creds("wrong-password")).unwrap();
    for err in [
        wrong.update("main").unwrap_err(),
        wrong.fetch().unwrap_err(),
    ] {
        assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("authentication failed for {url}")),
            "{msg}"
        );
        assert!(msg.contains("rejected the credentials"), "{msg}");
        assert!(!msg.contains("wrong-password"), "{msg}");
        assert!(!err.is_transient());
        assert_eq!(err.reason(), "auth_failed");
    }
    assert!(!wrong.cache_path().join("objects/pack").exists() || wrong.fetch_count() == 0);

    let none = cache.repo(&url, Credentials::default()).unwrap();
    let err = none.update("main").unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("none are configured"), "{err}");
    assert!(
        server
            .unauthorized
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 3
    );
    assert_eq!(
        server
            .pack_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[test]
fn passwords_never_go_in_clear_text_to_other_hosts() {
    let (_dir, cache) = cache();
    let repo = cache
        .repo("http://git.example.com/org/repo", creds(PASSWORD))
        .unwrap();
    let err = repo.update("main").unwrap_err();
    assert!(matches!(err, SourceError::BadUrl { .. }), "{err:?}");
    assert!(
        err.to_string().contains("clear text over http; use https"),
        "{err}"
    );
    assert!(!err.to_string().contains(PASSWORD));
}

#[test]
fn debug_output_hides_passwords() {
    let (_dir, cache) = cache();
    let credentials = creds(PASSWORD);
    assert!(!format!("{credentials:?}").contains(PASSWORD));
    let url = format!("https://{USER}:{PASSWORD}@git.example.com/org/repo.git");
    let repo = cache.repo(&url, credentials).unwrap();
    assert!(!format!("{repo:?}").contains(PASSWORD), "{repo:?}");
    assert!(!repo.url().contains(PASSWORD), "{}", repo.url());
    assert_eq!(repo.key(), "https://git.example.com/org/repo");
}

#[test]
fn http_unknown_repository_is_not_found() {
    let up = upstream();
    let server = HttpGit::start(up.base.path(), USER, PASSWORD);
    let (_dir, cache) = cache();
    let repo = cache.repo(&server.url("missing"), creds(PASSWORD)).unwrap();
    let err = repo.update("main").unwrap_err();
    assert!(matches!(err, SourceError::RepoNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.url("missing")), "{err}");
    assert!(!err.is_transient());
}
