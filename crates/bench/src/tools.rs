//! The two tools under test, each driven the way its users drive it: driftless through its
//! config file, binary, API and webhook; Flux through its CRDs and controllers, with the
//! `reconcile.fluxcd.io/requestedAt` annotation that its CLI and Receiver set.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::process::{Child, Command};

/// Which tool, for tables and file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Driftless,
    Flux,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Driftless => "driftless",
            Which::Flux => "flux",
        }
    }
}

/// What the tools are told about one benchmark set.
pub struct Deployment<'a> {
    pub set: &'a str,
    pub repo_url: &'a str,
    pub namespace: &'a str,
    pub apps: usize,
    /// How often each tool asks Git whether the branch moved.
    pub poll: &'a str,
}

pub fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn now_stamp() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

async fn stop_child(child: &mut Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .is_ok()
        {
            return;
        }
        eprintln!("bench: {name} ignored SIGTERM for 30 s; killing it");
    }
    let _ = child.kill().await;
}

// ---------------------------------------------------------------------------------------

pub struct Driftless {
    bin: PathBuf,
    dir: PathBuf,
    kubeconfig: PathBuf,
    child: Option<Child>,
    base: String,
    http: reqwest::Client,
    secret: String,
}

impl Driftless {
    pub fn new(bin: &Path, dir: &Path, kubeconfig: &Path) -> Result<Driftless> {
        std::fs::create_dir_all(dir)?;
        Ok(Driftless {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            kubeconfig: kubeconfig.to_owned(),
            child: None,
            base: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()?,
            secret: format!("bench-{}", std::process::id()),
        })
    }

    fn write_config(&self, d: &Deployment<'_>) -> Result<PathBuf> {
        let mut config = String::from(
            "server:\n  webhooks:\n    generic: { secretEnv: DRIFTLESS_WEBHOOK_SECRET }\napps:\n",
        );
        for i in 0..d.apps {
            let name = app_name(i);
            config.push_str(&format!(
                "  - name: {name}\n    source: {{ repo: \"{}\", ref: main, path: apps/{name}, interval: {} }}\n    target:\n      kubernetes: {{ namespace: {}, kubeconfig: \"{}\" }}\n    sync: {{ auto: true, prune: true, selfHeal: true, force: true }}\n",
                d.repo_url,
                d.poll,
                d.namespace,
                self.kubeconfig.display()
            ));
        }
        let path = self.dir.join(format!("{}.yaml", d.set));
        std::fs::write(&path, config)?;
        Ok(path)
    }

    /// Starts `driftless serve` for the set (state kept across restarts within the set).
    pub async fn start(&mut self, d: &Deployment<'_>) -> Result<()> {
        let config = self.write_config(d)?;
        let port = free_port()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", d.set)))?;
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("-c")
            .arg(&config)
            .arg("--state")
            .arg(self.dir.join(format!("{}.state", d.set)))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("DRIFTLESS_WEBHOOK_SECRET", &self.secret)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        self.child = Some(child);
        self.base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "driftless serve exited ({status}); see {}",
                    self.dir.join(format!("{}.log", d.set)).display()
                );
            }
            if self
                .http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("driftless serve did not answer /healthz within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.child
            .as_ref()
            .and_then(Child::id)
            .into_iter()
            .collect()
    }

    /// The generic webhook, signed, naming the repository and branch.
    pub async fn notify(&self, repo_url: &str) -> Result<()> {
        let body = serde_json::to_vec(&json!({"ref": "refs/heads/main", "repository": repo_url}))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())?;
        mac.update(&body);
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let response = self
            .http
            .post(format!("{}/hooks/generic", self.base))
            .header("X-Driftless-Signature", format!("sha256={signature}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "webhook answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// A sync when nothing changed: a dry-run of every object, then nothing to apply.
    pub async fn noop(&self) -> Result<Duration> {
        let start = Instant::now();
        let response = self
            .http
            .post(format!("{}/api/v1/apps/{}/sync", self.base, app_name(0)))
            // The server refuses state-changing calls a browser page could forge.
            .header("x-driftless-request", "1")
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "sync answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        let answer: Value = response.json().await?;
        if !answer["record"].is_null() {
            bail!("a no-op sync recorded a change: {answer}");
        }
        Ok(start.elapsed())
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, "driftless serve").await;
        }
    }
}

// ---------------------------------------------------------------------------------------

fn git_repository() -> ApiResource {
    ApiResource {
        group: "source.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "source.toolkit.fluxcd.io/v1".into(),
        kind: "GitRepository".into(),
        plural: "gitrepositories".into(),
    }
}

fn kustomization() -> ApiResource {
    ApiResource {
        group: "kustomize.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
        kind: "Kustomization".into(),
        plural: "kustomizations".into(),
    }
}

pub const FLUX_NAMESPACE: &str = "flux-system";

pub struct Flux {
    bin: PathBuf,
    dir: PathBuf,
    client: Client,
    children: Vec<(String, Child)>,
    /// The Kustomization interval: how often Flux re-applies (and so heals drift).
    pub kustomization_interval: String,
    /// Added to both controllers' flags.
    pub extra_flags: Vec<String>,
    set: String,
}

impl Flux {
    pub fn new(
        bin: &Path,
        dir: &Path,
        client: &Client,
        kustomization_interval: &str,
    ) -> Result<Flux> {
        for b in ["source-controller", "kustomize-controller"] {
            if !bin.join(b).is_file() {
                bail!(
                    "{} is missing: build it with testenv/build --flux",
                    bin.join(b).display()
                );
            }
        }
        std::fs::create_dir_all(dir)?;
        Ok(Flux {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            client: client.clone(),
            children: Vec::new(),
            kustomization_interval: kustomization_interval.to_owned(),
            extra_flags: Vec::new(),
            set: String::new(),
        })
    }

    /// Applies Flux's CRDs (from the same modules the controllers were built from).
    pub async fn install_crds(&self) -> Result<()> {
        let crds = self.bin.join("flux-crds");
        let status = Command::new(self.bin.join("kubectl"))
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(&crds)
            .stdout(Stdio::null())
            .status()
            .await?;
        if !status.success() {
            bail!("kubectl apply -f {} failed", crds.display());
        }
        let status = Command::new(self.bin.join("kubectl"))
            .args([
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/gitrepositories.source.toolkit.fluxcd.io",
                "crd/kustomizations.kustomize.toolkit.fluxcd.io",
            ])
            .stdout(Stdio::null())
            .status()
            .await?;
        if !status.success() {
            bail!("Flux CRDs not Established within 60 s");
        }
        crate::cluster::create_namespace(&self.client, FLUX_NAMESPACE).await
    }

    fn spawn(&mut self, name: &str, args: &[String]) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}-{name}.log", self.set)))?;
        let child = Command::new(self.bin.join(name))
            .args(args)
            .args(&self.extra_flags)
            .env("RUNTIME_NAMESPACE", FLUX_NAMESPACE)
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// Starts both controllers and creates one GitRepository and one Kustomization per app.
    pub async fn start(&mut self, d: &Deployment<'_>) -> Result<()> {
        self.set = d.set.to_owned();
        let storage = self.dir.join(format!("{}-storage", d.set));
        std::fs::create_dir_all(&storage)?;
        let storage_port = free_port()?;
        let addr = |p: u16| format!("127.0.0.1:{p}");
        let source_args = vec![
            "--enable-leader-election=false".into(),
            format!("--metrics-addr={}", addr(free_port()?)),
            format!("--health-addr={}", addr(free_port()?)),
            format!("--storage-path={}", storage.display()),
            format!("--storage-addr={}", addr(storage_port)),
            format!("--storage-adv-addr={}", addr(storage_port)),
        ];
        self.spawn("source-controller", &source_args)?;
        let kustomize_args = vec![
            "--enable-leader-election=false".into(),
            format!("--metrics-addr={}", addr(free_port()?)),
            format!("--health-addr={}", addr(free_port()?)),
        ];
        self.spawn("kustomize-controller", &kustomize_args)?;

        let repos: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), FLUX_NAMESPACE, &git_repository());
        let repo = json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": d.set, "namespace": FLUX_NAMESPACE},
            "spec": {"url": d.repo_url, "interval": d.poll, "ref": {"branch": "main"}, "timeout": "60s"}
        });
        let ssa = PatchParams::apply(crate::cluster::HARNESS_AGENT).force();
        repos
            .patch(d.set, &ssa, &Patch::Apply(repo))
            .await
            .context("create the GitRepository")?;
        let ks: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), FLUX_NAMESPACE, &kustomization());
        for i in 0..d.apps {
            let name = format!("{}-{}", d.set, app_name(i));
            let k = json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
                "spec": {
                    "interval": self.kustomization_interval,
                    "path": format!("./apps/{}", app_name(i)),
                    "prune": true,
                    "sourceRef": {"kind": "GitRepository", "name": d.set},
                    "targetNamespace": d.namespace,
                    "timeout": "5m",
                    "wait": false
                }
            });
            ks.patch(&name, &ssa, &Patch::Apply(k))
                .await
                .with_context(|| format!("create Kustomization {name}"))?;
        }
        Ok(())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(|(_, c)| c.id()).collect()
    }

    /// What a Flux Receiver does on a webhook: ask the GitRepository to reconcile now.
    pub async fn notify(&self) -> Result<()> {
        let repos: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), FLUX_NAMESPACE, &git_repository());
        repos
            .patch(
                &self.set,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": now_stamp()}}})),
            )
            .await?;
        Ok(())
    }

    /// Polling off: the Receiver alone tells Flux about a push.
    pub async fn poll_every(&self, interval: &str) -> Result<()> {
        let repos: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), FLUX_NAMESPACE, &git_repository());
        repos
            .patch(
                &self.set,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"interval": interval}})),
            )
            .await?;
        Ok(())
    }

    /// `flux reconcile kustomization` when nothing changed: waits until the controller
    /// reports it handled the request.
    pub async fn noop(&self) -> Result<Duration> {
        let ks: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), FLUX_NAMESPACE, &kustomization());
        let name = format!("{}-{}", self.set, app_name(0));
        let stamp = now_stamp();
        let start = Instant::now();
        ks.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}}),
            ),
        )
        .await?;
        loop {
            let k = ks.get(&name).await?;
            let status = &k.data["status"];
            if status["lastHandledReconcileAt"] == stamp.as_str() {
                let ready = status["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                    .cloned()
                    .unwrap_or(Value::Null);
                if ready["status"] != "True" {
                    bail!("Kustomization {name} not Ready after a no-op reconcile: {ready}");
                }
                return Ok(start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("Kustomization {name} did not handle the reconcile request within 600 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes the set's Flux objects (Flux prunes what they applied) and stops the controllers.
    pub async fn stop(&mut self) -> Result<()> {
        let ks: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), FLUX_NAMESPACE, &kustomization());
        let repos: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), FLUX_NAMESPACE, &git_repository());
        let result = async {
            ks.delete_collection(&DeleteParams::default(), &ListParams::default())
                .await?;
            let deadline = Instant::now() + Duration::from_secs(1800);
            while !ks
                .list(&ListParams::default().limit(1))
                .await?
                .items
                .is_empty()
            {
                if Instant::now() > deadline {
                    bail!("Flux Kustomizations still there after 30 min");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            repos
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await?;
            while !repos
                .list(&ListParams::default().limit(1))
                .await?
                .items
                .is_empty()
            {
                if Instant::now() > deadline {
                    bail!("Flux GitRepositories still there after 30 min");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(())
        }
        .await;
        for (name, mut child) in std::mem::take(&mut self.children) {
            stop_child(&mut child, &name).await;
        }
        result
    }
}
