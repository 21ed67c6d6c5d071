//! The whole loop on a real Kubernetes control plane (crates/testenv): a Git repository
//! with a kustomization, the engine applying it with server-side apply, self-heal of a
//! change made by another field manager, prune, and prune after a restart that lost the
//! local state (the inventory lives in the cluster).
//!
//! Run with `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1)`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use driftless_engine::{Config, Engine, EngineOptions};
use driftless_model::{Health, SyncStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Kube Tester",
            "-c",
            "user.email=kube@example.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(dir: &Path, path: &str, text: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}

async fn wait_until<F: Fn() -> Fut, Fut: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    check: F,
) -> Duration {
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(app: &str, repo: &Path, namespace: &str, kubeconfig: &Path) -> Config {
    let text = format!(
        "apps:\n  - name: {app}\n    source: {{ repo: {repo}, ref: main, path: deploy, interval: 1s }}\n    target:\n      kubernetes: {{ namespace: {namespace}, kubeconfig: {kubeconfig} }}\n    sync: {{ auto: true, prune: true, selfHeal: true, force: true }}\n",
        repo = repo.display(),
        kubeconfig = kubeconfig.display(),
    );
    Config::parse(&text, "driftless.yaml", Path::new("/")).expect("config")
}

fn start(config: &Config, state: &Path) -> Engine {
    Engine::start(
        config,
        EngineOptions {
            state_dir: state.to_path_buf(),
            cache_dir: state.join("git"),
            background: true,
        },
    )
    .expect("engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomization_applied_drift_healed_pruned_and_pruned_again_after_losing_local_state() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("engine").await;
    let namespace = ns.name().to_owned();
    let client = cluster.client();
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    write(
        &repo,
        "deploy/kustomization.yaml",
        "resources: [settings.yaml, web.yaml, extra.yaml]\nconfigMapGenerator:\n  - name: generated\n    literals: [mode=slow]\n",
    );
    write(
        &repo,
        "deploy/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n",
    );
    write(
        &repo,
        "deploy/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n",
    );
    write(
        &repo,
        "deploy/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 0\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: registry.invalid/web:1\n",
    );
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "First deploy"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);

    let app = format!("kube-{}", &namespace[namespace.len().saturating_sub(8)..])
        .trim_end_matches('-')
        .to_owned();
    let config = config(&app, &repo, &namespace, cluster.kubeconfig_path());
    let engine = start(&config, &tmp.path().join("state"));
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);

    // Applied: every object exists, labelled as ours; the generated ConfigMap carries
    // kustomize's hash suffix.
    wait_until("the first sync", Duration::from_secs(60), || async {
        engine.app(&app).is_ok_and(|s| {
            s.applied_revision.as_deref() == Some(first.as_str())
                && s.sync_status != SyncStatus::Unknown
        })
    })
    .await;
    let status = engine.app(&app).expect("status");
    assert_eq!(status.sync_status, SyncStatus::Synced, "{status:#?}");
    let settings = configmaps.get("settings").await.expect("settings applied");
    assert_eq!(
        settings
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.driftless.dev/name"))
            .map(String::as_str),
        Some(app.as_str())
    );
    let all = configmaps.list(&Default::default()).await.expect("list");
    assert!(
        all.items.iter().any(|c| c
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("generated-") && n.len() == "generated-".len() + 10)),
        "no hashed generated ConfigMap"
    );
    deployments.get("web").await.expect("deployment applied");
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.app(&app).is_ok_and(|s| s.health != Health::Healthy) {
        assert!(
            Instant::now() < deadline,
            "not healthy: {:#?}",
            engine.app(&app).map(|s| s.objects)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Drift by another field manager is reverted (selfHeal + force).
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "fast"}});
    configmaps
        .patch(
            "settings",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&patch),
        )
        .await
        .expect("intruder patch");
    let healed = wait_until(
        "the drift to be healed",
        Duration::from_secs(10),
        || async {
            configmaps.get("settings").await.is_ok_and(|c| {
                c.data
                    .as_ref()
                    .and_then(|d| d.get("mode"))
                    .map(String::as_str)
                    == Some("slow")
            })
        },
    )
    .await;
    eprintln!("drift healed in {healed:?}");
    // The event is recorded once the sync that healed it finishes.
    wait_until("a drift-healed event", Duration::from_secs(10), || async {
        engine
            .store()
            .events(Some(&app), None, 50)
            .is_ok_and(|events| events.iter().any(|e| e.kind == "drift-healed"))
    })
    .await;

    // An unlabelled look-alike is never pruned.
    let lookalike: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "lookalike"}, "data": {"x": "y"}}))
            .expect("cm");
    configmaps
        .create(&PostParams::default(), &lookalike)
        .await
        .expect("create look-alike");

    // Removed from Git → pruned.
    std::fs::remove_file(repo.join("deploy/extra.yaml")).expect("rm");
    write(
        &repo,
        "deploy/kustomization.yaml",
        "resources: [settings.yaml, web.yaml]\nconfigMapGenerator:\n  - name: generated\n    literals: [mode=slow]\n",
    );
    git(&repo, &["commit", "-qam", "Drop extra"]);
    engine.refresh(&app).expect("refresh");
    wait_until("extra to be pruned", Duration::from_secs(30), || async {
        configmaps.get_opt("extra").await.is_ok_and(|c| c.is_none())
    })
    .await;
    engine.shutdown().await;

    // A new process with no local state still prunes: the inventory is in the cluster.
    std::fs::remove_file(repo.join("deploy/web.yaml")).expect("rm");
    write(
        &repo,
        "deploy/kustomization.yaml",
        "resources: [settings.yaml]\nconfigMapGenerator:\n  - name: generated\n    literals: [mode=slow]\n",
    );
    git(&repo, &["commit", "-qam", "Drop web"]);
    let engine = start(&config, &tmp.path().join("fresh-state"));
    wait_until(
        "web to be pruned by a fresh process",
        Duration::from_secs(60),
        || async { deployments.get_opt("web").await.is_ok_and(|d| d.is_none()) },
    )
    .await;
    assert!(
        configmaps
            .get_opt("lookalike")
            .await
            .expect("get")
            .is_some(),
        "the look-alike was pruned"
    );
    assert!(
        configmaps.get_opt("settings").await.expect("get").is_some(),
        "settings must stay"
    );
    engine.shutdown().await;
    ns.cleanup().await.expect("cleanup");
}

fn tool(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("DRIFTLESS_TESTENV_BIN").expect(
        "DRIFTLESS_TESTENV_BIN must name testenv's bin dir (run scripts/test, or testenv/build)",
    );
    std::path::PathBuf::from(dir).join(name)
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sops_secret_decrypted_with_an_age_key_kept_in_a_cluster_secret() {
    use k8s_openapi::api::core::v1::Secret;
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("sops").await;
    let namespace = ns.name().to_owned();
    let client = cluster.client();
    let tmp = tempfile::tempdir().expect("tempdir");

    // The key lives only in the cluster, as Flux keeps it.
    let key_file = tmp.path().join("age.key");
    run(Command::new(tool("age-keygen")).arg("-o").arg(&key_file));
    let recipient = run(Command::new(tool("age-keygen")).arg("-y").arg(&key_file))
        .trim()
        .to_owned();
    let key_text = std::fs::read_to_string(&key_file).expect("key");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let keys: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sops-age"},
        "stringData": {"age.agekey": key_text},
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &keys)
        .await
        .expect("create key Secret");
    std::fs::remove_file(&key_file).expect("the key must not stay on disk");

    let plain = tmp.path().join("db.yaml");
    std::fs::write(
        &plain,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: pa55-from-git-only\n",
    )
    .expect("write");
    let encrypted = run(Command::new(tool("sops"))
        .args([
            "encrypt",
            "--age",
            &recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
        ])
        .arg(&plain)
        .env("SOPS_DISABLE_VERSION_CHECK", "1"));
    assert!(!encrypted.contains("pa55-from-git-only"));
    let repo = tmp.path().join("repo");
    write(&repo, "deploy/db.yaml", &encrypted);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "Encrypted DB password"]);

    let text = format!(
        "apps:\n  - name: sops-app\n    source: {{ repo: {repo}, ref: main, path: deploy, interval: 1s }}\n    target:\n      kubernetes: {{ namespace: {namespace}, kubeconfig: {kubeconfig} }}\n    decryption:\n      sops:\n        secretRef: {{ name: sops-age }}\n",
        repo = repo.display(),
        kubeconfig = cluster.kubeconfig_path().display(),
    );
    let config = Config::parse(&text, "driftless.yaml", Path::new("/")).expect("config");
    let engine = start(&config, &tmp.path().join("state"));
    wait_until(
        "the decrypted Secret to be applied",
        Duration::from_secs(60),
        || async { secrets.get_opt("db").await.ok().flatten().is_some() },
    )
    .await;
    let db = secrets.get("db").await.expect("db");
    let password = db
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .expect("password key");
    assert_eq!(password.0, b"pa55-from-git-only");
    let app = engine.app("sops-app").expect("status");
    assert!(app.error.is_none(), "{:?}", app.error);
    engine.shutdown().await;
    ns.cleanup().await.expect("cleanup");
}

/// The apiserver's own count of requests for one resource (all clients), by verb, from its
/// `/metrics` (`apiserver_request_total`); `dry_run` requests are counted apart.
async fn requests_for(client: &kube::Client, resource: &str) -> (u64, u64) {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let text = client
        .request_text(request)
        .await
        .expect("apiserver /metrics");
    let (mut dry, mut other) = (0, 0);
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        if !line.contains(&format!("resource=\"{resource}\"")) || line.contains("verb=\"WATCH\"") {
            continue;
        }
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if line.contains("dry_run=\"All\"") {
            dry += value as u64;
        } else {
            other += value as u64;
        }
    }
    (dry, other)
}

/// With the watch up and the ref unmoved, scheduled checks ask Git only: no dry run, no
/// read of the objects. A live change still heals at once, through the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_with_nothing_changed_leave_the_cluster_alone_and_the_watch_still_heals() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("polls").await;
    let namespace = ns.name().to_owned();
    let client = cluster.client();
    // A kind of its own, so that the apiserver's counters see only this test's requests.
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "pollprobes.engine.driftless.test"},
        "spec": {
            "group": "engine.driftless.test", "scope": "Namespaced",
            "names": {"plural": "pollprobes", "singular": "pollprobe", "kind": "PollProbe"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]
        }
    });
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.patch(
        "pollprobes.engine.driftless.test",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("CRD");
    let probe_type = kube::api::ApiResource {
        group: "engine.driftless.test".into(),
        version: "v1".into(),
        api_version: "engine.driftless.test/v1".into(),
        kind: "PollProbe".into(),
        plural: "pollprobes".into(),
    };
    let probes: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace, &probe_type);
    wait_until("the CRD to be served", Duration::from_secs(30), || async {
        probes.list(&Default::default()).await.is_ok()
    })
    .await;

    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    write(
        &repo,
        "deploy/probe.yaml",
        "apiVersion: engine.driftless.test/v1\nkind: PollProbe\nmetadata:\n  name: probe\nspec:\n  size: 3\n",
    );
    write(
        &repo,
        "deploy/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n",
    );
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "A probe"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let app = format!("polls-{}", &namespace[namespace.len().saturating_sub(6)..])
        .trim_end_matches('-')
        .to_owned();
    let config = config(&app, &repo, &namespace, cluster.kubeconfig_path());
    let engine = start(&config, &tmp.path().join("state"));
    wait_until("the first sync", Duration::from_secs(60), || async {
        engine.app(&app).is_ok_and(|s| {
            s.applied_revision.as_deref() == Some(first.as_str())
                && s.sync_status == SyncStatus::Synced
        })
    })
    .await;

    // Once the sync's follow-up has settled (status updates seen by the watch, the one
    // full plan that follows a new watch), scheduled checks (interval 1 s) make no
    // request for the app's objects: three checks in a row leave the counts unchanged.
    let checked = || engine.app(&app).ok().and_then(|s| s.last_checked_at);
    let mut last = checked();
    let mut counts = requests_for(&client, "pollprobes").await;
    let mut quiet = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while quiet < 3 {
        assert!(
            Instant::now() < deadline,
            "scheduled checks with nothing changed kept making requests for the app's \
             objects (dry runs, others): {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = checked();
        if now != last {
            last = now;
            let after = requests_for(&client, "pollprobes").await;
            if after == counts {
                quiet += 1;
            } else {
                quiet = 0;
                counts = after;
            }
        }
    }

    // Another field manager changes the probe: healed through the watch.
    probes
        .patch(
            "probe",
            &PatchParams {
                field_manager: Some("intruder".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"size": 9}})),
        )
        .await
        .expect("intruder patch");
    wait_until(
        "the probe to be healed",
        Duration::from_secs(10),
        || async {
            probes
                .get("probe")
                .await
                .is_ok_and(|p| p.data["spec"]["size"] == 3)
        },
    )
    .await;
    assert!(
        requests_for(&client, "pollprobes").await.0 > counts.0,
        "healing planned with a dry run"
    );
    // The heal planned the probe alone; the app's status still lists both objects, in sync.
    wait_until(
        "the status after the heal",
        Duration::from_secs(10),
        || async {
            engine.app(&app).is_ok_and(|s| {
                s.sync_status == SyncStatus::Synced
                    && s.objects.len() == 2
                    && s.objects.iter().all(|o| o.status == SyncStatus::Synced)
            })
        },
    )
    .await;
    engine.shutdown().await;
    ns.cleanup().await.expect("cleanup");
}
