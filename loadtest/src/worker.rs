//! One thread's event loop, shared by every mode: connect its share of the
//! connections, wait for the other threads at the start barrier, run the
//! mode's [`Workload`] through warm-up, the window and the drain, then close.
//!
//! ```text
//!  Connecting ─all threads ready─▶ Running ─window end─▶ Draining ─drained or grace─▶ Closing ─▶ done
//! ```
//!
//! While the load runs a workload may also end connections itself, cleanly
//! or abruptly ([`Request`]), and have their slots opened again
//! ([`Workload::reopen`]), through the same non-blocking connect and
//! connect timeout as the first connections.

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use wsd::proto::{Limits, MessageKind};

use crate::client::{Conn, Failure, Phase, ReadEnd};
use crate::stats::{ErrorKind, Stats};
use crate::target::Target;
use crate::timer::Timer;
use crate::upgrade::Upgrade;
use crate::window::{Timing, Window, CLOSE_WAIT};

/// The timer's token; connections use their index.
const TIMER: Token = Token(usize::MAX);

/// Connects in progress at once per thread, so a burst of SYNs does not
/// overflow the server's backlog.
const MAX_PENDING: usize = 512;

/// What all threads of a run share: the clock's epoch, the start barrier,
/// and running totals for the progress line.
#[derive(Debug)]
pub struct Shared {
    /// Time zero for the stamps in payloads.
    pub epoch: Instant,
    threads: usize,
    ready: AtomicUsize,
    start: OnceLock<Instant>,
    /// Messages sent so far.
    pub sent: AtomicU64,
    /// Messages received so far.
    pub received: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Broadcast: messages published so far.
    pub published: AtomicU64,
    /// Broadcast: threads whose publishers have stopped.
    pub publishers_done: AtomicUsize,
}

impl Shared {
    /// State for a run on `threads` threads.
    pub fn new(threads: usize) -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            threads,
            ready: AtomicUsize::new(0),
            start: OnceLock::new(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            open: AtomicU64::new(0),
            published: AtomicU64::new(0),
            publishers_done: AtomicUsize::new(0),
        })
    }

    /// Counts a thread as done connecting (or as never going to be).
    pub fn arrive(&self) {
        self.ready.fetch_add(1, Ordering::AcqRel);
    }

    /// The start of the load, once every thread has connected.
    pub fn start(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    /// How many threads there are.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Nanoseconds since the epoch.
    pub fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

/// What a mode's callbacks get: the time, the schedule, the counters, a
/// list to put connections on whose output needs flushing, and a list of
/// requests to end connections.
pub struct Cx<'a> {
    /// Now, in ns since the epoch.
    pub now: u64,
    /// The schedule.
    pub win: &'a Window,
    /// This thread's counters.
    pub stats: &'a mut Stats,
    /// Connections written to outside their own events.
    pub dirty: &'a mut Vec<usize>,
    /// Connections the workload wants ended; honoured once the callback
    /// returns, after the connection's output is flushed.
    pub requests: &'a mut Vec<Request>,
}

/// A workload's request to end an open connection during the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Close 1000, then wait (bounded) for the server's Close and its end
    /// of the stream.
    Close(usize),
    /// Drop the TCP connection without a Close, with a FIN or, with
    /// `reset`, an RST. Whatever is queued (say half a frame) is written
    /// first, as far as the socket takes it.
    Abort {
        /// The connection.
        idx: usize,
        /// Reset instead of FIN.
        reset: bool,
    },
}

/// How a connection ended during the load, for [`Workload::reopen`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Our Close was answered by the server's Close and its end of stream.
    Closed,
    /// Dropped abruptly at the workload's request.
    Aborted,
    /// Failed after opening; the error is counted and
    /// [`Workload::on_lost`] was called.
    Lost,
    /// Never opened: the connect or the handshake failed (counted).
    Unopened,
}

impl Cx<'_> {
    /// Counts a sent message.
    pub fn sent(&mut self) {
        let (sec, m) = (
            self.win.row(self.now),
            self.win.sending(self.now) && self.now >= self.win.measure_start,
        );
        self.stats.on_sent(sec, m);
    }

    /// Counts a received message with its latency.
    pub fn received(&mut self, bytes: usize, lat: Option<u64>) {
        let (sec, m) = (self.win.row(self.now), self.win.measuring(self.now));
        self.stats.on_received(sec, m, bytes, lat);
    }

    /// Counts an error.
    pub fn error(&mut self, kind: ErrorKind, n: u64, detail: impl FnOnce() -> String) {
        let sec = self.win.row(self.now);
        self.stats.on_error(sec, kind, n, detail);
    }
}

/// A mode: what to send and how to check what comes back. Indices are the
/// thread's connection indices, `0..n`.
pub trait Workload {
    /// The load starts: every connection that will open is open.
    fn on_start(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx);
    /// A complete message arrived on connection `idx`; `out` is its output.
    fn on_message(
        &mut self,
        idx: usize,
        kind: MessageKind,
        payload: &[u8],
        out: &mut Vec<u8>,
        cx: &mut Cx,
    );
    /// Timed sends; returns when it next wants to be called (ns since epoch).
    fn on_tick(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) -> Option<u64>;
    /// Connection `idx` ended before the run did.
    fn on_lost(&mut self, idx: usize, cx: &mut Cx);
    /// Whether nothing is outstanding any more, after the window.
    fn drained(&self) -> bool;
    /// The drain is over: count what is still outstanding.
    fn finish(&mut self, cx: &mut Cx);
    /// Connection `idx` completed its handshake after the load started
    /// (only slots that [`Workload::reopen`] asked for); `out` is its output.
    fn on_open(&mut self, _idx: usize, _out: &mut Vec<u8>, _cx: &mut Cx) {}
    /// Connection `idx` ended while the load ran (not in the final close):
    /// returns whether to open a new connection in its place. By default
    /// a slot stays empty.
    fn reopen(&mut self, _idx: usize, _how: Ended, _cx: &mut Cx) -> bool {
        false
    }
}

/// One connection to open.
#[derive(Clone, Copy, Debug)]
pub struct ConnSpec {
    /// Which of the run's targets.
    pub target: usize,
    /// The source address to bind, if any.
    pub source: Option<IpAddr>,
    /// Seed for masking keys and the handshake nonce.
    pub seed: u32,
}

/// Where the loop stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Connecting,
    Waiting,
    Running,
    Draining,
    Closing,
}

/// One thread's loop.
pub struct Worker<W> {
    shared: Arc<Shared>,
    /// The servers; each connection's spec says which.
    targets: Arc<[Target]>,
    /// What every upgrade request adds, and expects back.
    upgrade: Arc<Upgrade>,
    limits: Limits,
    timing: Timing,
    specs: Vec<ConnSpec>,
    conns: Vec<Option<Conn>>,
    work: W,
    stats: Stats,
    poll: Poll,
    timer: Timer,
    /// When the timer is set to fire, if it is.
    armed: Option<u64>,
    dirty: Vec<usize>,
    requests: Vec<Request>,
    /// Slots to connect again, each at most once.
    reopen: VecDeque<usize>,
    /// Connections opened again so far, to vary their seeds.
    reopened: u32,
    /// Whether the load runs (Running and Draining): connections that end
    /// are reported to [`Workload::reopen`], and failures while closing count.
    load: bool,
    /// Whether the workload ever ended a connection itself, so closes
    /// need their timeouts watched.
    churned: bool,
    next_spec: usize,
    pending: usize,
    live: usize,
    published: (u64, u64, u64),
    /// Whether this thread has passed the start barrier's count.
    arrived: bool,
}

impl<W> Drop for Worker<W> {
    /// A thread that fails before the barrier must not leave the others
    /// waiting for it.
    fn drop(&mut self) {
        if !self.arrived {
            self.shared.arrive();
        }
    }
}

impl<W: Workload> Worker<W> {
    /// A thread's loop for `specs` connections to `targets`.
    pub fn new(
        shared: Arc<Shared>,
        targets: Arc<[Target]>,
        upgrade: Arc<Upgrade>,
        limits: Limits,
        timing: Timing,
        specs: Vec<ConnSpec>,
        work: W,
    ) -> io::Result<Worker<W>> {
        let n = specs.len();
        let poll = Poll::new()?;
        let timer = Timer::new(poll.registry(), TIMER)?;
        Ok(Worker {
            shared,
            targets,
            upgrade,
            limits,
            timing,
            specs,
            conns: (0..n).map(|_| None).collect(),
            work,
            stats: Stats::new(timing.rows()),
            poll,
            timer,
            armed: None,
            dirty: Vec::new(),
            requests: Vec::new(),
            reopen: VecDeque::with_capacity(n),
            reopened: 0,
            load: false,
            churned: false,
            next_spec: 0,
            pending: 0,
            live: 0,
            published: (0, 0, 0),
            arrived: false,
        })
    }

    /// Runs to the end and returns the counts.
    pub fn run(mut self) -> io::Result<Stats> {
        let mut events = Events::with_capacity(1024);
        let mut stage = Stage::Connecting;
        let mut win = Window::new(u64::MAX / 4, &self.timing);
        let mut close_deadline = None;
        let mut next_tick: Option<u64> = None;
        let mut last_timeout_scan = Instant::now();
        loop {
            let now = Instant::now();
            let now_ns = self.shared.ns(now);
            match stage {
                Stage::Connecting => {
                    self.start_connects();
                    self.scan_timeouts(now, &win, &mut last_timeout_scan);
                    if self.next_spec == self.specs.len() && self.pending == 0 {
                        self.shared.arrive();
                        self.arrived = true;
                        stage = Stage::Waiting;
                        continue;
                    }
                }
                Stage::Waiting => {
                    if self.shared.ready.load(Ordering::Acquire) >= self.shared.threads {
                        let start = *self.shared.start.get_or_init(Instant::now);
                        win = Window::new(self.shared.ns(start), &self.timing);
                        stage = Stage::Running;
                        self.load = true;
                        let now_ns = now_ns.max(win.start);
                        let mut cx = cx(
                            &win,
                            now_ns,
                            &mut self.stats,
                            &mut self.dirty,
                            &mut self.requests,
                        );
                        self.work.on_start(&mut self.conns, &mut cx);
                        next_tick = Some(win.start);
                        self.flush_dirty(&win);
                        self.handle_requests(&win);
                        continue;
                    }
                }
                Stage::Running => {
                    if now_ns >= win.measure_end || self.idle() {
                        stage = Stage::Draining;
                        self.reopen.clear();
                        continue;
                    }
                    self.start_reopens(&win);
                    self.scan_timeouts(now, &win, &mut last_timeout_scan);
                }
                Stage::Draining => {
                    if self.work.drained() || now_ns >= win.drain_end || self.idle() {
                        self.load = false;
                        let mut cx = cx(
                            &win,
                            now_ns,
                            &mut self.stats,
                            &mut self.dirty,
                            &mut self.requests,
                        );
                        self.work.finish(&mut cx);
                        for c in self.conns.iter_mut().flatten() {
                            c.close();
                            let _ = c.flush();
                        }
                        close_deadline = Some(now + CLOSE_WAIT);
                        stage = Stage::Closing;
                        continue;
                    }
                    self.scan_timeouts(now, &win, &mut last_timeout_scan);
                }
                Stage::Closing => {
                    if self.live == 0 || close_deadline.is_some_and(|d| now >= d) {
                        break;
                    }
                }
            }
            if matches!(stage, Stage::Running | Stage::Draining)
                && next_tick.is_some_and(|t| t <= now_ns)
            {
                let mut cx = cx(
                    &win,
                    now_ns,
                    &mut self.stats,
                    &mut self.dirty,
                    &mut self.requests,
                );
                next_tick = self.work.on_tick(&mut self.conns, &mut cx);
                self.flush_dirty(&win);
                self.handle_requests(&win);
            }
            self.publish_progress();
            let timeout = self.poll_timeout(stage, now_ns, &win, next_tick);
            if let Some(t) = next_tick.filter(|_| matches!(stage, Stage::Running | Stage::Draining))
            {
                if self.armed != Some(t) && t > now_ns {
                    self.timer.arm(Duration::from_nanos(t - now_ns))?;
                    self.armed = Some(t);
                }
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now_ns = self.shared.ns(Instant::now());
            for ev in events.iter() {
                if ev.token() == TIMER {
                    self.timer.clear();
                    self.armed = None;
                    continue;
                }
                let Token(idx) = ev.token();
                let closed = ev.is_read_closed() || ev.is_write_closed() || ev.is_error();
                self.on_event(
                    idx,
                    ev.is_readable() || closed,
                    ev.is_writable() || closed,
                    now_ns,
                    &win,
                );
                self.handle_requests(&win);
            }
        }
        for c in self.conns.iter_mut().flatten() {
            if c.phase() != Phase::Done {
                c.finish(self.poll.registry());
            }
        }
        self.publish_progress();
        Ok(std::mem::replace(&mut self.stats, Stats::new(0)))
    }

    fn poll_timeout(&self, stage: Stage, now: u64, win: &Window, tick: Option<u64>) -> Duration {
        let cap = match stage {
            Stage::Waiting => 1_000_000,
            _ => 50_000_000,
        };
        let mut until = now + cap;
        if matches!(stage, Stage::Running | Stage::Draining) {
            if let Some(t) = tick {
                until = until.min(t);
            }
            let boundary = if stage == Stage::Running {
                win.measure_end
            } else {
                win.drain_end
            };
            until = until.min(boundary);
        }
        Duration::from_nanos(until.saturating_sub(now))
    }

    /// Whether nothing is open, connecting or about to connect again.
    fn idle(&self) -> bool {
        self.live == 0 && self.pending == 0 && self.reopen.is_empty()
    }

    fn start_connects(&mut self) {
        while self.pending < MAX_PENDING && self.next_spec < self.specs.len() {
            let idx = self.next_spec;
            self.next_spec += 1;
            let seed = self.specs[idx].seed;
            if let Err(e) = self.connect(idx, seed) {
                self.stats.failed += 1;
                let (kind, detail) = crate::client::io_failure(&e);
                self.stats.on_error(None, kind, 1, || detail);
            }
        }
    }

    /// Connects the slots queued by [`Workload::reopen`], each with a
    /// fresh seed.
    fn start_reopens(&mut self, win: &Window) {
        while self.pending < MAX_PENDING {
            let Some(idx) = self.reopen.pop_front() else {
                break;
            };
            self.reopened = self.reopened.wrapping_add(1);
            let seed = self.specs[idx].seed ^ self.reopened.wrapping_mul(0x85EB_CA6B);
            if let Err(e) = self.connect(idx, seed) {
                self.stats.failed += 1;
                let now = self.shared.ns(Instant::now());
                let (kind, detail) = crate::client::io_failure(&e);
                self.stats.on_error(win.row(now), kind, 1, || detail);
                self.ended(idx, Ended::Unopened, win);
            }
        }
    }

    /// Starts connecting slot `idx`.
    fn connect(&mut self, idx: usize, seed: u32) -> io::Result<()> {
        let spec = self.specs[idx];
        let t = &self.targets[spec.target];
        let tls = t.tls.as_ref().zip(t.tls_name.as_deref());
        let mut c = Conn::connect(t.addr, spec.source, seed, tls)?;
        c.register(self.poll.registry(), Token(idx))?;
        self.conns[idx] = Some(c);
        self.pending += 1;
        Ok(())
    }

    /// Every 50 ms: fails connects past the connect timeout and, once the
    /// workload has closed connections itself, closes whose answer is
    /// later than [`CLOSE_WAIT`].
    fn scan_timeouts(&mut self, now: Instant, win: &Window, last: &mut Instant) {
        if (self.pending == 0 && !self.churned)
            || now.duration_since(*last) < Duration::from_millis(50)
        {
            return;
        }
        *last = now;
        for idx in 0..self.conns.len() {
            let Some(c) = self.conns[idx].as_ref() else {
                continue;
            };
            let failure = match c.phase() {
                Phase::Connecting | Phase::Handshake
                    if now.duration_since(c.started) > self.timing.connect_timeout =>
                {
                    let t = self.timing.connect_timeout;
                    (ErrorKind::Timeout, format!("no handshake within {t:?}"))
                }
                Phase::Closing | Phase::Lingering
                    if self.load
                        && c.closed_at
                            .is_some_and(|t| now.duration_since(t) > CLOSE_WAIT) =>
                {
                    let what = if c.phase() == Phase::Closing {
                        "the server's Close"
                    } else {
                        "the server to end the stream after the Close"
                    };
                    (
                        ErrorKind::CloseTimeout,
                        format!("waited {CLOSE_WAIT:?} for {what}"),
                    )
                }
                _ => continue,
            };
            self.fail(idx, failure, win);
        }
    }

    /// Honours the workload's requests to end connections.
    fn handle_requests(&mut self, win: &Window) {
        let mut requests = std::mem::take(&mut self.requests);
        while !requests.is_empty() {
            self.churned = true;
            for &r in &requests {
                let idx = match r {
                    Request::Close(idx) | Request::Abort { idx, .. } => idx,
                };
                let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                    continue;
                };
                if conn.phase() != Phase::Open {
                    continue;
                }
                match r {
                    Request::Close(_) => {
                        conn.close();
                        self.flush(idx, win);
                    }
                    Request::Abort { reset, .. } => {
                        // Best effort: the point is to drop it anyway.
                        let _ = conn.flush();
                        conn.abort(self.poll.registry(), reset);
                        self.live -= 1;
                        self.shared.open.fetch_sub(1, Ordering::Relaxed);
                        self.ended(idx, Ended::Aborted, win);
                    }
                }
            }
            // What the callbacks above asked for is handled next round.
            requests.clear();
            std::mem::swap(&mut self.requests, &mut requests);
        }
        self.requests = requests;
    }

    fn on_event(&mut self, idx: usize, readable: bool, writable: bool, now: u64, win: &Window) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        match conn.phase() {
            Phase::Done => return,
            Phase::Connecting => {
                if !(readable || writable) {
                    return;
                }
                let t = &self.targets[self.specs[idx].target];
                if let Err(f) = conn.on_connected(&t.host, &t.path, &self.upgrade) {
                    return self.fail(idx, f, win);
                }
            }
            Phase::Handshake => {
                if readable {
                    match conn.read_handshake(&self.upgrade) {
                        Ok(true) => self.opened(idx, now, win),
                        Ok(false) => {}
                        Err(f) => return self.fail(idx, f, win),
                    }
                }
            }
            Phase::Open | Phase::Closing => {
                if readable {
                    self.read(idx, now, win);
                }
            }
            Phase::Lingering => {
                if readable {
                    self.read_eof(idx, win);
                }
            }
        }
        self.flush(idx, win);
    }

    fn opened(&mut self, idx: usize, now: u64, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let at = Instant::now();
        let took = at.duration_since(conn.started).as_nanos() as u64;
        self.stats.connect.saturating_record(took.max(1));
        self.stats.opened += 1;
        self.stats.connect_span = Some(match self.stats.connect_span {
            Some((a, b)) => (a.min(conn.started), b.max(at)),
            None => (conn.started, at),
        });
        self.pending -= 1;
        self.live += 1;
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        if self.upgrade.deflate() && !conn.deflating() {
            self.stats
                .on_error(win.row(now), ErrorKind::DeflateDeclined, 1, || {
                    "the 101 agreed to no permessage-deflate: this connection is uncompressed"
                        .into()
                });
        }
        if self.load {
            let mut cx = cx(
                win,
                now,
                &mut self.stats,
                &mut self.dirty,
                &mut self.requests,
            );
            self.work.on_open(idx, conn.out(), &mut cx);
        }
        // Frames may have come with the 101.
        self.read(idx, now, win);
    }

    fn read(&mut self, idx: usize, now: u64, win: &Window) {
        let Worker {
            conns,
            work,
            stats,
            dirty,
            requests,
            limits,
            ..
        } = self;
        let Some(conn) = conns[idx].as_mut() else {
            return;
        };
        let mut cx = cx(win, now, stats, dirty, requests);
        let mut on_message = |kind: MessageKind, payload: &[u8], out: &mut Vec<u8>| {
            work.on_message(idx, kind, payload, out, &mut cx);
        };
        let closing = conn.phase() == Phase::Closing;
        let end = conn.read_frames(limits, &mut on_message);
        stats.on_wire(win.row(now), &conn.take_wire());
        match end {
            Ok(ReadEnd::Blocked) => {}
            Ok(ReadEnd::SessionClosed) if closing && conn.protocol_error().is_none() => {
                // The closing handshake is done: the server ends the stream next.
                let _ = conn.flush();
                conn.linger();
                self.read_eof(idx, win);
            }
            Ok(ReadEnd::SessionClosed) | Ok(ReadEnd::Eof) if closing && !self.load => {
                let _ = conn.flush();
                self.end(idx, Ended::Closed, win);
            }
            Ok(ReadEnd::SessionClosed) => {
                let f = match conn.protocol_error() {
                    Some(e) => (
                        ErrorKind::Protocol(e),
                        format!("server broke RFC 6455: {e}"),
                    ),
                    None => {
                        let code = conn.close_code().unwrap_or(1005);
                        (
                            ErrorKind::UnexpectedClose(code),
                            format!("server sent Close {code} during the run"),
                        )
                    }
                };
                // Our Close reply or protocol-error Close goes out first.
                let _ = conn.flush();
                self.fail(idx, f, win);
            }
            Ok(ReadEnd::Eof) => {
                let detail = if closing {
                    "server closed the TCP connection without answering our Close"
                } else {
                    "server closed the TCP connection without a Close"
                };
                self.fail(idx, (ErrorKind::UnexpectedEof, detail.into()), win);
            }
            Err(f) => self.fail(idx, f, win),
        }
    }

    /// Lingering: a clean end once the server ends the stream.
    fn read_eof(&mut self, idx: usize, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        match conn.read_eof() {
            Ok(true) => self.end(idx, Ended::Closed, win),
            Ok(false) => {}
            Err(f) => self.fail(idx, f, win),
        }
    }

    fn flush(&mut self, idx: usize, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        if conn.phase() == Phase::Done || conn.pending() == 0 {
            return;
        }
        let res = conn.flush();
        let now = self.shared.ns(Instant::now());
        self.stats.on_wire(win.row(now), &conn.take_wire());
        if let Err(f) = res {
            self.fail(idx, f, win);
        }
    }

    fn flush_dirty(&mut self, win: &Window) {
        let dirty = std::mem::take(&mut self.dirty);
        let row = win.row(self.shared.ns(Instant::now()));
        for &idx in &dirty {
            if let Some(conn) = self.conns[idx].as_mut() {
                if conn.phase() != Phase::Done && conn.pending() > 0 {
                    // A write error shows again as an error on the next read.
                    let _ = conn.flush();
                    self.stats.on_wire(row, &conn.take_wire());
                }
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// A connection failed: count it (while closing, only during the load,
    /// where the workload closed it) and end it.
    fn fail(&mut self, idx: usize, (kind, detail): Failure, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let phase = conn.phase();
        let now = self.shared.ns(Instant::now());
        match phase {
            Phase::Done => {}
            Phase::Connecting | Phase::Handshake => {
                self.pending -= 1;
                self.stats.failed += 1;
                self.stats.on_error(win.row(now), kind, 1, || detail);
                conn.finish(self.poll.registry());
                if self.load {
                    self.ended(idx, Ended::Unopened, win);
                }
            }
            Phase::Open => {
                self.stats.on_error(win.row(now), kind, 1, || detail);
                let mut cx = cx(
                    win,
                    now,
                    &mut self.stats,
                    &mut self.dirty,
                    &mut self.requests,
                );
                self.work.on_lost(idx, &mut cx);
                self.end(idx, Ended::Lost, win);
            }
            Phase::Closing | Phase::Lingering => {
                if self.load {
                    self.stats.on_error(win.row(now), kind, 1, || detail);
                }
                self.end(idx, Ended::Lost, win);
            }
        }
    }

    /// An open connection ended.
    fn end(&mut self, idx: usize, how: Ended, win: &Window) {
        if let Some(conn) = self.conns[idx].as_mut() {
            if conn.phase() != Phase::Done {
                conn.finish(self.poll.registry());
                self.live -= 1;
                self.shared.open.fetch_sub(1, Ordering::Relaxed);
                if self.load {
                    self.ended(idx, how, win);
                }
            }
        }
    }

    /// During the load: asks the workload whether slot `idx` opens again,
    /// and queues it if so; a slot that does, or whose connection was
    /// aborted, drops its socket now.
    fn ended(&mut self, idx: usize, how: Ended, win: &Window) {
        let now = self.shared.ns(Instant::now());
        let mut cx = cx(
            win,
            now,
            &mut self.stats,
            &mut self.dirty,
            &mut self.requests,
        );
        let again = self.work.reopen(idx, how, &mut cx);
        if again || how == Ended::Aborted {
            self.conns[idx] = None;
        }
        if again {
            self.reopen.push_back(idx);
        }
    }

    fn publish_progress(&mut self) {
        let (s, r, e) = self.published;
        let errors = self.stats.errors.total();
        self.shared
            .sent
            .fetch_add(self.stats.sent - s, Ordering::Relaxed);
        self.shared
            .received
            .fetch_add(self.stats.received - r, Ordering::Relaxed);
        self.shared.errors.fetch_add(errors - e, Ordering::Relaxed);
        self.published = (self.stats.sent, self.stats.received, errors);
    }
}

fn cx<'a>(
    win: &'a Window,
    now: u64,
    stats: &'a mut Stats,
    dirty: &'a mut Vec<usize>,
    requests: &'a mut Vec<Request>,
) -> Cx<'a> {
    Cx {
        now,
        win,
        stats,
        dirty,
        requests,
    }
}
