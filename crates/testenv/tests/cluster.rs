//! The shared cluster is a real Kubernetes control plane: server-side apply, CRDs, watches,
//! the controller manager's controllers and kubectl all work against it.
//!
//! All cluster tests live in this one file so a run without `testenv/run` starts only one
//! control plane.

use std::future::Future;
use std::process::Command;
use std::time::Duration;

use driftless_testenv::{cluster, tool};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, WatchEvent,
    WatchParams,
};
use kube::{Api, ResourceExt};
use serde_json::json;

const MANAGER: &str = "driftless-testenv-test";

/// Polls `check` until it yields a value, failing the test after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn server_side_apply_creates_then_updates_a_configmap() {
    let cluster = cluster().await;
    let ns = cluster.namespace("ssa").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns.name());
    let pp = PatchParams::apply(MANAGER).force();
    let cm = |value: &str| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"mode": value},
        })
    };

    let created = api
        .patch("settings", &pp, &Patch::Apply(cm("one")))
        .await
        .expect("apply");
    assert_eq!(
        created
            .data
            .as_ref()
            .and_then(|d| d.get("mode"))
            .map(String::as_str),
        Some("one")
    );
    let updated = api
        .patch("settings", &pp, &Patch::Apply(cm("two")))
        .await
        .expect("re-apply");
    assert_eq!(
        updated
            .data
            .as_ref()
            .and_then(|d| d.get("mode"))
            .map(String::as_str),
        Some("two")
    );
    assert_eq!(updated.uid(), created.uid(), "the same object was updated");
    let managers: Vec<_> = updated
        .managed_fields()
        .iter()
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, [MANAGER]);

    let live = api.get("settings").await.expect("get");
    assert_eq!(
        live.data.and_then(|mut d| d.remove("mode")).as_deref(),
        Some("two")
    );
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn crd_becomes_established_and_serves_custom_resources() {
    let cluster = cluster().await;
    let ns = cluster.namespace("crd").await;
    // Cluster-scoped, so unique per namespace: runs may share a cluster.
    let group = format!("{}.testenv.driftless.example", ns.name());
    let crd_name = format!("widgets.{group}");
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let pp = PatchParams::apply(MANAGER).force();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                }}},
            }],
        },
    });
    crds.patch(&crd_name, &pp, &Patch::Apply(crd))
        .await
        .expect("apply CRD");
    eventually("CRD Established", Duration::from_secs(60), || async {
        let crd = crds.get(&crd_name).await.expect("get CRD");
        let conditions = crd.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;

    let gvk = GroupVersionKind::gvk(&group, "v1", "Widget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns.name(), &resource);
    let widget = |spec: serde_json::Value| {
        Patch::Apply(json!({
            "apiVersion": format!("{group}/v1"), "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": spec,
        }))
    };
    widgets
        .patch("w1", &pp, &widget(json!({"size": 3})))
        .await
        .expect("apply custom resource");
    let live = widgets.get("w1").await.expect("get custom resource");
    assert_eq!(live.data["spec"], json!({"size": 3}));
    // The CRD's schema is enforced: a real API server answered.
    let refused = widgets
        .patch("w1", &pp, &widget(json!({"size": 3, "colour": "red"})))
        .await;
    let err = refused
        .expect_err("a field outside the schema is refused")
        .to_string();
    assert!(
        err.contains(".spec.colour: field not declared in schema"),
        "{err}"
    );

    crds.delete(&crd_name, &Default::default())
        .await
        .expect("delete CRD");
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_watch_sees_a_change() {
    let cluster = cluster().await;
    let ns = cluster.namespace("watch").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns.name());
    let pp = PatchParams::apply(MANAGER).force();
    let cm = |value: &str| {
        Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "watched"},
            "data": {"value": value},
        }))
    };
    let created = api
        .patch("watched", &pp, &cm("before"))
        .await
        .expect("create");
    let version = created
        .resource_version()
        .expect("a created object has a resourceVersion");

    let wp = WatchParams::default()
        .fields("metadata.name=watched")
        .timeout(60);
    let mut events = api.watch(&wp, &version).await.expect("watch").boxed();
    api.patch("watched", &pp, &cm("after"))
        .await
        .expect("change");

    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.try_next().await.expect("watch event") {
            match event {
                WatchEvent::Modified(cm) => return cm,
                WatchEvent::Bookmark(_) => continue,
                other => panic!("unexpected watch event {other:?}"),
            }
        }
        panic!("the watch ended without an event")
    })
    .await
    .expect("a Modified event within 30s");
    assert_eq!(
        seen.data.and_then(|mut d| d.remove("value")).as_deref(),
        Some("after")
    );
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_deployment_gets_a_replicaset_from_the_controller_manager() {
    let cluster = cluster().await;
    let ns = cluster.namespace("deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns.name());
    let replicasets: Api<ReplicaSet> = Api::namespaced(cluster.client(), ns.name());
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            // No kubelet runs here, so the image is never pulled.
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            },
        },
    });
    let pp = PatchParams::apply(MANAGER).force();
    let applied = deployments
        .patch("web", &pp, &Patch::Apply(deployment))
        .await
        .expect("apply");
    let uid = applied.uid().expect("a created object has a uid");

    let rs = eventually(
        "a ReplicaSet owned by the Deployment",
        Duration::from_secs(90),
        || async {
            let list = replicasets
                .list(&ListParams::default().labels("app=web"))
                .await
                .expect("list");
            list.items
                .into_iter()
                .find(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
        },
    )
    .await;
    assert_eq!(rs.spec.replicas, Some(1));
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn deleting_a_namespace_finalizes_it() {
    let cluster = cluster().await;
    let ns = cluster.namespace("finalize").await;
    let name = ns.name().to_owned();
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), &name);
    let pp = PatchParams::apply(MANAGER).force();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "content"}});
    cms.patch("content", &pp, &Patch::Apply(cm))
        .await
        .expect("apply");

    ns.cleanup().await.expect("delete");
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    // The namespace controller empties it and drops the 'kubernetes' finalizer.
    eventually("the namespace gone", Duration::from_secs(120), || async {
        namespaces
            .get_opt(&name)
            .await
            .expect("get namespace")
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn kubectl_from_testenv_reads_the_kubeconfig() {
    let cluster = cluster().await;
    let ns = cluster.namespace("kubectl").await;
    let out = Command::new(tool("kubectl"))
        .args(["get", "namespace", ns.name(), "--output=name"])
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("namespace/{}", ns.name())
    );
}

#[tokio::test]
async fn dropping_a_test_namespace_deletes_it() {
    let cluster = cluster().await;
    let ns = cluster.namespace("dropped").await;
    let name = ns.name().to_owned();
    drop(ns); // inside the test's runtime: must neither panic nor block forever
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let live = namespaces.get_opt(&name).await.expect("get namespace");
    // Either already gone or on its way: the delete request was made before drop returned.
    assert!(
        live.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some()),
        "{name} still live"
    );
}
