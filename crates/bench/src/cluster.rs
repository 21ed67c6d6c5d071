//! What the benchmark sees of the cluster, independently of the tool under test: a watch
//! on the benchmark's objects (which revision each one carries), the intruder's patch,
//! and the apiserver's audit log to count each client's API requests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::sync::watch;

pub const OBJECT_LABEL: &str = "bench.driftless.dev/object";
pub const REV_ANNOTATION: &str = "bench.driftless.dev/rev";
pub const HARNESS_AGENT: &str = "driftless-bench";

/// A client for the testenv cluster that names itself `driftless-bench` in the audit log.
pub async fn client() -> Result<Client> {
    let mut config = Config::infer()
        .await
        .context("KUBECONFIG (run under testenv/run)")?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(HARNESS_AGENT),
    ));
    Ok(Client::try_from(config)?)
}

#[derive(Clone, Debug, Default)]
struct Seen {
    rev: String,
    /// `data.key` of ConfigMaps: what the intruder changes.
    key: Option<String>,
    resource_version: u64,
}

/// Watches ConfigMaps, Deployments and Services labelled as benchmark objects in one
/// namespace and keeps, per object, the revision it carries.
pub struct Observer {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    changed: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Observer {
    pub async fn start(client: &Client, namespace: &str) -> Result<Observer> {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let mut tasks = Vec::new();
        let mut ready = Vec::new();
        for resource in [
            ApiResource::erase::<ConfigMap>(&()),
            ApiResource::erase::<Deployment>(&()),
            ApiResource::erase::<Service>(&()),
        ] {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &resource);
            let config = watcher::Config::default().labels(&format!("{OBJECT_LABEL}=true"));
            let (seen, tx) = (seen.clone(), tx.clone());
            let kind = resource.kind.clone();
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
            ready.push(ready_rx);
            tasks.push(tokio::spawn(async move {
                let mut ready_tx = Some(ready_tx);
                let mut stream = watcher::watcher(api, config).boxed();
                while let Some(event) = stream.next().await {
                    let Ok(event) = event else { continue };
                    let mut map = seen.lock().expect("observer lock");
                    match event {
                        watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                            map.insert(
                                format!("{kind}/{}", obj.metadata.name.clone().unwrap_or_default()),
                                seen_of(&obj),
                            );
                        }
                        watcher::Event::Delete(obj) => {
                            map.remove(&format!(
                                "{kind}/{}",
                                obj.metadata.name.clone().unwrap_or_default()
                            ));
                        }
                        watcher::Event::Init => {}
                        watcher::Event::InitDone => {
                            if let Some(r) = ready_tx.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    drop(map);
                    tx.send_modify(|n| *n += 1);
                }
            }));
        }
        for r in ready {
            tokio::time::timeout(Duration::from_secs(60), r)
                .await
                .context("the observer's watch did not start within 60 s")??;
        }
        Ok(Observer {
            seen,
            changed: rx,
            tasks,
        })
    }

    /// Waits until exactly `count` objects exist and all carry revision `rev`.
    pub async fn wait_all(
        &mut self,
        rev: usize,
        count: usize,
        limit: Duration,
    ) -> Result<Duration> {
        let start = Instant::now();
        let want = rev.to_string();
        loop {
            let (matching, total) = {
                let map = self.seen.lock().expect("observer lock");
                (map.values().filter(|s| s.rev == want).count(), map.len())
            };
            if matching == count && total == count {
                return Ok(start.elapsed());
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                bail!(
                    "after {limit:?}: {matching} of {count} objects at revision {rev} ({total} seen)"
                );
            }
            let _ = tokio::time::timeout(left, self.changed.changed()).await;
        }
    }

    /// Waits until ConfigMap `name` shows `data.key == want` at a resourceVersion after `after`.
    pub async fn wait_key(
        &mut self,
        name: &str,
        want: &str,
        after: u64,
        limit: Duration,
    ) -> Result<Duration> {
        let start = Instant::now();
        let id = format!("ConfigMap/{name}");
        loop {
            let done = {
                let map = self.seen.lock().expect("observer lock");
                map.get(&id)
                    .is_some_and(|s| s.resource_version > after && s.key.as_deref() == Some(want))
            };
            if done {
                return Ok(start.elapsed());
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                bail!("ConfigMap {name} not restored to {want:?} within {limit:?}");
            }
            let _ = tokio::time::timeout(left, self.changed.changed()).await;
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn seen_of(obj: &DynamicObject) -> Seen {
    Seen {
        rev: obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REV_ANNOTATION))
            .cloned()
            .unwrap_or_default(),
        key: obj
            .data
            .get("data")
            .and_then(|d| d.get("key"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: obj
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// Another field manager changes `data.key` of ConfigMap `name`, as `kubectl edit` would;
/// returns the resourceVersion of the drifted object.
pub async fn intrude(client: &Client, namespace: &str, name: &str, value: &str) -> Result<u64> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let patched = api
        .patch(
            name,
            &PatchParams {
                field_manager: Some("intruder".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"key": value}})),
        )
        .await
        .with_context(|| format!("intruder patch of ConfigMap {namespace}/{name}"))?;
    Ok(patched
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

pub async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("create namespace {name}")),
    }
}

/// Deletes a namespace and waits until it is gone (the controller-manager empties it);
/// a zero `limit` does not wait.
pub async fn delete_namespace(client: &Client, name: &str, limit: Duration) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("delete namespace {name}")),
    }
    if limit.is_zero() {
        return Ok(());
    }
    let deadline = Instant::now() + limit;
    while api.get_opt(name).await?.is_some() {
        if Instant::now() > deadline {
            bail!("namespace {name} still there after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Who made an API request, from the audit event's user agent.
fn client_of(user_agent: &str) -> &'static str {
    if user_agent.starts_with("driftless/") {
        "driftless"
    } else if user_agent.starts_with("source-controller")
        || user_agent.starts_with("kustomize-controller")
    {
        "flux"
    } else if user_agent.starts_with(HARNESS_AGENT) || user_agent.starts_with("kubectl") {
        "harness"
    } else {
        "other"
    }
}

/// Counts API requests per client from the apiserver's audit log (testenv/run --audit-log),
/// reading only what was appended since the last call.
pub struct AuditLog {
    path: Option<PathBuf>,
    offset: u64,
}

impl AuditLog {
    pub fn from_env() -> AuditLog {
        let path = std::env::var_os("DRIFTLESS_TESTENV_AUDIT_LOG").map(PathBuf::from);
        let mut log = AuditLog { path, offset: 0 };
        let _ = log.take();
        log
    }

    pub fn enabled(&self) -> bool {
        self.path.is_some()
    }

    /// Requests per client since the last call: one per request, counted when complete
    /// (a watch counts once, when it starts streaming).
    pub fn take(&mut self) -> HashMap<&'static str, u64> {
        use std::io::{Read, Seek, SeekFrom};
        let mut counts = HashMap::new();
        let Some(path) = &self.path else {
            return counts;
        };
        let Ok(mut file) = std::fs::File::open(path) else {
            return counts;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return counts;
        }
        let mut text = String::new();
        if file.read_to_string(&mut text).is_err() {
            return counts;
        }
        // Only whole lines: a line being written is read next time.
        let end = text.rfind('\n').map_or(0, |i| i + 1);
        self.offset += end as u64;
        for line in text[..end].lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let stage = event["stage"].as_str().unwrap_or("");
            let watch = event["verb"] == "watch";
            if (watch && stage == "ResponseStarted") || (!watch && stage == "ResponseComplete") {
                *counts
                    .entry(client_of(event["userAgent"].as_str().unwrap_or("")))
                    .or_insert(0) += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_told_apart_by_user_agent() {
        assert_eq!(client_of("driftless/0.1.0"), "driftless");
        assert_eq!(
            client_of("kustomize-controller/v0.0.0 (linux/amd64) kubernetes/$Format"),
            "flux"
        );
        assert_eq!(client_of("source-controller/v0.0.0"), "flux");
        assert_eq!(client_of("driftless-bench"), "harness");
        assert_eq!(client_of("kube-controller-manager/v1.37.2"), "other");
    }

    #[test]
    fn audit_lines_are_counted_once_per_request() {
        let path = std::env::temp_dir().join(format!("bench-audit-{}.log", std::process::id()));
        let line = |verb: &str, stage: &str, agent: &str| {
            format!(
                "{}\n",
                json!({"verb": verb, "stage": stage, "userAgent": agent})
            )
        };
        let mut text = line("get", "ResponseComplete", "driftless/0.1.0");
        text += &line("watch", "ResponseStarted", "driftless/0.1.0");
        text += &line("watch", "ResponseComplete", "driftless/0.1.0");
        text += &line("patch", "ResponseComplete", "kustomize-controller/v1");
        std::fs::write(&path, &text).expect("write");
        let mut log = AuditLog {
            path: Some(path.clone()),
            offset: 0,
        };
        let counts = log.take();
        assert_eq!(counts.get("driftless"), Some(&2));
        assert_eq!(counts.get("flux"), Some(&1));
        // A half-written line waits for its end.
        std::fs::write(&path, format!("{text}{{\"verb\":\"get\"")).expect("append");
        assert!(log.take().is_empty());
        let _ = std::fs::remove_file(path);
    }
}
