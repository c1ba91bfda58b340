//! The bus's settings, from `redis://[user:password@]host[:port][/db]`.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::envelope::check_node_id;

/// The port when the URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// A parsed `redis://` URL. Its `Display` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// The host as written: a name, an IPv4 address, or an IPv6 address
    /// (without its brackets).
    pub host: String,
    /// The port, 6379 unless given.
    pub port: u16,
    /// The ACL user (Redis 6+), if given; it comes with a password.
    pub username: Option<String>,
    /// The password for `AUTH`, percent-decoded.
    pub password: Option<String>,
    /// The database to `SELECT` (0 unless given). Pub/sub channels are
    /// global in Redis, whatever the database, so this only matters to a
    /// server that refuses database 0 to this user.
    pub db: u32,
}

impl RedisUrl {
    /// Parses `redis://[[user]:password@]host[:port][/db]`. The user and
    /// password may be percent-encoded (`%40` for `@`). Errors say what is
    /// wrong in a sentence fit for the command line.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let err = |why: &str| format!("--redis '{}': {why}", redact(url));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| err("expected redis://host:port"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => {}
            "rediss" => return Err(err("TLS (rediss://) is not supported")),
            _ => return Err(err("the scheme must be redis://")),
        }
        // The last '@' ends the user info, so a password may hold any
        // character but '%' unescaped ('@', '/', '#' included).
        let (userinfo, location) = match rest.rsplit_once('@') {
            Some((u, l)) => (Some(u), l),
            None => (None, rest),
        };
        if location.contains(['?', '#']) {
            return Err(err("query parameters and fragments are not supported"));
        }
        let (hostport, path) = match location.find('/') {
            Some(i) => location.split_at(i),
            None => (location, ""),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let Some((user, pass)) = info.split_once(':') else {
                    return Err(err(
                        "a user name needs a password: redis://user:password@host or redis://:password@host",
                    ));
                };
                let user = percent_decode(user).map_err(|e| err(&e))?;
                let pass = percent_decode(pass).map_err(|e| err(&e))?;
                if pass.is_empty() {
                    return Err(err("the password is empty"));
                }
                ((!user.is_empty()).then_some(user), Some(pass))
            }
        };
        let (host, port) = split_host_port(hostport, DEFAULT_PORT).map_err(|e| err(&e))?;
        let db = match path {
            "" | "/" => 0,
            p => {
                let digits = p.get(1..).unwrap_or_default();
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("the path must be a database number, like /0"));
                }
                digits
                    .parse()
                    .map_err(|_| err("the database number is out of range"))?
            }
        };
        Ok(RedisUrl {
            host,
            port,
            username,
            password,
            db,
        })
    }

    /// Resolves the host to addresses. This may block on DNS: it is meant
    /// to run once, before the reactor starts (an IP address never blocks).
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", self.host),
            ));
        }
        Ok(addrs)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redis://")?;
        if self.password.is_some() {
            write!(f, "{}:***@", self.username.as_deref().unwrap_or(""))?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        write!(f, ":{}/{}", self.port, self.db)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The URL with whatever sits before `@` replaced, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let scheme = url.get(..s + 3).unwrap_or_default();
            format!("{scheme}***{}", url.get(at..).unwrap_or_default())
        }
        _ => url.to_string(),
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, with `default_port` when
/// none is given (both engines' URLs).
pub(super) fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("expected ':port' after ']'")?),
            ),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("a host is missing".into());
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("'{p}' is not a port (1-65535)"))?,
    };
    Ok((host.to_string(), port))
}

/// Decodes a URL's user info (`%XX` escapes); the result must be UTF-8.
pub(super) fn percent_decode(s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |b: Option<u8>| b.and_then(|b| char::from(b).to_digit(16));
        match (hex(bytes.next()), hex(bytes.next())) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => {
                return Err(
                    "a '%' in the user or password must be followed by two hex digits".into(),
                )
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the user or password is not UTF-8 once decoded".into())
}

/// Everything a Redis bus needs.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Where Redis is, and how to log in.
    pub url: RedisUrl,
    /// The URL's host resolved (once, at start). Connection attempts go
    /// round them.
    pub addrs: Vec<SocketAddr>,
    /// Channel names are this prefix and the room (`wsd:` + `/chat`).
    pub prefix: String,
    /// This node's id, in every envelope it publishes; messages carrying
    /// it are its own and ignored when they come back.
    pub node_id: String,
    /// Unsent publish bytes above which new publishes are dropped (one
    /// message is always accepted into an empty queue).
    pub max_queue: usize,
    /// How long a connection attempt and its login may take.
    pub connect_timeout: Duration,
    /// The first reconnect delay; it doubles up to `backoff_max`, each
    /// delay jittered down by up to half.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
}

impl RedisConfig {
    /// Parses `url` and resolves its host (blocking, once: call before the
    /// reactor runs), with defaults for the rest: prefix `wsd:`, a random
    /// node id, 16 MiB messages, an 8 MiB publish queue, a 5 s connect
    /// timeout, reconnects backing off from 100 ms to 5 s.
    pub fn from_url(url: &str) -> Result<RedisConfig, String> {
        let url = RedisUrl::parse(url)?;
        let addrs = url
            .resolve()
            .map_err(|e| format!("--redis: cannot resolve {}: {e}", url.host))?;
        Ok(RedisConfig::with_addrs(url, addrs))
    }

    /// The defaults of [`RedisConfig::from_url`], for an already resolved
    /// URL.
    pub fn with_addrs(url: RedisUrl, addrs: Vec<SocketAddr>) -> RedisConfig {
        RedisConfig {
            url,
            addrs,
            prefix: "wsd:".into(),
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
        if self.addrs.is_empty() {
            return Err("--redis: no address to connect to".into());
        }
        check_timing(self.connect_timeout, self.backoff_min, self.backoff_max)
    }
}

/// The connect timeout and reconnect backoff rules both engines share.
pub(super) fn check_timing(
    connect_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
) -> Result<(), String> {
    if backoff_min.is_zero() || backoff_min > backoff_max {
        return Err(
            "the reconnect backoff must be above zero, its minimum under its maximum".into(),
        );
    }
    // Deadlines are `now +` these: a day keeps that far from overflow.
    let day = Duration::from_secs(86_400);
    if backoff_max > day || connect_timeout > day || connect_timeout.is_zero() {
        return Err("the connect timeout and the backoff must be between 0 and a day".into());
    }
    Ok(())
}

/// A node id when none is given: 16 hex digits from the process's random
/// hash keys.
pub(super) fn random_node_id() -> String {
    format!("{:016x}", super::random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RedisUrl {
        RedisUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn hosts_ports_and_databases() {
        let u = parse("redis://127.0.0.1");
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6379, 0));
        assert_eq!((u.username, u.password), (None, None));
        let u = parse("redis://cache.internal:6380/3");
        assert_eq!((u.host.as_str(), u.port, u.db), ("cache.internal", 6380, 3));
        let u = parse("REDIS://[::1]:7000/");
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 7000, 0));
        assert_eq!(parse("redis://[::1]").port, 6379);
        assert_eq!(u.to_string(), "redis://[::1]:7000/0");
    }

    #[test]
    fn credentials_are_percent_decoded_and_never_shown() {
        let u = parse("redis://app:p%40ss%3Aw0rd@10.0.0.5:6379/1");
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w0rd"));
        assert_eq!(u.to_string(), "redis://app:***@10.0.0.5:6379/1");
        let u = parse("redis://:secret@localhost");
        assert_eq!(
            (u.username.as_deref(), u.password.as_deref()),
            (None, Some("secret"))
        );
        assert_eq!(u.to_string(), "redis://:***@localhost:6379/0");
        // '@', '/', '#' in the password, unescaped: the last '@' ends it.
        assert_eq!(
            parse("redis://:a@b/c#d@h/2").password.as_deref(),
            Some("a@b/c#d")
        );
    }

    #[test]
    fn mistakes_get_a_sentence() {
        for (url, says) in [
            ("localhost:6379", "expected redis://"),
            ("http://h", "scheme must be redis://"),
            ("rediss://h", "TLS"),
            ("redis://", "host is missing"),
            ("redis://:6379", "host is missing"),
            ("redis://h:0", "not a port"),
            ("redis://h:65536", "not a port"),
            ("redis://h:x", "not a port"),
            ("redis://h/x", "database number"),
            ("redis://h/-1", "database number"),
            ("redis://h/99999999999", "out of range"),
            ("redis://h?db=1", "query"),
            ("redis://user@h", "needs a password"),
            ("redis://u:@h", "password is empty"),
            ("redis://:%zz@h", "two hex digits"),
            ("redis://:%ff@h", "not UTF-8"),
            ("redis://[::1", "closing ']'"),
            ("redis://[::1]x", "':port'"),
        ] {
            let e = RedisUrl::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
        // A password in a bad URL is not echoed.
        let e = RedisUrl::parse("redis://u:hunter2@h:99999").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn an_ip_resolves_without_dns_and_defaults_validate() {
        let cfg = RedisConfig::from_url("redis://127.0.0.1:6390").unwrap();
        assert_eq!(cfg.addrs, ["127.0.0.1:6390".parse().unwrap()]);
        assert_eq!(cfg.prefix, "wsd:");
        assert_eq!(cfg.node_id.len(), 16);
        cfg.validate().unwrap();
        let other = RedisConfig::from_url("redis://127.0.0.1").unwrap();
        assert_ne!(cfg.node_id, other.node_id, "node ids are random");
        let bad = RedisConfig {
            node_id: "has space".into(),
            ..cfg.clone()
        };
        assert!(bad.validate().is_err());
        let bad = RedisConfig {
            backoff_max: Duration::MAX,
            ..cfg
        };
        assert!(bad.validate().is_err());
    }
}
