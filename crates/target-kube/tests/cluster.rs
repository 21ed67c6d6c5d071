//! The Kubernetes target against a real kube-apiserver + etcd + kube-controller-manager
//! (crates/testenv). Run with `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1)`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::{
    Action, ChangeSet, Content, DesiredSet, DriftNotifier, Health, Inventory, Object, ObjectRef,
    Origin, Plan, SyncOptions, Target, TargetError, TaskOp,
};
use driftless_target_kube::{KubeTarget, OWNER_LABEL};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const SECRET_VALUE: &str = "hunter2-do-not-print";

fn object(manifest: Value) -> Object {
    let api_version = manifest["apiVersion"].as_str().expect("apiVersion");
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    Object {
        id: ObjectRef {
            group: group.to_owned(),
            kind: manifest["kind"].as_str().expect("kind").to_owned(),
            namespace: manifest["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            name: manifest["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_owned(),
        },
        content: Content::Manifest(manifest),
        origin: Origin {
            file: "app.yaml".to_owned(),
            line: 1,
            column: 1,
        },
    }
}

fn desired(revision: &str, manifests: Vec<Value>) -> DesiredSet {
    DesiredSet {
        revision: revision.to_owned(),
        objects: manifests.into_iter().map(object).collect(),
    }
}

fn task_op(plan: &Plan, kind: &str, name: &str) -> TaskOp {
    plan.tasks
        .iter()
        .find(|t| t.id.kind == kind && t.id.name == name)
        .unwrap_or_else(|| panic!("no task for {kind}/{name} in {plan:#?}"))
        .op
}

fn task_diff<'a>(plan: &'a Plan, kind: &str, name: &str) -> &'a str {
    plan.tasks
        .iter()
        .find(|t| t.id.kind == kind && t.id.name == name)
        .and_then(|t| t.diff.as_deref())
        .unwrap_or_default()
}

fn change(changes: &ChangeSet, kind: &str, name: &str) -> (Action, String) {
    let c = changes
        .changes
        .iter()
        .find(|c| c.id.kind == kind && c.id.name == name)
        .unwrap_or_else(|| panic!("no change for {kind}/{name} in {changes:#?}"));
    (c.action, c.detail.clone().unwrap_or_default())
}

fn assert_no_secret(plan: &Plan) {
    for task in &plan.tasks {
        if let Some(diff) = &task.diff {
            assert!(
                !diff.contains(SECRET_VALUE),
                "secret value in diff of {}:\n{diff}",
                task.id
            );
            assert!(
                !diff.contains("aHVudGVyMi1kby1ub3QtcHJpbnQ"),
                "base64 secret value in diff of {}:\n{diff}",
                task.id
            );
        }
    }
}

/// Deletes cluster-scoped leftovers (CRDs, namespaces) when a test ends, however it ends.
struct ClusterScoped {
    kubeconfig: std::path::PathBuf,
    crds: Vec<String>,
    namespaces: Vec<String>,
}

impl Drop for ClusterScoped {
    fn drop(&mut self) {
        let kubectl = driftless_testenv::tool("kubectl");
        for (kind, names) in [("crd", &self.crds), ("namespace", &self.namespaces)] {
            for name in names {
                let _ = std::process::Command::new(&kubectl)
                    .arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .args(["delete", kind, name, "--ignore-not-found", "--wait=false"])
                    .output();
            }
        }
    }
}

/// Collects drift events in a channel.
fn notifier() -> (
    DriftNotifier,
    tokio::sync::mpsc::UnboundedReceiver<ObjectRef>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let notify: DriftNotifier = Arc::new(move |event: driftless_model::DriftEvent| {
        let _ = tx.send(event.id);
    });
    (notify, rx)
}

fn revision_one(ns: &str, group: &str, extra_ns: &str) -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("widgets.{group}")},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                    }}}
                }]
            }
        }),
        json!({
            "apiVersion": format!("{group}/v1"),
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3}
        }),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": extra_ns}}),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "inside", "namespace": extra_ns},
            "data": {"where": "a namespace of this revision"}
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"driftless.dev/wave": "1"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}
                }
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns},
            "data": {"mode": "fast", "level": "3"}
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "keep-me", "annotations": {"driftless.dev/prune": "disabled"}},
            "data": {"x": "1"}
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"password": SECRET_VALUE}
        }),
    ]
}

/// The engine's order: widen the inventory with what is about to be written, apply,
/// narrow by what was deleted.
async fn sync(target: &KubeTarget, plan: &Plan, options: SyncOptions) -> ChangeSet {
    let mut inventory = target
        .load_inventory()
        .await
        .expect("load")
        .unwrap_or_default();
    inventory.entries.extend(
        plan.tasks
            .iter()
            .filter(|t| t.op != TaskOp::Delete)
            .map(|t| t.id.clone()),
    );
    target.save_inventory(&inventory).await.expect("widen");
    let changes = target.apply(plan, options).await.expect("apply");
    for c in &changes.changes {
        if c.action == Action::Deleted {
            inventory.entries.remove(&c.id);
        }
    }
    target.save_inventory(&inventory).await.expect("narrow");
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_apply_drift_heal_prune() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-life").await;
    let client = cluster.client();
    let group = format!("{}.example.com", ns.name());
    let extra_ns = format!("{}-x", ns.name());
    let _leftovers = ClusterScoped {
        kubeconfig: cluster.kubeconfig_path().to_owned(),
        crds: vec![format!("widgets.{group}")],
        namespaces: vec![extra_ns.clone()],
    };
    let target = KubeTarget::new(client.clone(), "life", Some(ns.name())).expect("target");
    let options = SyncOptions {
        prune: true,
        force_conflicts: false,
    };

    // 1. One plan with a CRD, a CR of it, a Namespace, a Deployment, ConfigMaps, a Secret.
    let r1 = desired("r1", revision_one(ns.name(), &group, &extra_ns));
    assert!(target.load_inventory().await.expect("load").is_none());
    let plan = target
        .plan(&r1, &Inventory::default(), options)
        .await
        .expect("plan r1");
    assert_eq!(plan.counts(), (8, 0, 0, 0), "{plan:#?}");
    let order: Vec<(u8, &str)> = plan
        .tasks
        .iter()
        .map(|t| (t.phase, t.id.kind.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (0, "CustomResourceDefinition"),
            (0, "Namespace"),
            (2, "ConfigMap"),
            (2, "ConfigMap"),
            (2, "ConfigMap"),
            (2, "Secret"),
            (2, "Widget"),
            (2, "Deployment"),
        ]
    );
    // Namespaced objects without a namespace get the app's; cluster-scoped ones none.
    for t in &plan.tasks {
        let expect = match (t.phase, t.id.name.as_str()) {
            (2, "inside") => extra_ns.as_str(),
            (2, _) => ns.name(),
            _ => "",
        };
        assert_eq!(t.id.namespace, expect, "{}", t.id);
    }
    assert!(task_diff(&plan, "Widget", "w1").contains("CustomResourceDefinition of this revision"));
    assert!(task_diff(&plan, "ConfigMap", "settings").contains("+  mode: fast"));
    assert!(task_diff(&plan, "Secret", "creds").contains("<redacted sha256:"));
    // A namespace created by the same revision cannot take a dry run yet.
    assert!(
        task_diff(&plan, "ConfigMap", "inside")
            .starts_with("# the namespace is created by this revision")
    );
    assert_no_secret(&plan);

    let changes = sync(&target, &plan, options).await;
    assert!(!changes.has_failures(), "{changes:#?}");
    assert_eq!(changes.count(Action::Created), 8, "{changes:#?}");
    // The CRD was Established before its Widget was applied; both are healthy now.
    let ids: Vec<ObjectRef> = plan.tasks.iter().map(|t| t.id.clone()).collect();
    for h in target.health(&ids).await.expect("health") {
        if h.id.kind != "Deployment" {
            assert_eq!(h.health, Health::Healthy, "{h:?}");
        }
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let live = cms.get("settings").await.expect("settings exists");
    assert_eq!(
        live.metadata
            .labels
            .unwrap_or_default()
            .get(OWNER_LABEL)
            .map(String::as_str),
        Some("life")
    );
    let widgets = kube::api::ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let w: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &widgets);
    assert_eq!(w.get("w1").await.expect("widget").data["spec"]["size"], 3);

    // 2. Nothing changed: everything Unchanged.
    let plan = target
        .plan(&r1, &Inventory::default(), options)
        .await
        .expect("plan again");
    assert_eq!(plan.counts(), (0, 0, 0, 8), "{plan:#?}");
    assert!(!plan.has_changes());

    // 3. Another field manager changes a field: the watch notices, the plan shows it.
    // The engine watches the desired ids as rendered: namespaces may be left out.
    let ids: BTreeSet<ObjectRef> = r1.ids();
    let (notify, mut events) = notifier();
    let guard = target.watch(ids, notify).await.expect("watch");
    cms.patch(
        "settings",
        &PatchParams {
            field_manager: Some("intruder".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"mode": "slow"}})),
    )
    .await
    .expect("intruder patch");
    let seen = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let id = events.recv().await.expect("watch alive");
            if id.kind == "ConfigMap" && id.name == "settings" {
                return id;
            }
        }
    })
    .await
    .expect("the watch reports the change within 1 s");
    assert_eq!(seen.namespace, ns.name());

    let plan = target
        .plan(&r1, &Inventory::default(), options)
        .await
        .expect("plan drift");
    assert_eq!(plan.counts(), (0, 1, 0, 7), "{plan:#?}");
    let diff = task_diff(&plan, "ConfigMap", "settings");
    assert!(diff.contains("-  mode: slow\n+  mode: fast\n"), "{diff}");
    assert!(
        diff.contains("conflict with field manager(s) \"intruder\""),
        "{diff}"
    );
    assert_no_secret(&plan);

    // Without force the conflict is reported, naming the other manager.
    let changes = target.apply(&plan, options).await.expect("apply");
    let (action, detail) = change(&changes, "ConfigMap", "settings");
    assert_eq!(action, Action::Failed, "{changes:#?}");
    assert!(
        detail.contains("\"intruder\"") && detail.contains(".data.mode"),
        "{detail}"
    );

    // Forced, it heals.
    let forced = SyncOptions {
        force_conflicts: true,
        ..options
    };
    let plan = target
        .plan(&r1, &Inventory::default(), forced)
        .await
        .expect("plan forced");
    let changes = target.apply(&plan, forced).await.expect("apply forced");
    assert_eq!(
        change(&changes, "ConfigMap", "settings").0,
        Action::Configured,
        "{changes:#?}"
    );
    let live = cms.get("settings").await.expect("settings");
    assert_eq!(live.data.unwrap_or_default()["mode"], "fast");
    let plan = target
        .plan(&r1, &Inventory::default(), options)
        .await
        .expect("plan healed");
    assert_eq!(plan.counts(), (0, 0, 0, 8), "{plan:#?}");

    // A deleted object is reported too, and the plan recreates it.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), ns.name());
    secrets
        .delete("creds", &Default::default())
        .await
        .expect("delete secret");
    let gone = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let id = events.recv().await.expect("watch alive");
            if id.name == "creds" {
                return id;
            }
        }
    })
    .await
    .expect("the watch reports the deletion within 1 s");
    assert_eq!(gone.namespace, "", "reported as the caller named it");
    let plan = target
        .plan(&r1, &Inventory::default(), options)
        .await
        .expect("plan");
    assert_eq!(task_op(&plan, "Secret", "creds"), TaskOp::Create);
    assert_no_secret(&plan);
    target.apply(&plan, options).await.expect("apply");

    // A changed secret value shows as a changed marker, never as the value.
    let mut changed = revision_one(ns.name(), &group, &extra_ns);
    for m in &mut changed {
        if m["kind"] == "Secret" {
            m["stringData"]["password"] = json!(format!("{SECRET_VALUE}-2"));
        }
    }
    let plan = target
        .plan(&desired("r1b", changed), &Inventory::default(), options)
        .await
        .expect("plan");
    assert_eq!(task_op(&plan, "Secret", "creds"), TaskOp::Update);
    let diff = task_diff(&plan, "Secret", "creds");
    assert!(
        diff.contains("-  password: <redacted sha256:")
            && diff.contains("+  password: <redacted sha256:"),
        "{diff}"
    );
    assert_no_secret(&plan);

    // Dropping the guard stops the watchers: they let go of the notifier.
    drop(guard);
    tokio::time::timeout(Duration::from_secs(5), async {
        while events.recv().await.is_some() {}
    })
    .await
    .expect("watchers stopped");

    // 4. A fresh process loads the inventory from the cluster and prunes with it.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "settings-copy"}, "data": {"mode": "fast"}}),
        )
        .expect("configmap"),
    )
    .await
    .expect("look-alike");
    let fresh = KubeTarget::new(cluster.client(), "life", Some(ns.name())).expect("target");
    let inventory = fresh
        .load_inventory()
        .await
        .expect("load")
        .expect("inventory exists");
    assert_eq!(inventory.entries.len(), 8, "{inventory:#?}");
    let r2 = desired(
        "r2",
        revision_one(ns.name(), &group, &extra_ns)
            .into_iter()
            .filter(|m| {
                !["settings", "keep-me"]
                    .contains(&m["metadata"]["name"].as_str().unwrap_or_default())
            })
            .collect(),
    );
    let plan = fresh.plan(&r2, &inventory, options).await.expect("plan r2");
    assert_eq!(plan.counts(), (0, 0, 1, 6), "{plan:#?}");
    assert_eq!(task_op(&plan, "ConfigMap", "settings"), TaskOp::Delete);
    assert!(task_diff(&plan, "ConfigMap", "settings").contains("-  mode: fast"));
    let changes = sync(&fresh, &plan, options).await;
    assert_eq!(
        change(&changes, "ConfigMap", "settings").0,
        Action::Deleted,
        "{changes:#?}"
    );
    assert!(cms.get_opt("settings").await.expect("get").is_none());
    assert!(
        cms.get_opt("settings-copy").await.expect("get").is_some(),
        "look-alike untouched"
    );
    assert!(
        cms.get_opt("keep-me").await.expect("get").is_some(),
        "opted-out object untouched"
    );
    let inventory = fresh
        .load_inventory()
        .await
        .expect("load")
        .expect("inventory");
    assert_eq!(inventory.entries.len(), 7, "{inventory:#?}");

    // Pruning without prune enabled plans nothing.
    let plan = fresh
        .plan(&r2, &inventory, SyncOptions::default())
        .await
        .expect("plan without prune");
    assert_eq!(plan.counts(), (0, 0, 0, 6), "{plan:#?}");

    // The inventory's own ConfigMap is never planned, even when listed.
    let mut with_self = inventory.clone();
    with_self.entries.insert(fresh.inventory_id());
    let plan = fresh.plan(&r2, &with_self, options).await.expect("plan");
    assert!(
        !plan.tasks.iter().any(|t| t.id == fresh.inventory_id()),
        "{plan:#?}"
    );

    ns.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_apps_object_is_a_conflict_naming_it() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-owner").await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), ns.name());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "shared",
            "labels": {OWNER_LABEL: "billing"}}, "data": {"a": "1"}}))
        .expect("configmap"),
    )
    .await
    .expect("create");
    let target = KubeTarget::new(cluster.client(), "web", Some(ns.name())).expect("target");
    let d = desired(
        "r1",
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "2"}}),
        ],
    );
    let err = target
        .plan(&d, &Inventory::default(), SyncOptions::default())
        .await
        .expect_err("conflict");
    assert!(matches!(err, TargetError::Conflict { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/ConfigMap/shared: conflict: the live object belongs to app \"billing\" (label \
             app.driftless.dev/name=billing), not to \"web\"; remove it from one of the two apps",
            ns.name()
        )
    );
    // Prune never deletes it either, even when an inventory lists it.
    let inventory = Inventory {
        entries: [ObjectRef {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: ns.name().into(),
            name: "shared".into(),
        }]
        .into(),
    };
    let plan = target
        .plan(
            &desired("r2", vec![]),
            &inventory,
            SyncOptions {
                prune: true,
                force_conflicts: false,
            },
        )
        .await
        .expect("plan");
    assert!(plan.tasks.is_empty(), "{plan:#?}");
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_object_fails_with_the_servers_message_and_stops_later_waves() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-invalid").await;
    let target = KubeTarget::new(cluster.client(), "bad", Some(ns.name())).expect("target");
    let d = desired(
        "r1",
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "first", "annotations": {"driftless.dev/wave": "-1"}}, "data": {"a": "1"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "broken"},
                "spec": {"replicas": "two", "selector": {"matchLabels": {"app": "x"}},
                    "template": {"metadata": {"labels": {"app": "x"}},
                        "spec": {"containers": [{"name": "x", "image": "x"}]}}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "later", "annotations": {"driftless.dev/wave": "1"}}, "data": {"a": "1"}}),
        ],
    );
    let options = SyncOptions {
        prune: true,
        force_conflicts: false,
    };
    let plan = target
        .plan(&d, &Inventory::default(), options)
        .await
        .expect("plan");
    let diff = task_diff(&plan, "Deployment", "broken");
    assert!(
        diff.starts_with("# the server refused a dry run: "),
        "{diff}"
    );
    let changes = target.apply(&plan, options).await.expect("apply");
    assert_eq!(change(&changes, "ConfigMap", "first").0, Action::Created);
    let (action, detail) = change(&changes, "Deployment", "broken");
    assert_eq!(action, Action::Failed);
    assert!(
        detail.ends_with(".spec.replicas: expected numeric (int or float), got string"),
        "{detail}"
    );
    assert_eq!(
        change(&changes, "ConfigMap", "later"),
        (
            Action::Skipped,
            "not applied: an earlier object failed".to_owned()
        )
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), ns.name());
    assert!(
        cms.get_opt("later").await.expect("get").is_none(),
        "nothing applied past the failure"
    );

    // A failing cluster-scoped object (phase 1) stops every namespaced one (phase 2),
    // and nothing is pruned after a failure.
    let role = format!("{}-broken", ns.name());
    let d = desired(
        "r2",
        vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": role}, "rules": [{"verbs": "get", "apiGroups": [""], "resources": ["pods"]}]}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "namespaced"}, "data": {"a": "1"}}),
        ],
    );
    let inventory = Inventory {
        entries: [ObjectRef {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: ns.name().into(),
            name: "first".into(),
        }]
        .into(),
    };
    let plan = target.plan(&d, &inventory, options).await.expect("plan");
    assert_eq!(task_op(&plan, "ConfigMap", "first"), TaskOp::Delete);
    let changes = target.apply(&plan, options).await.expect("apply");
    let (action, detail) = change(&changes, "ClusterRole", &role);
    assert_eq!(action, Action::Failed);
    assert!(
        detail.contains(".rules[0].verbs: expected list, got"),
        "{detail}"
    );
    assert_eq!(
        change(&changes, "ConfigMap", "namespaced"),
        (
            Action::Skipped,
            "not applied: an earlier object failed".to_owned()
        )
    );
    assert_eq!(
        change(&changes, "ConfigMap", "first"),
        (
            Action::Skipped,
            "not pruned: an earlier object failed".to_owned()
        )
    );
    assert!(cms.get_opt("first").await.expect("get").is_some());
    assert!(cms.get_opt("namespaced").await.expect("get").is_none());
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_naming_the_object() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-reject").await;
    let target = KubeTarget::new(cluster.client(), "rej", Some(ns.name())).expect("target");
    let plan = |m: Value| {
        let target = target.clone();
        async move {
            target
                .plan(
                    &desired("r", vec![m]),
                    &Inventory::default(),
                    SyncOptions::default(),
                )
                .await
        }
    };
    let err = plan(
        json!({"apiVersion": "nope.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}),
    )
    .await
    .expect_err("unknown kind");
    assert_eq!(
        err.to_string(),
        "Gadget.nope.example.com/g: rejected: kind Gadget of nope.example.com/v1 is not served by \
         the cluster, and no CustomResourceDefinition in this revision defines it (from app.yaml:1:1)"
    );
    let err = plan(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"driftless.dev/wave": "early"}}}))
    .await
    .expect_err("bad wave");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/ConfigMap/c: rejected: annotation driftless.dev/wave: \"early\" is not an integer \
             (e.g. \"-1\", \"2\") (from app.yaml:1:1)",
            ns.name()
        )
    );
    for (manifest, what) in [
        (
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}}),
            "apiVersion",
        ),
        (
            json!({"apiVersion": "v1", "metadata": {"name": "c"}}),
            "kind",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
            "metadata.name",
        ),
    ] {
        let obj = Object {
            id: ObjectRef::file("c.yaml"),
            content: Content::Manifest(manifest),
            origin: Origin {
                file: "c.yaml".into(),
                line: 4,
                column: 1,
            },
        };
        let d = DesiredSet {
            revision: "r".into(),
            objects: vec![obj],
        };
        let err = target
            .plan(&d, &Inventory::default(), SyncOptions::default())
            .await
            .expect_err("incomplete manifest");
        assert_eq!(
            err.to_string(),
            format!("c.yaml: rejected: the manifest has no {what} (from c.yaml:4:1)")
        );
    }
    let file = DesiredSet {
        revision: "r".into(),
        objects: vec![Object {
            id: ObjectRef::file("etc/app.conf"),
            content: Content::File {
                data: b"x".to_vec(),
                executable: false,
            },
            origin: Origin {
                file: "etc/app.conf".into(),
                line: 0,
                column: 0,
            },
        }],
    };
    let err = target
        .plan(&file, &Inventory::default(), SyncOptions::default())
        .await
        .expect_err("file");
    assert!(matches!(err, TargetError::Unsupported(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "etc/app.conf: the Kubernetes target only takes manifests, not files (from etc/app.conf)"
    );
    // The same object twice (once with its namespace spelled out) is refused.
    let twice = desired(
        "r",
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup", "namespace": ns.name()}}),
        ],
    );
    let err = target
        .plan(&twice, &Inventory::default(), SyncOptions::default())
        .await
        .expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/ConfigMap/dup: rejected: defined twice; the second time in app.yaml:1:1",
            ns.name()
        )
    );
    // A damaged inventory ConfigMap is reported, not taken as empty.
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), ns.name());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "driftless-inventory-rej"},
            "data": {"entries": "{not json"}}))
        .expect("configmap"),
    )
    .await
    .expect("create");
    let err = target
        .load_inventory()
        .await
        .expect_err("damaged inventory");
    assert!(
        err.to_string().starts_with(&format!(
            "{}/ConfigMap/driftless-inventory-rej: rejected: the inventory's data.entries is not a list of ids: ",
            ns.name()
        )),
        "{err}"
    );
    let err = plan(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "driftless-inventory-rej"}}))
    .await
    .expect_err("reserved");
    assert!(
        err.to_string()
            .contains("reserved for driftless's inventory"),
        "{err}"
    );
    // Cluster-scoped objects never get a namespace, even when the manifest names one.
    let p = plan(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": format!("{}-reader", ns.name()), "namespace": "ignored"}, "rules": []}))
    .await
    .expect("plan");
    assert_eq!(p.tasks[0].id.namespace, "");
    assert_eq!((p.tasks[0].phase, p.tasks[0].op), (1, TaskOp::Create));

    let err = KubeTarget::connect_with(Some(cluster.kubeconfig_path()), "web", Some("nope"), None)
        .await
        .err()
        .expect("unknown context");
    assert_eq!(
        err.to_string(),
        "the kubeconfig has no context \"nope\" (it has: testenv)"
    );
    let named = KubeTarget::connect_with(
        Some(cluster.kubeconfig_path()),
        "web",
        Some("testenv"),
        Some(ns.name()),
    )
    .await
    .expect("connect");
    assert_eq!(
        named.describe(),
        format!("kubernetes:testenv/{}", ns.name())
    );
    assert!(named.load_inventory().await.expect("reachable").is_none());
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_health_follows_the_controller() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-health").await;
    let target = KubeTarget::new(cluster.client(), "hl", Some(ns.name())).expect("target");
    let deployment = |name: &str, replicas: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]}}}})
    };
    let d = desired("r1", vec![deployment("idle", 0), deployment("busy", 2)]);
    let options = SyncOptions::default();
    let plan = target
        .plan(&d, &Inventory::default(), options)
        .await
        .expect("plan");
    let ids: Vec<ObjectRef> = plan.tasks.iter().map(|t| t.id.clone()).collect();
    let mut missing = ids.clone();
    missing.push(ObjectRef {
        name: "ghost".into(),
        ..ids[0].clone()
    });
    let before = target.health(&missing).await.expect("health");
    assert!(
        before.iter().all(|h| h.health == Health::Missing),
        "{before:#?}"
    );

    let changes = target.apply(&plan, options).await.expect("apply");
    assert!(!changes.has_failures(), "{changes:#?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen_idle = Vec::new();
    loop {
        let health = target.health(&ids).await.expect("health");
        let idle = health.iter().find(|h| h.id.name == "idle").expect("idle");
        seen_idle.push(idle.health);
        if idle.health == Health::Healthy {
            let busy = health.iter().find(|h| h.id.name == "busy").expect("busy");
            assert_eq!(busy.health, Health::Progressing, "{busy:?}");
            break;
        }
        assert_eq!(idle.health, Health::Progressing, "{idle:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle never healthy: {seen_idle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No kubelet runs pods here: the busy one waits with 0 of 2 available.
    let busy_wait = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health = target.health(&ids[..]).await.expect("health");
        let busy = health.iter().find(|h| h.id.name == "busy").expect("busy");
        if busy.message.as_deref() == Some("0 of 2 updated replicas available") {
            assert_eq!(busy.health, Health::Progressing);
            break;
        }
        assert!(tokio::time::Instant::now() < busy_wait, "{busy:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deployments: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client(),
        ns.name(),
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    let busy = deployments.get("busy").await.expect("busy");
    eprintln!(
        "recorded busy status: {}",
        serde_json::to_string(&busy.data["status"]).unwrap_or_default()
    );
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_added_after_discovery_is_found_by_one_refresh() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-disco").await;
    let group = format!("{}.example.com", ns.name());
    let _leftovers = ClusterScoped {
        kubeconfig: cluster.kubeconfig_path().to_owned(),
        crds: vec![format!("gadgets.{group}")],
        namespaces: vec![],
    };
    let target = KubeTarget::new(cluster.client(), "disco", Some(ns.name())).expect("target");
    let gadget = json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": "g1"}, "spec": {"on": true}});
    // Discovery is loaded now, without the kind.
    let err = target
        .plan(
            &desired("r", vec![gadget.clone()]),
            &Inventory::default(),
            SyncOptions::default(),
        )
        .await
        .expect_err("not served yet");
    assert!(matches!(err, TargetError::Rejected { .. }), "{err}");

    // Someone else installs the CRD; the next plan refreshes discovery once and finds it.
    let crd = desired(
        "crd",
        vec![json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("gadgets.{group}")},
            "spec": {"group": group, "scope": "Cluster",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}
        })],
    );
    let installer =
        KubeTarget::new(cluster.client(), "installer", Some(ns.name())).expect("target");
    let plan = installer
        .plan(&crd, &Inventory::default(), SyncOptions::default())
        .await
        .expect("plan crd");
    let changes = installer
        .apply(&plan, SyncOptions::default())
        .await
        .expect("apply crd");
    assert_eq!(changes.count(Action::Created), 1, "{changes:#?}");

    let plan = target
        .plan(
            &desired("r", vec![gadget]),
            &Inventory::default(),
            SyncOptions::default(),
        )
        .await
        .expect("found after a refresh");
    // Cluster-scoped by its CRD: no namespace, phase 1.
    assert_eq!(plan.tasks[0].id.namespace, "");
    assert_eq!((plan.tasks[0].phase, plan.tasks[0].op), (1, TaskOp::Create));
    ns.cleanup().await.expect("cleanup");
}

fn crd(group: &str, plural: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_whose_names_are_refused_fails_and_stops_its_resources() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-crd").await;
    let group = format!("{}.example.com", ns.name());
    let _leftovers = ClusterScoped {
        kubeconfig: cluster.kubeconfig_path().to_owned(),
        crds: vec![format!("gadgets.{group}"), format!("gizmos.{group}")],
        namespaces: vec![],
    };
    let target = KubeTarget::new(cluster.client(), "crd", Some(ns.name()))
        .expect("target")
        .with_crd_timeout(Duration::from_secs(20));
    // The second CRD claims the first one's kind: the API server refuses its names.
    let d = desired(
        "r1",
        vec![
            crd(&group, "gadgets", "Gadget"),
            crd(&group, "gizmos", "Gadget"),
            json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget", "metadata": {"name": "g"}}),
        ],
    );
    let options = SyncOptions::default();
    let plan = target
        .plan(&d, &Inventory::default(), options)
        .await
        .expect("plan");
    let changes = target.apply(&plan, options).await.expect("apply");
    assert_eq!(
        change(
            &changes,
            "CustomResourceDefinition",
            &format!("gadgets.{group}")
        )
        .0,
        Action::Created
    );
    let (action, detail) = change(
        &changes,
        "CustomResourceDefinition",
        &format!("gizmos.{group}"),
    );
    assert_eq!(action, Action::Failed);
    assert_eq!(
        detail,
        "applied, but not usable: names not accepted: ListKindConflict: \"GadgetList\" is already in use"
    );
    assert_eq!(
        change(&changes, "Gadget", "g"),
        (
            Action::Skipped,
            "not applied: an earlier object failed".to_owned()
        )
    );
    ns.cleanup().await.expect("cleanup");
}
