//! Bearer tokens: hashed at rest, compared in constant time, mapped to roles.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use driftless_engine::config::{Role, TokenConfig};
use driftless_store::NewAudit;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Failure, Server};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Bytes of a hex string, `None` when it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What `server.tokens[].sha256` holds for `token`: lowercase hex SHA-256 of its bytes
/// (surrounding whitespace, e.g. the newline of `echo`, is dropped first).
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.trim().as_bytes()))
}

/// Why a random token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no randomness: {0}")]
pub struct RandomError(String);

/// A fresh random token: `dl_` and 32 random bytes in hex.
pub fn new_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| RandomError(err.to_string()))?;
    Ok(format!("dl_{}", hex(&bytes)))
}

/// Who is calling, as the router established it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Token name, or `local`/`local:<user>` on an open (token-less) server.
    pub name: String,
    pub role: Role,
}

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<(String, Role, [u8; 32])>,
}

impl Tokens {
    /// From the config; entries whose hash is not 64 hex digits (refused by config
    /// validation) are skipped.
    pub fn new(config: &[TokenConfig]) -> Tokens {
        let entries = config
            .iter()
            .filter_map(|t| {
                let bytes = unhex(&t.sha256.to_ascii_lowercase())?;
                let hash: [u8; 32] = bytes.try_into().ok()?;
                Some((t.name.value.clone(), t.role, hash))
            })
            .collect();
        Tokens { entries }
    }

    /// No tokens: the API is open (loopback only).
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// The token's name and role, comparing every hash in constant time.
    pub fn check(&self, token: &str) -> Option<(String, Role)> {
        let hash = Sha256::digest(token.as_bytes());
        let mut found = None;
        for (name, role, expected) in &self.entries {
            if bool::from(expected.ct_eq(hash.as_slice())) {
                found = Some((name.clone(), *role));
            }
        }
        found
    }
}

/// Route middleware: establishes the [`Caller`] and enforces `role`. Denied calls that
/// would change something, and every 403, are written to the audit log.
pub(crate) async fn require(
    State((server, role)): State<(Server, Role)>,
    mut request: Request,
    next: Next,
) -> Response {
    match authorize(&server, role, &request) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err((status, who, why)) => {
            if request.method() != Method::GET || status == StatusCode::FORBIDDEN {
                let (action, app) = audited_call(&server, request.method(), request.uri().path());
                server.audit_denied(NewAudit {
                    actor: who,
                    action,
                    app,
                    detail: None,
                    outcome: format!("denied: {why}"),
                });
            }
            let mut response = Failure::new(status, why).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"driftless\""),
                );
            }
            response
        }
    }
}

/// The action and app of a denied call as the audit log records them: an app segment
/// that names no configured app is replaced by `{unknown}`, so that whatever a caller
/// puts in a path is never stored as it came.
fn audited_call(server: &Server, method: &Method, path: &str) -> (String, Option<String>) {
    if let Some(rest) = path.strip_prefix("/api/v1/apps/") {
        let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let known = server.inner.engine.app(name).is_ok();
        let shown = if known { name } else { "{unknown}" };
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!("/{tail}")
        };
        return (
            format!("{method} /api/v1/apps/{shown}{tail}"),
            known.then(|| name.to_owned()),
        );
    }
    (format!("{method} {path}"), None)
}

fn authorize(
    server: &Server,
    role: Role,
    request: &Request,
) -> Result<Caller, (StatusCode, String, String)> {
    let tokens = &server.inner.tokens;
    if tokens.is_open() {
        return Ok(Caller {
            name: crate::api::local_actor(request.headers()),
            role: Role::Admin,
        });
    }
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "anonymous".to_owned(),
            "missing bearer token: send `Authorization: Bearer <token>`".to_owned(),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    let Some((name, granted)) = tokens.check(token) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "anonymous".to_owned(),
            "invalid bearer token".to_owned(),
        ));
    };
    if granted < role {
        return Err((
            StatusCode::FORBIDDEN,
            name.clone(),
            format!(
                "token {name:?} has role {}; this call needs {}",
                granted.as_str(),
                role.as_str()
            ),
        ));
    }
    Ok(Caller {
        name,
        role: granted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex_and_round_trip() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_token("abc\n"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert!(a.starts_with("dl_") && a.len() == 67 && a != b);
    }
}
