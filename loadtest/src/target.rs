//! The `ws://host:port/path` a run aims at.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed and resolved `ws://` URL.
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
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Parses `ws://host[:port][/path]`; the port defaults to 80. `wss://` is
/// refused: wsload speaks no TLS.
pub fn parse_target(url: &str) -> Result<Target, String> {
    let rest = if let Some(rest) = url.strip_prefix("ws://") {
        rest
    } else if url.starts_with("wss://") {
        return Err(format!(
            "'{url}': wss:// needs TLS, which wsload does not speak; use ws://"
        ));
    } else {
        return Err(format!(
            "'{url}' is not a WebSocket URL (expected ws://host:port/path)"
        ));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("'{url}': expected ws://host:port/path"));
    }
    let has_port = match authority.rfind(':') {
        // A bracketed IPv6 literal has colons of its own.
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let with_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
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
    fn wss_and_other_schemes_are_refused() {
        assert!(parse_target("wss://127.0.0.1:9001/")
            .expect_err("no TLS")
            .contains("TLS"));
        assert!(parse_target("http://127.0.0.1/").is_err());
        assert!(parse_target("127.0.0.1:9001").is_err());
        assert!(parse_target("ws:///path").is_err());
        assert!(parse_target("ws://127.0.0.1:notaport/").is_err());
    }
}
