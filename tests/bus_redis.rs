//! The Redis bus against a real `redis-server`: two `RedisBus` nodes, each
//! with its own mio `Poll` driven the way the reactor drives it, in one
//! test thread. Redis is started by the test on a free loopback port and
//! killed, frozen or restarted by PID; a fake server plays a Redis that
//! speaks garbage.

mod common;
#[path = "common/redis.rs"]
mod redis;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use wsd::bus::{Bus, DropReason, RedisBus, RedisConfig, RedisUrl};
use wsd::proto::MessageKind;

use common::watchdog;
use redis::{free_port, RedisServer};

/// How long a condition may take to come true before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

type Got = (String, MessageKind, Vec<u8>);

/// One node: a bus in its own Poll, and what it delivered.
struct Node {
    poll: Poll,
    events: Events,
    bus: RedisBus,
    got: Vec<Got>,
    /// Calls of `publish`, for the accounting check.
    publishes: u64,
}

fn config(url: &str) -> RedisConfig {
    let url = RedisUrl::parse(url).unwrap();
    let addrs = url.resolve().unwrap();
    RedisConfig {
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        ..RedisConfig::with_addrs(url, addrs)
    }
}

impl Node {
    fn new(cfg: RedisConfig) -> Node {
        let poll = Poll::new().unwrap();
        let mut bus = RedisBus::new(cfg, 16 << 20, Token(0), Token(1)).unwrap();
        bus.start(poll.registry(), Instant::now());
        Node {
            poll,
            events: Events::with_capacity(64),
            bus,
            got: Vec::new(),
            publishes: 0,
        }
    }

    fn on(url: &str) -> Node {
        Node::new(config(url))
    }

    /// One reactor turn, waiting at most `wait` for events.
    fn turn(&mut self, wait: Duration) {
        let now = Instant::now();
        let timeout = self
            .bus
            .next_deadline()
            .map_or(wait, |d| d.saturating_duration_since(now).min(wait));
        self.poll.poll(&mut self.events, Some(timeout)).unwrap();
        let now = Instant::now();
        let registry = self.poll.registry();
        for ev in self.events.iter() {
            assert!(self.bus.owns(ev.token()), "unknown token {:?}", ev.token());
            self.bus.on_event(registry, ev, now);
        }
        let got = &mut self.got;
        self.bus.take_inbound(&mut |d| {
            got.push((d.room.to_string(), d.kind, d.payload.to_vec()));
        });
        self.bus.flush(registry, now);
        if self.bus.next_deadline().is_some_and(|d| d <= now) {
            self.bus.on_timer(registry, now);
        }
    }

    fn publish(&mut self, room: &str, kind: MessageKind, payload: &[u8]) {
        self.publishes += 1;
        self.bus.publish(room, kind, payload, 0);
    }

    /// Publish calls not accounted for: neither acknowledged nor dropped.
    fn in_flight(&self) -> u64 {
        let s = self.bus.stats();
        let dropped = [
            DropReason::Down,
            DropReason::QueueFull,
            DropReason::TooLarge,
            DropReason::Reset,
        ]
        .map(|r| s.dropped(r))
        .iter()
        .sum::<u64>();
        self.publishes - s.published - dropped
    }

    fn texts(&self) -> Vec<String> {
        self.got
            .iter()
            .map(|(room, _, p)| format!("{room} {}", String::from_utf8_lossy(p)))
            .collect()
    }
}

/// Turns every node until `done` holds; fails after [`PATIENCE`].
fn run_until(nodes: &mut [&mut Node], what: &str, mut done: impl FnMut(&[&mut Node]) -> bool) {
    let until = Instant::now() + PATIENCE;
    while !done(nodes) {
        assert!(Instant::now() < until, "gave up waiting for: {what}");
        for n in nodes.iter_mut() {
            n.turn(Duration::from_millis(5));
        }
    }
}

/// Turns every node for a while, for things that must not happen.
fn run_for(nodes: &mut [&mut Node], d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        for n in nodes.iter_mut() {
            n.turn(Duration::from_millis(5));
        }
    }
}

fn up_with(subs: u64) -> impl FnMut(&[&mut Node]) -> bool {
    move |ns| {
        ns.iter()
            .all(|n| n.bus.is_up() && n.bus.stats().subscriptions == subs)
    }
}

/// Every publish call acknowledged by Redis or counted as dropped.
fn all_acknowledged(ns: &[&mut Node]) -> bool {
    ns.iter().all(|n| n.in_flight() == 0)
}

// ---------------------------------------------------------------------------
// Log capture: the bus logs through `log`; lines are kept per test thread.

struct Capture;

static LINES: Mutex<Vec<(String, log::Level, String)>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        LINES
            .lock()
            .unwrap()
            .push((thread, r.level(), r.args().to_string()));
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static LOGGER: Capture = Capture;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
}

/// This test thread's log lines at `level` that contain `text`.
fn logged(level: log::Level, text: &str) -> usize {
    let me = std::thread::current().name().unwrap_or("").to_string();
    LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, l, m)| *t == me && *l == level && m.contains(text))
        .count()
}

// ---------------------------------------------------------------------------

#[test]
fn a_message_reaches_the_other_node_once_in_order_and_not_its_sender() {
    let _w = watchdog();
    let server = RedisServer::start();
    let (mut a, mut b) = (Node::on(&server.url()), Node::on(&server.url()));
    a.bus.subscribe("/chat");
    b.bus.subscribe("/chat");
    run_until(&mut [&mut a, &mut b], "both up and subscribed", up_with(1));

    // A thousand messages, a hundred a turn (one write each turn).
    let mut want = Vec::new();
    for batch in 0..10 {
        for i in 0..100 {
            let n = batch * 100 + i;
            let kind = if n % 3 == 0 {
                MessageKind::Binary
            } else {
                MessageKind::Text
            };
            let payload = format!("m{n}").into_bytes();
            a.publish("/chat", kind, &payload);
            want.push(("/chat".to_string(), kind, payload));
        }
        a.turn(Duration::ZERO);
    }
    run_until(&mut [&mut a, &mut b], "B got all 1000", |ns| {
        ns[1].got.len() >= 1000
    });
    // A's own came back to it too, and were skipped: B's next message,
    // published after all of A's reached Redis, is the first A delivers.
    b.publish("/chat", MessageKind::Text, b"from-b");
    run_until(&mut [&mut a, &mut b], "A got B's", |ns| {
        !ns[0].got.is_empty()
    });
    a.publish("/chat", MessageKind::Text, b"end");
    run_until(&mut [&mut a, &mut b], "B got the end", |ns| {
        ns[1].got.len() > 1000
    });

    run_until(&mut [&mut a, &mut b], "all acknowledged", all_acknowledged);
    want.push(("/chat".into(), MessageKind::Text, b"end".to_vec()));
    assert_eq!(
        b.got, want,
        "B: each of A's once, in order, and not its own"
    );
    assert_eq!(a.texts(), ["/chat from-b"]);
    assert_eq!((a.bus.stats().published, a.bus.stats().received), (1001, 1));
    assert_eq!((b.bus.stats().published, b.bus.stats().received), (1, 1001));
    assert_eq!(
        a.bus.stats().dropped_total() + b.bus.stats().dropped_total(),
        0
    );
    assert_eq!(a.bus.stats().queued_bytes, 0);
}

#[test]
fn unsubscribing_stops_delivery_at_redis() {
    let _w = watchdog();
    let server = RedisServer::start();
    let (mut a, mut b) = (Node::on(&server.url()), Node::on(&server.url()));
    b.bus.subscribe("/a");
    b.bus.subscribe("/b");
    // Joined and left in one turn: nothing is sent for it.
    b.bus.subscribe("/c");
    b.bus.unsubscribe("/c");
    run_until(&mut [&mut a, &mut b], "up", |ns| {
        ns[0].bus.is_up() && ns[1].bus.stats().subscriptions == 2
    });
    a.publish("/a", MessageKind::Text, b"1");
    run_until(&mut [&mut a, &mut b], "B got 1", |ns| ns[1].got.len() == 1);

    b.bus.unsubscribe("/a");
    b.bus.unsubscribe("/a");
    run_until(&mut [&mut a, &mut b], "Redis unsubscribed /a", |ns| {
        ns[1].bus.stats().subscriptions == 1
    });
    a.publish("/a", MessageKind::Text, b"2");
    a.publish("/b", MessageKind::Text, b"3");
    run_until(&mut [&mut a, &mut b], "B got 3", |ns| ns[1].got.len() == 2);
    run_until(&mut [&mut a, &mut b], "all acknowledged", all_acknowledged);
    assert_eq!(b.texts(), ["/a 1", "/b 3"]);
    // Redis stopped sending /a; the bus did not just filter it out.
    assert_eq!(b.bus.stats().dropped(DropReason::Unsubscribed), 0);
    assert_eq!(a.bus.stats().published, 3);
}

#[test]
fn redis_absent_at_start_is_retried_and_logged_once() {
    let _w = watchdog();
    capture_logs();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let (mut a, mut b) = (Node::on(&url), Node::on(&url));
    b.bus.subscribe("/r");
    run_for(&mut [&mut a, &mut b], Duration::from_millis(600));
    assert!(!a.bus.is_up() && !b.bus.is_up());
    for _ in 0..5 {
        a.publish("/r", MessageKind::Text, b"lost");
    }
    assert_eq!(a.bus.stats().dropped(DropReason::Down), 5);
    // Attempts went on (debug lines), but one warning per node.
    assert!(logged(log::Level::Debug, "redis bus") >= 4);
    assert_eq!(logged(log::Level::Warn, "redis bus"), 2);

    let _server = RedisServer::start_on(port, &[]);
    run_until(&mut [&mut a, &mut b], "up and subscribed", |ns| {
        ns[0].bus.is_up() && ns[1].bus.is_up() && ns[1].bus.stats().subscriptions == 1
    });
    a.publish("/r", MessageKind::Text, b"found");
    run_until(&mut [&mut a, &mut b], "B got it", |ns| {
        !ns[1].got.is_empty()
    });
    assert_eq!(b.texts(), ["/r found"]);
    assert_eq!(logged(log::Level::Info, "connected to"), 2);
    // Coming up the first time is not a reconnect.
    assert_eq!(a.bus.stats().reconnects + b.bus.stats().reconnects, 0);
}

#[test]
fn redis_restarted_mid_stream_comes_back_with_every_room() {
    let _w = watchdog();
    let mut server = RedisServer::start();
    let (mut a, mut b) = (Node::on(&server.url()), Node::on(&server.url()));
    // More rooms than one SUBSCRIBE carries.
    let rooms: Vec<String> = (0..300).map(|i| format!("/r{i}")).collect();
    for r in &rooms {
        b.bus.subscribe(r);
    }
    run_until(&mut [&mut a, &mut b], "B subscribed to 300", |ns| {
        ns[0].bus.is_up() && ns[1].bus.stats().subscriptions == 300
    });

    // Message n goes to room n % 300, its payload n.
    let publish_some = |a: &mut Node, seq: &mut u32, n: u32| {
        for _ in 0..n {
            let room = &rooms[*seq as usize % rooms.len()];
            a.publish(room, MessageKind::Binary, &seq.to_be_bytes());
            *seq += 1;
        }
    };
    let mut seq = 0u32;
    for _ in 0..20 {
        publish_some(&mut a, &mut seq, 10);
        a.turn(Duration::ZERO);
        b.turn(Duration::ZERO);
    }
    server.kill();
    // Publishing on while Redis is gone: dropped, counted.
    for _ in 0..20 {
        publish_some(&mut a, &mut seq, 10);
        run_for(&mut [&mut a, &mut b], Duration::from_millis(10));
    }
    assert!(!a.bus.is_up() && !b.bus.is_up());
    server.restart();
    run_until(&mut [&mut a, &mut b], "back with 300 rooms", |ns| {
        ns[0].bus.is_up() && ns[1].bus.is_up() && ns[1].bus.stats().subscriptions == 300
    });
    let after = seq;
    publish_some(&mut a, &mut seq, 300);
    let last = seq - 1;
    run_until(&mut [&mut a, &mut b], "B got the last", |ns| {
        ns[1].got.last().is_some_and(|g| g.2 == last.to_be_bytes())
    });

    run_until(&mut [&mut a, &mut b], "all acknowledged", all_acknowledged);
    let seqs: Vec<u32> = b
        .got
        .iter()
        .map(|(room, _, p)| {
            let n = u32::from_be_bytes(p[..4].try_into().unwrap());
            assert_eq!(
                *room,
                rooms[n as usize % 300],
                "message {n} in the wrong room"
            );
            n
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, once each");
    // Everything published once both were back arrived, in every room.
    assert!(seqs.ends_with(&(after..seq).collect::<Vec<_>>()));
    let s = a.bus.stats();
    assert!(s.dropped(DropReason::Down) + s.dropped(DropReason::Reset) > 0);
    assert_eq!(b.bus.stats().received, seqs.len() as u64);
    assert!(s.reconnects >= 2 && b.bus.stats().reconnects >= 2);
}

#[test]
fn a_frozen_redis_bounds_the_publish_queue_and_counts_drops() {
    let _w = watchdog();
    // No output limit for subscribers: the backlog released at the end
    // must reach B whole.
    let server = RedisServer::start_on(
        free_port(),
        &["--client-output-buffer-limit", "pubsub 0 0 0"],
    );
    let max_queue = 1 << 20;
    let mut a = Node::new(RedisConfig {
        max_queue,
        ..config(&server.url())
    });
    let mut b = Node::on(&server.url());
    b.bus.subscribe("/big");
    run_until(&mut [&mut a, &mut b], "up", |ns| {
        ns[0].bus.is_up() && ns[1].bus.stats().subscriptions == 1
    });

    server.pause();
    let payload = vec![7u8; 64 << 10];
    let bound = (max_queue + payload.len() + 200) as u64;
    let mut turns = 0;
    while a.bus.stats().dropped(DropReason::QueueFull) < 100 {
        turns += 1;
        assert!(
            turns < 2000,
            "no drops after {turns} turns: {:?}",
            a.bus.stats()
        );
        for _ in 0..16 {
            a.publish("/big", MessageKind::Binary, &payload);
        }
        a.turn(Duration::from_millis(1));
        assert!(a.bus.stats().queued_bytes <= bound, "{:?}", a.bus.stats());
    }
    assert!(a.bus.is_up(), "a slow Redis is not a down one");
    server.resume();
    run_until(
        &mut [&mut a, &mut b],
        "the backlog acknowledged and delivered",
        |ns| ns[0].in_flight() == 0 && ns[1].bus.stats().received == ns[0].bus.stats().published,
    );
    assert!(a.bus.stats().published > 0);
    assert!(b.got.iter().all(|g| g.2 == payload));
}

#[test]
fn a_16_mib_message_crosses_and_a_larger_one_is_dropped() {
    let _w = watchdog();
    let server = RedisServer::start();
    let (mut a, mut b) = (Node::on(&server.url()), Node::on(&server.url()));
    b.bus.subscribe("/big");
    run_until(&mut [&mut a, &mut b], "up", |ns| {
        ns[0].bus.is_up() && ns[1].bus.stats().subscriptions == 1
    });
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    a.publish("/big", MessageKind::Binary, &big);
    // One message over the limit, dropped; then (the queue empty again,
    // since one 16 MiB message is over its 8 MiB bound) one more.
    a.publish("/big", MessageKind::Binary, &vec![0u8; (16 << 20) + 1]);
    run_until(&mut [&mut a, &mut b], "the big one written", |ns| {
        ns[0].bus.stats().queued_bytes == 0
    });
    a.publish("/big", MessageKind::Text, b"after");
    run_until(&mut [&mut a, &mut b], "B got both", |ns| {
        ns[1].got.len() == 2
    });
    assert!(b.got[0].2 == big, "the 16 MiB payload arrived intact");
    assert_eq!(b.got[1].2, b"after");
    assert_eq!(a.bus.stats().dropped(DropReason::TooLarge), 1);
}

#[test]
fn auth_and_select_log_in_and_a_wrong_password_stays_down() {
    let _w = watchdog();
    let server = RedisServer::start_on(
        free_port(),
        &[
            "--requirepass",
            "s3cret",
            "--user",
            "app",
            "on",
            ">p@ss",
            "~*",
            "&*",
            "+@all",
        ],
    );
    let port = server.port();
    let mut a = Node::on(&format!("redis://:s3cret@127.0.0.1:{port}/2"));
    let mut b = Node::on(&format!("redis://app:p%40ss@127.0.0.1:{port}/5"));
    let mut wrong = Node::on(&format!("redis://:nope@127.0.0.1:{port}"));
    b.bus.subscribe("/x");
    run_until(&mut [&mut a, &mut b], "logged in", |ns| {
        ns[0].bus.is_up() && ns[1].bus.stats().subscriptions == 1
    });
    a.publish("/x", MessageKind::Text, b"hi");
    run_until(&mut [&mut a, &mut b], "B got it", |ns| {
        !ns[1].got.is_empty()
    });
    run_for(&mut [&mut wrong], Duration::from_millis(300));
    assert!(!wrong.bus.is_up());
    assert_eq!(wrong.bus.stats().reconnects, 0);
}

// ---------------------------------------------------------------------------
// A fake Redis that says the wrong thing.

struct Fake {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
}

impl Fake {
    /// Answers the n-th connection with `replies[n % len]` once its first
    /// bytes arrive, then holds it until the client goes. Returns what
    /// each connection sent.
    fn start(replies: Vec<Vec<u8>>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + PATIENCE;
            let mut heard = Vec::new();
            let mut held = Vec::new();
            while !halt.load(Ordering::Acquire) && Instant::now() < until {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let n = count.fetch_add(1, Ordering::AcqRel);
                        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = vec![0u8; 4096];
                        let got = s.read(&mut buf).unwrap_or(0);
                        heard.push(buf[..got].to_vec());
                        let _ = s.write_all(&replies[n % replies.len()]);
                        held.push(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            heard
        });
        Fake {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().unwrap()
    }
}

#[test]
fn a_server_speaking_garbage_is_reset_and_retried() {
    let _w = watchdog();
    capture_logs();
    let replies: Vec<Vec<u8>> = vec![
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        b"-ERR unknown command\r\n".to_vec(),
        // After logging in, a gigabyte announced: refused at the header,
        // nothing allocated (a bus that waited for it would hang here:
        // a Ready connection has no deadline).
        b"+OK\r\n$1073741824\r\n".to_vec(),
        b"*3\r\n$7\r\nmessage\r\n*1\r\n".to_vec(),
        b"+OK\r\n:1\r\n".to_vec(),
        b"+OK\r\n+PONG\r\n".to_vec(),
    ];
    let fake = Fake::start(replies);
    let mut a = Node::on(&format!("redis://{}", fake.addr));
    a.bus.subscribe("/g");
    let accepted = fake.accepted.clone();
    run_until(&mut [&mut a], "a dozen connections", |_| {
        accepted.load(Ordering::Acquire) >= 12
    });
    a.publish("/g", MessageKind::Text, b"nowhere");
    let heard = fake.stop();
    assert!(!a.bus.is_up());
    assert_eq!(a.bus.stats().published + a.bus.stats().received, 0);
    // One warning an outage: a connection that logged in (+OK) and then
    // misbehaved may have let the bus come up in between.
    let ups = logged(log::Level::Info, "redis bus: connected");
    assert!(logged(log::Level::Warn, "redis bus") <= 1 + ups);
    // Each connection logged in first: CLIENT SETNAME, nothing before it.
    let node = a.bus.node_id().to_string();
    let names: HashMap<bool, usize> = heard.iter().fold(HashMap::new(), |mut m, h| {
        let text = String::from_utf8_lossy(h);
        assert!(
            text.starts_with("*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n"),
            "{text:?}"
        );
        *m.entry(text.contains(&format!("wsd-{node}-sub")))
            .or_default() += 1;
        m
    });
    assert!(names.len() == 2, "both connections kept trying: {names:?}");
}
