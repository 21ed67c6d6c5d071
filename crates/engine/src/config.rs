//! `driftless.yaml`: parsing and validation, with every error naming file:line:col.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;

/// The largest configuration file read. A real one is a few KiB; the cap keeps a
/// runaway generator (or a hostile file) from exhausting memory at load.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Deepest nesting of mappings and lists (the schema itself needs 6).
pub const MAX_CONFIG_DEPTH: usize = 32;
/// Most events replayed from aliases in one file (an alias bomb expands exponentially);
/// the bytes of scalars, replayed ones included, are capped at [`MAX_CONFIG_BYTES`].
pub const MAX_CONFIG_ALIAS_EVENTS: usize = 10_000;
/// Most times one anchor may be used.
pub const MAX_CONFIG_ALIASES_PER_ANCHOR: usize = 1_000;

/// Parser options for `driftless.yaml`: bounded depth, alias expansion and size.
fn parse_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_CONFIG_DEPTH;
    budget.max_aliases = MAX_CONFIG_ALIAS_EVENTS;
    budget.max_anchors = MAX_CONFIG_ALIAS_EVENTS;
    budget.max_recorded_anchor_events = MAX_CONFIG_ALIAS_EVENTS;
    budget.max_total_scalar_bytes = MAX_CONFIG_BYTES as usize;
    budget.max_nodes = 100_000;
    let mut aliases = serde_saphyr::options::AliasLimits::default();
    aliases.max_total_replayed_events = MAX_CONFIG_ALIAS_EVENTS;
    aliases.max_replay_stack_depth = MAX_CONFIG_DEPTH;
    aliases.max_alias_expansions_per_anchor = MAX_CONFIG_ALIASES_PER_ANCHOR;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits = aliases;
    options
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax, an unknown field, a wrong type or a bad value; the message carries
    /// file:line:col and a snippet.
    #[error("{0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub notifications: Vec<NotificationConfig>,
}

/// One app: a source, a target and a sync policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Unique, a DNS label.
    pub name: Spanned<String>,
    pub source: SourceConfig,
    pub target: TargetConfig,
    #[serde(default)]
    pub sync: SyncPolicy,
    /// How to decrypt SOPS-encrypted files in the source.
    #[serde(default)]
    pub decryption: Option<DecryptionConfig>,
    /// How the source is rendered.
    #[serde(default)]
    pub render: RenderConfig,
}

/// `render:` of an app.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderConfig {
    /// Caps on what one render of the app may read and build; each omitted field keeps
    /// its default. A revision past a cap fails to render, naming the cap.
    #[serde(default)]
    pub limits: RenderLimitsConfig,
}

/// `render.limits`: raise them only for sources you trust.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RenderLimitsConfig {
    /// Largest file read, in bytes (default 8 MiB).
    pub max_file_bytes: Option<u64>,
    /// Most bytes one render reads, all files together (default 64 MiB).
    pub max_total_bytes: Option<u64>,
    /// Most documents in one file (default 10,000).
    pub max_documents: Option<usize>,
    /// Most objects or files in one render (default 100,000).
    pub max_objects: Option<usize>,
    /// Deepest nesting of lists and maps (default 100, at most 200: deeper would not be
    /// safe for the parsers' stacks).
    pub max_depth: Option<usize>,
    /// Most nodes YAML aliases and kustomize's patches may copy (default 100,000).
    pub max_alias_expansion: Option<usize>,
}

/// The deepest nesting `render.limits.maxDepth` may allow.
pub const MAX_RENDER_DEPTH: usize = 200;

impl RenderLimitsConfig {
    /// The render limits: the defaults, with what the config sets.
    pub fn limits(&self) -> driftless_render::Limits {
        let mut limits = driftless_render::Limits::default();
        if let Some(v) = self.max_file_bytes {
            limits.max_file_bytes = v;
        }
        if let Some(v) = self.max_total_bytes {
            limits.max_total_bytes = v;
        }
        if let Some(v) = self.max_documents {
            limits.max_documents = v;
        }
        if let Some(v) = self.max_objects {
            limits.max_total_objects = v;
        }
        if let Some(v) = self.max_depth {
            limits.max_depth = v.min(MAX_RENDER_DEPTH);
        }
        if let Some(v) = self.max_alias_expansion {
            limits.max_alias_expansion = v;
        }
        limits
    }
}

/// `decryption:` — keys for SOPS-encrypted files, by reference only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecryptionConfig {
    #[serde(default)]
    pub sops: SopsConfig,
}

/// `decryption.sops`: how this app decrypts SOPS files.
///
/// # Key isolation
/// - An app without `decryption.sops` decrypts nothing: an encrypted file in its source
///   fails the render (naming the file), and nothing of that revision is applied. The
///   daemon's `SOPS_AGE_KEY_FILE` / `SOPS_AGE_KEY` do not apply to it.
/// - With `secretRef` (Kubernetes) or `ageKeyFile`, the app decrypts with that key
///   source only; the environment variables are not added to it.
/// - With `decryption: { sops: {} }` (opted in, no key source named), the daemon's
///   `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY` and `SOPS_AGE_SSH_PRIVATE_KEY_FILE` are used, as
///   sops does; none set is an error of the app.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SopsConfig {
    /// A file of age identities (`AGE-SECRET-KEY-1…`, as age-keygen writes); the only
    /// key source of the app when set.
    #[serde(default)]
    pub age_key_file: Option<PathBuf>,
    /// Kubernetes targets: age identities kept in a Secret of the cluster.
    #[serde(default)]
    pub secret_ref: Option<KubeSecretKey>,
}

/// A key of a Kubernetes Secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSecretKey {
    /// The app's target namespace when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    /// The data key holding the identities, as `age-keygen` writes them.
    #[serde(default = "default_age_key")]
    pub key: String,
}

fn default_age_key() -> String {
    "age.agekey".to_owned()
}

impl AppConfig {
    pub fn name(&self) -> &str {
        &self.name.value
    }
}

/// Where the desired state comes from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceConfig {
    /// https://…, ssh://…, git@host:org/repo, git://…, file://… or a local path (relative
    /// paths are taken from the config file's folder). Never credentials: a password in
    /// the URL, or any user name in a non-ssh URL (`https://TOKEN@host/…`), is refused at
    /// load; they go in `credentials:` by reference. An ssh user (`git@host:`) is fine.
    #[serde(deserialize_with = "de_repo")]
    pub repo: String,
    /// Branch, tag or full commit id.
    #[serde(default = "default_ref", rename = "ref")]
    pub reference: String,
    /// Folder inside the repository; the root when empty.
    #[serde(default)]
    pub path: String,
    /// How often to ask the remote whether the ref moved.
    #[serde(
        default = "default_interval",
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub interval: Duration,
    /// Credentials, read from the environment or files, never inline.
    #[serde(default, skip_serializing)]
    pub credentials: Option<CredentialsConfig>,
}

/// Credentials for a Git source, by reference only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialsConfig {
    /// Environment variable holding the https user name.
    pub username_env: Option<String>,
    /// Environment variable holding the https password or token.
    pub password_env: Option<String>,
    /// File holding the https password or token.
    pub password_file: Option<PathBuf>,
    /// SSH private key file.
    pub ssh_key_file: Option<PathBuf>,
    /// An ssh `known_hosts` file for this repository. When set, ssh accepts only the
    /// host keys in it (`StrictHostKeyChecking=yes`); otherwise ssh's own known_hosts
    /// files apply, in batch mode (an unknown host is refused, never prompted for).
    pub known_hosts_file: Option<PathBuf>,
}

/// Where the desired state goes. Exactly one kind.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum TargetConfig {
    /// A folder on this host.
    Files(FilesTargetConfig),
    /// A Kubernetes cluster.
    Kubernetes(KubernetesTargetConfig),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilesTargetConfig {
    /// The folder driftless manages (relative paths are taken from the config file's folder).
    pub root: PathBuf,
    /// Command (argv, no shell) run in `root` after a sync that changed something.
    #[serde(default)]
    pub post_sync: Option<Vec<String>>,
    /// Mode of the files that came out of SOPS decryption, as an octal string
    /// (`"0640"`); 0600 when absent. Plain files keep Git's 0644 / 0755.
    #[serde(
        default,
        deserialize_with = "de_mode",
        skip_serializing_if = "Option::is_none"
    )]
    pub decrypted_mode: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesTargetConfig {
    /// kubeconfig context; the current one when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// Namespace for namespaced objects that name none.
    #[serde(default)]
    pub namespace: Option<String>,
    /// kubeconfig file; `$KUBECONFIG` or `~/.kube/config` when absent (in a pod, the
    /// in-cluster service account).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
}

/// What driftless may do without being asked.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Apply new revisions without being asked.
    #[serde(default = "yes")]
    pub auto: bool,
    /// Delete what left Git.
    #[serde(default)]
    pub prune: bool,
    /// Revert live changes made outside Git.
    #[serde(default)]
    pub self_heal: bool,
    /// Kubernetes: fields Git declares win over other field managers (server-side apply
    /// `force`), as with Flux and Argo CD, so a `kubectl edit` is drift and is reverted
    /// (default true). `false`: such conflicts are reported as OutOfSync, naming the other
    /// manager, and left alone until an explicit sync.
    #[serde(default = "yes")]
    pub force: bool,
    /// Kubernetes: create the target namespace when it is missing and Git does not hold
    /// it (default false). A Namespace that Git holds is always applied first.
    #[serde(default)]
    pub create_namespace: bool,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self {
            auto: true,
            prune: false,
            self_heal: false,
            force: true,
            create_namespace: false,
        }
    }
}

/// `server:` — used by `serve` only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerConfig {
    /// API bearer tokens. None: the API is open and `serve` listens on loopback only.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Shared secrets of the Git hosts' webhooks, by reference.
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// Host names (`name`, or `name:port`) the server answers to besides its listen
    /// address and localhost; requests naming any other Host are refused (DNS
    /// rebinding). On a server with tokens, setting any turns the Host check on (put the
    /// public name here when a reverse proxy passes it through).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// HTTP connection limits.
    #[serde(default)]
    pub limits: HttpLimitsConfig,
    /// How long events, syncs and audit entries are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// `server.limits`: every field optional; omitted ones keep the defaults (10s, 60s, 512).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpLimitsConfig {
    /// A client must send each request head (and finish a TLS handshake) within this.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub header_read_timeout: Option<Duration>,
    /// A connection with no traffic for this long, between requests, is closed.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub idle_timeout: Option<Duration>,
    /// Connections open at once; beyond it new ones wait.
    #[serde(default)]
    pub max_connections: Option<usize>,
}

/// `server.retention`: what the state store keeps. Omitted fields keep the defaults
/// (events 720h / 100,000 rows; the last 1,000 syncs per app; audit 2160h / 100,000).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetentionConfig {
    #[serde(default)]
    pub events: BoundConfig,
    #[serde(default)]
    pub syncs: SyncBoundConfig,
    #[serde(default)]
    pub audit: BoundConfig,
}

/// Keep rows younger than `maxAge`, and at most `maxRows`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BoundConfig {
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub max_age: Option<Duration>,
    #[serde(default)]
    pub max_rows: Option<u64>,
}

/// Keep syncs younger than `maxAge`, and at most `maxPerApp` per app (an app's running
/// sync and its newest successful one are always kept).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncBoundConfig {
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub max_age: Option<Duration>,
    #[serde(default)]
    pub max_per_app: Option<u64>,
}

impl RetentionConfig {
    /// The store's policy: the defaults, with what the config sets.
    pub fn policy(&self) -> driftless_store::Retention {
        let mut policy = driftless_store::Retention::default();
        let bound = |b: &mut driftless_store::Bound, c: &BoundConfig| {
            if c.max_age.is_some() {
                b.max_age = c.max_age;
            }
            if c.max_rows.is_some() {
                b.max_rows = c.max_rows;
            }
        };
        bound(&mut policy.events, &self.events);
        bound(&mut policy.audit, &self.audit);
        if self.syncs.max_age.is_some() {
            policy.syncs.max_age = self.syncs.max_age;
        }
        if self.syncs.max_per_app.is_some() {
            policy.syncs.max_per_app = self.syncs.max_per_app;
        }
        policy
    }
}

/// One API token: only its SHA-256 is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Recorded in history and audit as the actor.
    pub name: Spanned<String>,
    pub role: Role,
    /// Lowercase hex SHA-256 of the token (`driftless token hash`).
    pub sha256: String,
}

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read apps, diffs, history, events and metrics.
    Viewer,
    /// Also sync, refresh, roll back, suspend and resume.
    Operator,
    /// Everything, including the audit log.
    Admin,
}

impl Role {
    /// The config (and JSON) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// `server.webhooks`: one optional secret per Git host kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub github: Option<SecretRef>,
    pub gitlab: Option<SecretRef>,
    pub gitea: Option<SecretRef>,
    pub generic: Option<SecretRef>,
}

/// Where a secret lives: exactly one of an environment variable or a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    pub secret_env: Option<String>,
    /// Relative paths are taken from the config file's folder.
    pub secret_file: Option<PathBuf>,
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or empty.
    #[error("environment variable {0} is not set or empty")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing but whitespace.
    #[error("{0}: the secret file is empty")]
    EmptyFile(String),
}

impl SecretRef {
    /// Reads the secret now; a trailing newline in a file is dropped.
    pub fn read(&self) -> Result<Vec<u8>, SecretError> {
        if let Some(name) = &self.secret_env {
            return match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(value.into_bytes()),
                _ => Err(SecretError::MissingEnv(name.clone())),
            };
        }
        let path = self.secret_file.clone().unwrap_or_default();
        let text = std::fs::read(&path).map_err(|source| SecretError::File {
            path: path.display().to_string(),
            source,
        })?;
        let trimmed = text.trim_ascii_end();
        if trimmed.is_empty() {
            return Err(SecretError::EmptyFile(path.display().to_string()));
        }
        Ok(trimmed.to_vec())
    }
}

/// Event kinds a notification sink may ask for.
pub const NOTIFICATION_EVENTS: [&str; 7] = [
    "sync-started",
    "sync-succeeded",
    "sync-failed",
    "drift-detected",
    "drift-healed",
    "render-failed",
    "health-degraded",
];

/// One notification sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationConfig {
    pub name: Spanned<String>,
    pub webhook: NotificationWebhook,
    /// Event kinds to send (see [`NOTIFICATION_EVENTS`]); all when empty.
    #[serde(default)]
    pub events: Vec<String>,
}

impl NotificationConfig {
    /// Whether this sink wants events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|k| k == kind)
    }
}

/// An HTTP endpoint that receives a POST per event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationWebhook {
    /// `http://` or `https://` URL.
    pub url: String,
    #[serde(default)]
    pub format: NotificationFormat,
}

/// The body shape a sink receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationFormat {
    /// The event record as JSON.
    #[default]
    Json,
    /// `{"text": "..."}` for Slack-compatible incoming webhooks.
    Slack,
}

fn default_ref() -> String {
    "main".to_owned()
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}

fn yes() -> bool {
    true
}

/// Parses `30s`, `5m`, `1h30m`, `500ms`, `2h`: one or more number+unit pairs.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 30s, 5m, 1h30m or 500ms");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        out.push_str(&format!("{secs}s"));
    }
    out
}

fn de_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let text = String::deserialize(d)?;
    let digits = text.trim();
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && digits.len() <= 4 && mode <= 0o777 => Ok(Some(mode)),
        _ => Err(serde::de::Error::custom(format!(
            "invalid file mode {text:?}: expected permission bits in octal, e.g. \"0600\" or \"0640\""
        ))),
    }
}

fn de_repo<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    match driftless_source::url_credential_problem(&text) {
        None => Ok(text),
        Some(why) => Err(serde::de::Error::custom(format!(
            "source.repo {:?}: {why}; put credentials in `credentials:` by reference \
             (usernameEnv, passwordEnv or passwordFile, sshKeyFile), never in the URL",
            driftless_source::redact_url(&text)
        ))),
    }
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

impl Config {
    /// Reads and validates a configuration file. Relative paths inside it are made
    /// absolute against the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        };
        // Read at most one byte past the cap: a huge (or endless) file is refused
        // without being read whole.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(path).map_err(read_error)?,
                MAX_CONFIG_BYTES + 1,
            ),
            &mut bytes,
        )
        .map_err(read_error)?;
        let text = String::from_utf8(bytes)
            .map_err(|err| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, err)))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::path::absolute(&base).unwrap_or(base);
        Config::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses configuration text; `file` names it in errors, `base` anchors relative paths.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::Invalid(format!(
                "{file}:1:1: the configuration file is larger than {} MiB",
                MAX_CONFIG_BYTES >> 20
            )));
        }
        // The message quotes the offending line: scrub URL credentials from it.
        let mut config: Config = serde_saphyr::from_str_with_options(text, parse_options())
            .map_err(|err| {
                ConfigError::Invalid(driftless_source::redact_url(
                    &err.to_string().replace("<input>", file),
                ))
            })?;
        config.validate(file)?;
        let webhooks = &mut config.server.webhooks;
        for secret in [
            &mut webhooks.github,
            &mut webhooks.gitlab,
            &mut webhooks.gitea,
            &mut webhooks.generic,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(file) = &mut secret.secret_file
                && file.is_relative()
            {
                *file = base.join(&*file);
            }
        }
        for app in &mut config.apps {
            app.source.repo = absolutize_repo(&app.source.repo, base);
            if let TargetConfig::Files(files) = &mut app.target
                && files.root.is_relative()
            {
                files.root = base.join(&files.root);
            }
            if let TargetConfig::Kubernetes(kube) = &mut app.target
                && let Some(file) = &mut kube.kubeconfig
                && file.is_relative()
            {
                *file = base.join(&*file);
            }
            if let Some(file) = app
                .decryption
                .as_mut()
                .and_then(|d| d.sops.age_key_file.as_mut())
                .filter(|f| f.is_relative())
            {
                *file = base.join(&*file);
            }
            if let Some(creds) = &mut app.source.credentials {
                for file in [
                    &mut creds.password_file,
                    &mut creds.ssh_key_file,
                    &mut creds.known_hosts_file,
                ]
                .into_iter()
                .flatten()
                {
                    if file.is_relative() {
                        *file = base.join(&*file);
                    }
                }
            }
        }
        Ok(config)
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut seen: BTreeMap<&str, &Spanned<String>> = BTreeMap::new();
        for app in &self.apps {
            let name = &app.name;
            let at = |span: &Spanned<String>| {
                format!(
                    "{file}:{}:{}",
                    span.referenced.line(),
                    span.referenced.column()
                )
            };
            if let Err(why) = check_dns_label(&name.value) {
                problems.push(format!("{}: app name {:?} {why}", at(name), name.value));
            }
            if let Some(first) = seen.insert(&name.value, name) {
                problems.push(format!(
                    "{}: duplicate app name {:?} (first defined at {})",
                    at(name),
                    name.value,
                    at(first)
                ));
            }
            if app.source.repo.trim().is_empty() {
                problems.push(format!(
                    "{}: app {:?}: source.repo is empty",
                    at(name),
                    name.value
                ));
            }
            if app
                .render
                .limits
                .max_depth
                .is_some_and(|d| d > MAX_RENDER_DEPTH || d == 0)
            {
                problems.push(format!(
                    "{}: app {:?}: render.limits.maxDepth must be 1 to {MAX_RENDER_DEPTH}",
                    at(name),
                    name.value
                ));
            }
            if app.source.interval < Duration::from_secs(1) {
                problems.push(format!(
                    "{}: app {:?}: source.interval must be at least 1s",
                    at(name),
                    name.value
                ));
            }
            if let Err(err) = driftless_model::normalize_rel_path(&app.source.path) {
                problems.push(format!(
                    "{}: app {:?}: source.path: {err}",
                    at(name),
                    name.value
                ));
            }
            if app
                .decryption
                .as_ref()
                .is_some_and(|d| d.sops.secret_ref.is_some())
                && !matches!(app.target, TargetConfig::Kubernetes(_))
            {
                problems.push(format!(
                    "{}: app {:?}: decryption.sops.secretRef needs a kubernetes target; use ageKeyFile",
                    at(name),
                    name.value
                ));
            }
            if let TargetConfig::Files(files) = &app.target {
                if files.root.as_os_str().is_empty() {
                    problems.push(format!(
                        "{}: app {:?}: target.files.root is empty",
                        at(name),
                        name.value
                    ));
                }
                if files.post_sync.as_ref().is_some_and(|argv| argv.is_empty()) {
                    problems.push(format!(
                        "{}: app {:?}: target.files.postSync must name a command",
                        at(name),
                        name.value
                    ));
                }
            }
        }
        self.validate_server(file, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("\n")))
        }
    }

    fn validate_server(&self, file: &str, problems: &mut Vec<String>) {
        if self.server.limits.max_connections == Some(0) {
            problems.push(format!(
                "{file}: server.limits.maxConnections must be at least 1"
            ));
        }
        for (what, timeout) in [
            ("headerReadTimeout", self.server.limits.header_read_timeout),
            ("idleTimeout", self.server.limits.idle_timeout),
        ] {
            if timeout.is_some_and(|t| t < Duration::from_millis(100)) {
                problems.push(format!(
                    "{file}: server.limits.{what} must be at least 100ms"
                ));
            }
        }
        let at = |span: &Spanned<String>| {
            format!(
                "{file}:{}:{}",
                span.referenced.line(),
                span.referenced.column()
            )
        };
        let mut seen = BTreeMap::new();
        for token in &self.server.tokens {
            let name = &token.name;
            if name.value.trim().is_empty() || name.value.len() > 64 {
                problems.push(format!(
                    "{}: server.tokens: a token name must be 1 to 64 characters",
                    at(name)
                ));
            }
            if let Some(first) = seen.insert(name.value.as_str(), name) {
                problems.push(format!(
                    "{}: server.tokens: duplicate token name {:?} (first defined at {})",
                    at(name),
                    name.value,
                    at(first)
                ));
            }
            if token.sha256.len() != 64 || !token.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(format!(
                    "{}: server.tokens: token {:?}: sha256 must be 64 hex digits (run `driftless token hash`), never the token itself",
                    at(name),
                    name.value
                ));
            }
        }
        let hooks = &self.server.webhooks;
        for (kind, secret) in [
            ("github", &hooks.github),
            ("gitlab", &hooks.gitlab),
            ("gitea", &hooks.gitea),
            ("generic", &hooks.generic),
        ] {
            if let Some(secret) = secret
                && secret.secret_env.is_some() == secret.secret_file.is_some()
            {
                problems.push(format!(
                    "{file}: server.webhooks.{kind}: give exactly one of secretEnv or secretFile"
                ));
            }
        }
        let mut seen = BTreeMap::new();
        for sink in &self.notifications {
            let name = &sink.name;
            if let Some(first) = seen.insert(name.value.as_str(), name) {
                problems.push(format!(
                    "{}: notifications: duplicate sink name {:?} (first defined at {})",
                    at(name),
                    name.value,
                    at(first)
                ));
            }
            let url = &sink.webhook.url;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!(
                    "{}: notifications: sink {:?}: webhook.url must start with http:// or https://",
                    at(name),
                    name.value
                ));
            }
            for kind in &sink.events {
                if !NOTIFICATION_EVENTS.contains(&kind.as_str()) {
                    problems.push(format!(
                        "{}: notifications: sink {:?}: unknown event {kind:?} (known: {})",
                        at(name),
                        name.value,
                        NOTIFICATION_EVENTS.join(", ")
                    ));
                }
            }
        }
    }

    /// The app called `name`.
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.name() == name)
    }
}

/// A DNS label as Kubernetes defines it (RFC 1123): 1–63 of `[a-z0-9-]`, alphanumeric at
/// both ends.
fn check_dns_label(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may contain only lowercase letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// Local repository paths are made absolute; URLs are left alone.
fn absolutize_repo(repo: &str, base: &Path) -> String {
    let is_url = repo.contains("://") || (repo.contains('@') && repo.contains(':'));
    if is_url || Path::new(repo).is_absolute() {
        repo.to_owned()
    } else {
        base.join(repo).display().to_string()
    }
}

impl fmt::Display for TargetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetConfig::Files(files) => write!(f, "files:{}", files.root.display()),
            TargetConfig::Kubernetes(kube) => write!(
                f,
                "kubernetes:{}/{}",
                kube.context.as_deref().unwrap_or("(current context)"),
                kube.namespace.as_deref().unwrap_or("default")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "driftless.yaml", Path::new("/etc/driftless"))
    }

    #[test]
    fn the_readme_example_is_a_valid_config() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .expect("README has a Configuration section");
        let yaml = section
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a yaml block");
        let config = parse(yaml).unwrap_or_else(|e| panic!("README example: {e}"));
        let app = &config.apps[0];
        assert!(app.sync.force && !app.sync.create_namespace);
        assert_eq!(config.server.allowed_hosts, ["gitops.example.com"]);
        assert_eq!(app.render.limits.limits().max_file_bytes, 8 * 1024 * 1024);
    }

    #[test]
    fn render_limits_keep_defaults_for_what_is_unset_and_depth_is_capped() {
        let config = parse(
            "apps:\n  - name: web\n    source: { repo: x }\n    target: { files: { root: y } }\n    render: { limits: { maxFileBytes: 1024, maxDepth: 20 } }\n",
        )
        .unwrap();
        let limits = config.apps[0].render.limits.limits();
        let defaults = driftless_render::Limits::default();
        assert_eq!(limits.max_file_bytes, 1024);
        assert_eq!(limits.max_depth, 20);
        assert_eq!(limits.max_total_bytes, defaults.max_total_bytes);
        let err = parse(
            "apps:\n  - name: web\n    source: { repo: x }\n    target: { files: { root: y } }\n    render: { limits: { maxDepth: 5000 } }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("driftless.yaml:2:"), "{err}");
        assert!(
            err.contains("render.limits.maxDepth must be 1 to 200"),
            "{err}"
        );
    }

    #[test]
    fn server_hosts_limits_and_retention_keep_defaults_for_what_is_unset() {
        let config = parse(
            "apps: []\nserver:\n  allowedHosts: [gitops.example.com]\n  limits: { headerReadTimeout: 5s, maxConnections: 10 }\n  retention: { events: { maxAge: 24h }, syncs: { maxPerApp: 50 } }\n",
        )
        .unwrap();
        let server = &config.server;
        assert_eq!(server.allowed_hosts, ["gitops.example.com"]);
        assert_eq!(
            server.limits.header_read_timeout,
            Some(Duration::from_secs(5))
        );
        assert_eq!(server.limits.idle_timeout, None);
        assert_eq!(server.limits.max_connections, Some(10));
        let policy = server.retention.policy();
        let defaults = driftless_store::Retention::default();
        assert_eq!(policy.events.max_age, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(policy.events.max_rows, defaults.events.max_rows);
        assert_eq!(policy.syncs.max_per_app, Some(50));
        assert_eq!(policy.audit, defaults.audit);

        let err = parse("apps: []\nserver:\n  limits: { maxConnections: 0, idleTimeout: 1ms }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.limits.maxConnections must be at least 1"),
            "{err}"
        );
        assert!(
            err.contains("server.limits.idleTimeout must be at least 100ms"),
            "{err}"
        );
        let err = parse("apps: []\nserver:\n  retention: { events: { maxDays: 3 } }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("maxDays"), "{err}");
    }

    #[test]
    fn parses_the_design_example_with_defaults() {
        let config = parse(
            "apps:\n  - name: web\n    source:\n      repo: deploy\n      path: apps/web\n      interval: 1m30s\n    target:\n      files: { root: out }\n    sync: { prune: true, selfHeal: true }\n",
        )
        .unwrap();
        let app = &config.apps[0];
        assert_eq!(app.name(), "web");
        assert_eq!(app.source.reference, "main");
        assert_eq!(app.source.repo, "/etc/driftless/deploy");
        assert_eq!(app.source.interval, Duration::from_secs(90));
        assert_eq!(
            app.sync,
            SyncPolicy {
                auto: true,
                prune: true,
                self_heal: true,
                force: true,
                create_namespace: false,
            }
        );
        match &app.target {
            TargetConfig::Files(f) => assert_eq!(f.root, Path::new("/etc/driftless/out")),
            other => panic!("unexpected target {other:?}"),
        }
    }

    #[test]
    fn unknown_field_names_file_line_and_column() {
        let err = parse("apps:\n  - name: web\n    source: { repo: x }\n    target: { files: { root: y } }\n    sink: true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("driftless.yaml:5:5"), "{err}");
        assert!(err.contains("unknown field `sink`"), "{err}");
    }

    #[test]
    fn bad_duration_is_located() {
        let err = parse("apps:\n  - name: web\n    source: { repo: x, interval: soon }\n    target: { files: { root: y } }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid duration \"soon\""), "{err}");
        assert!(err.contains("driftless.yaml:3:"), "{err}");
    }

    #[test]
    fn duplicate_names_name_both_lines() {
        let err = parse(
            "apps:\n  - name: web\n    source: { repo: x }\n    target: { files: { root: y } }\n  - name: web\n    source: { repo: x }\n    target: { files: { root: z } }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("driftless.yaml:5:11: duplicate app name \"web\" (first defined at driftless.yaml:2:11)"), "{err}");
    }

    #[test]
    fn names_must_be_dns_labels_and_targets_exactly_one() {
        let err = parse(
            "apps:\n  - name: Web_1\n    source: { repo: x }\n    target: { files: { root: y } }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("app name \"Web_1\" may contain only lowercase"),
            "{err}"
        );
        let err = parse("apps:\n  - name: web\n    source: { repo: x }\n    target: { files: { root: y }, kubernetes: {} }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("driftless.yaml:4"), "{err}");
        let err = parse("apps:\n  - name: web\n    source: { repo: x, path: ../up }\n    target: { files: { root: y } }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("leaves the root"), "{err}");
    }

    #[test]
    fn a_secret_key_reference_needs_a_kubernetes_target() {
        let err = parse("apps:\n  - name: web\n    source: { repo: x }\n    target: { files: { root: y } }\n    decryption: { sops: { secretRef: { name: keys } } }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("decryption.sops.secretRef needs a kubernetes target"),
            "{err}"
        );
        let config = parse("apps:\n  - name: web\n    source: { repo: x }\n    target: { kubernetes: {} }\n    decryption: { sops: { secretRef: { name: keys } } }\n")
            .expect("valid");
        let key = config.apps[0]
            .decryption
            .as_ref()
            .and_then(|d| d.sops.secret_ref.as_ref())
            .expect("ref");
        assert_eq!(
            (key.name.as_str(), key.key.as_str()),
            ("keys", "age.agekey")
        );
    }

    #[test]
    fn credentials_in_repo_urls_are_refused_where_they_stand() {
        for (url, why) in [
            ("https://bob:hunter2@git.example/org/r.git", "password"),
            ("https://ghp_S3CRET@github.com/org/r.git", "user name"),
            ("ssh://git:hunter2@git.example/org/r", "password"),
        ] {
            let err = parse(&format!(
                "apps:\n  - name: web\n    source:\n      repo: \"{url}\"\n    target: {{ files: {{ root: y }} }}\n"
            ))
            .expect_err(url)
            .to_string();
            assert!(err.contains("driftless.yaml:4:"), "{err}");
            assert!(err.contains(why), "{err}");
            assert!(err.contains("credentials:"), "{err}");
            assert!(
                !err.contains("hunter2") && !err.contains("S3CRET"),
                "the refusal must not repeat the secret: {err}"
            );
        }
        for url in [
            "ssh://git@git.example/org/r",
            "git@git.example:org/r.git",
            "https://git.example/org/r.git",
        ] {
            let config = parse(&format!(
                "apps:\n  - name: web\n    source: {{ repo: \"{url}\", credentials: {{ knownHostsFile: kh }} }}\n    target: {{ files: {{ root: y }} }}\n"
            ))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
            let creds = config.apps[0].source.credentials.as_ref().expect("creds");
            assert_eq!(
                creds.known_hosts_file.as_deref(),
                Some(Path::new("/etc/driftless/kh"))
            );
        }
    }

    #[test]
    fn decrypted_mode_is_octal_permission_bits() {
        let config = parse("apps:\n  - name: web\n    source: { repo: x }\n    target: { files: { root: y, decryptedMode: \"0640\" } }\n")
            .expect("valid");
        match &config.apps[0].target {
            TargetConfig::Files(f) => assert_eq!(f.decrypted_mode, Some(0o640)),
            other => panic!("{other:?}"),
        }
        for bad in ["\"0999\"", "\"4755\"", "rw", "\"\""] {
            let err = parse(&format!("apps:\n  - name: web\n    source: {{ repo: x }}\n    target: {{ files: {{ root: y, decryptedMode: {bad} }} }}\n"))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("driftless.yaml:4:"), "{err}");
            assert!(err.contains("invalid file mode"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_alias_flood_fails_fast_and_located() {
        // Every field is typed, so a nested (exponential) bomb stops at its first
        // nested value; what remains is a flood of aliases to one big scalar, each
        // copied into a String.
        let big = "x".repeat(64 * 1024);
        let aliases = vec!["*s"; 20_000].join(", ");
        let text = format!(
            "apps:\n  - name: web\n    source: {{ repo: x }}\n    target:\n      files:\n        root: &s \"{big}\"\n        postSync: [{aliases}]\n"
        );
        let started = std::time::Instant::now();
        let err = parse(&text).expect_err("alias flood").to_string();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert!(err.contains("driftless.yaml:7:"), "{err}");
        // Replayed scalars count against the scalar byte budget (4 MiB).
        assert!(err.contains("budget breached"), "{err}");
    }

    #[test]
    fn deep_nesting_fails_fast_and_located() {
        for (open, close) in [("[", "]"), ("{a: ", "}")] {
            let depth = 100_000;
            let text = format!("apps: {}{}\n", open.repeat(depth), close.repeat(depth));
            let started = std::time::Instant::now();
            let err = parse(&text).expect_err("deep").to_string();
            assert!(started.elapsed() < Duration::from_secs(2));
            assert!(err.contains("driftless.yaml:1:"), "{err}");
        }
        let mut block = String::from("apps:\n");
        for level in 0..200 {
            block.push_str(&"  ".repeat(level + 1));
            block.push_str("- \n");
        }
        let err = parse(&block).expect_err("deep block").to_string();
        assert!(err.contains("driftless.yaml:"), "{err}");
    }

    #[test]
    fn an_oversized_file_is_refused_before_parsing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("driftless.yaml");
        let mut text = String::from("apps: []\n");
        while (text.len() as u64) <= MAX_CONFIG_BYTES {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(&path, &text).expect("write");
        let err = Config::load(&path).expect_err("too big").to_string();
        assert!(err.contains("driftless.yaml:1:1"), "{err}");
        assert!(err.contains("larger than 4 MiB"), "{err}");
    }

    #[test]
    fn durations_round_trip() {
        for (text, secs) in [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2h", 7200)] {
            assert_eq!(parse_duration(text).unwrap(), Duration::from_secs(secs));
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
        }
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "5", "m", "5x", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod server_tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "driftless.yaml", Path::new("/etc/driftless"))
    }

    #[test]
    fn parses_tokens_webhooks_and_notifications() {
        let hash = "a".repeat(64);
        let config = parse(&format!(
            "server:\n  tokens:\n    - {{ name: ci, role: operator, sha256: \"{hash}\" }}\n  webhooks:\n    github: {{ secretEnv: GH_SECRET }}\n    generic: {{ secretFile: hook.secret }}\nnotifications:\n  - name: team\n    webhook: {{ url: \"http://127.0.0.1:9/x\", format: slack }}\n    events: [sync-failed, drift-detected]\n"
        ))
        .unwrap();
        let token = &config.server.tokens[0];
        assert_eq!(token.name.value, "ci");
        assert_eq!(token.role, Role::Operator);
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        let generic = config.server.webhooks.generic.as_ref().unwrap();
        assert_eq!(
            generic.secret_file.as_deref(),
            Some(Path::new("/etc/driftless/hook.secret"))
        );
        let sink = &config.notifications[0];
        assert_eq!(sink.webhook.format, NotificationFormat::Slack);
        assert!(sink.wants("sync-failed") && !sink.wants("sync-started"));
    }

    #[test]
    fn bad_server_and_notification_config_is_located() {
        let err = parse("server:\n  tokens:\n    - { name: ci, role: operator, sha256: hunter2 }\n    - { name: ci, role: viewer, sha256: hunter2 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "driftless.yaml:3:15: server.tokens: token \"ci\": sha256 must be 64 hex digits"
            ),
            "{err}"
        );
        assert!(err.contains("driftless.yaml:4:15: server.tokens: duplicate token name \"ci\" (first defined at driftless.yaml:3:15)"), "{err}");
        let err = parse("server:\n  tokens:\n    - { name: ci, role: root, sha256: x }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("driftless.yaml:3:") && err.contains("root"),
            "{err}"
        );
        let err = parse("server:\n  webhooks:\n    github: { secret: inline }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `secret`"), "{err}");
        let err = parse("server:\n  webhooks:\n    gitea: {}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.webhooks.gitea: give exactly one of secretEnv or secretFile"),
            "{err}"
        );
        let err = parse("notifications:\n  - name: team\n    webhook: { url: \"ftp://x\" }\n    events: [sync-exploded]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("driftless.yaml:2:11: notifications: sink \"team\": webhook.url must start with http:// or https://"), "{err}");
        assert!(err.contains("unknown event \"sync-exploded\""), "{err}");
        let err = parse(
            "notifications:\n  - name: team\n    webhook: { url: \"http://x\", colour: red }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}
