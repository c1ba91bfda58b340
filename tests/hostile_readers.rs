//! Hostile clients that do not read: a ping flood that never takes its
//! pongs, a broadcast member that never takes its messages, and paused
//! members that leave. Each test asserts the server's answer *and* that
//! well-behaved clients on the same server keep being served meanwhile.
//!
//! Memory is checked exactly, not as the process's resident size: a
//! counting allocator keeps the heap bytes live on the server's thread
//! (and only there), so other tests' traffic does not count, and the bound
//! can be what the server's limits promise. The tests that measure run
//! one at a time ([`heap_lock`]).
//!
//! No test asserts a time: timeouts only bound waits. Volumes are what the
//! behaviour needs (publishing stops once the cut-off shows), so a busy
//! machine makes the tests slower, not different.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use common::*;
use wsd::{Config, Mode, SlowConsumerPolicy};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A close timeout past the watchdog, for tests that do not exercise it:
/// it cannot fire however slowly a test runs.
const NEVER: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------
// The server's heap

/// The system allocator, counting the bytes live on threads that asked to
/// be counted ([`count_this_thread`]) and their peak.
struct CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // A const-initialised Cell<bool> needs no destructor and never
    // allocates: safe to read from inside the allocator.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn note(delta: isize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        let live = LIVE.fetch_add(delta, Relaxed) + delta;
        PEAK.fetch_max(live, Relaxed);
    }
}

// SAFETY: every call goes straight to `System` with the caller's arguments;
// the counting around it touches only atomics and a const thread-local.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Counts this thread's allocations from now on (for
/// [`TestServer::start_with`]: the server's thread).
fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// Serialises the tests that count the server's heap: one counted server
/// at a time.
static HEAP: Mutex<()> = Mutex::new(());

fn heap_lock() -> MutexGuard<'static, ()> {
    HEAP.lock().unwrap_or_else(|e| e.into_inner())
}

/// The counted heap's growth from the moment it was made.
struct HeapWatch {
    base: isize,
}

impl HeapWatch {
    /// Starts watching: the peak so far is forgotten.
    fn start() -> HeapWatch {
        let base = LIVE.load(Relaxed);
        PEAK.store(base, Relaxed);
        HeapWatch { base }
    }

    /// The most the counted heap has held above the start.
    fn peak(&self) -> isize {
        PEAK.load(Relaxed) - self.base
    }

    /// The peak must stay under `bound` bytes.
    fn assert_peak_under(&self, bound: usize, what: &str) {
        let peak = self.peak();
        assert!(
            peak < bound as isize,
            "{what}: the server's heap grew by {peak} bytes, over {bound}"
        );
    }
}

// ---------------------------------------------------------------------------
// 1. A ping flood from a client that does not read

/// Ping payloads: the ping's number, then filler, 125 bytes in all (the
/// largest control payload), so pongs pile up fast.
fn ping_payload(i: u64) -> Vec<u8> {
    let mut p = i.to_be_bytes().to_vec();
    p.extend(pattern(117, i as u8));
    p
}

/// Reads `count` frames from `stream`; each must be the pong to ping `i`,
/// in order. Parses in place (a flood is far too many frames to drain a
/// buffer frame by frame). A read that times out waits again while the
/// process is at work, as [`Client`]'s reads do.
fn read_pongs(mut stream: std::net::TcpStream, count: u64) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::with_capacity(256 << 10);
    let mut chunk = vec![0u8; 128 << 10];
    let mut next = 0u64;
    let mut progress = Progress::start();
    while next < count {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("EOF after {next} of {count} pongs")),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                    && progress.made() =>
            {
                continue
            }
            Err(e) => return Err(format!("read failed after {next} of {count} pongs: {e}")),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while buf.len() - at >= 2 {
            let (b0, b1) = (buf[at], buf[at + 1]);
            let len = usize::from(b1 & 0x7F);
            if b1 & 0x80 != 0 || len > 125 {
                return Err(format!("pong {next}: bad frame header {b0:#x} {b1:#x}"));
            }
            if buf.len() - at < 2 + len {
                break;
            }
            if b0 != 0x80 | OP_PONG {
                return Err(format!("frame {next} is not a pong: {b0:#x}"));
            }
            if buf[at + 2..at + 2 + len] != ping_payload(next)[..] {
                return Err(format!("pong {next} has the wrong payload"));
            }
            at += 2 + len;
            next += 1;
        }
        buf.drain(..at);
    }
    if buf.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the last pong", buf.len()))
    }
}

#[test]
fn ping_flood_without_reading_is_paused_by_backpressure_and_gets_every_pong_in_order() {
    let _w = watchdog();
    let _h = heap_lock();
    const HIGH_WATER: usize = 64 << 10;
    let server = TestServer::start_with(
        Config {
            output_high_water: HIGH_WATER,
            output_low_water: 16 << 10,
            ..config(Mode::Echo)
        },
        count_this_thread,
    );
    let mut good = Bystander::connect(server.addr(), "/");
    let mut flooder = server.client();
    // A small, fixed receive buffer: the flooder's window fills soon, so the
    // server's pongs back up on its side.
    socket2::SockRef::from(&flooder.stream)
        .set_recv_buffer_size(32 << 10)
        .unwrap();
    // What the server may hold for the flooder: pongs up to the high
    // watermark plus what one read of pings answers, the read and a kept
    // partial frame, and its pool of spare read buffers.
    let bound = HIGH_WATER + 8 * (64 << 10) + (1 << 20);
    let heap = HeapWatch::start();
    flooder.stream.set_nonblocking(true).unwrap();
    let (mut pings, mut stalled_rounds, mut round) = (0u64, 0, 0);
    let mut out: Vec<u8> = Vec::new();
    let mut at = 0;
    // Write pings as fast as the socket takes them, never reading. Stop once
    // three rounds in a row (a bystander round trip apart) could not write
    // a byte: the server stopped reading the flooder.
    while stalled_rounds < 3 {
        round += 1;
        let mut wrote = 0;
        loop {
            if at == out.len() {
                out.clear();
                at = 0;
                for _ in 0..256 {
                    out.extend(masked_frame(true, 0, OP_PING, &ping_payload(pings), KEY));
                    pings += 1;
                }
            }
            match flooder.stream.write(&out[at..]) {
                Ok(n) => {
                    wrote += n;
                    at += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("flooder write failed after {pings} pings: {e}"),
            }
            assert!(
                pings < 2_000_000,
                "2M pings (250 MiB) taken: the server never pushed back"
            );
        }
        stalled_rounds = if wrote == 0 { stalled_rounds + 1 } else { 0 };
        good.check();
        heap.assert_peak_under(bound, "during the ping flood");
    }
    // The flooder reads now: every pong, in order, and nothing else. The
    // rest of the last batch of pings goes out meanwhile.
    flooder.stream.set_nonblocking(false).unwrap();
    let reader = {
        let stream = flooder.stream.try_clone().unwrap();
        std::thread::spawn(move || read_pongs(stream, pings))
    };
    // This write waits for the server to work through every ping queued
    // ahead of it, as fast as the reader takes the pongs: a bulk of work,
    // not one step, so the test's watchdog bounds it, not IO_TIMEOUT.
    flooder.stream.set_write_timeout(None).unwrap();
    flooder.send_raw(&out[at..]);
    flooder.stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    reader
        .join()
        .expect("pong reader panicked")
        .unwrap_or_else(|e| panic!("after {pings} pings: {e}"));
    flooder.assert_echo("flood over");
    good.check();
    heap.assert_peak_under(bound, "after the ping flood");
    eprintln!(
        "ping flood: {pings} pings, stalled after {round} rounds, server heap peak +{} bytes",
        heap.peak()
    );
    flooder.close();
    good.close();
    let stats = server.stop();
    assert_eq!(stats.protocol_errors, 0, "{stats:?}");
    assert!(stats.bytes_in > pings * 131, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 2. A broadcast receiver that never reads

/// Reads a receiver that was cut off as a slow consumer to its end: whole
/// messages in order (what the server had written before the cut), then
/// Close 1008. Returns how many messages it got.
fn read_to_cut_off(sluggard: &mut Client, size: usize) -> u32 {
    let mut got = 0u32;
    loop {
        match sluggard.recv() {
            Message::Binary(m) => {
                assert_eq!(m.len(), size);
                assert_eq!(m[..4], got.to_be_bytes(), "the cut-off reader's order");
                got += 1;
            }
            Message::Close(code, _) => {
                assert_eq!(code, Some(1008));
                return got;
            }
            other => panic!("unexpected {}", describe(&other)),
        }
    }
}

#[test]
fn broadcast_receiver_that_never_reads_is_cut_off_1008_while_others_get_everything() {
    let _w = watchdog();
    let _h = heap_lock();
    const HIGH_WATER: usize = 256 << 10;
    let server = TestServer::start_with(
        Config {
            output_high_water: HIGH_WATER,
            output_low_water: 64 << 10,
            slow_consumer: SlowConsumerPolicy::Close,
            close_timeout: NEVER,
            broadcast_to_sender: false,
            ..config(Mode::Broadcast)
        },
        count_this_thread,
    );
    // The bystander is in another room, checked with pings.
    let mut good = Bystander::connect(server.addr(), "/elsewhere");
    let mut publisher = Client::connect_path(server.addr(), "/room");
    let mut reader = Client::connect_path(server.addr(), "/room");
    let sluggard = Client::connect_path(server.addr(), "/room");
    socket2::SockRef::from(&sluggard.stream)
        .set_recv_buffer_size(16 << 10)
        .unwrap();
    let mut sluggard = Some(sluggard);
    const SIZE: usize = 64 << 10;
    // Publishing goes on until the cut-off shows in /metrics (checked
    // every 16 messages), then AFTER more: the sluggard must be cut off
    // once the kernel's buffers (a few MiB) and its high watermark are
    // full, long before MOST.
    const AFTER: u32 = 32;
    const MOST: u32 = 1024;
    // The publisher stays at most WINDOW messages ahead of what the good
    // receiver has checked, so the server never queues more than that for
    // it, however late its thread is scheduled: a slow reader, never a
    // slow consumer. The sluggard, which never reads, still is one.
    const WINDOW: u32 = 2;
    let body = pattern(SIZE, 7);
    let template = masked_frame(true, 0, OP_BINARY, &body, KEY);
    assert!(WINDOW as usize * template.len() < HIGH_WATER);
    let payload_at = template.len() - SIZE;
    // What the server may hold: the sluggard's queue up to the high
    // watermark and the message that crossed it, the messages in flight
    // to the good receiver, the publisher's partial frame, spare read
    // buffers. An unbounded queue would hold megabytes by the first check.
    let bound = HIGH_WATER + 8 * template.len() + (1 << 20);
    let heap = HeapWatch::start();
    // The well-behaved receiver reads on its own thread and checks every
    // message: all of them, in order, intact, up to the text that ends the
    // test. It acknowledges each one. It waits for the publisher, which may
    // be busy elsewhere (a bystander round trip, a metrics scrape): the
    // watchdog bounds that.
    let (ack, acked) = mpsc::channel();
    reader.stream.set_read_timeout(None).unwrap();
    let receiving = std::thread::spawn(move || {
        let mut i = 0u32;
        loop {
            match reader.recv() {
                Message::Binary(m) => {
                    assert_eq!(m.len(), SIZE, "message {i}");
                    assert_eq!(m[..4], i.to_be_bytes(), "message {i} out of order");
                    assert!(m[4..] == body[4..], "message {i} corrupted");
                }
                Message::Text(t) if t == "end" => return (reader, i),
                other => panic!("message {i}: {}", describe(&other)),
            }
            // Fails only if the publisher failed, which reports itself.
            let _ = ack.send(i);
            i += 1;
        }
    });
    let (mut checked, mut cut_off, mut end) = (0, None, None);
    let mut published = 0;
    'publish: while Some(published) != end {
        assert!(
            published < MOST,
            "{MOST} messages published and the sluggard was never cut off"
        );
        let i = published;
        while i >= checked + WINDOW {
            if acked.recv().is_err() {
                // The receiver failed: its join below says how.
                break 'publish;
            }
            checked += 1;
        }
        let mut frame = template.clone();
        for (j, b) in i.to_be_bytes().into_iter().enumerate() {
            frame[payload_at + j] = b ^ KEY[j];
        }
        publisher.send_raw(&frame);
        published += 1;
        if i % 16 == 0 {
            good.check_ping();
            heap.assert_peak_under(bound, "while publishing");
        }
        // Once the sluggard has been cut off it reads, on its own thread,
        // while publishing goes on: its Close 1008 waits behind the frame
        // that was cut short.
        if cut_off.is_none()
            && i % 16 == 0
            && metric(server.addr(), "wsd_slow_consumer_cutoffs_total") > 0.0
        {
            let mut sluggard = sluggard.take().unwrap();
            cut_off = Some(std::thread::spawn(move || {
                let got = read_to_cut_off(&mut sluggard, SIZE);
                sluggard.send_close(1008, b"");
                sluggard.expect_eof();
                got
            }));
            end = Some(published + AFTER);
        }
    }
    publisher.send_text("end");
    let (reader, received) = receiving.join().expect("the good receiver failed");
    assert_eq!(received, published);
    good.check_ping();
    let got = cut_off
        .expect("the sluggard was never cut off")
        .join()
        .expect("the cut-off reader failed");
    assert!(got < published, "the sluggard got everything");
    heap.assert_peak_under(bound, "after publishing");
    eprintln!(
        "never-reader: {published} messages published, the sluggard got {got}, \
         server heap peak +{} bytes",
        heap.peak()
    );
    reader.close();
    publisher.close();
    good.close();
    let stats = server.stop();
    assert_eq!(stats.slow_consumer_cutoffs, 1, "{stats:?}");
    assert_eq!(stats.messages_in, u64::from(published) + 1, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 3. Paused connections still notice their peer leaving

/// Polls `/metrics` until `name` satisfies `ok`, for at most `limit` (a
/// watchdog against a hang, not a speed check).
fn wait_metric(addr: std::net::SocketAddr, name: &str, ok: impl Fn(f64) -> bool, limit: Duration) {
    let until = std::time::Instant::now() + limit;
    loop {
        let now = metric(addr, name);
        if ok(now) {
            return;
        }
        assert!(std::time::Instant::now() < until, "{name} stayed at {now}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A broadcast receiver that reads nothing is paused (its output is over
/// the high watermark) and, with `--slow-consumer drop`, kept. When it then
/// half-closes, or half-closes and resets, wsd must still notice, close it
/// within the close timeout and free it, instead of holding a CLOSE-WAIT
/// socket with megabytes queued until it exits.
#[test]
fn paused_slow_consumer_that_half_closes_or_resets_is_closed_and_freed() {
    let _w = watchdog();
    let server = TestServer::start(Config {
        output_high_water: 256 << 10,
        output_low_water: 64 << 10,
        slow_consumer: SlowConsumerPolicy::Drop,
        close_timeout: Duration::from_secs(1),
        broadcast_to_sender: false,
        ..config(Mode::Broadcast)
    });
    let addr = server.addr();
    let mut good = Bystander::connect(addr, "/elsewhere");
    let mut publisher = Client::connect_path(addr, "/room");
    let half_closer = Client::connect_path(addr, "/room");
    let resetter = Client::connect_path(addr, "/room");
    for c in [&half_closer, &resetter] {
        socket2::SockRef::from(&c.stream)
            .set_recv_buffer_size(16 << 10)
            .unwrap();
    }
    // Messages are published until some were dropped for both receivers
    // (each message past that adds two drops), the kernel's buffers and
    // both high watermarks full: both paused.
    let frame = masked_frame(true, 0, OP_BINARY, &pattern(64 << 10, 5), KEY);
    let mut published = 0u32;
    loop {
        for _ in 0..16 {
            publisher.send_raw(&frame);
        }
        published += 16;
        wait_metric(
            addr,
            "wsd_messages_received_total",
            |n| n == f64::from(published),
            Duration::from_secs(30),
        );
        let before = metric(addr, "wsd_slow_consumer_drops_total");
        publisher.send_raw(&frame);
        published += 1;
        wait_metric(
            addr,
            "wsd_messages_received_total",
            |n| n == f64::from(published),
            Duration::from_secs(30),
        );
        if metric(addr, "wsd_slow_consumer_drops_total") == before + 2.0 {
            break;
        }
        assert!(published < 1024, "64 MiB published and nothing dropped");
    }
    good.check_ping();
    // Held: the bystander, the publisher, both receivers, and /metrics.
    wait_connections_open(addr, 5);

    half_closer.shutdown_write();
    wait_metric(
        addr,
        "wsd_connections_open",
        |n| n == 4.0,
        Duration::from_secs(30),
    );

    resetter.shutdown_write();
    resetter.set_linger_zero();
    drop(resetter);
    wait_metric(
        addr,
        "wsd_connections_open",
        |n| n == 3.0,
        Duration::from_secs(30),
    );

    good.check_ping();
    drop(half_closer);
    good.close();
    publisher.close();
    let stats = server.stop();
    assert_eq!(stats.abnormal_closes, 2, "{stats:?}");
}
