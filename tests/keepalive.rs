//! Keepalive and idle timeout: a quiet connection is pinged and closed
//! (1001 "ping timeout") if it stays silent; a connection that sends no
//! message is closed (1001 "idle timeout") however many pings and pongs it
//! exchanges.
//!
//! Only outcomes are asserted, never durations: each test waits for what
//! must happen with bounded reads, and "stays open" means the connection
//! was still served after several intervals had passed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wsd::{Config, Mode};

const INTERVAL: Duration = Duration::from_millis(300);

/// How long a test waits for a ping or close that must come.
const PATIENCE: Duration = Duration::from_secs(10);

fn keepalive(ping: Option<Duration>, idle: Option<Duration>) -> Config {
    Config {
        ping_interval: ping,
        idle_timeout: idle,
        ..config(Mode::Echo)
    }
}

/// The server's Close must be 1001 with `reason`; answer it and expect EOF.
fn expect_going_away(c: &mut Client, got: Message, reason: &str) {
    assert_eq!(
        got,
        Message::Close(Some(1001), reason.as_bytes().to_vec()),
        "{}",
        describe(&got)
    );
    c.send_close(1001, b"");
    c.expect_eof();
}

/// A clean close by the client, ignoring keepalive pings that cross it.
fn close_ignoring_pings(mut c: Client) {
    c.send_close(1000, b"bye");
    match c.recv_skipping_pings() {
        Message::Close(code, _) => assert_eq!(code, Some(1000)),
        other => panic!("expected Close 1000, got {}", describe(&other)),
    }
    c.expect_eof();
}

#[test]
fn quiet_client_is_pinged_and_stays_open_while_it_answers() {
    let _w = watchdog();
    let server = TestServer::start(keepalive(Some(INTERVAL), None));
    let mut c = server.client();
    // Three pings answered in a row: the connection outlived several
    // intervals (and several unanswered-ping deadlines) because it answered.
    for i in 0..3 {
        match c.recv() {
            Message::Ping(payload) => c.send_frame(true, OP_PONG, &payload),
            other => panic!("ping {i}: expected a Ping, got {}", describe(&other)),
        }
    }
    c.assert_echo("still here");
    close_ignoring_pings(c);
    let stats = server.stop();
    assert!(stats.pings_sent >= 3, "{stats:?}");
    assert_eq!(stats.ping_timeouts, 0);
}

#[test]
fn silent_client_is_closed_with_ping_timeout() {
    let _w = watchdog();
    let server = TestServer::start(keepalive(Some(INTERVAL), None));
    let mut answering = server.client();
    let mut silent = server.client();
    let until = Instant::now() + PATIENCE;
    let mut pings = 0;
    // Watch both; only one answers its pings.
    let got = loop {
        assert!(Instant::now() < until, "the silent client was never closed");
        match answering.try_recv(Duration::from_millis(10)) {
            Some(Message::Ping(p)) => answering.send_frame(true, OP_PONG, &p),
            Some(other) => panic!("answering client got {}", describe(&other)),
            None => {}
        }
        match silent.try_recv(Duration::from_millis(10)) {
            Some(Message::Ping(_)) => pings += 1,
            Some(other) => break other,
            None => {}
        }
    };
    assert_eq!(pings, 1, "closed after exactly one unanswered ping");
    expect_going_away(&mut silent, got, "ping timeout");
    let metrics = String::from_utf8(http_get(server.addr(), "/metrics").body).unwrap();
    assert!(
        metrics.lines().any(|l| l == "wsd_ping_timeouts_total 1"),
        "/metrics counts the ping timeout"
    );
    // The answering client was not affected.
    answering.send_text("unaffected");
    loop {
        match answering.recv() {
            Message::Ping(p) => answering.send_frame(true, OP_PONG, &p),
            Message::Text(t) => break assert_eq!(t, "unaffected"),
            other => panic!("answering client got {}", describe(&other)),
        }
    }
    close_ignoring_pings(answering);
    let stats = server.stop();
    assert_eq!(stats.ping_timeouts, 1, "{stats:?}");
    assert_eq!(stats.idle_timeouts, 0);
}

#[test]
fn any_traffic_answers_a_ping() {
    let _w = watchdog();
    let server = TestServer::start(keepalive(Some(INTERVAL), None));
    let mut c = server.client();
    for i in 0..3 {
        assert!(
            matches!(c.recv(), Message::Ping(_)),
            "round {i}: expected a Ping"
        );
        // A message instead of a Pong keeps the connection, and the next
        // thing the server sends (after the echo) is another Ping, not a
        // close.
        c.assert_echo(&format!("instead of a pong {i}"));
    }
    close_ignoring_pings(c);
    let stats = server.stop();
    assert_eq!(stats.ping_timeouts, 0, "{stats:?}");
}

#[test]
fn client_sending_no_message_is_closed_with_idle_timeout_despite_pings() {
    let _w = watchdog();
    let server = TestServer::start(keepalive(None, Some(INTERVAL)));
    let mut c = server.client();
    let until = Instant::now() + PATIENCE;
    // Pings from the client are traffic but not messages.
    let got = loop {
        assert!(Instant::now() < until, "no idle close came");
        c.send_frame(true, OP_PING, b"are you there");
        match c.recv() {
            Message::Pong(p) => assert_eq!(p, b"are you there"),
            other => break other,
        }
        // Pace the pings; a close may arrive meanwhile.
        if let Some(m) = c.try_recv(Duration::from_millis(30)) {
            break m;
        }
    };
    expect_going_away(&mut c, got, "idle timeout");
    let metrics = String::from_utf8(http_get(server.addr(), "/metrics").body).unwrap();
    assert!(
        metrics.lines().any(|l| l == "wsd_idle_timeouts_total 1"),
        "/metrics counts the idle timeout"
    );
    let stats = server.stop();
    assert_eq!(stats.idle_timeouts, 1, "{stats:?}");
    assert_eq!(stats.ping_timeouts, 0);
    assert_eq!(stats.messages_in, 0);
}

#[test]
fn answering_keepalive_pings_does_not_stop_the_idle_timeout() {
    let _w = watchdog();
    // Pinged several times within the idle timeout, and answering each.
    let server = TestServer::start(keepalive(Some(INTERVAL / 3), Some(INTERVAL)));
    let mut c = server.client();
    let mut pongs = 0;
    let got = loop {
        match c.recv() {
            Message::Ping(p) => {
                c.send_frame(true, OP_PONG, &p);
                pongs += 1;
            }
            other => break other,
        }
    };
    expect_going_away(&mut c, got, "idle timeout");
    assert!(pongs >= 1, "never pinged before the idle close");
    let stats = server.stop();
    assert_eq!(stats.idle_timeouts, 1, "{stats:?}");
    assert_eq!(stats.ping_timeouts, 0, "{stats:?}");
}

#[test]
fn client_sending_messages_stays_open_past_the_idle_timeout() {
    let _w = watchdog();
    let idle = Duration::from_millis(400);
    let server = TestServer::start(keepalive(None, Some(idle)));
    let mut c = server.client();
    let started = Instant::now();
    let mut sent = 0;
    // Keep talking for several idle timeouts; each wait for a close that
    // must not come paces the messages.
    while started.elapsed() < idle * 4 {
        c.assert_echo(&format!("message {sent}"));
        sent += 1;
        if let Some(m) = c.try_recv(Duration::from_millis(40)) {
            panic!("after {sent} messages: {}", describe(&m));
        }
    }
    close_ignoring_pings(c);
    let stats = server.stop();
    assert_eq!(stats.idle_timeouts, 0, "{stats:?}");
    assert_eq!(stats.messages_in, sent);
}

#[test]
fn broadcast_listener_that_never_sends_is_idle_though_it_receives() {
    let _w = watchdog();
    let idle = Duration::from_millis(400);
    let server = TestServer::start(Config {
        idle_timeout: Some(idle),
        ..config(Mode::Broadcast)
    });
    let mut talker = server.client();
    let mut listener = server.client();
    let until = Instant::now() + PATIENCE;
    let mut ticks = 0;
    let got = loop {
        assert!(Instant::now() < until, "the listener was never closed");
        talker.send_text(&format!("tick {ticks}"));
        assert_eq!(talker.recv_text(), format!("tick {ticks}"));
        match listener.recv() {
            Message::Text(t) => assert_eq!(t, format!("tick {ticks}")),
            other => break other,
        }
        ticks += 1;
        if let Some(m) = listener.try_recv(Duration::from_millis(30)) {
            break m;
        }
    };
    expect_going_away(&mut listener, got, "idle timeout");
    // The talker is still served, and alone in the room now.
    talker.send_text("after");
    assert_eq!(talker.recv_text(), "after");
    talker.close();
    let stats = server.stop();
    assert_eq!(stats.idle_timeouts, 1, "{stats:?}");
}
