//! The server's settings. Every limit has a default a public server can
//! live with; `wsd --help` lists the flags that set them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::proto::Limits;

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
    /// permessage-deflate (RFC 7692); off when `None`.
    pub deflate: Option<DeflateConfig>,
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
        }
    }
}
