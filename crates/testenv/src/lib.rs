//! Test support: finds the peer tools and control-plane binaries built by `testenv/`,
//! starts one real etcd + kube-apiserver (+ kube-controller-manager) per test run, and
//! hands each test a fresh namespace.
//!
//! For tests and benchmarks only; never a dependency of the product. It holds no fakes:
//! every cluster it hands out is a real API server on loopback.
//!
//! # Flow
//! - [`tool`] finds a binary in `$DRIFTLESS_TESTENV_BIN` (set by `scripts/test`, or by
//!   hand from `testenv/build`).
//! - [`cluster`] connects, once per test process, to the control plane of `testenv/run`
//!   (`$DRIFTLESS_TESTENV_KUBECONFIG`); without one it starts its own through
//!   `testenv/run`, which lives as long as the test process (see [`Cluster`]).
//! - [`Cluster::namespace`] creates a uniquely named namespace that is deleted when the
//!   [`TestNamespace`] is dropped or [`TestNamespace::cleanup`] is awaited.
//!
//! # Caveats
//! A `kube::Client` is bound to the tokio runtime it was made on, and each
//! `#[tokio::test]` has its own runtime, so [`Cluster::client`] makes a new client on
//! every call instead of sharing one.

use std::error::Error as StdError;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tokio::sync::OnceCell;

/// The environment variable naming the directory with the testenv binaries.
pub const BIN_ENV: &str = "DRIFTLESS_TESTENV_BIN";
/// The environment variable through which `testenv/run` hands over its kubeconfig.
///
/// A plain `$KUBECONFIG` is never used on its own: it may point at a real cluster.
pub const KUBECONFIG_ENV: &str = "DRIFTLESS_TESTENV_KUBECONFIG";

/// How long starting our own control plane may take before we give up.
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// The line the command run by `testenv/run` prints once the cluster is ready.
const READY_MARK: &str = "DRIFTLESS_TESTENV_READY ";

/// Why a testenv binary could not be found.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// `$DRIFTLESS_TESTENV_BIN` is not set (or empty).
    #[error(
        "${BIN_ENV} is not set: run the tests through scripts/test, or build the tools with \
         `bin=$(testenv/build | tail -n1)` and `export {BIN_ENV}=$bin`"
    )]
    NotSet,
    /// The directory has no executable of that name.
    #[error(
        "{} is missing or not executable: run testenv/build (without --peers-only for the \
         control plane) and point ${BIN_ENV} at the directory it prints last",
        path.display()
    )]
    Missing {
        /// Where the binary was looked for.
        path: PathBuf,
    },
}

/// Why no cluster could be had.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The binaries for our own control plane are not there.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// `testenv/run` could not be started.
    #[error("cannot start {}", script.display())]
    Spawn {
        /// The script we tried to run.
        script: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// `testenv/run` ended before the control plane was ready.
    #[error(
        "testenv/run exited ({status}) before the control plane was ready; its messages are above"
    )]
    Exited {
        /// How it ended.
        status: String,
    },
    /// The control plane was not ready in time; `testenv/run` was told to stop.
    #[error("the control plane was not ready after {}s; testenv/run was stopped", .0.as_secs())]
    Timeout(Duration),
    /// The kubeconfig could not be read or understood.
    #[error("cannot load kubeconfig {}", path.display())]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// What kube said.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No client could be made from the kubeconfig.
    #[error("cannot make a client for {}", path.display())]
    Client {
        /// The kubeconfig file.
        path: PathBuf,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer.
    #[error("the API server of {} does not answer", path.display())]
    Unreachable {
        /// The kubeconfig file.
        path: PathBuf,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
}

/// Why a test namespace could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The prefix cannot start a namespace name.
    #[error(
        "bad namespace prefix {prefix:?}: {reason} (use 1-40 of a-z, 0-9 and '-', starting \
         with a letter, not ending with '-')"
    )]
    BadPrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The API server refused to create the namespace.
    #[error("cannot create namespace {name}")]
    Create {
        /// The namespace name.
        name: String,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
    /// The API server refused to delete the namespace.
    #[error("cannot delete namespace {name}")]
    Delete {
        /// The namespace name.
        name: String,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
}

/// Finds the binary `name` in `bin_dir` (the value of `$DRIFTLESS_TESTENV_BIN`).
pub fn find_tool(bin_dir: Option<&OsStr>, name: &str) -> Result<PathBuf, ToolError> {
    let dir = bin_dir.filter(|d| !d.is_empty()).ok_or(ToolError::NotSet)?;
    let path = Path::new(dir).join(name);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path),
        _ => Err(ToolError::Missing { path }),
    }
}

/// The path of a testenv binary (`kubectl`, `kustomize`, `sops`, `age`, `age-keygen`,
/// `etcd`, `kube-apiserver`, `kube-controller-manager`).
///
/// # Panics
/// When `$DRIFTLESS_TESTENV_BIN` is unset or lacks the binary; the message says how to
/// build it.
pub fn tool(name: &str) -> PathBuf {
    find_tool(std::env::var_os(BIN_ENV).as_deref(), name)
        .unwrap_or_else(|e| panic!("driftless-testenv: {e}"))
}

/// A running control plane and how to reach it as cluster admin.
///
/// When this crate started the control plane itself, `testenv/run` reads the other end
/// of a pipe held here; the pipe closes when the test process exits (however it exits),
/// and `testenv/run` then stops etcd, the API server and the controller manager and
/// removes their data.
pub struct Cluster {
    kubeconfig: PathBuf,
    config: Config,
    _own: Option<OwnControlPlane>,
}

/// Keeps our own `testenv/run` alive: it runs until its stdin closes.
struct OwnControlPlane {
    _child: Child,
    _stdin: ChildStdin,
}

static CLUSTER: OnceCell<Result<Cluster, String>> = OnceCell::const_new();

/// The cluster shared by every test of this test process.
///
/// # Panics
/// When no cluster can be had; every later call panics with the same message.
pub async fn cluster() -> &'static Cluster {
    let cluster = CLUSTER
        .get_or_init(|| async { Cluster::connect().await.map_err(|e| error_chain(&e)) })
        .await;
    match cluster {
        Ok(c) => c,
        Err(e) => panic!("driftless-testenv: no cluster: {e}"),
    }
}

impl Cluster {
    async fn connect() -> Result<Cluster, ClusterError> {
        if let Some(path) = std::env::var_os(KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
            tracing::info!(kubeconfig = ?path, "using the control plane of testenv/run");
            return Cluster::load(PathBuf::from(path), None).await;
        }
        let bin = std::env::var_os(BIN_ENV)
            .filter(|d| !d.is_empty())
            .ok_or(ToolError::NotSet)?;
        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kubectl",
        ] {
            find_tool(Some(&bin), name)?;
        }
        let (kubeconfig, own) = tokio::task::spawn_blocking(move || start_own(&bin))
            .await
            .expect("starting the control plane does not panic")?;
        Cluster::load(kubeconfig, Some(own)).await
    }

    async fn load(path: PathBuf, own: Option<OwnControlPlane>) -> Result<Cluster, ClusterError> {
        let kubeconfig =
            Kubeconfig::read_from(&path).map_err(|source| ClusterError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
        let client = Client::try_from(config.clone()).map_err(|source| ClusterError::Client {
            path: path.clone(),
            source,
        })?;
        let version =
            client
                .apiserver_version()
                .await
                .map_err(|source| ClusterError::Unreachable {
                    path: path.clone(),
                    source,
                })?;
        tracing::info!(version = %version.git_version, kubeconfig = %path.display(), "cluster ready");
        Ok(Cluster {
            kubeconfig: path,
            config,
            _own: own,
        })
    }

    /// A new client, bound to the current tokio runtime, acting as cluster admin.
    pub fn client(&self) -> Client {
        Client::try_from(self.config.clone())
            .expect("the same config made a client when the cluster was set up")
    }

    /// The admin kubeconfig, for `kubectl` and other tools.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Creates a fresh namespace named `<prefix>-<unique suffix>`.
    ///
    /// # Panics
    /// When the prefix is bad or the namespace cannot be created; see
    /// [`Cluster::try_namespace`].
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        self.try_namespace(prefix)
            .await
            .unwrap_or_else(|e| panic!("driftless-testenv: {}", error_chain(&e)))
    }

    /// Creates a fresh namespace named `<prefix>-<unique suffix>`.
    pub async fn try_namespace(&self, prefix: &str) -> Result<TestNamespace, NamespaceError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = namespace_name(prefix, COUNTER.fetch_add(1, Ordering::Relaxed))?;
        let api: Api<Namespace> = Api::all(self.client());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .map_err(|source| NamespaceError::Create {
                name: name.clone(),
                source,
            })?;
        tracing::debug!(namespace = %name, "created test namespace");
        Ok(TestNamespace {
            name,
            config: self.config.clone(),
            live: true,
        })
    }
}

/// A namespace for one test, deleted on drop or by [`TestNamespace::cleanup`].
///
/// Deletion only asks the API server to delete it; the namespace controller empties and
/// removes it in the background. Drop works inside async tests: it deletes from a helper
/// thread with its own runtime and waits for that request.
pub struct TestNamespace {
    name: String,
    config: Config,
    live: bool,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace now, reporting failures (a namespace already gone is fine).
    pub async fn cleanup(mut self) -> Result<(), NamespaceError> {
        self.live = false;
        delete_namespace(self.config.clone(), &self.name).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        let (name, config) = (self.name.clone(), self.config.clone());
        // No block_on here: we may be inside a runtime. A thread has none.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(delete_namespace(config, &name))
                .map_err(|e| error_chain(&e))
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(namespace = %self.name, "cleanup failed: {e}"),
            Err(_) => tracing::warn!(namespace = %self.name, "cleanup thread panicked"),
        }
    }
}

async fn delete_namespace(config: Config, name: &str) -> Result<(), NamespaceError> {
    let delete_err = |source| NamespaceError::Delete {
        name: name.to_owned(),
        source,
    };
    let client = Client::try_from(config).map_err(delete_err)?;
    let api: Api<Namespace> = Api::all(client);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(delete_err(e)),
    }
}

/// `<prefix>-<pid>-<n>-<time>`: unique among concurrent tests and test runs sharing a
/// cluster, and a valid namespace name (a DNS-1123 label).
pub fn namespace_name(prefix: &str, n: u32) -> Result<String, NamespaceError> {
    let bad = |reason| NamespaceError::BadPrefix {
        prefix: prefix.to_owned(),
        reason,
    };
    if prefix.is_empty() {
        return Err(bad("it is empty"));
    }
    if prefix.len() > 40 {
        return Err(bad("it is longer than 40 characters"));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad("it has a character other than a-z, 0-9 and '-'"));
    }
    if !prefix.as_bytes()[0].is_ascii_lowercase() {
        return Err(bad("it does not start with a letter"));
    }
    if prefix.ends_with('-') {
        return Err(bad("it ends with '-'"));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Ok(format!(
        "{prefix}-{:x}-{n}-{:x}",
        std::process::id(),
        nanos >> 8
    ))
}

/// Starts `testenv/run` with a command that reports the kubeconfig and then waits for
/// its stdin to close; returns once the control plane is ready.
fn start_own(bin: &OsStr) -> Result<(PathBuf, OwnControlPlane), ClusterError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testenv/run");
    tracing::info!(script = %script.display(), "starting a control plane for this test process");
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("--")
        .args([
            "sh",
            "-c",
            "printf '%s%s\\n' \"$1\" \"$KUBECONFIG\"; exec cat >/dev/null",
            "sh",
        ])
        .arg(READY_MARK)
        .env(BIN_ENV, bin)
        .env_remove(KUBECONFIG_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| ClusterError::Spawn {
            script: script.clone(),
            source,
        })?;
    let stdin = child.stdin.take().expect("stdin was piped");
    let stdout = child.stdout.take().expect("stdout was piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    // Reads until EOF, so the command never blocks writing.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = line.strip_prefix(READY_MARK) {
                let _ = ready_tx.send(PathBuf::from(path));
            }
        }
    });
    match ready_rx.recv_timeout(START_TIMEOUT) {
        Ok(kubeconfig) => Ok((
            kubeconfig,
            OwnControlPlane {
                _child: child,
                _stdin: stdin,
            },
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = child
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            Err(ClusterError::Exited { status })
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // SIGTERM lets testenv/run's trap stop what it started.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            drop(stdin);
            let _ = child.wait();
            Err(ClusterError::Timeout(START_TIMEOUT))
        }
    }
}

/// An error and its sources, one line.
fn error_chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_without_bin_dir_says_how_to_build() {
        let err = find_tool(None, "kubectl").unwrap_err().to_string();
        assert!(
            err.starts_with("$DRIFTLESS_TESTENV_BIN is not set"),
            "{err}"
        );
        assert!(
            err.contains("scripts/test") && err.contains("testenv/build"),
            "{err}"
        );
        let err = find_tool(Some(OsStr::new("")), "kubectl").unwrap_err();
        assert!(matches!(err, ToolError::NotSet), "{err}");
    }

    #[test]
    fn tool_missing_or_not_executable_names_the_path() {
        let dir =
            std::env::temp_dir().join(format!("driftless-testenv-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let plain = dir.join("plain");
        std::fs::write(&plain, "not a program").expect("write");
        let exe = dir.join("exe");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");

        let err = find_tool(Some(dir.as_os_str()), "kubectl")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{} is missing", dir.join("kubectl").display())),
            "{err}"
        );
        assert!(err.contains("testenv/build"), "{err}");
        let err = find_tool(Some(dir.as_os_str()), "plain")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{} is missing or not executable", plain.display())),
            "{err}"
        );
        assert_eq!(find_tool(Some(dir.as_os_str()), "exe").expect("found"), exe);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn namespace_names_are_valid_and_distinct() {
        let a = namespace_name("ssa", 0).expect("valid");
        let b = namespace_name("ssa", 1).expect("valid");
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(name.starts_with("ssa-") && name.len() <= 63, "{name}");
            assert!(
                name.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            );
        }
        let long = "a".repeat(40);
        assert!(namespace_name(&long, u32::MAX).expect("valid").len() <= 63);
    }

    #[test]
    fn bad_namespace_prefixes_are_refused_with_the_reason() {
        for (prefix, reason) in [
            ("", "it is empty"),
            ("Caps", "it has a character other than a-z, 0-9 and '-'"),
            ("a_b", "it has a character other than a-z, 0-9 and '-'"),
            ("9lives", "it does not start with a letter"),
            ("trailing-", "it ends with '-'"),
            (&"x".repeat(41), "it is longer than 40 characters"),
        ] {
            let err = namespace_name(prefix, 0).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("bad namespace prefix {prefix:?}: {reason} (")),
                "{err}"
            );
        }
    }
}
