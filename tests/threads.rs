//! `--threads N`: several reactors in one process, each owning its
//! connections, with broadcast rooms spanning them. Four reactors run on
//! this two-core machine on purpose: more reactors than cores makes
//! hand-offs meet preempted receivers.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use wsd::net::process::Process;
use wsd::{Config, Mode, ShutdownHandle, SlowConsumerPolicy, Stats};

const REACTORS: usize = 4;

/// N reactors in this process.
struct Reactors {
    addr: SocketAddr,
    handle: ShutdownHandle,
    process: Option<Process>,
}

impl Reactors {
    fn start(cfg: Config) -> Reactors {
        let process = Process::start(cfg, REACTORS).expect("start reactors");
        Reactors {
            addr: process.local_addrs()[0],
            handle: process.shutdown_handle(),
            process: Some(process),
        }
    }

    fn client(&self, path: &str) -> Client {
        Client::connect_path(self.addr, path)
    }

    /// Stops every reactor; the process's counters.
    fn stop(mut self) -> Stats {
        self.handle.shutdown();
        self.process.take().unwrap().wait().expect("reactors")
    }
}

impl Drop for Reactors {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            self.handle.shutdown();
            let _ = p.wait();
        }
    }
}

fn broadcast(to_sender: bool) -> Config {
    Config {
        broadcast_to_sender: to_sender,
        ..config(Mode::Broadcast)
    }
}

/// Every reactor holds at least one connection (the kernel spreads them by
/// a hash of the address pair; with hundreds, none is left out).
fn assert_every_reactor_has_connections(addr: SocketAddr) {
    let until = Instant::now() + IO_TIMEOUT;
    loop {
        let body = String::from_utf8(http_get(addr, "/metrics").body).unwrap();
        let per: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with("wsd_reactor_connections{"))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect();
        assert_eq!(per.len(), REACTORS, "{body}");
        if per.iter().all(|&n| n > 0.0) {
            return;
        }
        assert!(Instant::now() < until, "a reactor holds nothing: {per:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `/metrics` until the unlabelled `name` is `value` (reactors
/// publish their counters every 100 ms); a watchdog, not a speed check.
fn wait_metric(addr: SocketAddr, name: &str, value: f64) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let now = metric(addr, name);
        if now == value {
            return;
        }
        assert!(
            Instant::now() < until,
            "{name} stayed at {now}, expected {value}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn broadcast_reaches_400_clients_on_every_reactor_once_each_in_order_and_metrics_add_up() {
    let _w = watchdog();
    let server = Reactors::start(broadcast(true));
    const SUBSCRIBERS: usize = 400;
    const MESSAGES: usize = 100;
    let mut subs: Vec<Client> = (0..SUBSCRIBERS).map(|_| server.client("/room")).collect();
    let mut publisher = server.client("/room");
    assert_every_reactor_has_connections(server.addr);
    for i in 0..MESSAGES {
        publisher.send_text(&format!("m{i}"));
    }
    for (n, s) in subs
        .iter_mut()
        .chain(std::iter::once(&mut publisher))
        .enumerate()
    {
        for i in 0..MESSAGES {
            assert_eq!(s.recv_text(), format!("m{i}"), "client {n}");
        }
    }
    // What clients saw is what the process counted.
    let delivered = ((SUBSCRIBERS + 1) * MESSAGES) as f64;
    wait_metric(server.addr, "wsd_messages_sent_total", delivered);
    wait_metric(server.addr, "wsd_messages_received_total", MESSAGES as f64);
    assert_eq!(metric(server.addr, "wsd_rooms"), 1.0);
    for s in subs {
        s.close();
    }
    publisher.close();
    let stats = server.stop();
    assert_eq!(stats.messages_out, delivered as u64, "{stats:?}");
    assert_eq!(stats.messages_in, MESSAGES as u64, "{stats:?}");
}

#[test]
fn exclude_sender_holds_across_reactors_and_each_publishers_order_is_kept() {
    let _w = watchdog();
    let server = Reactors::start(broadcast(false));
    const CLIENTS: usize = 48;
    const PER: usize = 20;
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| server.client("/chat")).collect();
    assert_every_reactor_has_connections(server.addr);
    for k in 0..PER {
        for (s, c) in clients.iter_mut().enumerate() {
            c.send_text(&format!("{s}-{k}"));
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let mut next: BTreeMap<usize, usize> = BTreeMap::new();
        for _ in 0..(CLIENTS - 1) * PER {
            let text = c.recv_text();
            let (s, k) = text.split_once('-').unwrap();
            let (s, k): (usize, usize) = (s.parse().unwrap(), k.parse().unwrap());
            assert_ne!(s, i, "client {i} got its own message");
            let want = next.entry(s).or_default();
            assert_eq!(k, *want, "client {i}: sender {s} out of order");
            *want += 1;
        }
        assert_eq!(next.len(), CLIENTS - 1);
    }
    // Nothing more: a ping's pong comes next on every connection.
    for c in &mut clients {
        c.assert_ping(b"end");
    }
    for c in clients {
        c.close();
    }
    server.stop();
}

#[test]
fn rooms_stay_apart_across_reactors_also_a_room_on_one_reactor_only() {
    let _w = watchdog();
    let server = Reactors::start(broadcast(true));
    // A room of one is on one reactor; the crowd is on all of them.
    let mut alone = server.client("/alone");
    let mut crowd: Vec<Client> = (0..64).map(|_| server.client("/crowd")).collect();
    assert_every_reactor_has_connections(server.addr);
    alone.send_text("just me");
    crowd[0].send_text("all of us");
    assert_eq!(alone.recv_text(), "just me");
    for c in &mut crowd {
        assert_eq!(c.recv_text(), "all of us");
    }
    alone.assert_ping(b"nothing else");
    for c in &mut crowd {
        c.assert_ping(b"nothing else");
    }
    wait_metric(server.addr, "wsd_rooms", 2.0);
    alone.close();
    for c in crowd {
        c.close();
    }
    wait_metric(server.addr, "wsd_rooms", 0.0);
    server.stop();
}

#[test]
fn a_slow_consumer_is_cut_off_while_every_reactor_keeps_delivering() {
    let _w = watchdog();
    let server = Reactors::start(Config {
        output_high_water: 256 << 10,
        output_low_water: 64 << 10,
        slow_consumer: SlowConsumerPolicy::Close,
        // Past the watchdog: not exercised here, so it never fires.
        close_timeout: Duration::from_secs(600),
        ..broadcast(false)
    });
    let mut readers: Vec<Client> = (0..12).map(|_| server.client("/feed")).collect();
    let mut sluggard = server.client("/feed");
    socket2::SockRef::from(&sluggard.stream)
        .set_recv_buffer_size(16 << 10)
        .unwrap();
    let mut publisher = server.client("/feed");
    assert_every_reactor_has_connections(server.addr);
    let body = pattern(64 << 10, 9);
    // Published until the cut-off shows in /metrics (checked every 16
    // messages), then 16 more: as many as the kernel's buffers and the
    // sluggard's 256 KiB high watermark take, a few MiB.
    const MOST: u32 = 512;
    let (mut published, mut end) = (0u32, None);
    while Some(published) != end {
        assert!(published < MOST, "32 MiB published and no cut-off");
        let i = published;
        let mut m = body.clone();
        m[..4].copy_from_slice(&i.to_be_bytes());
        publisher.send_binary(&m);
        // Paced by the readers: each has message i before i + 1 is sent,
        // so only the one that never reads can fall behind.
        for (n, r) in readers.iter_mut().enumerate() {
            let got = r.recv_binary();
            assert_eq!(got[..4], i.to_be_bytes(), "reader {n}");
            assert!(got[4..] == m[4..], "reader {n}: message {i} corrupted");
        }
        published += 1;
        if end.is_none()
            && published % 16 == 0
            && metric(server.addr, "wsd_slow_consumer_cutoffs_total") > 0.0
        {
            end = Some(published + 16);
        }
    }
    let mut whole = 0u32;
    loop {
        match sluggard.recv() {
            Message::Binary(m) => {
                assert_eq!(m[..4], whole.to_be_bytes());
                whole += 1;
            }
            Message::Close(code, _) => {
                assert_eq!(code, Some(1008));
                break;
            }
            other => panic!("unexpected {}", describe(&other)),
        }
    }
    assert!(whole < published, "the sluggard got everything");
    sluggard.send_close(1008, b"");
    sluggard.expect_eof();
    for r in readers {
        r.close();
    }
    publisher.close();
    let stats = server.stop();
    assert_eq!(stats.slow_consumer_cutoffs, 1, "{stats:?}");
}

#[test]
fn drain_closes_clients_on_every_reactor_and_returns_once_they_answered() {
    let _w = watchdog();
    let server = Reactors::start(Config {
        drain_timeout: Duration::from_secs(60),
        ..config(Mode::Echo)
    });
    let mut clients: Vec<Client> = (0..48).map(|_| server.client("/")).collect();
    assert_every_reactor_has_connections(server.addr);
    server.handle.drain();
    for c in &mut clients {
        match c.recv() {
            Message::Close(code, _) => assert_eq!(code, Some(1001)),
            other => panic!("expected the drain's Close 1001, got {}", describe(&other)),
        }
    }
    for mut c in clients {
        c.send_close(1001, b"");
        c.expect_eof();
    }
    // Every reactor returns by itself, well before the drain timeout.
    let mut server = server;
    let stats = server.process.take().unwrap().wait().expect("reactors");
    assert_eq!(stats.closes.get(&1001), Some(&48), "{stats:?}");
}

#[test]
fn echo_works_on_every_reactor() {
    let _w = watchdog();
    let server = Reactors::start(config(Mode::Echo));
    let mut clients: Vec<Client> = (0..48).map(|_| server.client("/")).collect();
    assert_every_reactor_has_connections(server.addr);
    for round in 0..10 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.send_text(&format!("{i}:{round}"));
        }
        for (i, c) in clients.iter_mut().enumerate() {
            assert_eq!(c.recv_text(), format!("{i}:{round}"));
        }
    }
    for c in clients {
        c.close();
    }
    let stats = server.stop();
    assert_eq!(stats.messages_out, 480, "{stats:?}");
}

#[test]
fn max_connections_is_a_process_wide_limit() {
    let _w = watchdog();
    let server = Reactors::start(Config {
        max_connections: 20,
        ..config(Mode::Echo)
    });
    let held: Vec<Client> = (0..20).map(|_| server.client("/")).collect();
    // Whichever reactor takes the next one, the process is full.
    for _ in 0..8 {
        let (_c, resp) = Client::try_upgrade(server.addr, "/", "");
        assert_eq!(resp.status, 503, "{resp:?}");
    }
    for c in held {
        c.close();
    }
    let stats = server.stop();
    assert_eq!(stats.refused_max_connections, 8, "{stats:?}");
}

#[test]
fn the_binary_runs_n_reactors_and_sigterm_drains_them_all() {
    let _w = watchdog();
    for threads in ["2", "auto"] {
        let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0", "--threads", threads]);
        if threads == "2" {
            assert!(
                wsd.banner.ends_with("(echo mode, 2 reactors)"),
                "{}",
                wsd.banner
            );
        }
        let mut clients: Vec<Client> = (0..16).map(|_| Client::connect(wsd.addrs[0])).collect();
        for c in &mut clients {
            c.assert_echo("through some reactor");
        }
        wsd.signal("TERM");
        for mut c in clients {
            match c.recv() {
                Message::Close(code, _) => assert_eq!(code, Some(1001)),
                other => panic!("expected Close 1001, got {}", describe(&other)),
            }
            c.send_close(1001, b"");
            c.expect_eof();
        }
        let status = wsd.wait_exit(IO_TIMEOUT);
        assert_eq!(status.code(), Some(0), "{status:?}");
    }
}

/// With several reactors the drain is logged once for the process, not
/// once per reactor: one "draining N connections" line with the process's
/// count (0 with no clients, where each reactor used to say "draining 0"),
/// and one "drained" line when the last reactor is done.
#[test]
fn with_threads_the_drain_is_logged_once_for_the_process() {
    let _w = watchdog();
    for n in [0usize, 12] {
        let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0", "--threads", "3"]);
        let mut clients: Vec<Client> = (0..n).map(|_| Client::connect(wsd.addrs[0])).collect();
        for c in &mut clients {
            c.assert_echo("before the drain");
        }
        wsd.signal("TERM");
        for mut c in clients {
            match c.recv() {
                Message::Close(code, _) => assert_eq!(code, Some(1001)),
                other => panic!("expected Close 1001, got {}", describe(&other)),
            }
            c.send_close(1001, b"");
            c.expect_eof();
        }
        assert_eq!(wsd.wait_exit(IO_TIMEOUT).code(), Some(0));
        let lines = wsd.stderr_to_end(IO_TIMEOUT);
        let draining: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(" connections (at most "))
            .collect();
        assert_eq!(draining.len(), 1, "{lines:#?}");
        assert!(
            draining[0].contains(&format!("draining {n} connections")),
            "{lines:#?}"
        );
        let drained = lines.iter().filter(|l| l.contains("drained")).count();
        assert_eq!(drained, 1, "{lines:#?}");
    }
}

/// A reactor's counters reach `/metrics` within a publish interval of its
/// last change even when nothing wakes it afterwards: the publish is one
/// of its deadlines. Scrapes go to the metrics address, which only the
/// first reactor serves, so they never wake the second; before, an idle
/// reactor's last burst waited for its next wake-up (the ping interval,
/// here none at all).
#[test]
fn metrics_catch_up_with_an_idle_reactors_last_burst() {
    let _w = watchdog();
    let cfg = Config {
        metrics_listen: vec!["127.0.0.1:0".parse().unwrap()],
        ..config(Mode::Echo)
    };
    let process = Process::start(cfg, 2).expect("start reactors");
    let (addr, metrics) = (process.local_addrs()[0], process.metrics_addrs()[0]);
    let handle = process.shutdown_handle();
    let mut clients: Vec<Client> = (0..20).map(|_| Client::connect(addr)).collect();
    for c in &mut clients {
        c.assert_echo("once");
    }
    let want = [20.0; 3];
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let got = [
            "wsd_handshakes_total",
            "wsd_messages_received_total",
            "wsd_messages_sent_total",
        ]
        .map(|name| metric(metrics, name));
        if got == want {
            break;
        }
        assert!(Instant::now() < until, "metrics stuck at {got:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(clients);
    handle.shutdown();
    process.wait().expect("reactors");
}

#[test]
fn the_binary_refuses_a_thread_count_out_of_range() {
    let _w = watchdog();
    for bad in ["0", "65", "many"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsd"))
            .args(["--listen", "127.0.0.1:0", "--threads", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--threads {bad}");
    }
}
