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
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wsd::proto::Limits;
use wsd::units::{parse_duration, parse_size};
use wsd::{Config, DeflateConfig, Mode, Server, ShutdownHandle, SlowConsumerPolicy};

/// A WebSocket (RFC 6455) echo and broadcast server.
///
/// Sizes take units (4096, 64KiB, 16MiB); durations too (250ms, 10s, 2m).
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address and port to listen on; repeat for more (e.g. IPv4 and IPv6:
    /// --listen 0.0.0.0:9001 --listen [::]:9001).
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,

    /// An address (repeatable) that serves only /metrics and /healthz over
    /// plain HTTP, usually a private one. With it, the WebSocket port
    /// answers /metrics with 404, so that a scrape reaches the process it
    /// names even when several share the port (--reuse-port).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Vec<SocketAddr>,

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

    /// Log level: error, warn, info, debug or trace. Defaults to RUST_LOG, then info.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    log_level: Option<log::LevelFilter>,
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
        if self.listen.len() + self.metrics_listen.len() > wsd::net::reactor::MAX_LISTENERS {
            return Err(format!(
                "at most {} --listen addresses",
                wsd::net::reactor::MAX_LISTENERS
            ));
        }
        Ok(Config {
            listen: self.listen.clone(),
            metrics_listen: self.metrics_listen.clone(),
            mode: match self.mode {
                ModeArg::Echo => Mode::Echo,
                ModeArg::Broadcast => Mode::Broadcast,
            },
            broadcast_to_sender: !self.exclude_sender,
            protocols: self.protocols.clone(),
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
        })
    }
}

/// Log lines to stderr: `LEVEL message`.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let _ = writeln!(std::io::stderr().lock(), "{:5} {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
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
/// once. The thread only waits for signals: all I/O stays on the reactor.
fn handle_signals(handle: ShutdownHandle) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("wsd-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
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

fn main() -> ExitCode {
    let args = Args::parse();
    let level = args
        .log_level
        .or_else(|| std::env::var("RUST_LOG").ok().and_then(|v| v.parse().ok()))
        .unwrap_or(log::LevelFilter::Info);
    log::set_max_level(level);
    let _ = log::set_logger(&StderrLogger);

    let cfg = match args.config() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("wsd: {e}");
            return ExitCode::from(2);
        }
    };
    let fds = raise_fd_limit();
    let mut server = match Server::bind(cfg.clone()) {
        Ok(s) => s,
        Err(e) => {
            let addrs: Vec<String> = cfg.listen.iter().map(ToString::to_string).collect();
            eprintln!("wsd: cannot listen on {}: {e}", addrs.join(", "));
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = handle_signals(server.shutdown_handle()) {
        eprintln!("wsd: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    let mode = match (cfg.mode, cfg.deflate.is_some()) {
        (Mode::Echo, false) => "echo",
        (Mode::Broadcast, false) => "broadcast",
        (Mode::Echo, true) => "echo, permessage-deflate",
        (Mode::Broadcast, true) => "broadcast, permessage-deflate",
    };
    let urls: Vec<String> = server
        .local_addrs()
        .iter()
        .map(|a| format!("ws://{a}"))
        .collect();
    println!("wsd listening on {} ({mode} mode)", urls.join(", "));
    for a in server.metrics_addrs() {
        println!("wsd metrics on http://{a}/metrics");
    }
    let _ = std::io::stdout().flush();
    log::debug!("open-file limit {fds}; config {cfg:?}");
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
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
}
