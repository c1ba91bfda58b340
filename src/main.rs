//! `wsd`: flags → config → reactor.
//!
//! Panic-free like the library (see its crate doc): no unwrap, expect,
//! panic or unchecked indexing here either.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable
)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wsd::bus::envelope::check_node_id;
use wsd::bus::RedisConfig;
use wsd::config::resolve_listen;
use wsd::net::cluster::MAX_REACTORS;
use wsd::net::process::Process;
use wsd::net::tls::TlsSlot;
use wsd::proto::handshake::is_token;
use wsd::proto::Limits;
use wsd::units::{parse_duration, parse_size};
use wsd::{Config, DeflateConfig, Mode, ShutdownHandle, SlowConsumerPolicy};

/// A WebSocket (RFC 6455) echo and broadcast server.
///
/// Sizes take units (4096, 64KiB, 16MiB); durations too (250ms, 10s, 2m).
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
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

    /// Broadcast mode: do not send a client its own messages. (The request
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

    /// An Origin allowed to connect (repeatable), e.g. https://example.com.
    /// When given, other and missing Origins are answered 403.
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
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    handshake_timeout: Duration,

    /// Time a closing connection has to flush and close its end before it is dropped.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    close_timeout: Duration,

    /// Close (1001) connections that send no message for this long. Only
    /// messages from the client count, so this also closes listen-only
    /// broadcast subscribers: dead peers are found by --ping-interval. Off
    /// by default.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
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
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    drain_timeout: Duration,

    /// Log a one-line summary (connections, messages and bytes per second,
    /// closes by code) this often.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    stats_interval: Option<Duration>,

    /// Unsent output per connection above which it is not read (echo) or is a
    /// slow consumer (broadcast).
    #[arg(long, default_value = "4MiB", value_parser = parse_size, value_name = "SIZE")]
    output_high_water: usize,

    /// Unsent output below which a paused connection is read again.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    output_low_water: usize,

    /// What to do with a broadcast receiver over the high watermark: close it
    /// with 1008, or drop messages for it until it catches up.
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
    #[arg(long, requires = "deflate")]
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

    /// Prefix of the bus's channel names: PREFIX + room (wsd:/chat).
    #[arg(long, default_value = "wsd:", value_name = "PREFIX")]
    redis_prefix: String,

    /// This node's name on the bus and in /metrics (1-64 of A-Z a-z 0-9
    /// . _ : -). Default: random at start with --redis, else the pid.
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,

    /// Unsent bytes to Redis above which messages for other nodes are
    /// dropped (and counted) instead of queued.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    redis_queue: usize,

    /// Reactors (threads) to run, each single-threaded with its own
    /// connections; broadcast rooms span them. `auto`: one per CPU this
    /// process may use. At most 64.
    #[arg(long, default_value = "1", value_parser = parse_threads, value_name = "N|auto")]
    threads: Threads,

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

    /// Log level: error, warn, info, debug or trace. Defaults to RUST_LOG, then info.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    log_level: Option<log::LevelFilter>,
}

/// How many reactors to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Threads {
    /// One per CPU the process may run on.
    Auto,
    /// This many.
    Count(usize),
}

impl Threads {
    fn count(self) -> usize {
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
        redis.max_message = self.max_message;
        redis.max_queue = self.redis_queue;
        redis.validate()?;
        Ok(Some(redis))
    }

    fn config(&self) -> Result<Config, String> {
        if self.output_low_water > self.output_high_water {
            return Err("--output-low-water must not exceed --output-high-water".into());
        }
        if self.max_message == 0
            || self.max_frame == 0
            || self.max_fragments == 0
            || self.max_connections == 0
        {
            return Err("limits must be above zero".into());
        }
        let zero = |d: Option<Duration>| d.is_some_and(|d| d.is_zero());
        if zero(self.idle_timeout) || zero(self.stats_interval) {
            return Err("--idle-timeout and --stats-interval must be above zero (leave them out to turn them off)".into());
        }
        if let Some(bad) = self.protocols.iter().find(|p| !is_token(p)) {
            return Err(format!(
                "--protocol {bad:?}: a subprotocol name is a token (letters, digits, !#$%&'*+-.^_`|~)"
            ));
        }
        if self.require_protocol && self.protocols.is_empty() {
            return Err("--require-protocol needs at least one --protocol".into());
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSlot::open(cert, key)?.0),
            _ => None,
        };
        let listen = resolve_listen(&self.listen)?;
        let redis = self.redis_config()?;
        if let Some(id) = &self.node_id {
            check_node_id(id)?;
        }
        if listen.len() + self.metrics_listen.len() > wsd::net::reactor::MAX_LISTENERS {
            return Err(format!(
                "at most {} --listen addresses (the names resolve to {})",
                wsd::net::reactor::MAX_LISTENERS,
                listen.len()
            ));
        }
        Ok(Config {
            listen,
            metrics_listen: self.metrics_listen.clone(),
            mode: match self.mode {
                ModeArg::Echo => Mode::Echo,
                ModeArg::Broadcast => Mode::Broadcast,
            },
            broadcast_to_sender: !self.exclude_sender,
            protocols: self.protocols.clone(),
            require_protocol: self.require_protocol,
            allowed_origins: self.allow_origins.clone(),
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
                .or_else(|| self.node_id.clone())
                .unwrap_or_else(|| std::process::id().to_string()),
            redis,
            tls,
        })
    }
}

/// Log lines to stderr, one per record, in one of two forms.
///
/// Under the journal: `<P>LEVEL message`, where `<P>` is the syslog
/// priority (3 error, 4 warning, 6 info, 7 debug) that journald takes off
/// the line and records, so `journalctl -p warning` works; the journal
/// stamps the time itself. Anywhere else (a terminal, a file, a pipe):
/// `2024-05-01T12:34:56.789Z LEVEL message`, an RFC 3339 UTC timestamp with
/// milliseconds.
struct StderrLogger {
    journal: bool,
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.journal {
            let priority = match r.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(err, "<{priority}>{:5} {}", r.level(), r.args())
        } else {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            writeln!(err, "{} {:5} {}", Rfc3339(now), r.level(), r.args())
        };
    }
    fn flush(&self) {}
}

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM` to the
/// `device:inode` of the stream it connected, and the variable is only
/// believed if stderr still is that stream (a child whose stderr was
/// redirected inherits the variable, not the journal).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM")
        .ok()
        .and_then(|v| parse_journal_stream(&v))
    else {
        return false;
    };
    // fstat(2) through a duplicate of the descriptor: no unsafe needed.
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata());
    meta.is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// `device:inode`, both decimal, as systemd writes `JOURNAL_STREAM`.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// A time since the Unix epoch, displayed as RFC 3339 UTC with
/// milliseconds: `2024-02-29T23:59:59.999Z`.
struct Rfc3339(Duration);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs();
        let (y, m, d) = civil_from_days(secs / 86_400);
        let day = secs % 86_400;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            day / 3600,
            day % 3600 / 60,
            day % 60,
            self.0.subsec_millis()
        )
    }
}

/// The proleptic Gregorian (year, month, day) of a day number counted from
/// 1970-01-01, after Howard Hinnant's `civil_from_days`: shift the year to
/// start in March, so the leap day ends it, then split into 400-year eras
/// of 146097 days, years of the era, and months of 153 days per 5.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of the era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March year, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

/// Raises the soft open-file limit to the hard one, so the connection limit,
/// not a default of 1024 descriptors, is what bounds the server.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

/// SIGINT and SIGTERM drain the server gracefully; a second one exits at
/// once. SIGHUP never stops the server: it asks for a [`reload`]. The
/// thread only waits for signals: all I/O stays on the reactor.
///
/// SIGPIPE needs nothing here: the Rust runtime ignores it before `main`
/// in every binary, so a write to a peer that went away fails with EPIPE
/// on that connection instead of killing the process.
fn handle_signals(handle: ShutdownHandle) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("wsd-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                if sig == SIGHUP {
                    reload(&handle);
                    continue;
                }
                seen += 1;
                if seen == 1 {
                    log::info!("signal {sig}: draining (again to exit at once)");
                    handle.drain();
                } else {
                    log::warn!("signal {sig} again: exiting now");
                    std::process::exit(128 + sig);
                }
            }
        })?;
    Ok(())
}

/// SIGHUP, the daemon convention for "reread your files" (`systemctl
/// reload`): the TLS certificate and key are read and checked here, on the
/// signal thread, and a good pair is handed to the reactors for their next
/// handshakes; no connection is dropped. A bad pair is logged and counted,
/// and the old one stays. Without TLS there is nothing to read, and SIGHUP
/// only says so: its default action (terminate) would drop every client.
fn reload(handle: &ShutdownHandle) {
    match handle.reload_tls() {
        None => log::info!("SIGHUP: nothing to reload"),
        Some(Ok(loaded)) => log::info!(
            "SIGHUP: certificate reloaded ({} in the chain); new handshakes use it",
            loaded.chain
        ),
        Some(Err(e)) => {
            log::error!("SIGHUP: certificate reload failed, still serving the old one: {e}")
        }
    }
}

/// Large buffers (a message of 4 MiB or more, being read or queued) get
/// pages of their own from the kernel, which go back when the buffer is
/// freed, and at most 4 MiB of freed heap is kept for reuse. glibc's
/// default raises its mmap threshold to the size of the last such buffer
/// freed, so that after one 16 MiB message the next ones came from the
/// heap and stayed resident after use. The read path relies on it too:
/// room it reserves past 1 MiB for a frame's rest is 4 MiB or more, so
/// pages no byte has landed on yet cost nothing (`net/buffer.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_large_buffers_back() {
    const LARGE: libc::c_int = 4 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LARGE);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_large_buffers_back() {}

fn main() -> ExitCode {
    give_large_buffers_back();
    let args = Args::parse();
    let level = args
        .log_level
        .or_else(|| std::env::var("RUST_LOG").ok().and_then(|v| v.parse().ok()))
        .unwrap_or(log::LevelFilter::Info);
    log::set_max_level(level);
    let logger = Box::leak(Box::new(StderrLogger {
        journal: stderr_is_journal(),
    }));
    let _ = log::set_logger(logger);

    let cfg = match args.config() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("wsd: {e}");
            return ExitCode::from(2);
        }
    };
    let fds = raise_fd_limit();
    let process = match Process::start(cfg.clone(), args.threads.count()) {
        Ok(s) => s,
        Err(e) => {
            let addrs: Vec<String> = cfg.listen.iter().map(ToString::to_string).collect();
            eprintln!("wsd: cannot listen on {}: {e}", addrs.join(", "));
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = handle_signals(process.shutdown_handle()) {
        eprintln!("wsd: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    let mode = match (cfg.mode, cfg.deflate.is_some()) {
        (Mode::Echo, false) => "echo",
        (Mode::Broadcast, false) => "broadcast",
        (Mode::Echo, true) => "echo, permessage-deflate",
        (Mode::Broadcast, true) => "broadcast, permessage-deflate",
    };
    let scheme = if cfg.tls.is_some() { "wss" } else { "ws" };
    let urls: Vec<String> = process
        .local_addrs()
        .iter()
        .map(|a| format!("{scheme}://{a}"))
        .collect();
    let reactors = match args.threads.count() {
        1 => String::new(),
        n => format!(", {n} reactors"),
    };
    // Not println!: it panics if stdout is gone (a closed pipe), and the
    // banner is not worth dying for.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "wsd listening on {} ({mode} mode{reactors})",
        urls.join(", ")
    );
    for a in process.metrics_addrs() {
        let _ = writeln!(stdout, "wsd metrics on http://{a}/metrics");
    }
    let _ = stdout.flush();
    drop(stdout);
    log::debug!("open-file limit {fds}; config {cfg:?}");
    match process.wait() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsd: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let argv = std::iter::once("wsd").chain(args.iter().copied());
        Args::try_parse_from(argv).unwrap().config().unwrap()
    }

    #[test]
    fn dead_peers_are_looked_for_by_default() {
        let cfg = config(&[]);
        assert_eq!(cfg.ping_interval, Some(Duration::from_secs(30)));
        assert_eq!(cfg.tcp_keepalive, Some(Duration::from_secs(60)));
        assert_eq!(cfg.idle_timeout, None);
    }

    #[test]
    fn deflate_is_off_by_default_and_its_flags_need_it() {
        assert_eq!(config(&[]).deflate, None);
        assert_eq!(
            config(&["--deflate"]).deflate,
            Some(DeflateConfig::default())
        );
        let cfg = config(&[
            "--deflate",
            "--deflate-context-takeover",
            "--deflate-window-bits",
            "10",
            "--deflate-min-size",
            "1KiB",
            "--deflate-memory",
            "1MiB",
        ]);
        assert_eq!(
            cfg.deflate,
            Some(DeflateConfig {
                context_takeover: true,
                window_bits: 10,
                min_size: 1024,
                memory_limit: 1 << 20,
            })
        );
        assert!(Args::try_parse_from(["wsd", "--deflate-context-takeover"]).is_err());
        for bad in ["7", "16"] {
            assert!(
                Args::try_parse_from(["wsd", "--deflate", "--deflate-window-bits", bad]).is_err()
            );
        }
    }

    #[test]
    fn keepalive_and_pings_turn_off_with_off_and_not_with_zero() {
        let cfg = config(&["--ping-interval", "off", "--tcp-keepalive", "OFF"]);
        assert_eq!(cfg.ping_interval, None);
        assert_eq!(cfg.tcp_keepalive, None);
        let cfg = config(&["--ping-interval", "5s", "--tcp-keepalive", "2m"]);
        assert_eq!(cfg.ping_interval, Some(Duration::from_secs(5)));
        assert_eq!(cfg.tcp_keepalive, Some(Duration::from_secs(120)));
        assert!(Args::try_parse_from(["wsd", "--ping-interval", "0s"]).is_err());
    }

    fn stamp(secs: u64, millis: u32) -> String {
        Rfc3339(Duration::new(secs, millis * 1_000_000)).to_string()
    }

    #[test]
    fn timestamps_of_known_instants() {
        for (secs, millis, want) in [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (951_782_399, 999, "2000-02-28T23:59:59.999Z"),
            (951_782_400, 1, "2000-02-29T00:00:00.001Z"),
            (951_868_800, 0, "2000-03-01T00:00:00.000Z"),
            (978_307_199, 500, "2000-12-31T23:59:59.500Z"),
            (1_709_251_199, 999, "2024-02-29T23:59:59.999Z"),
            (1_714_566_896, 789, "2024-05-01T12:34:56.789Z"),
            (4_107_456_000, 0, "2100-02-28T00:00:00.000Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799, 0, "9999-12-31T23:59:59.000Z"),
        ] {
            assert_eq!(stamp(secs, millis), want, "{secs}");
        }
    }

    /// The naive twin: walk the calendar a day at a time.
    #[test]
    fn civil_from_days_agrees_with_counting_days_through_four_centuries() {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..(2400 - 1970) * 366 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let month_len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > month_len {
                (d, m) = (1, m + 1);
                if m > 12 {
                    (m, y) = (1, y + 1);
                }
            }
        }
    }

    #[test]
    fn journal_stream_is_device_colon_inode() {
        assert_eq!(parse_journal_stream("2049:123456"), Some((2049, 123_456)));
        for bad in ["", "2049", "2049:", ":1", "a:1", "1:2:3", "-1:2"] {
            assert_eq!(parse_journal_stream(bad), None, "{bad:?}");
        }
    }
}
