//! Targets connected through one `KubeConnections` share their watchers: three apps
//! watching one kind in one namespace hold one watch on the apiserver, and each app hears
//! only about its own objects. Run with `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1)`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_model::{DriftNotifier, ObjectRef, Target};
use driftless_target_kube::{KubeConnections, OWNER_LABEL};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

const GROUP: &str = "watch.driftless.test";
const PLURAL: &str = "sharedprobes";

/// Open watches of our kind, from the apiserver's own gauge (all clients: the kind is
/// this test's alone).
async fn open_watches(client: &kube::Client) -> u64 {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let text = client
        .request_text(request)
        .await
        .expect("apiserver /metrics");
    text.lines()
        .filter(|l| l.starts_with("apiserver_longrunning_requests{"))
        .filter(|l| l.contains(&format!("resource=\"{PLURAL}\"")) && l.contains("verb=\"WATCH\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn eventually(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_on_one_cluster_share_one_watch_and_hear_only_their_objects() {
    let cluster = driftless_testenv::cluster().await;
    let ns = cluster.namespace("shared-watch").await;
    let namespace = ns.name().to_owned();
    let client = cluster.client();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "sharedprobe", "kind": "SharedProbe"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]
        }
    });
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            &format!("{PLURAL}.{GROUP}"),
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD");
    let resource = ApiResource {
        group: GROUP.into(),
        version: "v1".into(),
        api_version: format!("{GROUP}/v1"),
        kind: "SharedProbe".into(),
        plural: PLURAL.into(),
    };
    let probes: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
    eventually("the CRD to be served", async || {
        probes.list(&Default::default()).await.is_ok()
    })
    .await;

    let apps = ["app-a", "app-b", "app-c"];
    for app in apps {
        let probe = json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "SharedProbe",
            "metadata": {"name": app, "labels": {OWNER_LABEL: app}},
            "spec": {"size": 1}
        });
        probes
            .patch(app, &PatchParams::apply("test"), &Patch::Apply(&probe))
            .await
            .expect("probe");
    }
    let before = open_watches(&client).await;

    let connections = KubeConnections::default();
    let mut guards = Vec::new();
    let mut events = Vec::new();
    for app in apps {
        let target = connections
            .connect(Some(cluster.kubeconfig_path()), app, None, Some(&namespace))
            .await
            .expect("connect");
        let id = ObjectRef {
            group: GROUP.into(),
            kind: "SharedProbe".into(),
            namespace: namespace.clone(),
            name: app.into(),
        };
        let (notify, rx) = notifier();
        guards.push(
            target
                .watch(BTreeSet::from([id]), notify)
                .await
                .expect("watch"),
        );
        events.push(rx);
    }
    eventually("one watch for three apps", async || {
        open_watches(&client).await == before + 1
    })
    .await;

    // app-b's object changes: app-b hears it, the others do not.
    probes
        .patch(
            "app-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .expect("patch");
    let heard = tokio::time::timeout(Duration::from_secs(10), events[1].recv())
        .await
        .expect("app-b hears of its object")
        .expect("channel open");
    assert_eq!(heard.name, "app-b");
    // One event is handed to every subscriber in the same call: by now the others had it.
    assert!(
        events[0].try_recv().is_err(),
        "app-a heard of app-b's object"
    );
    assert!(
        events[2].try_recv().is_err(),
        "app-c heard of app-b's object"
    );

    // Two apps leave: the watch stays for the third; the last one out stops it.
    guards.truncate(1);
    probes
        .patch(
            "app-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}})),
        )
        .await
        .expect("patch");
    let heard = tokio::time::timeout(Duration::from_secs(10), events[0].recv())
        .await
        .expect("app-a still hears")
        .expect("channel open");
    assert_eq!(heard.name, "app-a");
    guards.clear();
    eventually("the watch to stop", async || {
        open_watches(&client).await == before
    })
    .await;
    ns.cleanup().await.expect("cleanup");
}
