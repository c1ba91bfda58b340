//! Keepalive and idle timeout over real sockets: a quiet connection is
//! pinged and closed (1001 "ping timeout") if it stays silent; a
//! connection that sends no message is closed (1001 "idle timeout")
//! however many pings and pongs it exchanges.
//!
//! The timers themselves (when a ping goes out, how late an answer may
//! come, which close wins) are tested on simulated time in
//! `src/net/reactor/keepalive.rs`. Here only what no scheduling can change
//! is asserted: a client whose thread is held up on a busy machine is
//! rightly closed, so "stays open" is asserted only where the window to
//! answer in is seconds wide.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wsd::{Config, Mode, Stats};

const INTERVAL: Duration = Duration::from_millis(300);

/// How long a test waits for a close that must come: a watchdog against a
/// connection that is never closed, not a speed check.
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

#[test]
fn silent_client_is_pinged_once_then_closed_with_ping_timeout() {
    let _w = watchdog();
    let server = TestServer::start(keepalive(Some(INTERVAL), None));
    let mut silent = server.client();
    // Whenever the server gets to it: one ping, and one interval later,
    // with the ping unanswered, the close.
    assert_eq!(silent.recv(), Message::Ping(Vec::new()));
    let got = silent.recv();
    expect_going_away(&mut silent, got, "ping timeout");
    let metrics = String::from_utf8(http_get(server.addr(), "/metrics").body).unwrap();
    assert!(
        metrics.lines().any(|l| l == "wsd_ping_timeouts_total 1"),
        "/metrics counts the ping timeout"
    );
    let stats = server.stop();
    assert_eq!(stats.ping_timeouts, 1, "{stats:?}");
    assert_eq!(stats.pings_sent, 1, "{stats:?}");
    assert_eq!(stats.idle_timeouts, 0);
}

/// The interval when an answer must be taken: long enough that a client
/// thread held up on a busy machine still answers inside it (the answer
/// goes out the moment the ping is read), so there is one outcome to
/// assert and no retry that could hide a server that never takes answers.
const ANSWER_WINDOW: Duration = Duration::from_millis(2000);

/// On a new connection, answers the first keepalive ping with `answer`
/// (which reads whatever its answer brings back); the next frame must then
/// be another Ping: the answer was taken and the connection kept.
fn answered_ping_is_followed_by_another(answer: fn(&mut Client)) -> Stats {
    let server = TestServer::start(keepalive(Some(ANSWER_WINDOW), None));
    let mut c = server.client();
    assert_eq!(c.recv(), Message::Ping(Vec::new()));
    answer(&mut c);
    let got = c.recv();
    assert_eq!(got, Message::Ping(Vec::new()), "{}", describe(&got));
    c.close();
    server.stop()
}

#[test]
fn a_pong_answers_a_keepalive_ping() {
    let _w = watchdog();
    let stats = answered_ping_is_followed_by_another(|c| {
        c.send_frame(true, OP_PONG, b"");
    });
    assert_eq!(stats.ping_timeouts, 0, "{stats:?}");
    assert_eq!(stats.pings_sent, 2, "{stats:?}");
    assert_eq!(stats.protocol_errors, 0, "{stats:?}");
}

#[test]
fn a_message_answers_a_keepalive_ping_too() {
    let _w = watchdog();
    let stats = answered_ping_is_followed_by_another(|c| {
        c.assert_echo("instead of a pong");
    });
    assert_eq!(stats.ping_timeouts, 0, "{stats:?}");
    assert_eq!(stats.pings_sent, 2, "{stats:?}");
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
    // The idle timeout under two ping intervals: whenever the client's
    // answers come and however late the server runs its checks, the close
    // is the idle one after at most one ping (the unit test
    // `idle_under_two_intervals_always_closes_as_idle_after_at_most_one_ping`
    // shows it). A pong taken for a message would restart the idle clock
    // and let a second ping out.
    let interval = Duration::from_millis(200);
    let server = TestServer::start(keepalive(Some(interval), Some(interval * 3 / 2)));
    let mut c = server.client();
    let mut pings = 0;
    let got = loop {
        match c.recv() {
            Message::Ping(p) => {
                c.send_frame(true, OP_PONG, &p);
                pings += 1;
                assert_eq!(pings, 1, "a second ping before the idle close");
            }
            other => break other,
        }
    };
    expect_going_away(&mut c, got, "idle timeout");
    let stats = server.stop();
    assert_eq!(stats.idle_timeouts, 1, "{stats:?}");
    assert_eq!(stats.ping_timeouts, 0, "{stats:?}");
    assert_eq!(stats.messages_in, 0, "{stats:?}");
}

#[test]
fn broadcast_listener_that_never_sends_is_idle_though_it_receives() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        idle_timeout: Some(Duration::from_millis(400)),
        broadcast_to_sender: false,
        ..config(Mode::Broadcast)
    });
    let mut listener = server.client();
    // The talker joins after the listener and sends messages: its idle
    // deadline is always later than the listener's, so if this thread is
    // held up long enough for the talker to be closed as idle, the
    // listener's Close was sent first.
    let mut talker = server.client();
    let until = Instant::now() + PATIENCE;
    let mut ticks = 0;
    let mut received = 0;
    let got = loop {
        assert!(
            Instant::now() < until,
            "the listener was never closed ({received} messages received)"
        );
        talker.send_text(&format!("tick {ticks}"));
        ticks += 1;
        match listener.try_recv(Duration::from_millis(30)) {
            Some(Message::Text(t)) => {
                assert_eq!(t, format!("tick {received}"));
                received += 1;
            }
            Some(other) => break other,
            None => {}
        }
    };
    expect_going_away(&mut listener, got, "idle timeout");
    drop(talker);
    let stats = server.stop();
    // The talker too, if this thread was held up for an idle timeout.
    assert!((1..=2).contains(&stats.idle_timeouts), "{stats:?}");
}
