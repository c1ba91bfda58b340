//! Broadcast rooms: the request path (without its query string) names the
//! room a client joins, and a message reaches only its room's members.
//!
//! "Nothing else arrived" is proved without waiting for silence: after the
//! messages under test, a member's room sends a marker, and the marker must
//! be the member's very next message. The server fans out in the order it
//! reads, so anything misrouted would have come first.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use wsd::{Config, Mode};

fn rooms(to_sender: bool) -> Config {
    Config {
        broadcast_to_sender: to_sender,
        ..config(Mode::Broadcast)
    }
}

fn join(server: &TestServer, path: &str) -> Client {
    Client::connect_path(server.addr(), path)
}

/// `sender` (a member of the room) sends `marker`; every client in
/// `members` must get it as its next message.
fn marker_is_next(sender: &mut Client, members: &mut [&mut Client], marker: &str) {
    sender.send_text(marker);
    for (i, m) in members.iter_mut().enumerate() {
        assert_eq!(m.recv_text(), marker, "member {i}: something came first");
    }
}

/// `sender` sends `text` in a room where senders get their own messages:
/// it and every one of `others` must get it as their next message.
fn say(sender: &mut Client, others: &mut [&mut Client], text: &str) {
    marker_is_next(sender, others, text);
    assert_eq!(sender.recv_text(), text, "the sender: something came first");
}

/// The `wsd_rooms` gauge from `/metrics`.
fn rooms_gauge(server: &TestServer) -> u64 {
    let body = http_get(server.addr(), "/metrics").body;
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("wsd_rooms "))
        .expect("wsd_rooms in /metrics")
        .parse()
        .unwrap()
}

/// Waits (boundedly) for the `wsd_rooms` gauge to read `n`: a member that
/// has just closed leaves once the server has read its end of TCP.
fn expect_rooms(server: &TestServer, n: u64) {
    let until = Instant::now() + IO_TIMEOUT;
    loop {
        let now = rooms_gauge(server);
        if now == n {
            return;
        }
        assert!(Instant::now() < until, "wsd_rooms stays {now}, not {n}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn path_names_the_room_and_the_query_string_does_not() {
    let _w = watchdog();
    let server = TestServer::start(rooms(true));
    let mut a1 = join(&server, "/a");
    let mut a2 = join(&server, "/a?x=1");
    let mut a3 = join(&server, "/a?x=2&y");
    let mut b = join(&server, "/b");

    a2.send_text("to room a");
    for (i, c) in [&mut a1, &mut a2, &mut a3].into_iter().enumerate() {
        assert_eq!(c.recv_text(), "to room a", "member {i} of /a");
    }
    b.send_text("to room b");
    assert_eq!(b.recv_text(), "to room b", "/b got room a's message");
    say(&mut a1, &mut [&mut a2, &mut a3], "marker a");
    let stats = server.stop();
    assert_eq!(stats.messages_in, 3);
    assert_eq!(stats.messages_out, 3 + 1 + 3);
}

#[test]
fn root_path_is_a_room_of_its_own() {
    let _w = watchdog();
    let server = TestServer::start(rooms(true));
    let mut r1 = join(&server, "/");
    let mut r2 = join(&server, "/?room=ignored");
    let mut a = join(&server, "/a");
    r1.send_text("root");
    assert_eq!(r1.recv_text(), "root");
    assert_eq!(r2.recv_text(), "root");
    // /a got nothing of the root room's.
    say(&mut a, &mut [], "a only");
    say(&mut r2, &mut [&mut r1], "root again");
}

#[test]
fn many_rooms_at_once_each_get_only_their_own_messages() {
    let _w = watchdog();
    const ROOMS: usize = 8;
    const MEMBERS: usize = 4;
    let server = TestServer::start(rooms(true));
    let mut clients: Vec<Vec<Client>> = (0..ROOMS)
        .map(|r| {
            (0..MEMBERS)
                .map(|_| join(&server, &format!("/room{r}")))
                .collect()
        })
        .collect();
    assert_eq!(rooms_gauge(&server), ROOMS as u64);
    // Everyone sends at once, then everyone reads.
    for (r, members) in clients.iter_mut().enumerate() {
        for (m, c) in members.iter_mut().enumerate() {
            c.send_text(&format!("{r}:{m}"));
        }
    }
    for (r, members) in clients.iter_mut().enumerate() {
        for (m, c) in members.iter_mut().enumerate() {
            let mut got: BTreeMap<String, usize> = BTreeMap::new();
            for _ in 0..MEMBERS {
                *got.entry(c.recv_text()).or_default() += 1;
            }
            let want: BTreeMap<String, usize> =
                (0..MEMBERS).map(|k| (format!("{r}:{k}"), 1)).collect();
            assert_eq!(got, want, "room {r} member {m}");
        }
    }
    for (r, members) in clients.iter_mut().enumerate() {
        let (first, rest) = members.split_first_mut().unwrap();
        let mut rest: Vec<&mut Client> = rest.iter_mut().collect();
        say(first, &mut rest, &format!("end {r}"));
    }
    let stats = server.stop();
    let sent = (ROOMS * MEMBERS) as u64 + ROOMS as u64;
    assert_eq!(stats.messages_in, sent);
    assert_eq!(stats.messages_out, sent * MEMBERS as u64);
}

#[test]
fn excluded_sender_gets_nothing_back_but_its_room_does() {
    let _w = watchdog();
    let server = TestServer::start(rooms(false));
    let mut a1 = join(&server, "/a");
    let mut a2 = join(&server, "/a");
    let mut b = join(&server, "/b");
    let mut b2 = join(&server, "/b");
    a1.send_text("from a1");
    assert_eq!(a2.recv_text(), "from a1");
    // a1's next message is a2's: its own never came back.
    marker_is_next(&mut a2, &mut [&mut a1], "from a2");
    marker_is_next(&mut b, &mut [&mut b2], "from b");
    marker_is_next(&mut b2, &mut [&mut b], "from b2");
    let stats = server.stop();
    assert_eq!(stats.messages_in, 4);
    assert_eq!(stats.messages_out, 4);
}

#[test]
fn members_leaving_and_joining_change_who_receives() {
    let _w = watchdog();
    let server = TestServer::start(rooms(true));
    let mut a = join(&server, "/r");
    let mut b = join(&server, "/r");
    let mut c = join(&server, "/r");
    let mut d = join(&server, "/r");
    say(&mut a, &mut [&mut b, &mut c, &mut d], "all four");
    // b, a middle member (the last one takes its slot), leaves cleanly.
    b.close();
    say(&mut d, &mut [&mut a, &mut c], "b left");
    // c leaves abruptly: TCP closed with no closing handshake.
    drop(c);
    say(&mut a, &mut [&mut d], "c dropped");
    // A newcomer gets what is sent after it joined, nothing before.
    let mut e = join(&server, "/r");
    say(&mut e, &mut [&mut a, &mut d], "e joined");
    say(&mut d, &mut [&mut a, &mut e], "from d");
    a.close();
    d.close();
    say(&mut e, &mut [], "alone");
    e.close();
    expect_rooms(&server, 0);
}

#[test]
fn emptied_room_can_be_rejoined_and_stays_apart_from_newer_rooms() {
    let _w = watchdog();
    let server = TestServer::start(rooms(true));
    let mut x = join(&server, "/x");
    say(&mut x, &mut [], "x once");
    x.close();
    expect_rooms(&server, 0);
    // A new room may reuse the old room's slot; the old name must not.
    let mut y = join(&server, "/y");
    let mut x2 = join(&server, "/x");
    let mut x3 = join(&server, "/x?again");
    assert_eq!(rooms_gauge(&server), 2);
    say(&mut y, &mut [], "y");
    say(&mut x2, &mut [&mut x3], "x twice");
    say(&mut y, &mut [], "y again");
    say(&mut x3, &mut [&mut x2], "x thrice");
    for c in [y, x2, x3] {
        c.close();
    }
    expect_rooms(&server, 0);
}
