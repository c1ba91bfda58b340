//! The server's settings. Every limit has a default a public server can
//! live with; `wsd --help` lists the flags that set them.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::auth::{KeySlot, Policy, Rate};
use crate::proto::Limits;
use crate::tls::TlsSlot;

/// What the server does with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each message goes back to its sender.
    Echo,
    /// Each message goes to every open connection.
    Broadcast,
}

/// What happens to a connection whose unsent output passes the high
/// watermark when another broadcast message arrives for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowConsumerPolicy {
    /// Discard its queued messages, send Close 1008, and drop it after the
    /// close timeout. The default: a client that cannot keep up is told so.
    Close,
    /// Skip messages for it until it drains below the high watermark.
    Drop,
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The addresses to listen on (IPv4 and IPv6 alike), at least one.
    pub listen: Vec<SocketAddr>,
    /// Addresses that serve only `/metrics` and `/healthz` (no WebSocket),
    /// usually private. When given, the WebSocket port answers `/metrics`
    /// with 404, so a scrape always reaches the process it names.
    pub metrics_listen: Vec<SocketAddr>,
    /// Echo or broadcast.
    pub mode: Mode,
    /// In broadcast mode, whether the sender gets its own messages too.
    /// (The request path picks the room a client joins.)
    pub broadcast_to_sender: bool,
    /// Subprotocols to accept; the first one the client offers wins.
    pub protocols: Vec<String>,
    /// Refuse (400) an upgrade that offers none of `protocols`, instead of
    /// accepting it with no subprotocol. Needs at least one protocol.
    pub require_protocol: bool,
    /// Origins allowed to connect; empty allows all. Others get 403.
    pub allowed_origins: Vec<String>,
    /// Message, frame and fragment limits.
    pub limits: Limits,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// The largest HTTP request head; larger is a 431.
    pub max_header_bytes: usize,
    /// How long a client has to complete its upgrade request.
    pub handshake_timeout: Duration,
    /// How long a closing connection may take to flush, answer our Close,
    /// and close its end before it is dropped.
    pub close_timeout: Duration,
    /// Close (1001) a connection that sent no message for this long. Only
    /// messages the client sends count: a listen-only subscriber is idle.
    pub idle_timeout: Option<Duration>,
    /// Ping a connection from which nothing arrived for this long, and close
    /// it (1001) if still nothing arrives in as long again: how a dead or
    /// vanished peer is found, subscribers included.
    pub ping_interval: Option<Duration>,
    /// TCP keepalive idle time: the kernel probes a silent peer and fails
    /// the socket when it stays unreachable.
    pub tcp_keepalive: Option<Duration>,
    /// On a graceful shutdown, how long to wait for clients to answer the
    /// Close 1001 before exiting anyway.
    pub drain_timeout: Duration,
    /// Log a one-line summary this often.
    pub stats_interval: Option<Duration>,
    /// Unsent output above which a connection stops being read (its own
    /// replies back up) or, for broadcast, counts as a slow consumer.
    pub output_high_water: usize,
    /// Unsent output below which a paused connection is read again.
    pub output_low_water: usize,
    /// What to do with slow broadcast consumers.
    pub slow_consumer: SlowConsumerPolicy,
    /// The listen backlog.
    pub backlog: i32,
    /// Set SO_REUSEPORT, so several processes can share the port.
    pub reuse_port: bool,
    /// Broadcast rooms span every node on this Redis bus (`--redis`).
    pub redis: Option<crate::bus::RedisConfig>,
    /// Per-room history (`--history`); off when `None`.
    pub history: Option<crate::history::HistoryConfig>,
    /// Broadcast rooms span every node on this NATS cluster (`--nats`);
    /// exclusive with `redis`.
    pub nats: Option<crate::bus::NatsConfig>,
    /// How this process names itself in its metrics (the `instance` label
    /// of `wsd_build_info`), so the series of processes sharing a port or
    /// a host stay apart. The process id unless set.
    pub instance: String,
    /// The certificate the `listen` addresses serve TLS with (wss://,
    /// https://); plain if `None`. The `metrics_listen` addresses stay
    /// plain HTTP.
    pub tls: Option<TlsSlot>,
    /// permessage-deflate (RFC 7692); off when `None`.
    pub deflate: Option<DeflateConfig>,
    /// The keys that may publish through the HTTP API (`--api-key`,
    /// `POST /publish/ROOM`); without them (and without access-control
    /// tokens) the API answers 403. Broadcast mode only.
    pub api_keys: Option<crate::api::ApiKeySlot>,
    /// Access control and rate limits (`--auth-*`, `--max-*-rate`,
    /// `--max-connections-per-ip`); all off by default.
    pub auth: AuthConfig,
}

/// Access control and rate limits (see [`crate::auth`]).
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// The `--auth-key` files, shared with SIGHUP; `None`: no keys (every
    /// upgrade admitted with every right, unless `policy.anonymous_read`).
    pub keys: Option<KeySlot>,
    /// Leeway, audience, issuer, anonymous read.
    pub policy: Policy,
    /// `--max-message-rate`: data messages per second per connection.
    pub message_rate: Option<Rate>,
    /// `--max-bytes-rate`: payload bytes per second per connection.
    pub bytes_rate: Option<Rate>,
    /// `--max-connections-per-ip`; 0: no limit.
    pub connections_per_ip: u32,
}

impl AuthConfig {
    /// Whether upgrades are checked: with a key, or with anonymous read.
    pub fn enabled(&self) -> bool {
        self.keys.is_some() || self.policy.anonymous_read
    }

    /// Whether any per-connection rate limit is on.
    pub fn rates(&self) -> bool {
        self.message_rate.is_some() || self.bytes_rate.is_some()
    }

    fn validate(&self, max_message: usize) -> Result<(), String> {
        let leeway = self.policy.leeway;
        if leeway.is_zero() {
            return Err("--auth-leeway must be above zero".into());
        }
        if leeway.subsec_nanos() != 0 {
            return Err("--auth-leeway is whole seconds (like 5s or 1m)".into());
        }
        if self.policy.audience.as_deref() == Some("") {
            return Err("--auth-audience must not be empty".into());
        }
        if self.policy.issuer.as_deref() == Some("") {
            return Err("--auth-issuer must not be empty".into());
        }
        if let Some(rate) = self.bytes_rate {
            if u64::try_from(max_message).is_ok_and(|m| m > rate.get()) {
                return Err(format!(
                    "--max-bytes-rate {} is below --max-message {max_message}: a message that \
                     large could never be sent (lower --max-message too)",
                    rate.get()
                ));
            }
        }
        Ok(())
    }
}

/// permessage-deflate settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Keep compression context between messages, per connection (echo:
    /// both ways; broadcast: the client's side only, since a broadcast
    /// frame is compressed once for every receiver). Off: every message
    /// stands alone and connections hold no compression state.
    pub context_takeover: bool,
    /// The widest LZ77 window (8 to 15 bits) the server compresses with and
    /// keeps for a client's context: per-connection state grows with it.
    pub window_bits: u8,
    /// Messages shorter than this go uncompressed.
    pub min_size: usize,
    /// The most memory all connections' kept context may take; past it new
    /// connections get the no-context-takeover terms.
    pub memory_limit: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            context_takeover: false,
            window_bits: 15,
            min_size: 128,
            memory_limit: 64 << 20,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 9001))],
            metrics_listen: Vec::new(),
            mode: Mode::Echo,
            broadcast_to_sender: true,
            protocols: Vec::new(),
            require_protocol: false,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            max_connections: 100_000,
            max_header_bytes: 8 << 10,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            idle_timeout: None,
            ping_interval: Some(Duration::from_secs(30)),
            tcp_keepalive: Some(Duration::from_secs(60)),
            drain_timeout: Duration::from_secs(5),
            stats_interval: None,
            output_high_water: 4 << 20,
            output_low_water: 1 << 20,
            slow_consumer: SlowConsumerPolicy::Close,
            backlog: 1024,
            reuse_port: false,
            deflate: None,
            redis: None,
            history: None,
            nats: None,
            instance: std::process::id().to_string(),
            tls: None,
            auth: AuthConfig::default(),
            api_keys: None,
        }
    }
}

/// The error for `--redis` and `--nats` together.
pub const BOTH_BUSES: &str =
    "--redis and --nats exclude each other: rooms span one bus engine at a time";

/// The most listening sockets one server takes, WebSocket and metrics
/// listeners together.
pub const MAX_LISTENERS: usize = 64;

impl Config {
    /// `--history` kept in this process's memory: on, without `--redis`
    /// (which keeps it in Redis Streams, shared by the nodes).
    pub fn memory_history(&self) -> Option<&crate::history::HistoryConfig> {
        self.history.as_ref().filter(|_| self.redis.is_none())
    }

    /// Whether `--history` lives in Redis Streams (`--redis`).
    pub fn redis_history(&self) -> bool {
        self.history.is_some() && self.redis.is_some()
    }

    /// Whether rooms span nodes over a bus (any engine). The reactor asks
    /// this, not which engine it is.
    pub fn bus_on(&self) -> bool {
        self.redis.is_some() || self.nats.is_some()
    }

    /// Checks the settings against each other and against what the server
    /// can do: one error line naming the flag, or `Ok`. The server takes a
    /// `Config` as it is, so a caller that builds one by hand calls this
    /// first; `wsd`'s command line does.
    pub fn validate(&self) -> Result<(), String> {
        let listeners = self.listen.len() + self.metrics_listen.len();
        if self.listen.is_empty() || listeners > MAX_LISTENERS {
            return Err(format!(
                "between 1 and {MAX_LISTENERS} --listen and --metrics-listen addresses \
                 ({listeners} given, after resolving names)"
            ));
        }
        if self.output_low_water > self.output_high_water {
            return Err("--output-low-water must not exceed --output-high-water".into());
        }
        let limits = [
            ("--max-message", self.limits.max_message),
            ("--max-frame", self.limits.max_frame),
            ("--max-fragments", self.limits.max_fragments as usize),
            ("--max-connections", self.max_connections),
            ("--max-header", self.max_header_bytes),
        ];
        if let Some((flag, _)) = limits.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{flag} must be above zero"));
        }
        // One rule for every duration: zero is refused. The optional ones
        // are off when left out (or `off`), never by a zero.
        let durations = [
            ("--handshake-timeout", Some(self.handshake_timeout)),
            ("--close-timeout", Some(self.close_timeout)),
            ("--drain-timeout", Some(self.drain_timeout)),
            ("--idle-timeout", self.idle_timeout),
            ("--ping-interval", self.ping_interval),
            ("--tcp-keepalive", self.tcp_keepalive),
            ("--stats-interval", self.stats_interval),
        ];
        if let Some((flag, _)) = durations
            .iter()
            .find(|(_, d)| d.is_some_and(|d| d.is_zero()))
        {
            return Err(format!("{flag} must be above zero"));
        }
        if let Some(bad) = self
            .protocols
            .iter()
            .find(|p| !crate::proto::handshake::is_token(p))
        {
            return Err(format!(
                "--protocol {bad:?}: a subprotocol name is a token (letters, digits, !#$%&'*+-.^_`|~)"
            ));
        }
        if self.require_protocol && self.protocols.is_empty() {
            return Err("--require-protocol needs at least one --protocol".into());
        }
        if let Some(bad) = self
            .allowed_origins
            .iter()
            .find(|o| normalize_origin(o).as_deref() != Ok(o.as_str()))
        {
            return Err(format!(
                "--allow-origin {bad:?}: not an origin as a browser sends it (scheme://host[:port])"
            ));
        }
        if self.mode == Mode::Echo {
            if !self.broadcast_to_sender {
                return Err("--exclude-sender needs --mode broadcast".into());
            }
            if self.redis.is_some() {
                return Err("--redis needs --mode broadcast".into());
            }
            if self.nats.is_some() {
                return Err("--nats needs --mode broadcast".into());
            }
        }
        if let Some(d) = &self.deflate {
            if !(8..=15).contains(&d.window_bits) {
                return Err("--deflate-window-bits must be from 8 to 15".into());
            }
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        if let Some(nats) = &self.nats {
            if self.redis.is_some() {
                return Err(BOTH_BUSES.into());
            }
            nats.validate()?;
        }
        self.auth.validate(self.limits.max_message)?;
        if let Some(h) = &self.history {
            if self.mode == Mode::Echo {
                return Err("--history needs --mode broadcast".into());
            }
            if h.keep == 0 || h.memory == 0 || h.ttl.is_zero() {
                return Err(
                    "--history, --history-ttl and --history-memory must be above zero".into(),
                );
            }
        }
        if self.api_keys.is_some() && self.mode == Mode::Echo {
            // An echo server has no rooms to publish into.
            return Err("--api-key needs --mode broadcast".into());
        }
        Ok(())
    }
}

/// An `Origin` as browsers send it (RFC 6454 §6.1): `scheme://host` or
/// `scheme://host:port`, lower case, without the scheme's default port and
/// without a path. A trailing `/` is dropped (`https://a.example/` is
/// `https://a.example`), since an origin never has one and a browser's
/// never would match it; anything else after the host is an error, as is a
/// value without a scheme.
pub fn normalize_origin(value: &str) -> Result<String, String> {
    let v = value.trim();
    let (scheme, rest) = v
        .split_once("://")
        .ok_or("expected scheme://host[:port], e.g. https://example.com")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!("{scheme:?} is not a URL scheme"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) || authority.chars().any(char::is_whitespace) {
        return Err(
            "an origin has no path, query, fragment or user name: scheme://host[:port]".into(),
        );
    }
    // The port follows the last colon, unless that colon is inside an IPv6
    // address's brackets.
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')));
    if !host_ok {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(format!("{p:?} is not a port")),
        },
    };
    let default = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    Ok(match port.filter(|p| Some(*p) != default) {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The addresses to listen on, from `--listen` values: `HOST:PORT` where
/// HOST is an IPv4 address, an IPv6 address in brackets, or a name.
///
/// A name is resolved once, here, and every address it has is listened
/// on (`localhost:9001` is 127.0.0.1 and, where the system says so, ::1).
/// The same address named twice (`localhost:9001` and `127.0.0.1:9001`) is
/// listened on once. Port 0 asks for a fresh port each time it is written,
/// so two `127.0.0.1:0` values are two listeners. A value that is not
/// `HOST:PORT` or that gives no address is an error naming it.
pub fn resolve_listen(values: &[String]) -> Result<Vec<SocketAddr>, String> {
    // std tries the literal forms first and asks the resolver only for names.
    resolve_listen_with(values, |v| v.to_socket_addrs().map(Iterator::collect))
}

/// [`resolve_listen`] with the resolver passed in, for tests.
fn resolve_listen_with(
    values: &[String],
    mut resolve: impl FnMut(&str) -> io::Result<Vec<SocketAddr>>,
) -> Result<Vec<SocketAddr>, String> {
    const EXPECTED: &str = "expected HOST:PORT, e.g. 0.0.0.0:9001, [::]:9001 or localhost:9001";
    let mut out: Vec<SocketAddr> = Vec::new();
    for value in values {
        let addrs = resolve(value).map_err(|e| format!("--listen {value}: {e} ({EXPECTED})"))?;
        if addrs.is_empty() {
            return Err(format!("--listen {value}: no address ({EXPECTED})"));
        }
        let from = out.len();
        for addr in addrs {
            // Port 0 is only a duplicate within one value's own addresses.
            let seen = if addr.port() == 0 {
                out.get(from..).unwrap_or_default()
            } else {
                out.as_slice()
            };
            if !seen.contains(&addr) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "config/tests.rs"]
mod tests;
