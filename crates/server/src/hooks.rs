//! `POST /hooks/{provider}`: Git hosts' push webhooks. The signature is verified over the
//! raw body before anything is parsed; a push refreshes every app that follows the pushed
//! repository and branch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use driftless_engine::Config;
use driftless_engine::config::{SecretRef, WebhooksConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::unhex;
use crate::{Failure, Server};

/// Largest accepted webhook body.
pub const MAX_BODY: usize = 1 << 20;

/// Hooks for one app closer together than this are merged into one trailing refresh.
pub const COALESCE: Duration = Duration::from_millis(250);

/// The Git host kinds driftless understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
    Github,
    /// `X-Gitlab-Token: <secret>`.
    Gitlab,
    /// `X-Gitea-Signature: <hex HMAC-SHA256(secret, body)>`.
    Gitea,
    /// `X-Driftless-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
    Generic,
}

impl Provider {
    fn parse(name: &str) -> Option<Provider> {
        match name {
            "github" => Some(Provider::Github),
            "gitlab" => Some(Provider::Gitlab),
            "gitea" => Some(Provider::Gitea),
            "generic" => Some(Provider::Generic),
            _ => None,
        }
    }

    /// The path segment and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Generic => "generic",
        }
    }
}

/// Why webhook secrets could not be loaded at start-up.
#[derive(Debug, thiserror::Error)]
#[error("server.webhooks.{provider}: {source}")]
pub struct HookSecretError {
    pub provider: &'static str,
    #[source]
    pub source: driftless_engine::config::SecretError,
}

/// Secrets (read once at start-up) and the apps each repository+branch feeds.
pub(crate) struct Hooks {
    secrets: HashMap<&'static str, Vec<u8>>,
    /// (normalized repo, ref) → app names.
    routes: HashMap<(String, String), Vec<String>>,
    coalescer: Coalescer,
}

impl Hooks {
    pub(crate) fn new(config: &Config) -> Result<Hooks, HookSecretError> {
        let WebhooksConfig {
            github,
            gitlab,
            gitea,
            generic,
        } = &config.server.webhooks;
        let mut secrets = HashMap::new();
        for (provider, secret) in [
            (Provider::Github, github),
            (Provider::Gitlab, gitlab),
            (Provider::Gitea, gitea),
            (Provider::Generic, generic),
        ] {
            if let Some(secret) = secret.as_ref() {
                secrets.insert(provider.as_str(), read(provider, secret)?);
            }
        }
        let mut routes: HashMap<(String, String), Vec<String>> = HashMap::new();
        for app in &config.apps {
            routes
                .entry((
                    normalize_repo(&app.source.repo),
                    app.source.reference.clone(),
                ))
                .or_default()
                .push(app.name().to_owned());
        }
        Ok(Hooks {
            secrets,
            routes,
            coalescer: Coalescer::default(),
        })
    }

    pub(crate) fn empty() -> Hooks {
        Hooks {
            secrets: HashMap::new(),
            routes: HashMap::new(),
            coalescer: Coalescer::default(),
        }
    }
}

fn read(provider: Provider, secret: &SecretRef) -> Result<Vec<u8>, HookSecretError> {
    secret.read().map_err(|source| HookSecretError {
        provider: provider.as_str(),
        source,
    })
}

/// `hex(HMAC-SHA256(secret, body))`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    crate::auth::hex(&mac.finalize().into_bytes())
}

/// Checks a hex HMAC-SHA256 signature in constant time.
pub fn verify_hmac(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Some(given) = unhex(signature_hex.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

fn verify(provider: Provider, secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::Github => get("x-hub-signature-256")
            .and_then(|v| v.strip_prefix("sha256="))
            .is_some_and(|sig| verify_hmac(secret, body, sig)),
        Provider::Generic => get("x-driftless-signature")
            .and_then(|v| v.strip_prefix("sha256="))
            .is_some_and(|sig| verify_hmac(secret, body, sig)),
        Provider::Gitea => {
            get("x-gitea-signature").is_some_and(|sig| verify_hmac(secret, body, sig))
        }
        Provider::Gitlab => {
            get("x-gitlab-token").is_some_and(|token| bool::from(token.as_bytes().ct_eq(secret)))
        }
    }
}

/// `host/path` for any spelling of a repository: lowercase host, no user, port, `.git`
/// or trailing slash, so that `git@host:org/repo.git` and `https://host/org/repo` match.
/// Local paths and `file://` URLs become `file:<path>`.
pub fn normalize_repo(repo: &str) -> String {
    let repo = repo.trim();
    let strip = |path: &str| -> String {
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        path.trim_end_matches('/').to_owned()
    };
    if let Some(path) = repo.strip_prefix("file://") {
        return format!("file:{}", strip(path));
    }
    if let Some((_, rest)) = repo.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = host.split(':').next().unwrap_or(host);
        return format!("{}/{}", host.to_ascii_lowercase(), strip(path));
    }
    if !repo.starts_with('/')
        && let Some((authority, path)) = repo.split_once(':')
    {
        // scp-like: [user@]host:path
        let host = authority.rsplit('@').next().unwrap_or(authority);
        return format!(
            "{}/{}",
            host.to_ascii_lowercase(),
            strip(path.trim_start_matches('/'))
        );
    }
    format!("file:{}", strip(repo))
}

/// Every repository URL a push payload names, and the pushed branch or tag.
fn targets(payload: &serde_json::Value) -> (Vec<String>, Option<String>) {
    const KEYS: [&str; 9] = [
        "clone_url",
        "ssh_url",
        "html_url",
        "git_http_url",
        "git_ssh_url",
        "http_url",
        "git_url",
        "url",
        "web_url",
    ];
    let mut urls = Vec::new();
    for holder in ["repository", "project"] {
        match payload.get(holder) {
            Some(serde_json::Value::String(url)) => urls.push(url.clone()),
            Some(object) => {
                for key in KEYS {
                    if let Some(url) = object.get(key).and_then(|v| v.as_str()) {
                        urls.push(url.to_owned());
                    }
                }
            }
            None => {}
        }
    }
    let reference = payload.get("ref").and_then(|v| v.as_str()).map(|r| {
        r.strip_prefix("refs/heads/")
            .or_else(|| r.strip_prefix("refs/tags/"))
            .unwrap_or(r)
            .to_owned()
    });
    (urls, reference)
}

/// The answer to a webhook: which apps it refreshed.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct HookAnswer {
    pub apps: Vec<String>,
}

pub(crate) async fn receive(
    State(server): State<Server>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(provider) = Provider::parse(&provider) else {
        return Failure::new(
            StatusCode::NOT_FOUND,
            format!("no webhook kind {provider:?}; use github, gitlab, gitea or generic"),
        )
        .into_response();
    };
    let outcome = handle(&server, provider, &headers, body).await;
    let result = match &outcome {
        Ok(apps) if apps.is_empty() => "ignored",
        Ok(_) => "accepted",
        Err((StatusCode::UNAUTHORIZED, _)) => "bad_signature",
        Err((StatusCode::PAYLOAD_TOO_LARGE, _)) => "too_large",
        Err((StatusCode::REQUEST_TIMEOUT, _)) => "body_timeout",
        Err((StatusCode::NOT_FOUND, _)) => "not_configured",
        Err(_) => "bad_payload",
    };
    server.inner.metrics.webhook(provider.as_str(), result);
    match outcome {
        Ok(apps) => (StatusCode::ACCEPTED, Json(HookAnswer { apps })).into_response(),
        Err((status, why)) => Failure::new(status, why).into_response(),
    }
}

async fn handle(
    server: &Server,
    provider: Provider,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<String>, (StatusCode, String)> {
    let hooks = &server.inner.hooks;
    let Some(secret) = hooks.secrets.get(provider.as_str()) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!(
                "the {} webhook is not configured (server.webhooks.{} in driftless.yaml)",
                provider.as_str(),
                provider.as_str()
            ),
        ));
    };
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("webhook bodies are limited to {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|err| {
        let over_limit = std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if over_limit {
            too_large()
        } else {
            // A body that stalled (see ConnectionLimits::idle_timeout) or broke off.
            (
                StatusCode::REQUEST_TIMEOUT,
                format!("the webhook body could not be read: {err}"),
            )
        }
    })?;
    if !verify(provider, secret, headers, &body) {
        return Err((
            StatusCode::UNAUTHORIZED,
            format!("bad or missing {} webhook signature", provider.as_str()),
        ));
    }
    let payload: serde_json::Value = serde_json::from_slice(&body).map_err(|err| {
        (
            StatusCode::BAD_REQUEST,
            format!("the webhook body is not JSON: {err}"),
        )
    })?;
    let (urls, reference) = targets(&payload);
    let Some(reference) = reference else {
        // A ping or another event without a ref: nothing to do.
        return Ok(Vec::new());
    };
    let mut apps: Vec<String> = Vec::new();
    for url in urls {
        if let Some(names) = hooks.routes.get(&(normalize_repo(&url), reference.clone())) {
            for name in names {
                if !apps.contains(name) {
                    apps.push(name.clone());
                }
            }
        }
    }
    for app in &apps {
        let engine = server.inner.engine.clone();
        hooks.coalescer.refresh(app, move |app| {
            let _ = engine.refresh(app);
        });
    }
    tracing::info!(provider = provider.as_str(), %reference, apps = ?apps, "webhook");
    Ok(apps)
}

/// Leading-and-trailing debounce per app: the first hook refreshes at once; hooks within
/// [`COALESCE`] of it collapse into one refresh at the end of the window, so the last
/// push is always seen and a flood costs at most a few refreshes a second.
#[derive(Default)]
struct Coalescer {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

struct Slot {
    last: Instant,
    trailing: bool,
}

impl Coalescer {
    fn refresh(&self, app: &str, refresh: impl Fn(&str) + Send + 'static) {
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("coalescer lock poisoned");
        let slot = slots.entry(app.to_owned()).or_insert(Slot {
            last: now.checked_sub(COALESCE * 2).unwrap_or(now),
            trailing: false,
        });
        let since = now.duration_since(slot.last);
        if since >= COALESCE && !slot.trailing {
            slot.last = now;
            refresh(app);
            return;
        }
        if slot.trailing {
            return;
        }
        slot.trailing = true;
        let delay = COALESCE.saturating_sub(since);
        let (slots, app) = (self.slots.clone(), app.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(slot) = slots.lock().expect("coalescer lock poisoned").get_mut(&app) {
                slot.trailing = false;
                slot.last = Instant::now();
            }
            refresh(&app);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_signature_example_verifies() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, body), expected);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            format!("sha256={expected}").parse().unwrap(),
        );
        assert!(verify(Provider::Github, secret, &headers, body));
        assert!(!verify(
            Provider::Github,
            secret,
            &headers,
            b"Hello, World?"
        ));
        assert!(!verify(Provider::Github, b"another secret", &headers, body));
        headers.insert("x-hub-signature-256", expected.parse().unwrap());
        assert!(
            !verify(Provider::Github, secret, &headers, body),
            "prefix required"
        );
    }

    #[test]
    fn gitlab_gitea_and_generic_signatures() {
        let (secret, body) = (b"s3cret".as_slice(), b"{}".as_slice());
        let mut headers = HeaderMap::new();
        headers.insert("x-gitlab-token", "s3cret".parse().unwrap());
        headers.insert("x-gitea-signature", sign(secret, body).parse().unwrap());
        headers.insert(
            "x-driftless-signature",
            format!("sha256={}", sign(secret, body)).parse().unwrap(),
        );
        for p in [Provider::Gitlab, Provider::Gitea, Provider::Generic] {
            assert!(verify(p, secret, &headers, body), "{p:?}");
            assert!(!verify(p, b"s3cre", &headers, body), "{p:?}");
        }
    }

    #[test]
    fn repository_spellings_normalize_to_one_key() {
        let key = "github.com/Org/Repo";
        for spelling in [
            "https://github.com/Org/Repo",
            "https://GitHub.com/Org/Repo.git",
            "https://github.com/Org/Repo/",
            "https://user@github.com:443/Org/Repo.git/",
            "git@github.com:Org/Repo.git",
            "ssh://git@github.com:22/Org/Repo.git",
            "git://github.com/Org/Repo",
        ] {
            assert_eq!(normalize_repo(spelling), key, "{spelling}");
        }
        assert_ne!(normalize_repo("https://github.com/Org/Other"), key);
        assert_ne!(normalize_repo("https://gitlab.com/Org/Repo"), key);
        assert_eq!(
            normalize_repo("/srv/git/deploy.git/"),
            "file:/srv/git/deploy"
        );
        assert_eq!(
            normalize_repo("file:///srv/git/deploy"),
            "file:/srv/git/deploy"
        );
    }

    #[tokio::test]
    async fn a_flood_of_hooks_for_one_app_coalesces() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let coalescer = Coalescer::default();
        let count = Arc::new(AtomicUsize::new(0));
        let counter = || {
            let count = count.clone();
            move |_: &str| {
                count.fetch_add(1, Ordering::SeqCst);
            }
        };
        for _ in 0..500 {
            coalescer.refresh("web", counter());
        }
        coalescer.refresh("api", counter());
        // The first hook of each app refreshes at once.
        assert_eq!(count.load(Ordering::SeqCst), 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        while count.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "no trailing refresh");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // One trailing refresh covers the other 499, and no more follow.
        tokio::time::sleep(COALESCE * 2).await;
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // After a quiet window the next hook refreshes at once again.
        coalescer.refresh("web", counter());
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn payload_urls_and_refs_are_found() {
        let github = serde_json::json!({
            "ref": "refs/heads/main",
            "repository": {"clone_url": "https://github.com/o/r.git", "ssh_url": "git@github.com:o/r.git"}
        });
        let (urls, reference) = targets(&github);
        assert_eq!(urls.len(), 2);
        assert_eq!(reference.as_deref(), Some("main"));
        let gitlab = serde_json::json!({
            "ref": "refs/tags/v1",
            "project": {"git_http_url": "https://gitlab.com/o/r.git"}
        });
        let (urls, reference) = targets(&gitlab);
        assert_eq!(urls, vec!["https://gitlab.com/o/r.git".to_owned()]);
        assert_eq!(reference.as_deref(), Some("v1"));
        let ping = serde_json::json!({"zen": "hi", "repository": {"clone_url": "x"}});
        assert_eq!(targets(&ping).1, None);
    }
}
