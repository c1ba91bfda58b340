//! The server's `INFO`: the settings a client must honour.

use std::net::SocketAddr;

use serde::Deserialize;

/// The NATS server's default `max_payload` (1 MiB), assumed until an `INFO`
/// says otherwise.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

/// What this client reads of an `INFO` (the rest is ignored).
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ServerInfo {
    /// The server's id, for logs.
    pub server_id: String,
    /// The largest payload the server accepts in a `PUB`; a larger one
    /// would make it close the connection.
    pub max_payload: Option<u64>,
    /// The server insists on TLS, which this client does not speak.
    pub tls_required: bool,
    /// The server wants credentials in `CONNECT`.
    pub auth_required: bool,
    /// Client addresses of the cluster's other servers (`host:port`).
    pub connect_urls: Vec<String>,
    /// An nkey challenge: the server wants a signature this client cannot
    /// make.
    pub nonce: Option<String>,
}

impl ServerInfo {
    /// Parses an `INFO` operation's JSON.
    pub fn parse(json: &[u8]) -> Result<ServerInfo, String> {
        serde_json::from_slice(json).map_err(|e| format!("malformed INFO: {e}"))
    }

    /// The payload limit, as a `usize` ([`DEFAULT_MAX_PAYLOAD`] if absent).
    pub fn max_payload(&self) -> usize {
        self.max_payload.map_or(DEFAULT_MAX_PAYLOAD, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        })
    }

    /// The advertised servers given as IP addresses. Names are skipped:
    /// resolving them could block the reactor.
    pub fn cluster_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.connect_urls.iter().filter_map(|u| u.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_matters_and_ignores_the_rest() {
        let info = ServerInfo::parse(
            br#"{"server_id":"NAB","version":"2.9.10","max_payload":1024,"headers":true,
                "connect_urls":["127.0.0.1:4223","[::1]:4224","nats.internal:4222"],"proto":1}"#,
        )
        .unwrap();
        assert_eq!(info.server_id, "NAB");
        assert_eq!(info.max_payload(), 1024);
        assert!(!info.tls_required && !info.auth_required);
        let addrs: Vec<SocketAddr> = info.cluster_addrs().collect();
        assert_eq!(
            addrs,
            [
                "127.0.0.1:4223".parse().unwrap(),
                "[::1]:4224".parse().unwrap()
            ]
        );
        let bare = ServerInfo::parse(b"{}").unwrap();
        assert_eq!(bare.max_payload(), DEFAULT_MAX_PAYLOAD);
        assert!(ServerInfo::parse(b"{\"max_payload\":-1}").is_err());
        assert!(ServerInfo::parse(b"not json").is_err());
    }
}
