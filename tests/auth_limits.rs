//! The rate limits over real sockets, with or without tokens: messages and
//! bytes per second per connection (1008 `rate limit`), and connections
//! per client address (429), process-wide with `--threads`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use wsd::auth::Rate;
use wsd::config::AuthConfig;
use wsd::net::process::Process;
use wsd::{Config, Mode};

fn limited(auth: AuthConfig) -> Config {
    Config {
        auth,
        ..config(Mode::Echo)
    }
}

fn rate_limited(addr: SocketAddr, limit: &str) -> f64 {
    metric(
        addr,
        &format!("wsd_rate_limited_total{{limit=\"{limit}\"}}"),
    )
}

/// Sends `n` text messages of `size` bytes at once, then reads until the
/// Close: how many were echoed before it, and the Close's code and reason.
fn burst(c: &mut Client, n: usize, size: usize) -> (usize, Option<u16>, Vec<u8>) {
    let text = "x".repeat(size);
    for _ in 0..n {
        c.send_text(&text);
    }
    let mut echoed = 0;
    loop {
        match c.recv() {
            Message::Text(t) => {
                assert_eq!(t.len(), size);
                echoed += 1;
            }
            Message::Close(code, reason) => return (echoed, code, reason),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn over_the_message_rate_a_client_is_closed_1008_rate_limit() {
    let _w = watchdog();
    let server = TestServer::start(limited(AuthConfig {
        message_rate: Rate::per_second(5),
        ..AuthConfig::default()
    }));
    let mut c = server.client();
    // The bucket holds a second's worth: five pass, the sixth closes.
    let (echoed, code, reason) = burst(&mut c, 8, 10);
    assert!((5..8).contains(&echoed), "{echoed} echoed");
    assert_eq!(code, Some(1008));
    assert_eq!(reason, b"rate limit");
    c.send_close(1008, b"");
    c.expect_eof();
    assert_eq!(rate_limited(server.addr(), "messages"), 1.0);
    assert_eq!(rate_limited(server.addr(), "bytes"), 0.0);
    // Under the rate, nothing happens: a ping between messages is free.
    let mut calm = server.client();
    for i in 0..3 {
        calm.assert_echo(&format!("calm {i}"));
        calm.assert_ping(b"free");
    }
    server.stop();
}

#[test]
fn over_the_byte_rate_a_client_is_closed_1008_rate_limit() {
    let _w = watchdog();
    let mut cfg = limited(AuthConfig {
        bytes_rate: Rate::per_second(4096),
        ..AuthConfig::default()
    });
    cfg.limits.max_message = 4096;
    cfg.limits.max_frame = 4096;
    let server = TestServer::start(cfg);
    let mut c = server.client();
    let (echoed, code, reason) = burst(&mut c, 6, 1000);
    assert!((4..6).contains(&echoed), "{echoed} echoed");
    assert_eq!(code, Some(1008));
    assert_eq!(reason, b"rate limit");
    assert_eq!(rate_limited(server.addr(), "bytes"), 1.0);
    server.stop();
}

#[test]
fn one_upgrade_over_the_per_ip_limit_is_answered_429_and_a_close_frees_a_place() {
    let _w = watchdog();
    let server = TestServer::start(limited(AuthConfig {
        connections_per_ip: 2,
        ..AuthConfig::default()
    }));
    let a = server.client();
    let mut b = server.client();
    let (mut over, resp) = Client::try_upgrade(server.addr(), "/", "");
    assert_eq!(resp.status, 429, "{resp:?}");
    over.expect_eof();
    assert_eq!(rate_limited(server.addr(), "connections_per_ip"), 1.0);
    // Plain HTTP is not counted.
    assert_eq!(http_get(server.addr(), "/healthz").status, 200);
    a.close();
    wait_connections_open(server.addr(), 2);
    let mut c = server.client();
    c.assert_echo("back in");
    b.assert_echo("still here");
    server.stop();
}

#[test]
fn the_per_ip_limit_holds_across_reactors() {
    let _w = watchdog();
    let process = Process::start(
        limited(AuthConfig {
            connections_per_ip: 4,
            ..AuthConfig::default()
        }),
        2,
    )
    .expect("start two reactors");
    let addr = process.local_addrs()[0];
    let held: Vec<Client> = (0..4).map(|_| Client::connect_path(addr, "/")).collect();
    // The kernel spreads these over both reactors; none may pass.
    for i in 0..8 {
        let (mut c, resp) = Client::try_upgrade(addr, "/", "");
        assert_eq!(resp.status, 429, "extra upgrade {i}: {resp:?}");
        c.expect_eof();
    }
    for c in held {
        c.close();
    }
    // Every place came back: four more fit.
    let until = std::time::Instant::now() + IO_TIMEOUT;
    let mut again = Vec::new();
    while again.len() < 4 {
        let (c, resp) = Client::try_upgrade(addr, "/", "");
        if resp.status == 101 {
            again.push(c);
        } else {
            assert!(std::time::Instant::now() < until, "places not given back");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    process.shutdown_handle().shutdown();
    process.wait().expect("reactors");
}
