//! Sync semantics real repositories rely on, on a real control plane (crates/testenv):
//! an app that brings its own namespace, `sync.createNamespace`, and self-heal against
//! what people actually do to live objects (`kubectl edit`, `kubectl scale`, a second
//! server-side applier) with the default policy.
//!
//! Run with `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1)`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use driftless_engine::{Config, Engine, EngineOptions};
use driftless_model::SyncStatus;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::Repo;

/// A repository whose `deploy/` holds `files`, committed on `main`; returns the revision.
fn repo_with(dir: &Path, files: &[(&str, &str)]) -> String {
    let repo = Repo::new(dir);
    for (path, text) in files {
        repo.write(&format!("deploy/{path}"), text);
    }
    repo.commit("First deploy")
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

/// One app reading `deploy/` of `repo`, into `namespace`; `sync` is the app's sync map.
fn config(app: &str, repo: &Path, namespace: &str, kubeconfig: &Path, sync: &str) -> Config {
    let text = format!(
        "apps:\n  - name: {app}\n    source: {{ repo: {repo}, ref: main, path: deploy, interval: 1s }}\n    target:\n      kubernetes: {{ namespace: {namespace}, kubeconfig: {kubeconfig} }}\n    sync: {sync}\n",
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

/// A namespace name no other test run uses, left for the app to create.
fn fresh_namespace(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

async fn delete_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
}

async fn wait_synced(engine: &Engine, app: &str, revision: &str) {
    wait_until("the first sync", Duration::from_secs(60), || async {
        engine.app(app).is_ok_and(|s| {
            s.applied_revision.as_deref() == Some(revision) && s.sync_status == SyncStatus::Synced
        })
    })
    .await;
}

/// The messages of the app's events of `kind`, newest first.
fn events(engine: &Engine, app: &str, kind: &str) -> Vec<String> {
    engine
        .store()
        .events(Some(app), None, 200)
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_brings_its_own_namespace_syncs_on_the_first_try() {
    let cluster = driftless_testenv::cluster().await;
    let client = cluster.client();
    let namespace = fresh_namespace("own-ns");
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let revision = repo_with(
        &repo,
        &[
            (
                "namespace.yaml",
                &format!(
                    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n  labels:\n    team: web\n"
                ),
            ),
            (
                "settings.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n",
            ),
        ],
    );
    let config = config(
        "own-ns",
        &repo,
        &namespace,
        cluster.kubeconfig_path(),
        "{ auto: true, prune: true, selfHeal: true }",
    );
    let engine = start(&config, &tmp.path().join("state"));
    wait_synced(&engine, "own-ns", &revision).await;

    let ns: Api<Namespace> = Api::all(client.clone());
    let live = ns.get(&namespace).await.expect("the namespace exists");
    let labels = live.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("web"),
        "Git's labels applied"
    );
    assert_eq!(
        labels.get("app.driftless.dev/name").map(String::as_str),
        Some("own-ns"),
        "the namespace is the app's"
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    configmaps.get("settings").await.expect("settings applied");
    configmaps
        .get("driftless-inventory-own-ns")
        .await
        .expect("the inventory is kept in the app's own namespace");
    let failures = events(&engine, "own-ns", "sync-failed");
    assert!(failures.is_empty(), "no failed sync first: {failures:?}");
    engine.shutdown().await;
    delete_namespace(&client, &namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_namespace_makes_the_target_namespace_that_git_does_not_hold() {
    let cluster = driftless_testenv::cluster().await;
    let client = cluster.client();
    let namespace = fresh_namespace("create-ns");
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let revision = repo_with(
        &repo,
        &[(
            "settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n",
        )],
    );

    // Without createNamespace the sync fails, saying the namespace is missing.
    let without = config(
        "no-create",
        &repo,
        &namespace,
        cluster.kubeconfig_path(),
        "{ auto: true, prune: true }",
    );
    let engine = start(&without, &tmp.path().join("state-without"));
    wait_until(
        "a failure naming the namespace",
        Duration::from_secs(60),
        || async {
            engine.app("no-create").is_ok_and(|s| {
                s.error
                    .as_deref()
                    .is_some_and(|e| e.contains(&namespace) && e.contains("not found"))
            })
        },
    )
    .await;
    // It fails again and again, each time waiting twice as long as before (the poll
    // interval is 1 s), and the status says when the next attempt runs.
    let mut waits = Vec::new();
    let mut last = None;
    while waits.len() < 3 {
        let status = engine.app("no-create").expect("status");
        if let (Some(checked), Some(retry)) = (status.last_checked_at, status.next_retry_at)
            && last != Some(checked)
        {
            last = Some(checked);
            waits.push(retry - checked);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        waits[1] >= waits[0] * 3 / 2 && waits[2] >= waits[1] * 3 / 2 && waits[2] >= 3_500,
        "retries back off exponentially: waits of {waits:?} ms"
    );
    engine.shutdown().await;

    let with = config(
        "create-ns",
        &repo,
        &namespace,
        cluster.kubeconfig_path(),
        "{ auto: true, prune: true, createNamespace: true }",
    );
    let engine = start(&with, &tmp.path().join("state"));
    wait_synced(&engine, "create-ns", &revision).await;
    let ns: Api<Namespace> = Api::all(client.clone());
    let live = ns.get(&namespace).await.expect("the namespace was created");
    assert!(
        !live
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("app.driftless.dev/name"),
        "a namespace made for createNamespace is not the app's (never pruned)"
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    configmaps.get("settings").await.expect("settings applied");
    engine.shutdown().await;
    delete_namespace(&client, &namespace).await;
}

const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: registry.invalid/web:1\n";
const SETTINGS: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n";

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.replicas
}

/// Another server-side applier forces `mode: fast` into the ConfigMap `settings`.
async fn apply_as_other_tool(configmaps: &Api<ConfigMap>) {
    let fast = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "fast"}});
    configmaps
        .patch(
            "settings",
            &PatchParams::apply("other-tool").force(),
            &Patch::Apply(fast),
        )
        .await
        .expect("second applier");
}

fn mode(c: &ConfigMap) -> Option<&str> {
    c.data.as_ref()?.get("mode").map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_heal_reverts_kubectl_edit_scale_and_another_applier_with_the_default_policy() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("heal").await;
    let namespace = ns.name().to_owned();
    let client = cluster.client();
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let revision = repo_with(&repo, &[("web.yaml", WEB), ("settings.yaml", SETTINGS)]);
    // The policy a new user writes: no `force`.
    let config = config(
        "heal",
        &repo,
        &namespace,
        cluster.kubeconfig_path(),
        "{ auto: true, prune: true, selfHeal: true }",
    );
    let engine = start(&config, &tmp.path().join("state"));
    wait_synced(&engine, "heal", &revision).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);

    // `kubectl edit`: a whole-object Update by the manager kubectl-edit.
    let mut edited = deployments.get("web").await.expect("web");
    edited.spec.replicas = Some(4);
    deployments
        .replace(
            "web",
            &PostParams {
                field_manager: Some("kubectl-edit".to_owned()),
                ..Default::default()
            },
            &edited,
        )
        .await
        .expect("kubectl edit");
    wait_until(
        "the edit to be reverted",
        Duration::from_secs(15),
        || async {
            deployments
                .get("web")
                .await
                .is_ok_and(|d| replicas(&d) == Some(1))
        },
    )
    .await;
    wait_until(
        "a drift event naming kubectl-edit",
        Duration::from_secs(10),
        || async {
            events(&engine, "heal", "drift-detected")
                .iter()
                .any(|m| m.contains("kubectl-edit"))
        },
    )
    .await;

    // `kubectl scale`: the scale subresource, manager kubectl.
    deployments
        .patch_scale(
            "web",
            &PatchParams {
                field_manager: Some("kubectl".to_owned()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("kubectl scale");
    wait_until(
        "the scale to be reverted",
        Duration::from_secs(15),
        || async {
            deployments
                .get("web")
                .await
                .is_ok_and(|d| replicas(&d) == Some(1))
        },
    )
    .await;
    wait_until(
        "a drift event naming kubectl",
        Duration::from_secs(10),
        || async {
            events(&engine, "heal", "drift-detected")
                .iter()
                .any(|m| m.contains("\"kubectl (scale)\""))
        },
    )
    .await;

    // A second server-side applier that forced its value.
    apply_as_other_tool(&configmaps).await;
    wait_until(
        "the applier's value to be reverted",
        Duration::from_secs(15),
        || async {
            configmaps
                .get("settings")
                .await
                .is_ok_and(|c| mode(&c) == Some("slow"))
        },
    )
    .await;
    wait_until(
        "a healed event naming other-tool",
        Duration::from_secs(10),
        || async {
            events(&engine, "heal", "drift-healed")
                .iter()
                .any(|m| m.contains("other-tool"))
        },
    )
    .await;
    let failures = events(&engine, "heal", "sync-failed");
    assert!(failures.is_empty(), "no heal failed: {failures:?}");
    engine.shutdown().await;
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_force_off_an_edit_is_one_out_of_sync_state_naming_the_manager_not_a_retry_loop() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("noforce").await;
    let namespace = ns.name().to_owned();
    let client = cluster.client();
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let revision = repo_with(&repo, &[("settings.yaml", SETTINGS)]);
    let config = config(
        "noforce",
        &repo,
        &namespace,
        cluster.kubeconfig_path(),
        "{ auto: true, prune: true, selfHeal: true, force: false }",
    );
    let engine = start(&config, &tmp.path().join("state"));
    wait_synced(&engine, "noforce", &revision).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    apply_as_other_tool(&configmaps).await;
    wait_until(
        "OutOfSync naming the manager",
        Duration::from_secs(15),
        || async {
            engine.app("noforce").is_ok_and(|s| {
                s.sync_status == SyncStatus::OutOfSync
                    && events(&engine, "noforce", "drift-detected")
                        .iter()
                        .any(|m| m.contains("other-tool") && m.contains("force"))
            })
        },
    )
    .await;
    // Several poll intervals later: still the other tool's value, no sync attempted
    // (so nothing failed and nothing retried), one drift report.
    let syncs_before = engine.history("noforce", 100).expect("history").len();
    let checked = || engine.app("noforce").ok().and_then(|s| s.last_checked_at);
    let mut seen = checked();
    for _ in 0..3 {
        wait_until("the next poll", Duration::from_secs(10), || async {
            checked() > seen
        })
        .await;
        seen = checked();
    }
    let cm = configmaps.get("settings").await.expect("settings");
    assert_eq!(
        mode(&cm),
        Some("fast"),
        "force is off: the other manager's value stays"
    );
    assert_eq!(
        engine.history("noforce", 100).expect("history").len(),
        syncs_before,
        "no sync was attempted against the conflict"
    );
    assert!(events(&engine, "noforce", "sync-failed").is_empty());
    assert_eq!(events(&engine, "noforce", "drift-detected").len(), 1);
    engine.shutdown().await;
    ns.cleanup().await.expect("cleanup");
}
