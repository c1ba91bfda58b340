//! The server's lifecycle: its listeners (one or several, IPv4 and IPv6),
//! a graceful drain (`ShutdownHandle::drain`: Close 1001 to every client;
//! the listeners stay open so that new upgrades get 503 and `/healthz`
//! says 503 `draining`; return once every connection has closed or the
//! drain timeout passed), an immediate `shutdown`, and the binary's answer
//! to SIGTERM and SIGINT (drain, exit 0; a second signal exits at once with
//! 128+signal), to SIGHUP (logged, the server keeps serving) and SIGPIPE
//! (ignored).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use wsd::{Config, Mode};

const GOING_AWAY: &[u8] = b"server shutting down";

/// Long enough that a drain ending before it proves the clients ended it.
const LONG_DRAIN: Duration = Duration::from_secs(60);

fn draining(mode: Mode, drain_timeout: Duration) -> Config {
    Config {
        drain_timeout,
        ..config(mode)
    }
}

/// The next message must be the drain's Close 1001.
fn expect_drain_close(c: &mut Client) {
    assert_eq!(
        c.recv(),
        Message::Close(Some(1001), GOING_AWAY.to_vec()),
        "expected the drain's Close 1001"
    );
}

/// While draining, `addr` still answers: an upgrade is refused 503 with
/// Retry-After, `/healthz` is 503 `draining`, and each connection is
/// closed after its answer.
fn expect_draining_answers(addr: SocketAddr) {
    let (mut c, resp) = Client::try_upgrade(addr, "/", "");
    assert_eq!(resp.status, 503, "upgrade while draining: {resp:?}");
    assert!(resp.header("retry-after").is_some(), "{resp:?}");
    assert_eq!(
        String::from_utf8_lossy(&resp.body).trim(),
        "server shutting down"
    );
    c.expect_eof();
    let health = http_get(addr, "/healthz");
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(String::from_utf8_lossy(&health.body).trim(), "draining");
}

/// Whether this machine can listen on IPv6 loopback.
fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

// ---------------------------------------------------------------------------
// Listeners

#[test]
fn several_listeners_all_accept_and_local_addrs_lists_them() {
    let _w = watchdog();
    let mut listen: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap()];
    if ipv6_loopback() {
        listen.push("[::1]:0".parse().unwrap());
    } else {
        eprintln!("no IPv6 loopback here: checking two IPv4 listeners only");
    }
    listen.push("127.0.0.1:0".parse().unwrap());
    let (server, addrs) = TestServer::start_all(Config {
        listen: listen.clone(),
        ..config(Mode::Broadcast)
    });
    assert_eq!(addrs.len(), listen.len(), "{addrs:?}");
    for (got, asked) in addrs.iter().zip(&listen) {
        assert_eq!(got.ip(), asked.ip(), "in the order configured");
        assert_ne!(got.port(), 0);
    }
    assert_eq!(server.addr(), addrs[0]);
    // One client per listener, all in one room: the listeners feed one server.
    let mut clients: Vec<Client> = addrs
        .iter()
        .map(|&a| Client::connect_path(a, "/all"))
        .collect();
    clients[0].send_text("over every listener");
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.recv_text(), "over every listener", "via {}", addrs[i]);
    }
    let stats = server.stop();
    assert_eq!(stats.handshakes, addrs.len() as u64);
}

#[test]
fn while_draining_every_listener_answers_upgrades_and_health_checks_503() {
    let _w = watchdog();
    let mut listen: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap()];
    if ipv6_loopback() {
        listen.push("[::1]:0".parse().unwrap());
    }
    let (server, addrs) = TestServer::start_all(Config {
        listen,
        drain_timeout: LONG_DRAIN,
        ..config(Mode::Echo)
    });
    let mut c = Client::connect(addrs[addrs.len() - 1]);
    server.begin_drain();
    // The Close proves the drain began.
    expect_drain_close(&mut c);
    for &a in &addrs {
        expect_draining_answers(a);
        let metrics = String::from_utf8(http_get(a, "/metrics").body).unwrap();
        assert!(
            metrics.lines().any(|l| l == "wsd_draining 1"),
            "/metrics while draining"
        );
    }
    assert!(!server.finished(), "returned before the client answered");
    c.send_close(1001, b"");
    c.expect_eof();
    drop(c);
    let stats = server.wait_stopped(IO_TIMEOUT);
    assert_eq!(
        stats.handshake_failures.get(&503),
        Some(&(addrs.len() as u64)),
        "{stats:?}"
    );
    assert_eq!(
        stats.http_responses.get(&503),
        Some(&(addrs.len() as u64)),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------------------
// Drain

#[test]
fn drain_sends_close_1001_to_every_client_and_returns_once_they_closed() {
    let _w = watchdog();
    let server = TestServer::start(draining(Mode::Echo, LONG_DRAIN));
    let mut clients: Vec<Client> = (0..5).map(|_| server.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.assert_echo(&format!("before the drain {i}"));
    }
    server.begin_drain();
    for c in &mut clients {
        expect_drain_close(c);
    }
    assert!(!server.finished(), "returned before the clients answered");
    for mut c in clients {
        c.send_close(1001, b"");
        c.expect_eof();
    }
    // Well before the drain timeout: the last client's close ended it.
    let stats = server.wait_stopped(IO_TIMEOUT);
    assert_eq!(stats.closes.get(&1001), Some(&5), "{stats:?}");
    assert_eq!(stats.close_timeouts, 0);
    assert_eq!(stats.abnormal_closes, 0);
    assert_eq!(stats.messages_in, 5);
}

#[test]
fn drain_with_no_clients_returns_at_once() {
    let _w = watchdog();
    let server = TestServer::start(draining(Mode::Echo, LONG_DRAIN));
    let stats = server.drain(IO_TIMEOUT);
    assert_eq!(stats.accepted, 0);
}

#[test]
fn drain_reaches_broadcast_members_in_every_room() {
    let _w = watchdog();
    let server = TestServer::start(draining(Mode::Broadcast, LONG_DRAIN));
    let mut clients: Vec<Client> = ["/a", "/a", "/b", "/"]
        .iter()
        .map(|p| Client::connect_path(server.addr(), p))
        .collect();
    server.begin_drain();
    for c in &mut clients {
        expect_drain_close(c);
    }
    for mut c in clients {
        c.send_close(1001, b"");
        c.expect_eof();
    }
    let stats = server.wait_stopped(IO_TIMEOUT);
    assert_eq!(stats.closes.get(&1001), Some(&4), "{stats:?}");
}

#[test]
fn drain_gives_up_on_silent_clients_after_the_drain_timeout() {
    let _w = watchdog();
    let server = TestServer::start(draining(Mode::Echo, Duration::from_millis(300)));
    let mut silent = server.client();
    server.begin_drain();
    // `silent` never answers; the server returns anyway, and its end of
    // the connection closes with it. (A client that answers within 300 ms
    // would depend on this thread being scheduled in time; the tests with
    // LONG_DRAIN show answers ending a drain.)
    expect_drain_close(&mut silent);
    let stats = server.wait_stopped(IO_TIMEOUT);
    silent.expect_eof();
    assert_eq!(stats.closes.get(&1001), None, "{stats:?}");
}

#[test]
fn connections_still_in_their_handshake_are_answered_during_the_drain() {
    let _w = watchdog();
    let server = TestServer::start(draining(Mode::Echo, LONG_DRAIN));
    let mut nothing_sent = Client::connect_raw(server.addr());
    let mut half_sent = Client::connect_raw(server.addr());
    let key = half_sent.fresh_key();
    let upgrade = upgrade_request(&key);
    let (first, rest) = upgrade.split_at(upgrade.len() / 2);
    half_sent.send_raw(first.as_bytes());
    // An upgraded client proves both were accepted before the drain: the
    // server accepts in order, and its handshake is answered only after.
    let mut open = server.client();
    server.begin_drain();
    expect_drain_close(&mut open);
    // Both are still held, and answered as draining.
    half_sent.send_raw(rest.as_bytes());
    let resp = half_sent.read_http_response();
    assert_eq!(resp.status, 503, "{resp:?}");
    half_sent.expect_eof();
    nothing_sent.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = nothing_sent.read_http_response();
    assert_eq!(resp.status, 503, "{resp:?}");
    nothing_sent.expect_eof();
    drop((half_sent, nothing_sent));
    open.send_close(1001, b"");
    open.expect_eof();
    drop(open);
    server.wait_stopped(IO_TIMEOUT);
}

#[test]
fn client_closing_during_the_drain_is_answered_normally() {
    let _w = watchdog();
    let server = TestServer::start(draining(Mode::Echo, LONG_DRAIN));
    let mut a = server.client();
    let mut b = server.client();
    // a starts its own close before the drain: it gets its own code back.
    a.send_close(1000, b"leaving");
    assert!(matches!(a.recv(), Message::Close(Some(1000), _)));
    server.begin_drain();
    a.expect_eof();
    drop(a);
    expect_drain_close(&mut b);
    b.send_close(1001, b"");
    b.expect_eof();
    drop(b);
    let stats = server.wait_stopped(IO_TIMEOUT);
    assert_eq!(stats.closes.get(&1000), Some(&1), "{stats:?}");
    assert_eq!(stats.closes.get(&1001), Some(&1), "{stats:?}");
}

#[test]
fn shutdown_returns_at_once_without_a_closing_handshake() {
    let _w = watchdog();
    let server = TestServer::start(draining(Mode::Echo, LONG_DRAIN));
    let mut c = server.client();
    c.assert_echo("before");
    server.handle().shutdown();
    let stats = server.wait_stopped(IO_TIMEOUT);
    // No Close frame: the connection just ends.
    c.expect_eof();
    assert!(stats.closes.is_empty(), "{stats:?}");
}

// ---------------------------------------------------------------------------
// The binary and signals

#[test]
fn banner_lists_every_listen_address() {
    let _w = watchdog();
    let wsd = WsdProcess::start(&["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
    assert_eq!(wsd.addrs.len(), 2, "{}", wsd.banner);
    assert!(wsd.banner.ends_with(" (echo mode)"), "{}", wsd.banner);
    assert_ne!(wsd.addrs[0], wsd.addrs[1]);
    for &a in &wsd.addrs {
        let mut c = Client::connect(a);
        c.assert_echo(&a.to_string());
        c.close();
    }
}

#[test]
fn sigterm_with_no_clients_exits_0() {
    let _w = watchdog();
    let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0"]);
    wsd.signal("TERM");
    let status = wsd.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sigint_drains_clients_then_exits_0() {
    let _w = watchdog();
    let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0", "--drain-timeout", "60s"]);
    let addr = wsd.addrs[0];
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    clients[0].assert_echo("hello");
    wsd.signal("INT");
    for c in &mut clients {
        expect_drain_close(c);
    }
    expect_draining_answers(addr);
    assert!(
        wsd.child.try_wait().unwrap().is_none(),
        "exited before the clients answered"
    );
    for mut c in clients {
        c.send_close(1001, b"");
        c.expect_eof();
    }
    let status = wsd.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status:?}");
    let line = wsd.stderr_line_containing("drained", IO_TIMEOUT);
    assert!(line.contains("every connection closed"), "{line}");
}

#[test]
fn sigterm_exits_0_after_the_drain_timeout_if_clients_stay() {
    let _w = watchdog();
    let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0", "--drain-timeout", "300ms"]);
    let mut c = Client::connect(wsd.addrs[0]);
    wsd.signal("TERM");
    expect_drain_close(&mut c);
    let status = wsd.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status:?}");
    c.expect_eof();
    // A drain that gave up says so, with the count, at warn level.
    let line = wsd.stderr_line_containing("drain timed out", IO_TIMEOUT);
    assert!(
        line.contains("WARN") && line.contains("1 connections left"),
        "{line}"
    );
}

#[test]
fn second_signal_during_the_drain_exits_at_once_with_128_plus_signal() {
    let _w = watchdog();
    for (first, second, code) in [("TERM", "TERM", 128 + 15), ("TERM", "INT", 128 + 2)] {
        let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0", "--drain-timeout", "60s"]);
        let mut c = Client::connect(wsd.addrs[0]);
        wsd.signal(first);
        // The Close proves the first signal was taken: the drain is on, and
        // would last a minute with this client silent.
        expect_drain_close(&mut c);
        wsd.signal(second);
        let status = wsd.wait_exit(IO_TIMEOUT);
        assert_eq!(
            status.code(),
            Some(code),
            "{first} then {second}: {status:?}"
        );
        c.expect_eof();
    }
}

#[test]
fn sighup_is_logged_and_the_server_keeps_serving() {
    let _w = watchdog();
    let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0"]);
    let mut c = Client::connect(wsd.addrs[0]);
    c.assert_echo("before SIGHUP");
    for round in 0..2 {
        wsd.signal("HUP");
        // The log line proves the signal was taken, not still on its way.
        wsd.stderr_line_containing("SIGHUP: nothing to reload", IO_TIMEOUT);
        assert!(
            wsd.child.try_wait().unwrap().is_none(),
            "wsd exited on SIGHUP"
        );
        c.assert_echo(&format!("after SIGHUP {round}"));
    }
    let mut fresh = Client::connect(wsd.addrs[0]);
    fresh.assert_echo("a new client after SIGHUP");
    fresh.close();
    c.close();
    // SIGHUP did not start a drain: SIGTERM still drains and exits 0.
    wsd.signal("TERM");
    let status = wsd.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// The signals `wsd` ignores, from the `SigIgn` mask in /proc/PID/status.
fn ignored_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn line");
    u64::from_str_radix(mask.trim(), 16).expect("hex mask")
}

#[test]
fn sigpipe_is_ignored_and_sighup_is_not() {
    let _w = watchdog();
    let wsd = WsdProcess::start(&["--listen", "127.0.0.1:0"]);
    let ignored = ignored_signals(wsd.pid());
    // Bit n-1 stands for signal n: SIGPIPE is 13, SIGHUP is 1. A write to a
    // peer that reset must be EPIPE, not death; SIGHUP is caught, not
    // ignored, so it can later mean "reload".
    assert_ne!(
        ignored & (1 << (13 - 1)),
        0,
        "SIGPIPE not ignored: {ignored:#x}"
    );
    assert_eq!(
        ignored & 1,
        0,
        "SIGHUP ignored instead of handled: {ignored:#x}"
    );
}
