//! Refuses requests a web page in a browser could make against the user's will.
//!
//! - **DNS rebinding**: a page on `evil.example` whose name is re-pointed at 127.0.0.1
//!   reaches a loopback server as "same origin". Its requests carry `Host: evil.example`,
//!   so a server answers only to the names it is known by: its listen address,
//!   `localhost`/`127.0.0.1`/`[::1]` with its port, and `server.allowedHosts`. The
//!   token-less (loopback) server always checks; a token server (any address, any name
//!   in front of it) checks when `allowedHosts` is set, and then also answers any IP
//!   literal (a rebinding needs a name; probes and scrapers use the pod's IP).
//! - **CSRF**: a foreign page can send a "simple" cross-origin POST (form content types,
//!   no custom headers) without a CORS preflight. So an `Origin`, when sent, must be the
//!   server itself (same host and port as `Host`, or an allowed name), and a POST under
//!   `/api/` must carry something a simple request cannot: `Content-Type:
//!   application/json`, an `X-Driftless-*` header, or `Authorization`. The server never
//!   answers CORS preflights, so a browser never sends those cross-origin.
//!
//! Webhooks (`/hooks/*`) come from other hosts and are signed: only the Host rule applies.
//! A request without `Host` (HTTP/1.0, tests without a socket) is not from a browser and
//! passes the Host rule.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Failure;

/// What the guard allows, fixed when the router is built.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// Check `Host` at all (always on a token-less server).
    check_host: bool,
    /// A token server: IP literals are answered too.
    token_server: bool,
    listen: Option<SocketAddr>,
    /// Lowercased `name` (any port) or `name:port`.
    allowed: Vec<(String, Option<u16>)>,
}

impl Guard {
    pub(crate) fn new(
        token_server: bool,
        allowed_hosts: &[String],
        listen: Option<SocketAddr>,
    ) -> Guard {
        Guard {
            check_host: !token_server || !allowed_hosts.is_empty(),
            token_server,
            listen,
            allowed: allowed_hosts
                .iter()
                .filter_map(|h| split_host(h.trim()))
                .map(|(name, port)| (name.to_ascii_lowercase(), port))
                .collect(),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        let port_ok = |wanted: Option<u16>| match (wanted, self.listen) {
            (Some(port), Some(listen)) => port == listen.port(),
            (None, Some(listen)) => listen.port() == 80 || listen.port() == 443,
            (_, None) => true,
        };
        let ip: Option<IpAddr> = name.trim_matches(['[', ']']).parse().ok();
        if name == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
            return port_ok(port);
        }
        if let (Some(ip), Some(listen)) = (ip, self.listen)
            && ip == listen.ip()
        {
            return port_ok(port);
        }
        if self.token_server && ip.is_some() {
            return true;
        }
        self.allowed.iter().any(|(allowed, allowed_port)| {
            *allowed == name && allowed_port.is_none_or(|p| port == Some(p))
        })
    }

    /// Whether `origin` (`scheme://host[:port]`) is this server as the client sees it.
    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false; // `null` (sandboxed frames, file: pages) and garbage
        };
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some((name, port)) = split_host(authority) else {
            return false;
        };
        let origin_port = port.unwrap_or(default_port);
        if let Some((host_name, host_port)) = host.and_then(split_host)
            && host_name.eq_ignore_ascii_case(name)
            && host_port.unwrap_or(default_port) == origin_port
        {
            return true;
        }
        let name = name.to_ascii_lowercase();
        self.allowed.iter().any(|(allowed, allowed_port)| {
            *allowed == name && allowed_port.is_none_or(|p| p == origin_port)
        })
    }
}

/// `name[:port]` or `[v6][:port]`; `None` when the port is not a number.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if host.is_empty() {
        return None;
    }
    if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((name, Some(port.parse().ok()?))),
            None if rest.is_empty() => Some((name, None)),
            None => None,
        };
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address without brackets is not a valid Host; refuse it.
        Some((name, _)) if name.contains(':') => None,
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, ()> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(|v| Some(v.trim())).map_err(|_| ()),
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Router middleware: the rules above, before authentication (a refused request is
/// not worth an audit row).
pub(crate) async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match verdict(&guard, &request) {
        Ok(()) => next.run(request).await,
        Err(failure) => failure.into_response(),
    }
}

fn verdict(guard: &Guard, request: &Request) -> Result<(), Failure> {
    let headers = request.headers();
    let path = request.uri().path();
    let host = header(headers, header::HOST)
        .map_err(|()| Failure::new(StatusCode::BAD_REQUEST, "the Host header is not valid text"))?;
    // HTTP/2-style requests carry the host in the URI instead.
    let host = host.or_else(|| request.uri().authority().map(|a| a.as_str()));
    if guard.check_host
        && let Some(host) = host
        && !guard.host_allowed(host)
    {
        return Err(Failure::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to the host name {}; use its address (e.g. 127.0.0.1 with its port), or add the name to server.allowedHosts",
                crate::api::shown(host)
            ),
        ));
    }
    if path.starts_with("/hooks/") {
        return Ok(());
    }
    let origin = header(headers, header::ORIGIN)
        .map_err(|()| Failure::new(StatusCode::FORBIDDEN, "the Origin header is not valid text"))?;
    if let Some(origin) = origin
        && !guard.origin_allowed(origin, host)
    {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            format!(
                "requests from the web page at {} are refused: the Origin must be this server (or a name in server.allowedHosts)",
                crate::api::shown(origin)
            ),
        ));
    }
    if request.method() == Method::POST && path.starts_with("/api/") {
        let json = header(headers, header::CONTENT_TYPE)
            .ok()
            .flatten()
            .is_some_and(is_json);
        let marked = headers.contains_key(header::AUTHORIZATION)
            || headers
                .keys()
                .any(|name| name.as_str().starts_with("x-driftless-"));
        if !json && !marked {
            return Err(Failure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "state-changing calls need `Content-Type: application/json` or the header `X-Driftless-Request: 1` (a browser cannot send either from a foreign page without asking first)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen() -> Option<SocketAddr> {
        Some("127.0.0.1:7420".parse().expect("addr"))
    }

    #[test]
    fn hosts_of_a_loopback_server() {
        let guard = Guard::new(false, &["driftless.lan".to_owned()], listen());
        for ok in [
            "127.0.0.1:7420",
            "localhost:7420",
            "LOCALHOST:7420",
            "[::1]:7420",
            "driftless.lan",
            "driftless.lan:7420",
        ] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:7420",
            "evil.example",
            "127.0.0.1:7421",
            "localhost",
            "10.1.2.3:7420",
            "::1",
            "127.0.0.1:x",
            "",
            "localhost.evil.example:7420",
        ] {
            assert!(!guard.host_allowed(bad), "{bad}");
        }
        assert!(guard.check_host);
    }

    #[test]
    fn hosts_of_a_token_server() {
        let open = Guard::new(true, &[], Some("0.0.0.0:7420".parse().expect("addr")));
        assert!(!open.check_host, "no allowedHosts: any name, as before");
        let named = Guard::new(
            true,
            &["gitops.example.com".to_owned()],
            Some("0.0.0.0:7420".parse().expect("addr")),
        );
        assert!(named.check_host);
        assert!(named.host_allowed("gitops.example.com"));
        assert!(named.host_allowed("10.0.0.7:7420"), "an IP literal");
        assert!(!named.host_allowed("evil.example"));
    }

    #[test]
    fn origins() {
        let guard = Guard::new(false, &["driftless.lan".to_owned()], listen());
        let host = Some("127.0.0.1:7420");
        assert!(guard.origin_allowed("http://127.0.0.1:7420", host));
        assert!(guard.origin_allowed("https://driftless.lan", host));
        assert!(!guard.origin_allowed("http://127.0.0.1:7421", host));
        assert!(!guard.origin_allowed("http://evil.example", host));
        assert!(!guard.origin_allowed("null", host));
        assert!(!guard.origin_allowed("ftp://127.0.0.1:7420", host));
        assert!(guard.origin_allowed("http://example.com", Some("example.com")));
        assert!(guard.origin_allowed("https://example.com", Some("example.com:443")));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
