//! Repository URLs: one normalized key per repository however it is spelled, the URL
//! actually used to fetch, and a display form without secrets.

use std::path::{Path, PathBuf};

use gix::url::Scheme;

use crate::error::{SourceError, redact_url};

/// A parsed repository location.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// Identity of the repository: equal for `https://Host/org/repo`, `…/repo.git` and
    /// `…/repo/`; used to share one cache repository.
    pub key: String,
    /// What gix connects to: the caller's spelling without user-info secrets.
    pub fetch: gix::Url,
    /// The fetch URL as text, safe for messages and logs.
    pub display: String,
    /// A username found in an http(s) URL (removed from `fetch`).
    pub url_username: Option<String>,
    /// A password found in the URL (removed from `fetch`, never displayed).
    pub url_password: Option<String>,
}

impl Location {
    pub(crate) fn is_ssh(&self) -> bool {
        self.fetch.scheme == Scheme::Ssh
    }
}

/// Parses and normalizes `input`. Relative local paths are taken from the current
/// directory; local paths are canonicalized when they exist.
pub(crate) fn parse(input: &str) -> Result<Location, SourceError> {
    let trimmed = input.trim();
    let bad = |reason: String| SourceError::BadUrl {
        url: redact_url(trimmed),
        reason: redact_url(&reason),
    };
    if trimmed.is_empty() {
        return Err(bad("the URL is empty".into()));
    }
    let mut url = gix::url::parse(trimmed).map_err(|err| bad(err.to_string()))?;
    let url_password = url.set_password(None);
    let mut url_username = None;

    let key = match url.scheme {
        Scheme::File => {
            let raw =
                gix::path::from_bstring(url.path.clone()).map_err(|err| bad(err.to_string()))?;
            let path =
                absolute(&raw).map_err(|err| bad(format!("cannot use local path: {err}")))?;
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            let text = path.to_string_lossy().trim_end_matches('/').to_owned();
            url = gix::Url::from_parts(
                Scheme::File,
                None,
                None,
                None,
                None,
                gix::path::into_bstr(path)
                    .map_err(|err| bad(err.to_string()))?
                    .into_owned(),
                false,
            )
            .map_err(|err| bad(err.to_string()))?;
            format!("file://{text}")
        }
        Scheme::Http | Scheme::Https | Scheme::Git | Scheme::Ssh => {
            let host = url
                .host()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| bad("the URL has no host".into()))?
                .to_ascii_lowercase();
            let default_port = match url.scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
                Scheme::Git => 9418,
                _ => 22,
            };
            let port = url.port.filter(|p| *p != default_port);
            let mut path = String::from_utf8_lossy(&url.path).into_owned();
            while path.len() > 1 && path.ends_with('/') {
                path.pop();
            }
            // The fetch URL keeps the caller's path (servers differ on `.git`), minus
            // trailing slashes.
            url.path = path.clone().into();
            if let Some(stripped) = path.strip_suffix(".git") {
                path = stripped.to_owned();
            }
            if !path.starts_with('/') {
                path.insert(0, '/');
            }
            if path == "/" {
                return Err(bad("the URL has no repository path".into()));
            }
            let scheme = url.scheme.as_str().to_owned();
            let user = if url.scheme == Scheme::Ssh {
                url.user().map(|u| format!("{u}@")).unwrap_or_default()
            } else {
                // Over http(s) the user is a credential, not part of the identity.
                url_username = url.set_user(None);
                String::new()
            };
            match port {
                Some(port) => format!("{scheme}://{user}{host}:{port}{path}"),
                None => format!("{scheme}://{user}{host}{path}"),
            }
        }
        other => {
            return Err(bad(format!("the {other} protocol is not supported")));
        }
    };
    let display = redact_url(&url.to_bstring().to_string());
    Ok(Location {
        key,
        fetch: url,
        display,
        url_username,
        url_password,
    })
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

/// A directory name for the cache repository of `key`: readable prefix plus a stable
/// 64-bit FNV-1a hash, so different keys never share a directory.
pub(crate) fn cache_dir_name(key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let readable: String = key
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(key)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let readable = readable.trim_matches('_');
    let start = readable.len().saturating_sub(48);
    format!("{}-{hash:016x}.git", &readable[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(input: &str) -> String {
        parse(input).unwrap_or_else(|e| panic!("{input}: {e}")).key
    }

    #[test]
    fn https_spellings_share_one_key() {
        let expected = "https://example.com/org/repo";
        for spelling in [
            "https://example.com/org/repo",
            "https://Example.COM/org/repo.git",
            "https://example.com/org/repo/",
            "https://example.com:443/org/repo.git/",
            "https://bob:secret@example.com/org/repo",
        ] {
            assert_eq!(key(spelling), expected, "{spelling}");
        }
        assert_eq!(
            key("https://example.com:8443/org/repo"),
            "https://example.com:8443/org/repo"
        );
        assert_ne!(
            key("https://example.com/org/Repo"),
            expected,
            "paths stay case-sensitive"
        );
    }

    #[test]
    fn ssh_and_scp_spellings_share_one_key() {
        assert_eq!(
            key("ssh://git@host.example/org/repo"),
            "ssh://git@host.example/org/repo"
        );
        assert_eq!(
            key("git@host.example:org/repo.git"),
            "ssh://git@host.example/org/repo"
        );
        assert_eq!(
            key("ssh://git@host.example:22/org/repo.git"),
            "ssh://git@host.example/org/repo"
        );
        assert_eq!(
            key("ssh://git@host.example:2222/org/repo"),
            "ssh://git@host.example:2222/org/repo"
        );
        assert_eq!(
            key("git://host.example/repo.git"),
            "git://host.example/repo"
        );
    }

    #[test]
    fn credentials_leave_the_url_and_the_display() {
        let loc = parse("https://bob:s3cret@example.com/org/repo.git").unwrap();
        assert_eq!(loc.url_username.as_deref(), Some("bob"));
        assert_eq!(loc.url_password.as_deref(), Some("s3cret"));
        assert!(!loc.display.contains("s3cret"), "{}", loc.display);
        assert!(!loc.fetch.to_bstring().to_string().contains("s3cret"));
    }

    #[test]
    fn local_paths_and_file_urls_share_one_key() {
        let dir = std::env::temp_dir();
        let canonical = std::fs::canonicalize(&dir).unwrap();
        let expected = format!("file://{}", canonical.display());
        assert_eq!(key(&dir.display().to_string()), expected);
        assert_eq!(key(&format!("file://{}", dir.display())), expected);
        assert_eq!(key(&format!("{}/", dir.display())), expected);
    }

    #[test]
    fn bad_urls_say_why() {
        let err = parse("").unwrap_err().to_string();
        assert!(err.contains("the URL is empty"), "{err}");
        let err = parse("https://bob:pw@/org/repo").unwrap_err().to_string();
        assert!(!err.contains("pw@"), "{err}");
        let err = parse("https://example.com/").unwrap_err().to_string();
        assert!(err.contains("no repository path"), "{err}");
    }

    #[test]
    fn cache_dir_names_are_distinct_and_tame() {
        let a = cache_dir_name("https://example.com/org/repo");
        let b = cache_dir_name("https://example.com/org/Repo");
        assert_ne!(a, b);
        assert!(a.ends_with(".git"));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{a}"
        );
    }
}
