//! The command line: flags, their parsers, and the rules for which flags
//! fit together. [`Config::validate`] in the library checks the settings
//! themselves; this file adds what only a command line has (whether a flag
//! was given at all).

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use wsd::api::ApiKeySlot;
use wsd::auth::{KeySlot, Policy, Rate};
use wsd::bus::{NatsConfig, RedisConfig};
use wsd::config::{normalize_origin, resolve_listen, AuthConfig};
use wsd::history::{HistoryConfig, OFFSETS_PROTOCOL};
use wsd::net::cluster::MAX_REACTORS;
use wsd::proto::Limits;
use wsd::tls::TlsSlot;
use wsd::units::{parse_duration, parse_positive_duration, parse_size};
use wsd::{Config, DeflateConfig, Mode, SlowConsumerPolicy};

/// A WebSocket (RFC 6455) echo and broadcast server.
///
/// Sizes take units (4096, 64KiB, 16MiB); durations too (250ms, 10s, 2m).
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
pub struct Args {
    /// Address and port to listen on: an IP (0.0.0.0:9001, [::]:9001) or a
    /// host name, resolved once at start and listened on at every address
    /// it has (localhost:9001). Repeat for more; an address named twice is
    /// listened on once.
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "HOST:PORT")]
    listen: Vec<String>,

    /// An address (repeatable) that serves only /metrics and /healthz over
    /// plain HTTP, usually a private one. With it, the WebSocket port
    /// answers /metrics with 404, so that a scrape reaches the process it
    /// names even when several share the port (--reuse-port).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Vec<std::net::SocketAddr>,

    /// echo: each message back to its sender; broadcast: to every client.
    #[arg(long, value_enum, default_value_t = ModeArg::Echo)]
    mode: ModeArg,

    /// Broadcast mode only: do not send a client its own messages. (The request
    /// path picks the room: /chat and /news are separate rooms.)
    #[arg(long)]
    exclude_sender: bool,

    /// A subprotocol to accept (repeatable); the first one the client
    /// offers that is listed here is chosen.
    #[arg(long = "protocol", value_name = "NAME")]
    protocols: Vec<String>,

    /// Refuse (400) upgrades that offer none of the --protocol names, or
    /// none at all, instead of accepting them with no subprotocol. The
    /// answer's body lists the accepted names. Needs --protocol.
    #[arg(long)]
    require_protocol: bool,

    /// An Origin allowed to connect (repeatable): scheme://host[:port], as
    /// a browser sends it, e.g. https://example.com (a trailing slash and a
    /// default port are dropped; a path is an error). When given, other and
    /// missing Origins are answered 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,

    /// Largest message, counted across fragments; larger closes with 1009.
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    max_message: usize,

    /// Largest single frame; larger closes with 1009.
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    max_frame: usize,

    /// Most frames one message may be split into; more closes with 1009.
    #[arg(long, default_value_t = 131_072, value_name = "N")]
    max_fragments: u32,

    /// Most open connections; more are answered 503 and closed.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    max_connections: usize,

    /// Largest HTTP upgrade request head; larger is answered 431.
    #[arg(long, default_value = "8KiB", value_parser = parse_size, value_name = "SIZE")]
    max_header: usize,

    /// Time a client has to send its upgrade request; then 408 and close.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    handshake_timeout: Duration,

    /// Time a closing connection has to flush and close its end before it is dropped.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration, value_name = "DURATION")]
    close_timeout: Duration,

    /// Close (1001) connections that send no message for this long. Only
    /// messages from the client count, so this also closes listen-only
    /// broadcast subscribers: dead peers are found by --ping-interval. Off
    /// by default.
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    idle_timeout: Option<Duration>,

    /// Ping connections quiet for this long; close (1001) those that stay
    /// silent as long again. Finds dead and vanished peers, subscribers
    /// included. `off` turns it off.
    #[arg(long, default_value = "30s", value_parser = parse_switch, value_name = "DURATION|off")]
    ping_interval: Switch,

    /// TCP keepalive: after this much silence the kernel probes the peer
    /// (every quarter of it, 4 times) and drops it if unreachable. `off`
    /// turns it off.
    #[arg(long, default_value = "60s", value_parser = parse_switch, value_name = "DURATION|off")]
    tcp_keepalive: Switch,

    /// On SIGINT/SIGTERM, how long to wait for clients to answer Close 1001
    /// before exiting anyway. A second signal exits at once.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration, value_name = "DURATION")]
    drain_timeout: Duration,

    /// Log a one-line summary (connections, messages and bytes per second,
    /// closes by code) this often.
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    stats_interval: Option<Duration>,

    /// Unsent output per connection above which it is not read (echo) or is a
    /// slow consumer (broadcast).
    #[arg(long, default_value = "4MiB", value_parser = parse_size, value_name = "SIZE")]
    output_high_water: usize,

    /// Unsent output below which a paused connection is read again.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    output_low_water: usize,

    /// Broadcast mode only: what to do with a receiver over the high
    /// watermark: close it with 1008, or drop messages for it until it
    /// catches up.
    #[arg(long, value_enum, default_value_t = SlowArg::Close)]
    slow_consumer: SlowArg,

    /// Listen backlog.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    backlog: i32,

    /// Set SO_REUSEPORT so several wsd processes can share the port.
    #[arg(long)]
    reuse_port: bool,

    /// Offer permessage-deflate (RFC 7692) compression to clients that ask.
    /// By default every message stands alone (no context takeover either
    /// way), so connections hold no compression state.
    #[arg(long)]
    deflate: bool,

    /// With --deflate: keep compression context between messages, per
    /// connection (better on small similar messages; costs memory, bounded
    /// by --deflate-window-bits and --deflate-memory). In broadcast mode only
    /// the clients' side keeps context: a broadcast is compressed once.
    #[arg(long)]
    deflate_context_takeover: bool,

    /// With --deflate: the widest compression window, 8 to 15 bits.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u8).range(8..=15), value_name = "BITS")]
    deflate_window_bits: u8,

    /// With --deflate: messages shorter than this are sent uncompressed.
    #[arg(long, default_value = "128", value_parser = parse_size, value_name = "SIZE")]
    deflate_min_size: usize,

    /// With --deflate-context-takeover: the most memory all kept contexts
    /// may take; past it new connections get the no-takeover terms.
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    deflate_memory: usize,
    /// Join a Redis pub/sub bus (broadcast mode): every wsd on it shares
    /// rooms. redis://[user:password@]HOST[:PORT][/DB]; the host is resolved
    /// once at start.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,

    /// With --redis: prefix of the bus's channel names: PREFIX + room (wsd:/chat).
    #[arg(long, default_value = "wsd:", value_name = "PREFIX")]
    redis_prefix: String,

    /// Join a NATS cluster as the bus (broadcast mode; not with --redis):
    /// every wsd on it shares rooms. nats://[user:password@]HOST:PORT[,HOST:PORT...];
    /// hosts are resolved once at start, and tried in turn on failover.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,

    /// With --nats: prefix of the bus's subjects: PREFIX + the room encoded
    /// as one token (wsd./chat); it ends in '.'.
    #[arg(long, default_value = "wsd.", value_name = "PREFIX")]
    nats_prefix: String,

    /// With --nats: unsent bytes to NATS above which messages for other
    /// nodes are dropped (and counted) instead of queued.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    nats_queue: usize,

    /// This node's name on the bus and in /metrics (1-64 of A-Z a-z 0-9
    /// . _ : -); every node on one bus needs its own. Default: random at
    /// start with --redis or --nats, else the pid.
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,

    /// With --redis: unsent bytes to Redis above which messages for other
    /// nodes are dropped (and counted) instead of queued.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    redis_queue: usize,

    /// Reactors (threads) to run, each single-threaded with its own
    /// connections; broadcast rooms span them. `auto`: one per CPU this
    /// process may use. At most 64.
    #[arg(long, default_value = "1", value_parser = parse_threads, value_name = "N|auto")]
    pub threads: Threads,

    /// Broadcast: every room keeps its last N messages, for clients that
    /// join with ?rewind= or come back with ?since=&epoch= (the
    /// wsd.offsets subprotocol). Off by default. Needs --threads 1.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    history: Option<u32>,

    /// With --history: messages older than this are dropped.
    #[arg(long, default_value = "10m", value_parser = parse_positive_duration, value_name = "DURATION")]
    history_ttl: Duration,

    /// With --history: the most all rooms' history may hold together; past
    /// it the oldest messages go first. Not with --redis (Redis holds it).
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    history_memory: usize,

    /// Serve TLS on the --listen addresses (wss:// and https:// for
    /// /healthz, /metrics and the page) with this certificate chain: PEM,
    /// the server's certificate first, then intermediates. Needs
    /// --tls-key. SIGHUP (systemctl reload) reads both files again. The
    /// --metrics-listen addresses stay plain HTTP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert: PEM, PKCS#8, RSA or EC.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Require a signed token (JWT) on every upgrade, verified with this
    /// key (repeatable; every key is tried, so keys can be rotated): an
    /// HS256 secret (the file's bytes, less one trailing newline, at least
    /// 32) or a PEM public key (RS256, ES256, EdDSA). Reread on SIGHUP; a
    /// bad file then keeps the old keys. See docs/access-control.md.
    #[arg(long = "auth-key", value_name = "FILE")]
    auth_keys: Vec<PathBuf>,

    /// With --auth-key: clock skew allowed on a token's exp, nbf and iat.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration, value_name = "DURATION")]
    auth_leeway: Duration,

    /// With --auth-key: tokens must name this audience in `aud`.
    #[arg(long, value_name = "AUD")]
    auth_audience: Option<String>,

    /// With --auth-key: tokens must have this issuer (`iss`).
    #[arg(long, value_name = "ISS")]
    auth_issuer: Option<String>,

    /// `read`: admit a request without a token with read on every room
    /// and no write (public feeds). A token that is present is still
    /// checked. Without --auth-key: a read-only server.
    #[arg(long, value_enum, value_name = "read")]
    auth_anonymous: Option<AnonymousArg>,

    /// Data messages per second per connection (a token bucket holding
    /// that many); a client over it is closed with 1008 `rate limit`.
    #[arg(long, value_name = "N")]
    max_message_rate: Option<u64>,

    /// Payload bytes per second per connection, the same way (at least
    /// --max-message).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    max_bytes_rate: Option<usize>,

    /// Open connections per client address (an IPv6 /64 counts as one);
    /// one more upgrade is answered 429. 0: no limit.
    #[arg(long, default_value_t = 0, value_name = "N")]
    max_connections_per_ip: u32,

    /// Log level: error, warn, info, debug or trace. Defaults to RUST_LOG, then info.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub log_level: Option<log::LevelFilter>,

    /// Lets a backend publish over HTTP (POST /publish/ROOM on the
    /// WebSocket and metrics ports) with this key, sent as Authorization:
    /// Bearer KEY: the file's bytes, trimmed, at least 16 of A-Z a-z 0-9
    /// -._~+/. Repeatable (each file one key); SIGHUP rereads them.
    /// Needs --mode broadcast.
    #[arg(long = "api-key", id = "api_key", value_name = "FILE")]
    api_keys: Vec<PathBuf>,
}

/// How many reactors to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One per CPU the process may run on.
    Auto,
    /// This many.
    Count(usize),
}

impl Threads {
    /// The number of reactors to start.
    pub fn count(self) -> usize {
        match self {
            Threads::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Threads::Count(n) => n,
        }
        .min(MAX_REACTORS)
    }
}

fn parse_threads(s: &str) -> Result<Threads, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(Threads::Auto);
    }
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_REACTORS).contains(&n) => Ok(Threads::Count(n)),
        _ => Err(format!("'{s}': a number from 1 to {MAX_REACTORS}, or auto")),
    }
}

/// A duration that `off` turns off.
#[derive(Clone, Copy, Debug)]
struct Switch(Option<Duration>);

fn parse_switch(s: &str) -> Result<Switch, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(Switch(None));
    }
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("'{s}': use off to turn it off")),
        d => Ok(Switch(Some(d))),
    }
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a log level (error, warn, info, debug, trace)"))
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Echo,
    Broadcast,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AnonymousArg {
    Read,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SlowArg {
    Close,
    Drop,
}

impl Args {
    /// The bus settings, with the Redis host resolved (once, here, before
    /// any reactor runs: the loop never waits on DNS).
    fn redis_config(&self) -> Result<Option<RedisConfig>, String> {
        let Some(url) = &self.redis else {
            return Ok(None);
        };
        if !matches!(self.mode, ModeArg::Broadcast) {
            return Err("--redis needs --mode broadcast".into());
        }
        let mut redis = RedisConfig::from_url(url)?;
        redis.prefix = self.redis_prefix.clone();
        if let Some(id) = &self.node_id {
            redis.node_id = id.clone();
        }
        redis.max_queue = self.redis_queue;
        redis.validate()?;
        Ok(Some(redis))
    }

    /// The NATS bus settings, the hosts resolved once, here.
    fn nats_config(&self) -> Result<Option<NatsConfig>, String> {
        let Some(url) = &self.nats else {
            return Ok(None);
        };
        if self.redis.is_some() {
            return Err(wsd::config::BOTH_BUSES.into());
        }
        if !matches!(self.mode, ModeArg::Broadcast) {
            return Err("--nats needs --mode broadcast".into());
        }
        let mut nats = NatsConfig::from_url(url)?;
        nats.prefix = self.nats_prefix.clone();
        if let Some(id) = &self.node_id {
            nats.node_id = id.clone();
        }
        nats.max_queue = self.nats_queue;
        nats.validate()?;
        Ok(Some(nats))
    }

    /// Access control and rate limits, the key files loaded (one error
    /// line naming a bad file, never its contents).
    fn auth_config(&self) -> Result<AuthConfig, String> {
        let keys = if self.auth_keys.is_empty() {
            None
        } else {
            Some(KeySlot::open(&self.auth_keys).map_err(|e| e.to_string())?)
        };
        let rate = |n: Option<u64>, flag: &str| match n {
            Some(0) => Err(format!(
                "{flag} must be above zero (leave it out for no limit)"
            )),
            Some(n) => Ok(Rate::per_second(n)),
            None => Ok(None),
        };
        Ok(AuthConfig {
            keys,
            policy: Policy {
                leeway: self.auth_leeway,
                audience: self.auth_audience.clone(),
                issuer: self.auth_issuer.clone(),
                anonymous_read: self.auth_anonymous.is_some(),
            },
            message_rate: rate(self.max_message_rate, "--max-message-rate")?,
            bytes_rate: rate(self.max_bytes_rate.map(|b| b as u64), "--max-bytes-rate")?,
            connections_per_ip: self.max_connections_per_ip,
        })
    }

    /// The subprotocols to accept: `--protocol`, and with `--history` the
    /// one that gives each message's offset.
    fn protocols(&self) -> Vec<String> {
        let mut all = self.protocols.clone();
        if self.history.is_some() && !all.iter().any(|p| p == OFFSETS_PROTOCOL) {
            all.push(OFFSETS_PROTOCOL.into());
        }
        all
    }

    /// The server's settings, checked ([`Config::validate`]).
    pub fn config(&self) -> Result<Config, String> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSlot::open(cert, key)?.0),
            _ => None,
        };
        let listen = resolve_listen(&self.listen)?;
        let nats = self.nats_config()?;
        let redis = self.redis_config()?;
        let allowed_origins = self
            .allow_origins
            .iter()
            .map(|o| normalize_origin(o).map_err(|e| format!("--allow-origin {o:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let cfg = Config {
            listen,
            metrics_listen: self.metrics_listen.clone(),
            mode: match self.mode {
                ModeArg::Echo => Mode::Echo,
                ModeArg::Broadcast => Mode::Broadcast,
            },
            broadcast_to_sender: !self.exclude_sender,
            protocols: self.protocols(),
            require_protocol: self.require_protocol,
            allowed_origins,
            limits: Limits {
                max_message: self.max_message,
                max_frame: self.max_frame,
                max_fragments: self.max_fragments,
            },
            max_connections: self.max_connections,
            max_header_bytes: self.max_header,
            handshake_timeout: self.handshake_timeout,
            close_timeout: self.close_timeout,
            idle_timeout: self.idle_timeout,
            ping_interval: self.ping_interval.0,
            tcp_keepalive: self.tcp_keepalive.0,
            drain_timeout: self.drain_timeout,
            stats_interval: self.stats_interval,
            output_high_water: self.output_high_water,
            output_low_water: self.output_low_water,
            slow_consumer: match self.slow_consumer {
                SlowArg::Close => SlowConsumerPolicy::Close,
                SlowArg::Drop => SlowConsumerPolicy::Drop,
            },
            backlog: self.backlog,
            reuse_port: self.reuse_port,
            deflate: self.deflate.then_some(DeflateConfig {
                context_takeover: self.deflate_context_takeover,
                window_bits: self.deflate_window_bits,
                min_size: self.deflate_min_size,
                memory_limit: self.deflate_memory,
            }),
            instance: redis
                .as_ref()
                .map(|r| r.node_id.clone())
                .or_else(|| nats.as_ref().map(|n| n.node_id.clone()))
                .or_else(|| self.node_id.clone())
                .unwrap_or_else(|| std::process::id().to_string()),
            redis,
            history: self.history.map(|keep| HistoryConfig {
                keep: keep as usize,
                ttl: self.history_ttl,
                memory: self.history_memory,
            }),
            nats,
            tls,
            auth: self.auth_config()?,
            api_keys: match self.api_keys.as_slice() {
                [] => None,
                paths => Some(ApiKeySlot::open(paths)?),
            },
        };
        if cfg.history.is_some() && self.threads.count() != 1 {
            // Offsets are given out by the reactor a room's messages pass
            // through; with several, a room's messages pass through several.
            return Err("--history needs --threads 1 (for now)".into());
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// One error line for a flag given on the command line that cannot
    /// apply with the others (a deflate setting without `--deflate`, say):
    /// silently ignoring it would leave the user believing it works.
    fn check_applicable(&self, m: &ArgMatches) -> Result<(), String> {
        let broadcast = matches!(self.mode, ModeArg::Broadcast);
        let needs: [(&str, &str, bool); 7] = [
            ("exclude_sender", "--mode broadcast", broadcast),
            ("slow_consumer", "--mode broadcast", broadcast),
            ("deflate_context_takeover", "--deflate", self.deflate),
            ("deflate_window_bits", "--deflate", self.deflate),
            ("deflate_min_size", "--deflate", self.deflate),
            (
                "deflate_memory",
                "--deflate-context-takeover",
                self.deflate_context_takeover,
            ),
            ("redis_prefix", "--redis", self.redis.is_some()),
        ];
        let keys = !self.auth_keys.is_empty();
        let extra = [
            ("redis_queue", "--redis", self.redis.is_some()),
            ("nats_prefix", "--nats", self.nats.is_some()),
            ("nats_queue", "--nats", self.nats.is_some()),
            ("auth_leeway", "--auth-key", keys),
            ("auth_audience", "--auth-key", keys),
            ("auth_issuer", "--auth-key", keys),
            ("api_key", "--mode broadcast", broadcast),
            ("history", "--mode broadcast", broadcast),
            ("history_ttl", "--history", self.history.is_some()),
            ("history_memory", "--history", self.history.is_some()),
        ];
        for (id, need, ok) in needs.into_iter().chain(extra) {
            if !ok && m.value_source(id) == Some(ValueSource::CommandLine) {
                return Err(format!("--{} needs {need}", id.replace('_', "-")));
            }
        }
        if self.redis.is_some()
            && m.value_source("history_memory") == Some(ValueSource::CommandLine)
        {
            return Err("--history-memory bounds history in memory; with --redis it is in Redis (bound that with Redis's maxmemory)".into());
        }
        Ok(())
    }
}

/// Parses the command line into settings: clap's own errors (unknown
/// flags, bad values) as clap prints them, everything else as one line.
pub fn parse_from<I, T>(argv: I) -> Result<(Args, Config), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let m = Args::command()
        .try_get_matches_from(argv)
        .map_err(CliError::Clap)?;
    let args = Args::from_arg_matches(&m).map_err(CliError::Clap)?;
    args.check_applicable(&m).map_err(CliError::Invalid)?;
    let cfg = args.config().map_err(CliError::Invalid)?;
    Ok((args, cfg))
}

/// Why the command line was refused.
#[derive(Debug)]
pub enum CliError {
    /// clap's error (including `--help` and `--version`, which it prints).
    Clap(clap::Error),
    /// Flags that parse but do not fit together, or a file that did not load.
    Invalid(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
