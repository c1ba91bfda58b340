use super::*;

#[test]
fn origins_are_normalised_as_browsers_send_them() {
    for (given, want) in [
        ("https://good.example/", "https://good.example"),
        ("HTTPS://Good.Example", "https://good.example"),
        ("https://good.example:443", "https://good.example"),
        ("http://good.example:80/", "http://good.example"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://[::1]", "https://[::1]"),
        ("chrome-extension://abcdef", "chrome-extension://abcdef"),
    ] {
        assert_eq!(normalize_origin(given).as_deref(), Ok(want), "{given}");
    }
    for bad in [
        "foo",
        "good.example",
        "https://",
        "https://good.example/path",
        "https://good.example/?q",
        "https://user@good.example",
        "https://good.example:0",
        "https://good.example:99999",
        "https://good.example:x",
        "https://good example",
        "1http://good.example",
        "://good.example",
    ] {
        assert!(normalize_origin(bad).is_err(), "{bad}");
    }
}

#[test]
fn validate_refuses_each_inconsistent_setting_with_its_flag() {
    assert_eq!(Config::default().validate(), Ok(()));
    type Spoil = fn(&mut Config);
    let cases: [(&str, Spoil); 12] = [
        ("--handshake-timeout", |c| {
            c.handshake_timeout = Duration::ZERO
        }),
        ("--close-timeout", |c| c.close_timeout = Duration::ZERO),
        ("--drain-timeout", |c| c.drain_timeout = Duration::ZERO),
        ("--idle-timeout", |c| c.idle_timeout = Some(Duration::ZERO)),
        ("--stats-interval", |c| {
            c.stats_interval = Some(Duration::ZERO)
        }),
        ("--max-message", |c| c.limits.max_message = 0),
        ("--output-low-water", |c| {
            c.output_low_water = c.output_high_water + 1
        }),
        ("--exclude-sender", |c| c.broadcast_to_sender = false),
        ("--allow-origin", |c| {
            c.allowed_origins = vec!["https://a.example/".into()]
        }),
        ("--require-protocol", |c| c.require_protocol = true),
        ("--history needs --mode broadcast", |c| {
            c.history = Some(crate::history::HistoryConfig {
                keep: 10,
                ttl: Duration::from_secs(60),
                memory: 1 << 20,
            })
        }),
        ("--history-memory", |c| {
            c.mode = Mode::Broadcast;
            c.history = Some(crate::history::HistoryConfig {
                keep: 10,
                ttl: Duration::from_secs(60),
                memory: 0,
            })
        }),
    ];
    for (flag, spoil) in cases {
        let mut cfg = Config::default();
        spoil(&mut cfg);
        let err = cfg.validate().unwrap_err();
        assert!(err.contains(flag), "{flag}: {err}");
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn ip_literals_are_taken_as_they_are() {
    let got = resolve_listen(&strings(&[
        "0.0.0.0:9001",
        "[::1]:9001",
        "[::]:9002",
        "127.0.0.1:0",
    ]));
    assert_eq!(
        got,
        Ok(vec![
            addr("0.0.0.0:9001"),
            addr("[::1]:9001"),
            addr("[::]:9002"),
            addr("127.0.0.1:0")
        ])
    );
}

#[test]
fn localhost_resolves_to_loopback_addresses() {
    let got = resolve_listen(&strings(&["localhost:9001"])).unwrap();
    assert!(!got.is_empty());
    assert!(
        got.iter().all(|a| a.ip().is_loopback() && a.port() == 9001),
        "{got:?}"
    );
}

#[test]
fn every_address_of_a_name_is_kept_and_repeats_are_dropped() {
    let v4 = addr("127.0.0.1:9001");
    let v6 = addr("[::1]:9001");
    let got = resolve_listen_with(
        &strings(&["both:9001", "127.0.0.1:9001", "both:9001"]),
        |v| {
            Ok(match v {
                "both:9001" => vec![v6, v4, v6],
                other => vec![other.parse().unwrap()],
            })
        },
    );
    assert_eq!(got, Ok(vec![v6, v4]));
}

#[test]
fn port_0_written_twice_is_two_listeners_but_a_name_gives_each_address_once() {
    let zero = addr("127.0.0.1:0");
    let got = resolve_listen_with(&strings(&["a:0", "a:0"]), |_| Ok(vec![zero, zero]));
    assert_eq!(got, Ok(vec![zero, zero]));
}

#[test]
fn a_value_giving_no_address_is_an_error_naming_it() {
    let err = resolve_listen_with(&strings(&["nothing.example:9001"]), |_| Ok(vec![])).unwrap_err();
    assert!(
        err.starts_with("--listen nothing.example:9001: no address"),
        "{err}"
    );
    for bad in ["localhost", "localhost:99999", "[::1]", "1.2.3.4:x"] {
        let err = resolve_listen(&strings(&[bad])).unwrap_err();
        assert!(err.starts_with(&format!("--listen {bad}: ")), "{err}");
        assert!(err.contains("HOST:PORT"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
