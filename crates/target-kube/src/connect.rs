//! Connections: one client, discovery and watch hub per kubeconfig and context,
//! shared by every target made through the same [`KubeConnections`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use driftless_model::TargetError;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::discovery::DiscoveryCache;
use crate::{KubeTarget, validate_app, watch};

impl KubeTarget {
    /// A target for `app` through the kubeconfig (`$KUBECONFIG` or `~/.kube/config`;
    /// `context` names a context, else the current one) or, without a kubeconfig, the
    /// in-cluster service account. `namespace` is the app's namespace (default
    /// `default`).
    ///
    /// Errors: [`TargetError::Unsupported`] for a bad app name or an unknown context,
    /// [`TargetError::Unavailable`] when no configuration can be loaded.
    pub async fn connect(
        app: &str,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<KubeTarget, TargetError> {
        Self::connect_with(None, app, context, namespace).await
    }

    /// As [`KubeTarget::connect`], reading the kubeconfig at `kubeconfig` when given
    /// (then never the in-cluster configuration).
    pub async fn connect_with(
        kubeconfig: Option<&Path>,
        app: &str,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<KubeTarget, TargetError> {
        KubeConnections::default()
            .connect(kubeconfig, app, context, namespace)
            .await
    }
}

/// Connections shared by the targets of one engine: every target that names the same
/// kubeconfig and context gets the same client (one connection pool, one discovery) and
/// the same watchers, so 1,000 apps on one cluster hold one watch per kind and namespace.
/// Cheap to clone; create it on the tokio runtime the targets will run on.
#[derive(Clone, Default)]
pub struct KubeConnections {
    clients: Arc<std::sync::Mutex<HashMap<String, SharedClient>>>,
    watch_hubs: watch::WatchHubs,
}

/// A client made from one kubeconfig and context, kept for every target that names them.
#[derive(Clone)]
struct SharedClient {
    client: Client,
    discovery: DiscoveryCache,
    cluster: String,
}

impl KubeConnections {
    /// As [`KubeTarget::connect_with`], sharing the client and watchers with every target
    /// this value made for the same kubeconfig and context.
    pub async fn connect(
        &self,
        kubeconfig: Option<&Path>,
        app: &str,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<KubeTarget, TargetError> {
        validate_app(app)?;
        let key = format!(
            "{}\u{0}{}",
            kubeconfig.map_or_else(|| "$KUBECONFIG".to_owned(), |p| p.display().to_string()),
            context.unwrap_or("")
        );
        let known = self
            .clients
            .lock()
            .expect("client cache lock")
            .get(&key)
            .cloned();
        let shared = match known {
            Some(shared) => shared,
            None => {
                let made = Self::client(kubeconfig, context).await?;
                self.clients
                    .lock()
                    .expect("client cache lock")
                    .entry(key.clone())
                    .or_insert(made)
                    .clone()
            }
        };
        let mut target = KubeTarget::new(shared.client, app, namespace)?;
        target.discovery = shared.discovery;
        target.cluster = shared.cluster;
        target.client_key = key;
        target.watch_hubs = self.watch_hubs.clone();
        Ok(target)
    }

    /// A client for the kubeconfig and context (or the in-cluster service account).
    async fn client(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<SharedClient, TargetError> {
        let read = |path: Option<&Path>| {
            match path {
                Some(p) => Kubeconfig::read_from(p),
                None => Kubeconfig::read(),
            }
            .map_err(|e| TargetError::Unavailable(format!("reading the kubeconfig: {e}")))
        };
        let (config, cluster) = if context.is_some() || kubeconfig.is_some() {
            let kubeconfig = read(kubeconfig)?;
            let ctx = match context {
                Some(ctx) => ctx.to_owned(),
                None => kubeconfig.current_context.clone().ok_or_else(|| {
                    TargetError::Unsupported(
                        "the kubeconfig names no current context; name one".to_owned(),
                    )
                })?,
            };
            if !kubeconfig.contexts.iter().any(|c| c.name == ctx) {
                let known: Vec<&str> = kubeconfig
                    .contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(TargetError::Unsupported(format!(
                    "the kubeconfig has no context {ctx:?} (it has: {})",
                    known.join(", ")
                )));
            }
            let options = KubeConfigOptions {
                context: Some(ctx.clone()),
                ..KubeConfigOptions::default()
            };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    TargetError::Unavailable(format!("kubeconfig context {ctx:?}: {e}"))
                })?;
            (config, ctx)
        } else {
            let config = Config::infer().await.map_err(|e| {
                TargetError::Unavailable(format!(
                    "no Kubernetes configuration (kubeconfig or in-cluster): {e}"
                ))
            })?;
            let cluster = config.cluster_url.to_string();
            (config, cluster)
        };
        let mut config = config;
        // Name ourselves, as kubectl and client-go do: audit logs and API priority rules
        // match on the user agent.
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("driftless/", env!("CARGO_PKG_VERSION"))),
        ));
        let client = Client::try_from(config)
            .map_err(|e| TargetError::Unavailable(format!("Kubernetes client: {e}")))?;
        Ok(SharedClient {
            discovery: DiscoveryCache::new(client.clone()),
            client,
            cluster,
        })
    }
}
