//! The inventory ConfigMap `driftless-inventory-<app>` in the app's namespace, and the
//! namespace itself when the app brings it (or asks for it) and it is missing.

use std::collections::BTreeSet;

use driftless_model::{Inventory, ObjectRef, TargetError};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::api_errors::{kube_error_text, namespace_missing};
use crate::manifest::{self};
use crate::{FIELD_MANAGER, INVENTORY_KEY, KubeTarget, OWNER_LABEL};

impl KubeTarget {
    /// Creates namespace `name` by server-side apply: labelled as the app's when Git holds
    /// it (the apply that follows fills in the rest of Git's Namespace), bare when it is
    /// made for `createNamespace`.
    pub(crate) async fn create_namespace(
        &self,
        name: &str,
        from_git: bool,
    ) -> Result<(), TargetError> {
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        });
        if from_git {
            manifest::set_owner_label(&mut body, &self.app);
        }
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
        );
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| {
            TargetError::Unavailable(format!(
                "creating namespace {name:?}: {}",
                kube_error_text(&e)
            ))
        })?;
        tracing::info!(app = %self.app, namespace = name, from_git, "namespace created before the inventory");
        Ok(())
    }

    pub(crate) async fn read_inventory(&self) -> Result<Option<Inventory>, TargetError> {
        let id = self.inventory_id();
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &id.namespace,
            &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        let found = api.get_opt(&id.name).await.map_err(|e| {
            TargetError::Unavailable(format!("reading inventory {id}: {}", kube_error_text(&e)))
        })?;
        let Some(cm) = found else {
            return Ok(None);
        };
        let text = cm
            .data
            .get("data")
            .and_then(|d| d.get(INVENTORY_KEY))
            .and_then(Value::as_str)
            .unwrap_or("[]");
        let entries: BTreeSet<ObjectRef> =
            serde_json::from_str(text).map_err(|e| TargetError::Rejected {
                id: id.clone(),
                message: format!("the inventory's data.{INVENTORY_KEY} is not a list of ids: {e}"),
            })?;
        Ok(Some(Inventory { entries }))
    }

    pub(crate) async fn write_inventory(&self, inventory: &Inventory) -> Result<(), TargetError> {
        let id = self.inventory_id();
        let mut refreshed = false;
        let mut entries = BTreeSet::new();
        for raw in &inventory.entries {
            entries.insert(self.normalize_id(raw, &mut refreshed).await?.0);
        }
        let text = serde_json::to_string(&entries)
            .map_err(|e| TargetError::Unavailable(format!("encoding inventory {id}: {e}")))?;
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": id.name,
                "namespace": id.namespace,
                "labels": {OWNER_LABEL: self.app},
            },
            "data": {INVENTORY_KEY: text},
        });
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &id.namespace,
            &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut saved = api.patch(&id.name, &params, &Patch::Apply(&body)).await;
        // The inventory is the first thing written in a sync, so an app that brings its
        // own namespace (or asks for it with createNamespace) gets it here, first.
        if let Err(e) = &saved
            && namespace_missing(e)
        {
            let from_git = inventory.entries.iter().any(|entry| {
                entry.group.is_empty() && entry.kind == "Namespace" && entry.name == id.namespace
            });
            if from_git || self.create_namespace {
                self.create_namespace(&id.namespace, from_git).await?;
                saved = api.patch(&id.name, &params, &Patch::Apply(&body)).await;
            }
        }
        saved.map_err(|e| {
            TargetError::Unavailable(format!("saving inventory {id}: {}", kube_error_text(&e)))
        })?;
        Ok(())
    }
}
