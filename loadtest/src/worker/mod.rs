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
//!
//! The loop is [`Worker::run`], here; each job has a file: [`workload`]
//! the interface the modes implement and the context they get, `connect`
//! opening connections and their handshakes, `io` reads, writes and what
//! a message event sets off, `timeouts` the connect and close deadlines and
//! how long to poll, `ending` failures, closes and aborts the workload asks
//! for, and slots opened again.

mod connect;
mod ending;
mod io;
mod timeouts;
pub mod workload;

use std::collections::VecDeque;
use std::io as stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use wsd::proto::Limits;

use self::workload::cx;
pub use self::workload::{ConnSpec, Cx, Ended, Request, Workload};
use crate::client::{Conn, Phase};
use crate::stats::Stats;
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
    /// Ends the load early (an agent whose controller has gone).
    pub stop: AtomicBool,
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
            stop: AtomicBool::new(false),
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
    ) -> stdio::Result<Worker<W>> {
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
    pub fn run(mut self) -> stdio::Result<Stats> {
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
                    let stop = self.shared.stop.load(Ordering::Relaxed);
                    if now_ns >= win.measure_end || self.idle() || stop {
                        stage = Stage::Draining;
                        self.reopen.clear();
                        continue;
                    }
                    self.start_reopens(&win);
                    self.scan_timeouts(now, &win, &mut last_timeout_scan);
                }
                Stage::Draining => {
                    let stop = self.shared.stop.load(Ordering::Relaxed);
                    if self.work.drained() || now_ns >= win.drain_end || self.idle() || stop {
                        self.load = false;
                        let mut cx = cx(
                            &win,
                            now_ns,
                            &mut self.stats,
                            &mut self.dirty,
                            &mut self.requests,
                        );
                        self.work.finish(&mut cx);
                        for idx in 0..self.conns.len() {
                            let Some(c) = self.conns[idx].as_mut() else {
                                continue;
                            };
                            if c.is_api() {
                                // An idle keep-alive connection just ends.
                                self.end(idx, Ended::Closed, &win);
                            } else {
                                c.close();
                                let _ = c.flush();
                            }
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
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => continue,
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

    /// Whether nothing is open, connecting or about to connect again.
    fn idle(&self) -> bool {
        self.live == 0 && self.pending == 0 && self.reopen.is_empty()
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
