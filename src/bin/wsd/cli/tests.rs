//! The command line's rules, flag by flag.

use super::*;

fn parse(args: &[&str]) -> Result<Config, CliError> {
    parse_from(std::iter::once("wsd").chain(args.iter().copied())).map(|(_, cfg)| cfg)
}

fn config(args: &[&str]) -> Config {
    parse(args).unwrap()
}

/// The one line a refused command line prints.
fn refusal(args: &[&str]) -> String {
    match parse(args) {
        Err(CliError::Invalid(e)) => e,
        Err(CliError::Clap(e)) => e.to_string(),
        Ok(cfg) => panic!("{args:?} accepted: {cfg:?}"),
    }
}

/// A directory for a test's key files, removed when dropped, also when
/// the test fails.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wsd-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn zero_is_refused_for_every_duration_flag() {
    for flag in [
        "--handshake-timeout",
        "--close-timeout",
        "--drain-timeout",
        "--idle-timeout",
        "--stats-interval",
        "--ping-interval",
        "--tcp-keepalive",
    ] {
        let err = refusal(&[flag, "0s"]);
        assert!(
            err.contains("above zero") || err.contains("use off"),
            "{flag}: {err}"
        );
        assert!(parse(&[flag, "250ms"]).is_ok(), "{flag}");
    }
}

#[test]
fn a_flag_that_cannot_apply_is_one_error_line() {
    for (args, want) in [
        (
            &["--exclude-sender"][..],
            "--exclude-sender needs --mode broadcast",
        ),
        (
            &["--slow-consumer", "drop"][..],
            "--slow-consumer needs --mode broadcast",
        ),
        (
            &["--deflate-window-bits", "10"][..],
            "--deflate-window-bits needs --deflate",
        ),
        (
            &["--deflate-min-size", "1k"][..],
            "--deflate-min-size needs --deflate",
        ),
        (
            &["--deflate-context-takeover"][..],
            "--deflate-context-takeover needs --deflate",
        ),
        (
            &["--deflate", "--deflate-memory", "1MiB"][..],
            "--deflate-memory needs --deflate-context-takeover",
        ),
        (
            &["--mode", "broadcast", "--redis-prefix", "x:"][..],
            "--redis-prefix needs --redis",
        ),
        (
            &["--mode", "broadcast", "--redis-queue", "1MiB"][..],
            "--redis-queue needs --redis",
        ),
        (
            &["--redis", "redis://127.0.0.1:1"][..],
            "--redis needs --mode broadcast",
        ),
        (
            &["--mode", "broadcast", "--nats-prefix", "x."][..],
            "--nats-prefix needs --nats",
        ),
        (
            &[
                "--mode",
                "broadcast",
                "--redis",
                "redis://127.0.0.1:1",
                "--nats-queue",
                "1MiB",
            ][..],
            "--nats-queue needs --nats",
        ),
        (
            &["--nats", "nats://127.0.0.1:1"][..],
            "--nats needs --mode broadcast",
        ),
        (
            &["--api-key", "/nonexistent"][..],
            "--api-key needs --mode broadcast",
        ),
    ] {
        let err = refusal(args);
        assert_eq!(err, want, "{args:?}");
    }
    // Given with what they need, they are taken.
    let cfg = config(&[
        "--mode",
        "broadcast",
        "--exclude-sender",
        "--slow-consumer",
        "drop",
    ]);
    assert!(!cfg.broadcast_to_sender);
    assert_eq!(cfg.slow_consumer, SlowConsumerPolicy::Drop);
    // --node-id names the instance in /metrics even without a bus.
    assert_eq!(config(&["--node-id", "web-1"]).instance, "web-1");
}

#[test]
fn origins_are_normalised_and_checked_at_start() {
    let cfg = config(&["--allow-origin", "https://Good.Example/"]);
    assert_eq!(cfg.allowed_origins, ["https://good.example"]);
    let err = refusal(&["--allow-origin", "foo"]);
    assert!(err.starts_with("--allow-origin \"foo\": "), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn sizes_take_a_fraction_that_comes_to_whole_bytes() {
    assert_eq!(
        config(&["--max-message", "1.5MiB"]).limits.max_message,
        3 << 19
    );
    let err = refusal(&["--max-message", "1.3KiB"]);
    assert!(err.contains("whole number of bytes"), "{err}");
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
    for bad in ["7", "16"] {
        assert!(parse(&["--deflate", "--deflate-window-bits", bad]).is_err());
    }
}

#[test]
fn api_keys_load_at_start_and_a_bad_file_is_one_line() {
    assert!(config(&["--mode", "broadcast"]).api_keys.is_none());
    let dir = Scratch::new("api");
    let (good, weak) = (dir.0.join("good"), dir.0.join("weak"));
    std::fs::write(&good, "cli-key-0123456789abcdef\n").unwrap();
    std::fs::write(&weak, "secret\n").unwrap();
    let good_s = good.to_str().unwrap();
    let cfg = config(&[
        "--mode",
        "broadcast",
        "--api-key",
        good_s,
        "--api-key",
        good_s,
    ]);
    let keys = cfg.api_keys.unwrap().snapshot().1;
    assert_eq!(keys.len(), 2);
    assert!(keys.matches(b"cli-key-0123456789abcdef"));
    let err = refusal(&["--mode", "broadcast", "--api-key", weak.to_str().unwrap()]);
    assert!(
        err.starts_with("--api-key ") && err.contains("weak"),
        "{err}"
    );
    assert!(!err.contains("secret") && !err.contains('\n'), "{err}");
}

#[test]
fn keepalive_and_pings_turn_off_with_off_and_not_with_zero() {
    let cfg = config(&["--ping-interval", "off", "--tcp-keepalive", "OFF"]);
    assert_eq!(cfg.ping_interval, None);
    assert_eq!(cfg.tcp_keepalive, None);
    let cfg = config(&["--ping-interval", "5s", "--tcp-keepalive", "2m"]);
    assert_eq!(cfg.ping_interval, Some(Duration::from_secs(5)));
    assert_eq!(cfg.tcp_keepalive, Some(Duration::from_secs(120)));
    assert!(parse(&["--ping-interval", "0s"]).is_err());
}

#[test]
fn auth_flags_need_a_key_and_a_bad_key_file_is_one_line_naming_it() {
    for (args, want) in [
        (
            &["--auth-leeway", "10s"][..],
            "--auth-leeway needs --auth-key",
        ),
        (
            &["--auth-audience", "a"][..],
            "--auth-audience needs --auth-key",
        ),
        (
            &["--auth-issuer", "i"][..],
            "--auth-issuer needs --auth-key",
        ),
    ] {
        assert_eq!(refusal(args), want, "{args:?}");
    }
    let dir = Scratch::new("auth");
    let short = dir.0.join("short");
    std::fs::write(&short, "sekrit\n").unwrap();
    let err = refusal(&["--auth-key", short.to_str().unwrap()]);
    assert!(
        err.starts_with("--auth-key ") && err.contains("short"),
        "{err}"
    );
    assert!(!err.contains("sekrit") && !err.contains('\n'), "{err}");
    let good = dir.0.join("good");
    std::fs::write(&good, [b'k'; 32]).unwrap();
    let key = good.to_str().unwrap();
    let cfg = config(&[
        "--auth-key",
        key,
        "--auth-leeway",
        "1m",
        "--auth-issuer",
        "i",
    ]);
    assert_eq!(cfg.auth.policy.leeway, Duration::from_secs(60));
    assert_eq!(cfg.auth.keys.unwrap().keys().len(), 1);
    assert!(refusal(&["--auth-key", key, "--auth-leeway", "0s"]).contains("above zero"));
    assert!(refusal(&["--auth-key", key, "--auth-leeway", "1.5s"]).contains("whole seconds"));
    // Anonymous read stands alone: a read-only server.
    assert!(config(&["--auth-anonymous", "read"]).auth.enabled());
    assert!(!config(&[]).auth.enabled());
}

#[test]
fn rate_limits_are_off_by_default_and_zero_is_refused() {
    let cfg = config(&[]);
    assert!(!cfg.auth.rates() && cfg.auth.connections_per_ip == 0);
    let cfg = config(&[
        "--max-message-rate",
        "100",
        "--max-bytes-rate",
        "16MiB",
        "--max-connections-per-ip",
        "8",
    ]);
    assert_eq!(cfg.auth.message_rate.map(|r| r.get()), Some(100));
    assert_eq!(cfg.auth.bytes_rate.map(|r| r.get()), Some(16 << 20));
    assert_eq!(cfg.auth.connections_per_ip, 8);
    assert!(refusal(&["--max-message-rate", "0"]).contains("above zero"));
    let err = refusal(&["--max-bytes-rate", "64KiB"]);
    assert!(err.contains("--max-message"), "{err}");
    assert!(parse(&["--max-bytes-rate", "64KiB", "--max-message", "64KiB"]).is_ok());
}

#[test]
fn history_is_off_by_default_and_its_flags_need_it() {
    assert_eq!(config(&["--mode", "broadcast"]).history, None);
    let cfg = config(&["--mode", "broadcast", "--history", "100"]);
    let h = cfg.history.unwrap();
    assert_eq!(
        (h.keep, h.ttl, h.memory),
        (100, std::time::Duration::from_secs(600), 64 << 20)
    );
    // The subprotocol that gives offsets comes with it, once.
    assert_eq!(cfg.protocols, ["wsd.offsets"]);
    let cfg = config(&[
        "--mode",
        "broadcast",
        "--history",
        "5",
        "--history-ttl",
        "30s",
        "--history-memory",
        "1MiB",
        "--protocol",
        "wsd.offsets",
    ]);
    let h = cfg.history.unwrap();
    assert_eq!((h.keep, h.ttl.as_secs(), h.memory), (5, 30, 1 << 20));
    assert_eq!(cfg.protocols, ["wsd.offsets"]);
    for (args, want) in [
        (
            &["--mode", "broadcast", "--history-ttl", "1m"][..],
            "--history-ttl needs --history",
        ),
        (
            &["--mode", "broadcast", "--history-memory", "1MiB"][..],
            "--history-memory needs --history",
        ),
        (&["--history", "10"][..], "--history needs --mode broadcast"),
        (
            &["--mode", "broadcast", "--history", "10", "--threads", "2"][..],
            "--history needs --threads 1 (for now)",
        ),
        (
            &[
                "--mode",
                "broadcast",
                "--history",
                "10",
                "--history-memory",
                "1MiB",
                "--redis",
                "redis://127.0.0.1:1",
            ][..],
            "--history-memory bounds history in memory; with --redis it is in Redis (bound that with Redis's maxmemory)",
        ),
    ] {
        assert_eq!(refusal(args), want, "{args:?}");
    }
    assert!(parse(&["--mode", "broadcast", "--history", "0"]).is_err());
    assert!(parse(&[
        "--mode",
        "broadcast",
        "--history",
        "1",
        "--history-ttl",
        "0s"
    ])
    .is_err());
}

#[test]
fn nats_is_a_bus_of_its_own_and_excludes_redis() {
    let cfg = config(&[
        "--mode",
        "broadcast",
        "--nats",
        "nats://127.0.0.1:4300,127.0.0.1:4301",
        "--nats-prefix",
        "prod.wsd.",
        "--nats-queue",
        "1MiB",
        "--node-id",
        "n1",
    ]);
    assert!(cfg.bus_on() && cfg.redis.is_none());
    let nats = cfg.nats.as_ref().unwrap();
    assert_eq!(nats.addrs.len(), 2);
    assert_eq!(
        (nats.prefix.as_str(), nats.max_queue, nats.node_id.as_str()),
        ("prod.wsd.", 1 << 20, "n1")
    );
    assert_eq!(cfg.instance, "n1");
    let err = refusal(&[
        "--mode",
        "broadcast",
        "--redis",
        "redis://127.0.0.1:1",
        "--nats",
        "nats://127.0.0.1:1",
    ]);
    assert_eq!(err, wsd::config::BOTH_BUSES);
    let err = refusal(&[
        "--mode",
        "broadcast",
        "--nats",
        "nats://127.0.0.1:1",
        "--nats-prefix",
        "wsd:",
    ]);
    assert!(err.contains("--nats-prefix"), "{err}");
}
