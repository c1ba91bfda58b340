//! The NATS bus's settings, from
//! `nats://[user:password@]HOST:PORT[,HOST:PORT...]`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::subject::check_prefix;
use crate::bus::envelope::check_node_id;
use crate::bus::url::{check_timing, percent_decode, random_node_id, split_host_port};

/// The port when a server names none.
pub const DEFAULT_PORT: u16 = 4222;

/// How a client proves who it is, from the URL's user info.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `user:password@`.
    UserPassword(String, String),
    /// `token@`: a user part without a password.
    Token(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::UserPassword(user, _) => write!(f, "UserPassword({user:?}, ***)"),
            Credentials::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// A parsed `--nats` list. Its `Display` hides the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    /// The servers, as written (`host`, `port`), in the order given.
    pub servers: Vec<(String, u16)>,
    /// The credentials, if any server's entry gives them (all that give
    /// them must give the same).
    pub credentials: Option<Credentials>,
}

impl NatsUrl {
    /// Parses a comma-separated list of servers, the first with the
    /// `nats://` scheme, the others with it or without; user info
    /// (percent-encoded) before any host. Errors are one sentence for the
    /// command line, without the password.
    pub fn parse(url: &str) -> Result<NatsUrl, String> {
        let err = |why: &str| format!("--nats '{}': {why}", redact(url));
        let mut servers = Vec::new();
        let mut credentials: Option<Credentials> = None;
        for (i, part) in url.split(',').enumerate() {
            let part = part.trim();
            let rest = match part.split_once("://") {
                Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                    "nats" => rest,
                    "tls" => return Err(err("TLS (tls://) is not supported")),
                    _ => return Err(err("the scheme must be nats://")),
                },
                None if i > 0 => part,
                None => return Err(err("expected nats://host:port")),
            };
            let (info, hostport) = match rest.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, rest),
            };
            if hostport.contains(['/', '?', '#']) {
                return Err(err("a server is host:port, without a path or query"));
            }
            if let Some(info) = info {
                let c = match info.split_once(':') {
                    Some((user, pass)) => {
                        let (user, pass) = (
                            percent_decode(user).map_err(|e| err(&e))?,
                            percent_decode(pass).map_err(|e| err(&e))?,
                        );
                        if user.is_empty() || pass.is_empty() {
                            return Err(err("the user or the password is empty"));
                        }
                        Credentials::UserPassword(user, pass)
                    }
                    None => {
                        let token = percent_decode(info).map_err(|e| err(&e))?;
                        if token.is_empty() {
                            return Err(err("the token is empty"));
                        }
                        Credentials::Token(token)
                    }
                };
                if credentials.as_ref().is_some_and(|had| *had != c) {
                    return Err(err("servers of one cluster take the same credentials"));
                }
                credentials = Some(c);
            }
            servers.push(split_host_port(hostport, DEFAULT_PORT).map_err(|e| err(&e))?);
        }
        Ok(NatsUrl {
            servers,
            credentials,
        })
    }

    /// Resolves every server, in order (blocking on DNS: call once, before
    /// the reactor runs).
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let mut addrs = Vec::new();
        for (host, port) in &self.servers {
            let found = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| format!("--nats: cannot resolve {host}: {e}"))?;
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
        if addrs.is_empty() {
            return Err("--nats: no address to connect to".into());
        }
        Ok(addrs)
    }
}

impl fmt::Display for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nats://")?;
        match &self.credentials {
            Some(Credentials::UserPassword(user, _)) => write!(f, "{user}:***@")?,
            Some(Credentials::Token(_)) => f.write_str("***@")?,
            None => {}
        }
        for (i, (host, port)) in self.servers.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if host.contains(':') {
                write!(f, "{sep}[{host}]:{port}")?;
            } else {
                write!(f, "{sep}{host}:{port}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The URL with each user info replaced, for error messages.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|part| match part.rsplit_once('@') {
            Some((before, after)) => {
                let scheme = before
                    .find("://")
                    .map_or("", |i| before.get(..i + 3).unwrap_or(""));
                format!("{scheme}***@{after}")
            }
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Everything a NATS bus needs.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// The servers and the credentials.
    pub url: NatsUrl,
    /// The servers resolved (once, at start), in the order given.
    /// Connection attempts go round them, and round the servers the
    /// cluster advertises (given as IP addresses) after them.
    pub addrs: Vec<SocketAddr>,
    /// Subjects are this prefix and the encoded room (`wsd.` + `/chat`);
    /// see [`super::subject`].
    pub prefix: String,
    /// This node's id, in every envelope it publishes.
    pub node_id: String,
    /// Unsent publish bytes above which new publishes are dropped (one
    /// message is always accepted into an empty queue).
    pub max_queue: usize,
    /// How long a connect and its login (INFO, CONNECT, PING, PONG) may
    /// take, and how long a PING may go unanswered once up.
    pub connect_timeout: Duration,
    /// The first reconnect delay; it doubles up to `backoff_max`, each
    /// delay jittered down by up to half.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
}

impl NatsConfig {
    /// Parses `url` and resolves its hosts (blocking, once), with defaults
    /// for the rest: prefix `wsd.`, a random node id, an 8 MiB publish
    /// queue, a 5 s connect timeout, reconnects backing off from 100 ms to
    /// 5 s.
    pub fn from_url(url: &str) -> Result<NatsConfig, String> {
        let url = NatsUrl::parse(url)?;
        let addrs = url.resolve()?;
        Ok(NatsConfig::with_addrs(url, addrs))
    }

    /// The defaults of [`NatsConfig::from_url`], for resolved servers.
    pub fn with_addrs(url: NatsUrl, addrs: Vec<SocketAddr>) -> NatsConfig {
        NatsConfig {
            url,
            addrs,
            prefix: "wsd.".into(),
            node_id: random_node_id(),
            max_queue: 8 << 20,
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    /// Checks the settings a caller may have changed.
    pub fn validate(&self) -> Result<(), String> {
        check_node_id(&self.node_id)?;
        check_prefix(&self.prefix)?;
        if self.addrs.is_empty() {
            return Err("--nats: no address to connect to".into());
        }
        check_timing(self.connect_timeout, self.backoff_min, self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> NatsUrl {
        NatsUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn lists_of_servers_with_or_without_scheme() {
        let u = parse("nats://127.0.0.1:4223,10.0.0.2,nats://[::1]:5000");
        assert_eq!(
            u.servers,
            [
                ("127.0.0.1".to_string(), 4223),
                ("10.0.0.2".to_string(), 4222),
                ("::1".to_string(), 5000)
            ]
        );
        assert_eq!(u.credentials, None);
        assert_eq!(
            u.to_string(),
            "nats://127.0.0.1:4223,10.0.0.2:4222,[::1]:5000"
        );
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let u = parse("nats://app:p%40ss@h1:4222,h2:4222");
        assert_eq!(
            u.credentials,
            Some(Credentials::UserPassword("app".into(), "p@ss".into()))
        );
        assert_eq!(u.to_string(), "nats://app:***@h1:4222,h2:4222");
        let u = parse("nats://s3cr3t@h");
        assert_eq!(u.credentials, Some(Credentials::Token("s3cr3t".into())));
        assert!(!u.to_string().contains("s3cr3t"));
    }

    #[test]
    fn mistakes_get_a_sentence_without_the_secret() {
        for (url, says) in [
            ("127.0.0.1:4222", "expected nats://"),
            ("redis://h", "scheme must be nats://"),
            ("tls://h", "TLS"),
            ("nats://", "host is missing"),
            ("nats://h:0", "not a port"),
            ("nats://h,", "host is missing"),
            ("nats://h/x", "without a path"),
            ("nats://u:@h", "empty"),
            ("nats://a:b@h,nats://a:c@h2", "same credentials"),
            ("nats://%zz@h", "two hex digits"),
        ] {
            let e = NatsUrl::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
        let e = NatsUrl::parse("nats://u:hunter2@h:99999").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn ips_resolve_in_order_and_defaults_validate() {
        let cfg =
            NatsConfig::from_url("nats://127.0.0.1:4300,127.0.0.1:4301,127.0.0.1:4300").unwrap();
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:4300".parse().unwrap(),
            "127.0.0.1:4301".parse().unwrap(),
        ];
        assert_eq!(cfg.addrs, want);
        assert_eq!(cfg.prefix, "wsd.");
        cfg.validate().unwrap();
        let bad = NatsConfig {
            prefix: "wsd:".into(),
            ..cfg
        };
        assert!(bad.validate().is_err());
    }
}
