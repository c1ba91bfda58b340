//! The `ws://host:port/path` or `wss://host:port/path` a run aims at.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::tls::TlsConfig;

/// A parsed and resolved `ws://` or `wss://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// The `Host` header value (`host:port` as written).
    pub host: String,
    /// The request target, at least `/`.
    pub path: String,
    /// The first address the host resolves to.
    pub addr: SocketAddr,
    /// `wss://`: the host name (or IP address) the certificate must name,
    /// sent as SNI.
    pub tls_name: Option<String>,
    /// `wss://`: the client config, set once the flags are known
    /// ([`Target::use_tls`]).
    pub tls: Option<TlsConfig>,
}

impl Target {
    /// Gives a `wss://` target the run's TLS client config.
    pub fn use_tls(&mut self, config: &TlsConfig) {
        if self.tls_name.is_some() {
            self.tls = Some(config.clone());
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Parses `ws://host[:port][/path]` (the port defaults to 80) or
/// `wss://host[:port][/path]` (443).
pub fn parse_target(url: &str) -> Result<Target, String> {
    let (rest, secure) = if let Some(rest) = url.strip_prefix("ws://") {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("wss://") {
        (rest, true)
    } else {
        return Err(format!(
            "'{url}' is not a WebSocket URL (expected ws://host:port/path or wss://...)"
        ));
    };
    parse_rest(url, rest, secure)
}

/// Parses `http://host[:port][/path]` (80) or `https://...` (443): the
/// same parts as a WebSocket URL, over the same TLS when secure.
pub fn parse_http(url: &str) -> Result<Target, String> {
    let (rest, secure) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else {
        return Err(format!(
            "'{url}' is not an HTTP URL (expected http://host:port or https://...)"
        ));
    };
    parse_rest(url, rest, secure)
}

/// What follows the scheme: authority, then path.
fn parse_rest(url: &str, rest: &str, secure: bool) -> Result<Target, String> {
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("'{url}': expected host:port after the scheme"));
    }
    let has_port = match authority.rfind(':') {
        // A bracketed IPv6 literal has colons of its own.
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let with_port = if has_port {
        authority.to_string()
    } else if secure {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    let name = match authority.rfind(':') {
        Some(i) if has_port => &authority[..i],
        _ => authority,
    };
    // An IPv6 literal is named without its brackets.
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("'{url}': cannot resolve '{authority}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{url}': '{authority}' has no address"))?;
    Ok(Target {
        url: url.to_string(),
        host: authority.to_string(),
        path,
        addr,
        tls_name: secure.then(|| name.to_string()),
        tls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_and_path() {
        let t = parse_target("ws://127.0.0.1:9001/chat?room=1").expect("valid");
        assert_eq!(t.host, "127.0.0.1:9001");
        assert_eq!(t.path, "/chat?room=1");
        assert_eq!(t.addr, "127.0.0.1:9001".parse().expect("addr"));
    }

    #[test]
    fn path_and_port_default() {
        let t = parse_target("ws://127.0.0.1").expect("valid");
        assert_eq!(t.path, "/");
        assert_eq!(t.addr.port(), 80);
        assert_eq!(
            parse_target("ws://127.0.0.1:1?x").expect("valid").path,
            "/?x"
        );
    }

    #[test]
    fn ipv6_literals() {
        let t = parse_target("ws://[::1]:9001/").expect("valid");
        assert_eq!(t.addr, "[::1]:9001".parse().expect("addr"));
        assert_eq!(parse_target("ws://[::1]/").expect("valid").addr.port(), 80);
    }

    #[test]
    fn wss_names_the_host_for_the_certificate_and_defaults_to_443() {
        let t = parse_target("wss://localhost:9443/chat").expect("valid");
        assert_eq!(t.tls_name.as_deref(), Some("localhost"));
        assert_eq!(t.host, "localhost:9443");
        assert_eq!(t.addr.port(), 9443);
        let t = parse_target("wss://[::1]/").expect("valid");
        assert_eq!(t.tls_name.as_deref(), Some("::1"));
        assert_eq!(t.addr.port(), 443);
        assert_eq!(
            parse_target("ws://127.0.0.1:1/").expect("valid").tls_name,
            None
        );
    }

    #[test]
    fn http_urls_parse_like_websocket_ones() {
        let t = parse_http("http://127.0.0.1:9001").expect("valid");
        assert_eq!((t.host.as_str(), t.path.as_str()), ("127.0.0.1:9001", "/"));
        assert_eq!(t.tls_name, None);
        let t = parse_http("https://localhost/").expect("valid");
        assert_eq!(
            (t.addr.port(), t.tls_name.as_deref()),
            (443, Some("localhost"))
        );
        assert!(parse_http("ws://127.0.0.1/").is_err());
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(parse_target("http://127.0.0.1/").is_err());
        assert!(parse_target("127.0.0.1:9001").is_err());
        assert!(parse_target("ws:///path").is_err());
        assert!(parse_target("ws://127.0.0.1:notaport/").is_err());
    }
}
