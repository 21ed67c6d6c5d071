//! The one error type of this crate, and how Git and transport failures map onto it.

use std::path::PathBuf;

/// Why a source operation failed. Every message names the repository (with any
/// `user:password@` removed) and says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The repository URL could not be parsed or uses an unsupported scheme.
    #[error(
        "bad repository URL {url:?}: {reason}; use https://host/org/repo, ssh://user@host/org/repo, user@host:org/repo, git://host/repo, file:///path or a local path"
    )]
    BadUrl { url: String, reason: String },

    /// The server asked for credentials and rejected the ones given (or none were given).
    #[error(
        "authentication failed for {url}: {detail}; check the username and password/token (https) or the ssh key given for this repository"
    )]
    AuthFailed { url: String, detail: String },

    /// The ssh server's host key is unknown or does not match `known_hosts`.
    #[error(
        "host key verification failed for {url}; add the server's key to the known_hosts file (or set ssh_known_hosts for this repository)"
    )]
    HostKey { url: String },

    /// The host could not be reached: DNS failure, connection refused, timeout, reset.
    #[error(
        "cannot reach {url}: {detail}; check the host name, port and network (this is retried)"
    )]
    Unreachable { url: String, detail: String },

    /// The server answered but has no repository at that path (or hides it).
    #[error(
        "repository not found: {url}: {detail}; check the URL's path and that the credentials may read it"
    )]
    RepoNotFound { url: String, detail: String },

    /// The branch, tag or commit does not exist in the repository.
    #[error(
        "unknown ref {reference:?} in {url}: no branch, tag or commit of that name; check the spelling, push it, or use a full 40-character commit id"
    )]
    UnknownRef { reference: String, url: String },

    /// The ref resolves to an object that is not a commit (for example a tag of a tree).
    #[error("ref {reference:?} in {url} points to a {kind}, not a commit; point it at a commit")]
    NotACommit {
        reference: String,
        url: String,
        kind: String,
    },

    /// Any other failure of the Git protocol or of the local cache repository.
    #[error("git {op} failed for {url}: {detail}")]
    Git {
        op: &'static str,
        url: String,
        detail: String,
    },

    /// A local file or directory could not be read or written.
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// Whether retrying later (with backoff) may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SourceError::Unreachable { .. } | SourceError::Git { .. } | SourceError::Io { .. }
        )
    }

    /// A short stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            SourceError::BadUrl { .. } => "bad_url",
            SourceError::AuthFailed { .. } => "auth_failed",
            SourceError::HostKey { .. } => "host_key",
            SourceError::Unreachable { .. } => "unreachable",
            SourceError::RepoNotFound { .. } => "repo_not_found",
            SourceError::UnknownRef { .. } => "unknown_ref",
            SourceError::NotACommit { .. } => "not_a_commit",
            SourceError::Git { .. } => "git",
            SourceError::Io { .. } => "io",
        }
    }

    /// A copy for every caller that shared one operation (an `io::Error` keeps its kind
    /// and message).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            SourceError::BadUrl { url, reason } => SourceError::BadUrl {
                url: url.clone(),
                reason: reason.clone(),
            },
            SourceError::AuthFailed { url, detail } => SourceError::AuthFailed {
                url: url.clone(),
                detail: detail.clone(),
            },
            SourceError::HostKey { url } => SourceError::HostKey { url: url.clone() },
            SourceError::Unreachable { url, detail } => SourceError::Unreachable {
                url: url.clone(),
                detail: detail.clone(),
            },
            SourceError::RepoNotFound { url, detail } => SourceError::RepoNotFound {
                url: url.clone(),
                detail: detail.clone(),
            },
            SourceError::UnknownRef { reference, url } => SourceError::UnknownRef {
                reference: reference.clone(),
                url: url.clone(),
            },
            SourceError::NotACommit {
                reference,
                url,
                kind,
            } => SourceError::NotACommit {
                reference: reference.clone(),
                url: url.clone(),
                kind: kind.clone(),
            },
            SourceError::Git { op, url, detail } => SourceError::Git {
                op,
                url: url.clone(),
                detail: detail.clone(),
            },
            SourceError::Io { path, source } => SourceError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SourceError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Maps a gix failure of a network operation (`op`: "ls-remote", "fetch") onto the
/// variant that tells the user what to do. Classification uses gix's error classes first
/// and the well-known messages of git servers, ssh and the OS second.
pub(crate) fn classify(
    op: &'static str,
    url: &str,
    err: &gix::Error,
    ssh_log: &str,
    secrets: &[&str],
) -> SourceError {
    let mut chain: Vec<String> = err.iter_errors().map(|e| e.to_string()).collect();
    // ssh's own messages (from its log file) name the real cause; they come last.
    chain.extend(
        ssh_log
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("ssh: {l}")),
    );
    let mut detail = chain.join(": ");
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        detail = detail.replace(secret, "***");
    }
    let detail = redact_url(&detail);
    let lower = detail.to_lowercase();
    let url = url.to_owned();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));

    if has(&["host key verification failed"]) {
        return SourceError::HostKey { url };
    }
    if err.is_unauthenticated()
        || has(&[
            "were not accepted by the remote",
            "permission denied (publickey",
            "authentication failed",
            "no credentials were returned",
            "status 401",
        ])
    {
        let detail = if has(&["permission denied (publickey", "refused the ssh key"]) {
            "the server refused the ssh key".to_owned()
        } else if has(&["no credentials configured"]) {
            "the server requires credentials and none are configured".to_owned()
        } else {
            "the server rejected the credentials".to_owned()
        };
        return SourceError::AuthFailed { url, detail };
    }
    if has(&[
        "connection refused",
        "could not resolve",
        "failed to lookup address",
        "dns error",
        "name or service not known",
        "temporary failure in name resolution",
        "network is unreachable",
        "no route to host",
        "timed out",
        "resource temporarily unavailable",
        "would block",
        "connection reset",
        "error sending request",
        "connection closed before",
        "broken pipe",
    ]) {
        return SourceError::Unreachable {
            url,
            detail: last_meaningful(&chain, secrets),
        };
    }
    if has(&[
        "status 404",
        "repository not found",
        "no such repository",
        "not exported",
        "does not appear to be a git repository",
        "no such file or directory",
        "not a git repository",
        "could not find repository",
    ]) {
        return SourceError::RepoNotFound {
            url,
            detail: last_meaningful(&chain, secrets),
        };
    }
    SourceError::Git { op, url, detail }
}

/// The innermost cause, usually the one that names the real problem (e.g. "Connection
/// refused (os error 111)"), scrubbed like the full chain.
fn last_meaningful(chain: &[String], secrets: &[&str]) -> String {
    let mut text = chain
        .iter()
        .rev()
        .find(|s| !s.trim().is_empty())
        .cloned()
        .unwrap_or_default();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    redact_url(text.trim())
}

/// Every URL in `text` with its credentials removed, for anything shown, logged or
/// stored: `scheme://user:password@host` and, except over ssh, a bare `scheme://user@host`
/// (over http(s) a lone user name is often a token) become `scheme://***@host`. An ssh
/// user name (`ssh://git@host`) is an account, not a secret, and is kept; a password
/// next to it is not.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let scheme_start = head[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let scheme = head[scheme_start..pos].to_ascii_lowercase();
        let ssh = scheme.split('+').any(|part| part == "ssh");
        // The URL runs to the next blank or quote; its user-info to the last `@` in it,
        // unless what comes before that `@` is clearly a host and path (`host/a@b`).
        let token_end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '<' || c == '>')
            .unwrap_or(tail.len());
        let token = &tail[..token_end];
        let userinfo_end = token.rfind('@').filter(|&at| {
            let before = &token[..at];
            match before.find('/') {
                None => true,
                // `user:pa/ss@host`: a password with a raw slash.
                Some(slash) => before[..slash].contains(':'),
            }
        });
        match userinfo_end {
            Some(at) => {
                let userinfo = &token[..at];
                match (ssh, userinfo.find(':')) {
                    (true, Some(colon)) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    (true, None) => out.push_str(userinfo),
                    (false, _) => out.push_str("***"),
                }
                out.push_str(&token[at..]);
            }
            None => out.push_str(token),
        }
        rest = &tail[token_end..];
    }
    out.push_str(rest);
    out
}

/// Why a repository URL may not be written in a config file: it carries a credential.
/// `None` for URLs without one (ssh user names are fine, see [`redact_url`]) and for text
/// that is not a URL at all (a local path; a bad URL is reported when it is used).
pub fn url_credential_problem(url: &str) -> Option<&'static str> {
    let parsed = gix::url::parse(url.trim()).ok()?;
    if parsed.password().is_some() {
        return Some("the URL holds a password");
    }
    let ssh = parsed.scheme == gix::url::Scheme::Ssh;
    if !ssh && parsed.user().is_some_and(|u| !u.is_empty()) {
        return Some("the URL holds a user name, which over http(s) is often a token");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_credentials_but_keeps_ssh_users_and_plain_text() {
        assert_eq!(
            redact_url("fetch https://bob:s3cret@host/x.git failed"),
            "fetch https://***@host/x.git failed"
        );
        assert_eq!(
            redact_url("https://ghp_T0KEN@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        assert_eq!(redact_url("ssh://git@host/x"), "ssh://git@host/x");
        assert_eq!(redact_url("ssh://git:pw@host/x"), "ssh://git:***@host/x");
        assert_eq!(redact_url("git@host:org/x"), "git@host:org/x");
        assert_eq!(redact_url("no url here"), "no url here");
        assert_eq!(
            redact_url("a https://u:p@h b http://h2/p"),
            "a https://***@h b http://h2/p"
        );
        assert_eq!(
            redact_url("\"https://u:pa/ss@h/x\" and https://h/a@b"),
            "\"https://***@h/x\" and https://h/a@b"
        );
    }

    #[test]
    fn credentials_in_urls_are_named() {
        for bad in [
            "https://bob:pw@example.com/r.git",
            "https://TOKEN@example.com/r.git",
            "http://user@example.com/r",
            "ssh://git:pw@example.com/r",
        ] {
            assert!(url_credential_problem(bad).is_some(), "{bad}");
        }
        for fine in [
            "https://example.com/r.git",
            "ssh://git@example.com/r",
            "git@example.com:org/r.git",
            "/srv/git/r",
            "file:///srv/git/r",
        ] {
            assert_eq!(url_credential_problem(fine), None, "{fine}");
        }
    }

    #[test]
    fn reasons_and_transience() {
        let unknown = SourceError::UnknownRef {
            reference: "nope".into(),
            url: "https://h/r".into(),
        };
        assert_eq!(unknown.reason(), "unknown_ref");
        assert!(!unknown.is_transient());
        let down = SourceError::Unreachable {
            url: "https://h/r".into(),
            detail: "Connection refused".into(),
        };
        assert!(down.is_transient());
        assert_eq!(down.reason(), "unreachable");
    }
}
