//! How many Kubernetes API requests the target makes, counted by a tower layer in the
//! client, against the real testenv control plane. Run with
//! `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1)`.

use std::sync::{Arc, Mutex};

use driftless_model::{
    Content, DesiredSet, Health, Inventory, Object, ObjectRef, Origin, SyncOptions, Target, TaskOp,
};
use driftless_target_kube::{KubeTarget, OWNER_LABEL};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use kube::client::{Body, ClientBuilder};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tower::util::MapRequestLayer;

const OBJECTS: usize = 30;
const PRUNE: SyncOptions = SyncOptions {
    prune: true,
    force_conflicts: false,
};

/// Every request the client sent, as `METHOD path?query`.
type Log = Arc<Mutex<Vec<String>>>;

/// The admin configuration of the testenv cluster.
async fn admin_config(cluster: &driftless_testenv::Cluster) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).expect("kubeconfig");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config")
}

/// A client of the testenv cluster as admin that writes each request it sends into the
/// log.
async fn counting_client(cluster: &driftless_testenv::Cluster) -> (kube::Client, Log) {
    counting_client_with(admin_config(cluster).await)
}

fn counting_client_with(config: kube::Config) -> (kube::Client, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let layer = MapRequestLayer::new(move |req: http::Request<Body>| {
        let line = format!("{} {}", req.method(), req.uri());
        sink.lock().expect("log lock").push(line);
        req
    });
    let client = ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&layer)
        .build();
    (client, log)
}

fn config_map(name: &str, value: &str) -> Object {
    Object {
        id: ObjectRef {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: String::new(),
            name: name.to_owned(),
        },
        content: Content::Manifest(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name}, "data": {"value": value}
        })),
        origin: Origin {
            file: format!("{name}.yaml"),
            line: 1,
            column: 1,
        },
    }
}

fn desired(revision: &str, objects: Vec<Object>) -> DesiredSet {
    DesiredSet {
        revision: revision.to_owned(),
        objects,
    }
}

/// The requests of the log from `from` on, counted by what they are.
fn summary(log: &Log, from: usize) -> (usize, Vec<String>) {
    let lines = log.lock().expect("log lock");
    let lines = &lines[from..];
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for line in lines {
        let what = if line.starts_with("PATCH") && line.contains("dryRun=All") {
            "dry-run apply"
        } else if line.starts_with("PATCH") {
            "apply"
        } else if line.starts_with("GET") && line.contains("labelSelector=") {
            "LIST"
        } else if line.starts_with("GET") {
            "GET"
        } else {
            "other"
        };
        *kinds.entry(what.to_owned()).or_default() += 1;
    }
    (
        lines.len(),
        kinds
            .into_iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_plan_and_health_list_instead_of_reading_each_object() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-requests").await;
    let (client, log) = counting_client(cluster).await;
    let target = KubeTarget::new(client, "counted", Some(ns.name())).expect("target");
    let objects: Vec<Object> = (0..OBJECTS)
        .map(|i| config_map(&format!("cm-{i:02}"), "one"))
        .collect();
    let ids: Vec<ObjectRef> = objects.iter().map(|o| o.id.clone()).collect();
    let r1 = desired("r1", objects.clone());

    let plan = target
        .plan(&r1, &Inventory::default(), PRUNE)
        .await
        .expect("first plan");
    assert_eq!(plan.counts(), (OBJECTS, 0, 0, 0), "{plan:#?}");
    target.apply(&plan, PRUNE).await.expect("apply");
    let inventory = Inventory {
        entries: ids.iter().cloned().collect(),
    };
    target.save_inventory(&inventory).await.expect("save");

    // What the engine does on a sync with nothing changed: inventory, plan, health.
    let start = log.lock().expect("log lock").len();
    let inventory = target
        .load_inventory()
        .await
        .expect("load")
        .expect("saved above");
    let plan = target
        .plan(&desired("r2", objects), &inventory, PRUNE)
        .await
        .expect("no-op plan");
    let after_plan = log.lock().expect("log lock").len();
    let health = target.health(&ids).await.expect("health");
    let (total, kinds) = summary(&log, start);
    eprintln!(
        "{OBJECTS} unchanged ConfigMaps: {total} requests for inventory + plan + health \
         ({} for inventory + plan): {}",
        after_plan - start,
        kinds.join(", ")
    );

    assert!(
        plan.tasks.iter().all(|t| t.op == TaskOp::Unchanged),
        "{plan:#?}"
    );
    assert_eq!(plan.tasks.len(), OBJECTS, "{plan:#?}");
    assert!(
        health.iter().all(|h| h.health == Health::Healthy),
        "{health:#?}"
    );
    assert_eq!(health.len(), OBJECTS);
    assert!(
        total < OBJECTS + OBJECTS / 2,
        "{total} requests for {OBJECTS} objects: {:#?}",
        &log.lock().expect("log lock")[start..]
    );

    // A live change of one object (what a focused heal plans): that object is read
    // alone, not the app's whole list.
    let one = desired("r2", vec![r1.objects[0].clone()]);
    let start = log.lock().expect("log lock").len();
    let plan = target
        .plan(&one, &Inventory::default(), PRUNE)
        .await
        .expect("plan one");
    let health = target.health(&ids[..1]).await.expect("health of one");
    let (_, kinds) = summary(&log, start);
    assert_eq!(plan.tasks.len(), 1, "{plan:#?}");
    assert_eq!(health.len(), 1);
    assert_eq!(
        kinds,
        ["GET: 2", "dry-run apply: 1"],
        "{:#?}",
        &log.lock().expect("log lock")[start..]
    );

    // Small pages: the LISTs follow `continue` and still find every object.
    let paged = target.clone().with_list_page_size(7);
    let start = log.lock().expect("log lock").len();
    let plan = paged
        .plan(&desired("r3", r1.objects.clone()), &inventory, PRUNE)
        .await
        .expect("paged plan");
    let health = paged.health(&ids).await.expect("paged health");
    let (total, kinds) = summary(&log, start);
    eprintln!(
        "{OBJECTS} unchanged ConfigMaps, pages of 7: {total} requests for plan + health: {}",
        kinds.join(", ")
    );
    assert!(
        plan.tasks.iter().all(|t| t.op == TaskOp::Unchanged) && plan.tasks.len() == OBJECTS,
        "{plan:#?}"
    );
    assert!(
        health.iter().all(|h| h.health == Health::Healthy),
        "{health:#?}"
    );
    // 5 pages for plan and 5 for health; no object read alone.
    assert_eq!(
        kinds,
        ["LIST: 10", &format!("dry-run apply: {OBJECTS}")],
        "{:#?}",
        &log.lock().expect("log lock")[start..]
    );
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_without_our_label_are_still_read_one_by_one() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-unlabelled").await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), ns.name());
    // Made by someone else: no owner label at all, and one labelled for another app.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "handmade"}, "data": {"value": "old"}}),
        )
        .expect("configmap"),
    )
    .await
    .expect("create handmade");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "theirs",
            "labels": {OWNER_LABEL: "billing"}}, "data": {"value": "old"}}))
        .expect("configmap"),
    )
    .await
    .expect("create theirs");
    let (client, _log) = counting_client(cluster).await;
    let target = KubeTarget::new(client, "adopter", Some(ns.name())).expect("target");

    // Another app's object stops the plan, even though our LIST does not return it.
    let err = target
        .plan(
            &desired(
                "r1",
                vec![config_map("handmade", "new"), config_map("theirs", "new")],
            ),
            &Inventory::default(),
            PRUNE,
        )
        .await
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/ConfigMap/theirs: conflict: the live object belongs to app \"billing\" (label \
             app.driftless.dev/name=billing), not to \"adopter\"; remove it from one of the two \
             apps",
            ns.name()
        )
    );

    // An unlabelled object is adopted: an Update that adds our label, not a Create.
    let plan = target
        .plan(
            &desired("r2", vec![config_map("handmade", "new")]),
            &Inventory::default(),
            PRUNE,
        )
        .await
        .expect("plan");
    assert_eq!(plan.tasks.len(), 1, "{plan:#?}");
    let task = &plan.tasks[0];
    assert_eq!(task.op, TaskOp::Update, "{plan:#?}");
    let diff = task.diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains(&format!("+    {OWNER_LABEL}: adopter")),
        "{diff}"
    );
    assert!(
        diff.contains("-  value: old") && diff.contains("+  value: new"),
        "{diff}"
    );

    // Health finds objects our LIST does not return; an absent one is Missing.
    let id = |name: &str| ObjectRef {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: String::new(),
        name: name.to_owned(),
    };
    let health = target
        .health(&[id("handmade"), id("theirs"), id("nowhere")])
        .await
        .expect("health");
    let verdicts: Vec<(&str, Health, Option<&str>)> = health
        .iter()
        .map(|h| (h.id.name.as_str(), h.health, h.message.as_deref()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("handmade", Health::Healthy, None),
            ("theirs", Health::Healthy, None),
            ("nowhere", Health::Missing, Some("not found in the cluster")),
        ]
    );

    // Prune leaves both alone, though an inventory lists them.
    let inventory = Inventory {
        entries: [id("handmade"), id("theirs")].into(),
    };
    let plan = target
        .plan(&desired("r3", vec![]), &inventory, PRUNE)
        .await
        .expect("prune plan");
    assert!(plan.tasks.is_empty(), "{plan:#?}");
    ns.cleanup().await.expect("cleanup");
}

/// A client acting as a new service account of `namespace` that may read and write
/// ConfigMaps there but not list them, once RBAC lets it read.
async fn client_without_list(
    cluster: &driftless_testenv::Cluster,
    namespace: &str,
) -> (kube::Client, Log) {
    let admin = cluster.client();
    let sa = "no-list";
    Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": sa}})).expect("sa"),
        )
        .await
        .expect("create service account");
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": sa}, "rules": [{
                "apiGroups": [""], "resources": ["configmaps"],
                "verbs": ["get", "create", "patch", "update"]
            }]}))
            .expect("role"),
        )
        .await
        .expect("create role");
    Api::<RoleBinding>::namespaced(admin.clone(), namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": sa},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]}))
            .expect("role binding"),
        )
        .await
        .expect("create role binding");
    let token = Api::<ServiceAccount>::namespaced(admin, namespace)
        .create_token_request(
            sa,
            &PostParams::default(),
            &serde_json::from_value::<TokenRequest>(json!({"spec": {"audiences": []}}))
                .expect("token request"),
        )
        .await
        .expect("token")
        .status
        .expect("token status")
        .token
        .expect("a token");
    let mut config = admin_config(cluster).await;
    config.auth_info = Default::default();
    config.headers.push((
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    ));
    let (client, log) = counting_client_with(config);
    // The authorizer learns of new roles from a watch: wait until it lets us read.
    let probe: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match probe.get_opt("probe").await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("waiting for RBAC: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the service account cannot read ConfigMaps: {e}"),
        }
    }
    (client, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_permission_to_list_each_object_is_read() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("tk-nolist").await;
    let (client, log) = client_without_list(cluster, ns.name()).await;
    let target = KubeTarget::new(client, "reader", Some(ns.name())).expect("target");
    let objects: Vec<Object> = (0..3)
        .map(|i| config_map(&format!("cm-{i}"), "one"))
        .collect();
    let ids: Vec<ObjectRef> = objects.iter().map(|o| o.id.clone()).collect();
    let plan = target
        .plan(
            &desired("r1", objects.clone()),
            &Inventory::default(),
            PRUNE,
        )
        .await
        .expect("first plan");
    assert_eq!(plan.counts(), (3, 0, 0, 0), "{plan:#?}");
    target.apply(&plan, PRUNE).await.expect("apply");

    let start = log.lock().expect("log lock").len();
    let plan = target
        .plan(&desired("r2", objects), &Inventory::default(), PRUNE)
        .await
        .expect("no-op plan");
    let health = target.health(&ids).await.expect("health");
    let (total, kinds) = summary(&log, start);
    eprintln!(
        "3 unchanged ConfigMaps without list permission: {total} requests for plan + \
         health: {}",
        kinds.join(", ")
    );
    assert!(
        plan.tasks.iter().all(|t| t.op == TaskOp::Unchanged),
        "{plan:#?}"
    );
    assert_eq!(plan.tasks.len(), 3, "{plan:#?}");
    assert!(
        health.iter().all(|h| h.health == Health::Healthy),
        "{health:#?}"
    );
    // The refused LIST of plan and of health, then a GET of each object for each.
    assert_eq!(
        kinds,
        ["GET: 6", "LIST: 2", "dry-run apply: 3"],
        "{:#?}",
        &log.lock().expect("log lock")[start..]
    );
    ns.cleanup().await.expect("cleanup");
}
