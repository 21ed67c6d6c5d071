//! A cache of the cluster's API discovery: which kinds exist, at which versions, and
//! whether they are namespaced. Refreshed on demand when an unknown kind shows up.

use std::collections::HashMap;
use std::sync::Arc;

use kube::Client;
use kube::core::{ApiResource, discovery::Scope};
use tokio::sync::RwLock;

/// One served kind at one version.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

#[derive(Default)]
struct Index {
    /// (group, version, kind) → kind.
    exact: HashMap<(String, String, String), Kind>,
    /// (group, kind) → the kind at the group's preferred version.
    preferred: HashMap<(String, String), Kind>,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The API server could not be asked.
    #[error("API discovery failed: {0}")]
    Request(#[source] kube::Error),
}

/// Discovery results shared by every call of one target.
#[derive(Clone)]
pub struct DiscoveryCache {
    client: Client,
    index: Arc<RwLock<Option<Index>>>,
}

impl DiscoveryCache {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            index: Arc::new(RwLock::new(None)),
        }
    }

    /// Asks the server again, replacing the cache.
    pub async fn refresh(&self) -> Result<(), DiscoveryError> {
        let discovery = kube::Discovery::new(self.client.clone())
            .run_aggregated()
            .await
            .map_err(DiscoveryError::Request)?;
        let mut index = Index::default();
        for group in discovery.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    let kind = Kind {
                        namespaced: caps.scope == Scope::Namespaced,
                        resource: ar.clone(),
                    };
                    index.exact.insert(
                        (ar.group.clone(), ar.version.clone(), ar.kind.clone()),
                        kind,
                    );
                }
            }
            for (ar, caps) in group.recommended_resources() {
                let kind = Kind {
                    namespaced: caps.scope == Scope::Namespaced,
                    resource: ar.clone(),
                };
                index
                    .preferred
                    .insert((ar.group.clone(), ar.kind.clone()), kind);
            }
        }
        tracing::debug!(kinds = index.exact.len(), "API discovery refreshed");
        *self.index.write().await = Some(index);
        Ok(())
    }

    /// The kind at `version` (or at the preferred version when `version` is `None`).
    /// Loads discovery the first time; when the kind is unknown and `refreshed` is false,
    /// refreshes once and sets `refreshed`. `Ok(None)`: not served, even after that.
    pub async fn resolve(
        &self,
        group: &str,
        version: Option<&str>,
        kind: &str,
        refreshed: &mut bool,
    ) -> Result<Option<Kind>, DiscoveryError> {
        if self.index.read().await.is_none() {
            self.refresh().await?;
        }
        loop {
            let found = {
                let guard = self.index.read().await;
                let index = guard.as_ref().expect("loaded above");
                match version {
                    Some(v) => index
                        .exact
                        .get(&(group.to_owned(), v.to_owned(), kind.to_owned()))
                        .cloned(),
                    None => index
                        .preferred
                        .get(&(group.to_owned(), kind.to_owned()))
                        .or_else(|| {
                            index
                                .exact
                                .iter()
                                .find(|((g, _, k), _)| g == group && k == kind)
                                .map(|(_, found)| found)
                        })
                        .cloned(),
                }
            };
            if found.is_some() || *refreshed {
                return Ok(found);
            }
            *refreshed = true;
            self.refresh().await?;
        }
    }
}
