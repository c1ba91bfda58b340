//! The event loop: one thread, one mio `Poll`, one slab of connections.
//!
//! Each turn: wait for readiness (or the nearest deadline), accept until the
//! listener would block, and for each ready connection read until it would
//! block (or its read budget is spent), hand every read to the protocol,
//! and write what the protocol produced with one `write`/`writev`. Broadcast
//! output is queued on every receiver and flushed once at the end of the
//! turn, so a receiver gets one write per turn however many messages came.
//! Then expired deadlines fire.
//!
//! Edge-triggered discipline: every operation is repeated until WouldBlock,
//! and a connection that still has input but used its budget, or that was
//! paused for backpressure and has drained, is put on a ready list and
//! visited next turn without waiting for a new edge.
//!
//! Requests that are not WebSocket upgrades are answered by
//! [`crate::http`] (health, metrics, the page) on the same port. A
//! [`ShutdownHandle`] stops the loop at once or drains it: Close 1001 to
//! every client, 503 to new upgrades and health checks, and return once
//! every connection has closed or the drain timeout passed.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Interest, Poll, Token, Waker};
use slab::Slab;

use super::buffer::{BufPool, SharedBytes, READ_CHUNK};
use super::conn::{Connection, Phase, QueueSink};
use super::listener;
pub use super::stats::Stats;
use super::stats::Throttle;
use super::timer::{ConnId, Deadlines, TimerQueue};
use crate::config::{Config, Mode, SlowConsumerPolicy};
use crate::http;
use crate::hub::Hub;
use crate::proto::handshake::{self, HandshakeError, Head};
use crate::proto::session::write_message;
use crate::proto::{close, Events, MessageKind, Parsing, State};

/// Logs a refusal or a misbehaving client at info, through the server's
/// throttle: at most 10 such lines a second, never one per frame.
macro_rules! notice {
    ($server:expr, $($arg:tt)*) => {
        if let Some(held) = $server.throttle.pass($server.now) {
            info!("{}{}", format_args!($($arg)*), suppressed(held));
        }
    };
}

const WAKER: Token = Token(usize::MAX);

/// Listener `i`'s token: counted down from just below the waker's, far
/// above any slab key.
fn listener_token(i: usize) -> Token {
    Token(usize::MAX - 1 - i)
}

/// The most listening sockets one server takes.
pub const MAX_LISTENERS: usize = 64;

/// Reads one connection may do per turn before others get a go.
const READ_BUDGET: usize = 16;

/// How long accepting pauses after an error such as EMFILE, when retrying at
/// once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections beyond `max_connections` that may be held while they are
/// refused with a 503 (answer, shutdown, drain); beyond that they are dropped.
const REFUSAL_HEADROOM: usize = 256;

/// A turn's broadcast batch above which it is fanned out at once, so one
/// busy turn cannot hold an unbounded batch.
const BATCH_LIMIT: usize = 256 << 10;

/// Scratch output above which it is written out before reading more.
const OUT_FLUSH_AT: usize = 256 << 10;

const RUN: u8 = 0;
const DRAIN: u8 = 1;
const STOP: u8 = 2;

/// Stops a running [`Server`] from another thread (a signal handler's, say).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    waker: Arc<Waker>,
    control: Arc<AtomicU8>,
}

impl ShutdownHandle {
    /// Asks for a graceful shutdown: send Close 1001 (going away) to every
    /// client, refuse new upgrades with 503 (plain HTTP is still answered,
    /// `/healthz` with 503), and return from [`Server::run`] once every
    /// connection has closed or the drain timeout has passed.
    pub fn drain(&self) {
        self.control.fetch_max(DRAIN, Ordering::AcqRel);
        // A failed wake leaves the loop to notice at its next wakeup.
        let _ = self.waker.wake();
    }

    /// Asks [`Server::run`] to return at once.
    pub fn shutdown(&self) {
        self.control.store(STOP, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// Reactor-wide buffers, reused by every connection.
struct Io {
    /// Where reads land when a connection keeps no input.
    read: Box<[u8]>,
    /// Output produced while handling one connection's input.
    out: Vec<u8>,
    pool: BufPool,
}

/// A WebSocket server: a listener, a slab of connections, one thread.
pub struct Server {
    poll: Poll,
    listeners: Vec<TcpListener>,
    local_addrs: Vec<SocketAddr>,
    /// The first of `local_addrs` (there is always one).
    primary_addr: SocketAddr,
    waker: Arc<Waker>,
    control: Arc<AtomicU8>,
    cfg: Config,
    conns: Slab<Connection>,
    hub: Hub,
    io: Io,
    handshake_timers: TimerQueue,
    close_timers: TimerQueue,
    /// Keepalive and idle checks (only with those features on).
    keepalive: Deadlines,
    /// Expired keepalive entries, reused.
    due: Vec<ConnId>,
    /// Connections to read again this turn without a new readiness edge.
    ready: Vec<ConnId>,
    /// The other half of `ready`'s double-buffering.
    spare: Vec<ConnId>,
    /// Counts reactor turns; marks which connections published this turn.
    turn: u32,
    /// Connections in the slab that are Closing or Draining.
    closing: usize,
    next_gen: u32,
    accept_paused_until: Option<Instant>,
    /// When draining, the time to give up waiting for clients.
    drain_until: Option<Instant>,
    started: Instant,
    now: Instant,
    /// Whether keepalive or idle checks are on: only then do reads note the time.
    keepalive_on: bool,
    stats: Stats,
    /// The next summary line, and the counters at the last one.
    next_summary: Option<Instant>,
    summarized: (Instant, Stats),
    /// Log lines about refused and misbehaving clients.
    throttle: Throttle,
}

impl Server {
    /// Binds the listeners and sets up the reactor.
    pub fn bind(cfg: Config) -> io::Result<Server> {
        if cfg.listen.is_empty() || cfg.listen.len() > MAX_LISTENERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("between 1 and {MAX_LISTENERS} listen addresses"),
            ));
        }
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for (i, addr) in cfg.listen.iter().enumerate() {
            let mut l = listener::bind(*addr, cfg.backlog, cfg.reuse_port)?;
            poll.registry()
                .register(&mut l, listener_token(i), Interest::READABLE)?;
            local_addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let primary_addr = *local_addrs
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listen address"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let now = Instant::now();
        // Keepalive deadlines are checked a tenth of the shortest interval
        // late at most.
        let shortest = [cfg.idle_timeout, cfg.ping_interval]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(1));
        let granularity = (shortest.as_millis() / 10).clamp(10, 1000);
        Ok(Server {
            poll,
            listeners,
            local_addrs,
            primary_addr,
            waker,
            control: Arc::new(AtomicU8::new(RUN)),
            // Reserve the slab up front: untouched capacity is virtual
            // memory, so resident memory grows only with real connections,
            // and the slab never reallocates (and copies) under load.
            conns: Slab::with_capacity(cfg.max_connections.min(1 << 20) + REFUSAL_HEADROOM),
            hub: Hub::default(),
            io: Io {
                read: vec![0u8; READ_CHUNK].into_boxed_slice(),
                out: Vec::new(),
                pool: BufPool::new(64),
            },
            handshake_timers: TimerQueue::new(cfg.handshake_timeout),
            close_timers: TimerQueue::new(cfg.close_timeout),
            keepalive: Deadlines::new(granularity as u64),
            due: Vec::new(),
            ready: Vec::new(),
            turn: 0,
            spare: Vec::new(),
            closing: 0,
            next_gen: 0,
            accept_paused_until: None,
            drain_until: None,
            started: now,
            now,
            keepalive_on: cfg.idle_timeout.is_some() || cfg.ping_interval.is_some(),
            stats: Stats::default(),
            next_summary: cfg.stats_interval.map(|d| now + d),
            summarized: (now, Stats::default()),
            throttle: Throttle::new(10),
            cfg,
        })
    }

    /// The address the first listener is bound to (the real port if 0 was
    /// asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.primary_addr
    }

    /// The addresses of every listener, in the order configured.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// A handle that stops or drains [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            waker: self.waker.clone(),
            control: self.control.clone(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Connections held, in any phase (closing ones included).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Runs the loop until a [`ShutdownHandle`] stops it, or a drain it
    /// asked for is over. Only a failure of the poller itself ends it with
    /// an error; per-connection and accept errors are counted and handled.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = mio::Events::with_capacity(1024);
        loop {
            match self.control.load(Ordering::Acquire) {
                STOP => return Ok(()),
                DRAIN if self.drain_until.is_none() => self.begin_drain(),
                _ => {}
            }
            if let Some(until) = self.drain_until {
                if self.conns.is_empty() || self.now >= until {
                    info!("drained; {} connections left", self.conns.len());
                    return Ok(());
                }
            }
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.tick();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    Token(t) if t >= usize::MAX - MAX_LISTENERS => self.accept(usize::MAX - 1 - t),
                    Token(key) => {
                        let closed = ev.is_read_closed() || ev.is_error();
                        if ev.is_readable() || closed {
                            self.on_readable(key, closed);
                        } else if ev.is_writable() {
                            self.flush(key);
                        }
                    }
                }
            }
            self.end_turn();
        }
    }

    fn tick(&mut self) {
        self.now = Instant::now();
    }

    /// `now` in milliseconds since the reactor started: the keepalive clock.
    /// Computed on demand; the echo path never needs it.
    fn now_ms(&self) -> u64 {
        millis(self.now.duration_since(self.started))
    }

    /// The reactor clock as connections store it: milliseconds, wrapping
    /// every 49 days (intervals compared are far shorter).
    fn now_ms32(&self) -> u32 {
        self.now_ms() as u32
    }

    /// Says Close 1001 to every open client and starts the drain deadline.
    /// From now on upgrades are refused (503) while plain HTTP is still
    /// answered, so health checks see `/healthz` turn 503 instead of a
    /// refused port.
    fn begin_drain(&mut self) {
        info!(
            "draining {} connections (at most {:?})",
            self.conns.len(),
            self.cfg.drain_timeout
        );
        self.drain_until = Some(self.now + self.cfg.drain_timeout);
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            match conn.phase {
                Phase::Open => {
                    let q = conn.out.get_or_insert_with(Default::default);
                    conn.session.close(
                        close::GOING_AWAY,
                        "server shutting down",
                        &mut QueueSink(q),
                    );
                    self.write_out(key, false);
                }
                Phase::Handshake | Phase::Closing | Phase::Draining => {}
            }
        }
    }

    /// How long the poll may sleep: not at all if connections wait on the
    /// ready list, else until the nearest deadline.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let keepalive = self
            .keepalive
            .next()
            .map(|ms| self.started + Duration::from_millis(ms));
        let next = [
            self.handshake_timers.next(),
            self.close_timers.next(),
            self.accept_paused_until,
            keepalive,
            self.drain_until,
            self.next_summary,
        ]
        .into_iter()
        .flatten()
        .min()?;
        // Round up to whole milliseconds so a wakeup never comes early and spins.
        let wait = next.saturating_duration_since(Instant::now());
        Some(Duration::from_millis(
            wait.as_millis()
                .saturating_add(1)
                .try_into()
                .unwrap_or(u64::MAX),
        ))
    }

    /// Revisits the ready list, fires deadlines, retries a paused accept,
    /// and fans out the turn's broadcast messages.
    fn end_turn(&mut self) {
        let mut ready = std::mem::replace(&mut self.ready, std::mem::take(&mut self.spare));
        for id in ready.drain(..) {
            if self.live(id) {
                self.on_readable(id.key, true);
            }
        }
        self.spare = ready;

        self.tick();
        while let Some(id) = self.handshake_timers.expired(self.now) {
            let handshaking = self
                .conns
                .get(id.key)
                .is_some_and(|c| c.gen == id.gen && c.phase == Phase::Handshake);
            if handshaking {
                self.handshake_timeout(id.key);
            }
        }
        while let Some(id) = self.close_timers.expired(self.now) {
            if self.live(id) {
                notice!(self, "conn {}: close timeout, dropped", id.key);
                self.stats.close_timeouts += 1;
                self.drop_conn(id.key);
            }
        }
        if self.keepalive_on {
            let mut due = std::mem::take(&mut self.due);
            self.keepalive.expire(self.now_ms(), &mut due);
            for id in due.drain(..) {
                self.check_keepalive(id);
            }
            self.due = due;
        }
        if self.accept_paused_until.is_some_and(|t| t <= self.now) {
            self.accept_paused_until = None;
            for i in 0..self.listeners.len() {
                self.accept(i);
            }
        }
        if let Some(at) = self.next_summary.filter(|t| *t <= self.now) {
            let (since, prev) = &self.summarized;
            let line =
                self.stats
                    .summary_since(prev, self.now.duration_since(*since), self.conns.len());
            info!("{line}");
            self.summarized = (self.now, self.stats.clone());
            self.next_summary = self.cfg.stats_interval.map(|d| (at + d).max(self.now));
        }

        self.fan_out();
        self.turn = self.turn.wrapping_add(1);
    }

    /// A keepalive deadline: close an idle connection, ping a quiet one,
    /// close one that let a ping go unanswered, and re-arm.
    fn check_keepalive(&mut self, id: ConnId) {
        if !self.live(id) {
            return;
        }
        let now_ms = self.now_ms();
        let now = now_ms as u32;
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        if conn.phase != Phase::Open || conn.session.state() != State::Open {
            return;
        }
        let quiet = u64::from(now.wrapping_sub(conn.seen_at));
        let idle = u64::from(now.wrapping_sub(conn.message_at));
        let mut next = u64::MAX;
        if let Some(limit) = self.cfg.idle_timeout.map(millis) {
            if idle >= limit {
                self.stats.idle_timeouts += 1;
                return self.close_with(id, close::GOING_AWAY, "idle timeout");
            }
            next = next.min(now_ms + (limit - idle));
        }
        if let Some(interval) = self.cfg.ping_interval.map(millis) {
            if quiet < interval {
                next = next.min(now_ms + (interval - quiet));
            } else if conn.awaiting_pong {
                self.stats.ping_timeouts += 1;
                return self.close_with(id, close::GOING_AWAY, "ping timeout");
            } else {
                let q = conn.out.get_or_insert_with(Default::default);
                conn.session.ping(b"", &mut QueueSink(q));
                conn.awaiting_pong = true;
                self.stats.pings_sent += 1;
                next = next.min(now_ms + interval);
                self.write_out(id.key, false);
            }
        }
        if next != u64::MAX && self.live(id) {
            self.keepalive.arm(next, id);
        }
    }

    /// Starts the closing handshake from our side; the close timeout bounds
    /// the wait for the answer.
    fn close_with(&mut self, id: ConnId, code: u16, reason: &str) {
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        notice!(self, "conn {}: closing {code} ({reason})", id.key);
        let q = conn.out.get_or_insert_with(Default::default);
        conn.session.close(code, reason, &mut QueueSink(q));
        self.close_timers.arm(self.now, id);
        self.write_out(id.key, false);
    }

    fn live(&self, id: ConnId) -> bool {
        self.conns.get(id.key).is_some_and(|c| c.gen == id.gen)
    }

    fn accept(&mut self, listener: usize) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(l) = self.listeners.get(listener) else {
                return;
            };
            let (mut stream, peer) = match l.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The peer gave up while queued: nothing to do for it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: retrying now would
                    // spin. Back off; queued connections wait in the backlog
                    // and a closing connection ends the pause early.
                    if self.stats.accept_errors == 0 || self.stats.accept_errors.is_power_of_two() {
                        warn!("accept failed ({e}); pausing accepts for {ACCEPT_BACKOFF:?} [{} so far]", self.stats.accept_errors + 1);
                    }
                    self.stats.accept_errors += 1;
                    self.accept_paused_until = Some(self.now + ACCEPT_BACKOFF);
                    return;
                }
            };
            // Connections on their way out do not hold a slot.
            let full = self.conns.len().saturating_sub(self.closing) >= self.cfg.max_connections;
            if full {
                self.stats.refused_max_connections += 1;
                notice!(
                    self,
                    "{peer}: refused 503, {} connections held",
                    self.conns.len()
                );
                if self.conns.len() >= self.cfg.max_connections + REFUSAL_HEADROOM {
                    // No room even to refuse politely: best effort, then drop.
                    let mut answer = std::mem::take(&mut self.io.out);
                    write_503(&mut answer);
                    let _ = io::Write::write(&mut stream, &answer);
                    answer.clear();
                    self.io.out = answer;
                    continue;
                }
            }
            // Replies are written whole per turn; Nagle would only add delay.
            let _ = stream.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, Token(key), Interest::READABLE)
            {
                warn!("{peer}: register failed: {e}");
                continue;
            }
            self.next_gen = self.next_gen.wrapping_add(1);
            let conn = entry.insert(Connection::new(stream, self.next_gen));
            let id = conn.id(key);
            if full {
                // Refuse through the ordinary closing path: answer, shut
                // down, drain the request we never read. Closing with it
                // unread would reset the connection and could destroy the
                // answer on its way.
                write_503(&mut self.io.out);
                self.enter_closing(id);
                self.flush(key);
            } else {
                self.stats.accepted += 1;
                self.handshake_timers.arm(self.now, id);
            }
        }
    }

    /// Reads until WouldBlock (or the budget), processing each read, then
    /// writes what was produced.
    ///
    /// A read that returns less than it was offered drained the socket, and
    /// epoll raises a new edge for anything that arrives later, so the read
    /// that would only return WouldBlock is skipped: one syscall less per
    /// echoed message. Not when the event said the peer closed (the FIN is
    /// already in, and no further edge will come for it) and not for visits
    /// from the ready list, which have no event behind them: `until_blocked`.
    fn on_readable(&mut self, key: usize, until_blocked: bool) {
        let mut reads = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.phase {
                Phase::Handshake | Phase::Open => {}
                Phase::Closing => break,
                Phase::Draining => return self.drain(key),
            }
            if conn.paused {
                break;
            }
            if reads == READ_BUDGET {
                self.ready.push(conn.id(key));
                break;
            }
            reads += 1;
            let into_own = !conn.rbuf.is_empty();
            let (res, offered) = if into_own {
                let spare = conn.rbuf.spare(&mut self.io.pool);
                let offered = spare.len();
                (conn.stream.read(spare), offered)
            } else {
                (conn.stream.read(&mut self.io.read), self.io.read.len())
            };
            match res {
                Ok(0) => return self.peer_closed(key),
                Ok(n) => {
                    self.stats.bytes_in += n as u64;
                    self.process(key, n, into_own);
                    if n < offered && !until_blocked {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Output produced for this connection must not reach the next one.
                    self.io.out.clear();
                    return self.io_error(key, &e);
                }
            }
            if self.io.out.len() >= OUT_FLUSH_AT {
                self.flush(key);
            }
        }
        self.flush(key);
    }

    /// Hands `n` freshly read bytes to the handshake or the session.
    fn process(&mut self, key: usize, n: usize, into_own: bool) {
        let held = self.conns.len();
        let now_ms = if self.keepalive_on {
            self.now_ms32()
        } else {
            0
        };
        let Server {
            conns,
            io,
            cfg,
            hub,
            stats,
            throttle,
            now,
            started,
            drain_until,
            turn,
            ..
        } = self;
        let Io { read, out, pool } = io;
        let Some(conn) = conns.get_mut(key) else {
            return;
        };
        let mut rbuf = std::mem::take(&mut conn.rbuf);
        let data: &mut [u8] = if into_own {
            rbuf.advance(n);
            rbuf.filled_mut()
        } else {
            read.get_mut(..n).unwrap_or_default()
        };
        if self.keepalive_on {
            conn.seen_at = now_ms;
            conn.awaiting_pong = false;
        }
        let mut sink = Sink {
            out,
            hub,
            stats,
            sender: conn.id(key),
            room: conn.seat.map(|s| s.room),
            mode: cfg.mode,
            got_message: false,
        };
        let (keep, outcome) = match conn.phase {
            Phase::Handshake => {
                let ctx = HttpContext {
                    held,
                    started: *started,
                    now: *now,
                    draining: drain_until.is_some(),
                };
                match handshake(conn, key, data, cfg, &ctx, &mut sink) {
                    Ok(Handshake::Keep(keep)) => (keep, Outcome::Waiting),
                    Ok(Handshake::Upgraded(keep)) => (keep, Outcome::Upgraded),
                    Ok(Handshake::Answered) => (0, Outcome::Answered),
                    Err(e) => {
                        if let Some(held_back) = throttle.pass(*now) {
                            info!(
                                "conn {key}: handshake refused: {} {}{}",
                                e.status(),
                                e.reason().1,
                                suppressed(held_back)
                            );
                        }
                        *sink.stats.handshake_failures.entry(e.status()).or_default() += 1;
                        handshake::write_refusal(sink.out, e, &cfg.protocols);
                        (0, Outcome::Answered)
                    }
                }
            }
            Phase::Open => (
                conn.session.feed(data, &cfg.limits, &mut sink),
                Outcome::Waiting,
            ),
            Phase::Closing | Phase::Draining => (0, Outcome::Waiting),
        };
        if sink.got_message {
            conn.message_at = now_ms;
            if cfg.mode == Mode::Broadcast {
                conn.sent_turn = *turn;
            }
        }
        if into_own {
            rbuf.keep(keep, pool);
        } else if keep > 0 {
            rbuf.store(read.get(..keep).unwrap_or_default(), pool);
        }
        conn.rbuf = rbuf;
        let failed = conn.phase == Phase::Open && conn.session.state() == State::Closed;
        if failed {
            if let Some(e) = conn.session.error() {
                notice!(
                    self,
                    "conn {key}: protocol error: {e} (close {})",
                    e.close_code()
                );
                self.stats.protocol_errors += 1;
            }
        }
        let id = conn.id(key);
        let room = conn.seat.map(|s| s.room);
        match outcome {
            Outcome::Answered => self.enter_closing(id),
            // Frames that came with the request may already have closed the
            // session (a protocol error, or the client's Close).
            Outcome::Upgraded if failed => self.enter_closing(id),
            Outcome::Upgraded => self.arm_keepalive(id),
            Outcome::Waiting if failed => self.enter_closing(id),
            Outcome::Waiting => {}
        }
        if let Some(room) = room {
            if self.hub.batched(room) >= BATCH_LIMIT {
                self.fan_out_room(room);
            }
        }
    }

    /// Arms the first keepalive check of a just-opened connection.
    fn arm_keepalive(&mut self, id: ConnId) {
        let first = [self.cfg.idle_timeout, self.cfg.ping_interval]
            .into_iter()
            .flatten()
            .min();
        let Some(first) = first else { return };
        let now_ms = self.now_ms();
        if let Some(conn) = self.conns.get_mut(id.key) {
            conn.seen_at = now_ms as u32;
            conn.message_at = now_ms as u32;
            self.keepalive.arm(now_ms + millis(first), id);
        }
    }

    /// Sends every room's batch of this turn's messages to its members.
    fn fan_out(&mut self) {
        if !self.hub.has_active() {
            return;
        }
        let active = self.hub.take_active();
        for &room in &active {
            self.fan_out_room(room);
        }
        self.hub.restore_active(active);
    }

    /// Sends a room's batch to every open member: the bytes become one
    /// shared buffer that every member's queue references.
    fn fan_out_room(&mut self, room: u32) {
        let batch = self.hub.take_batch(room, BATCH_LIMIT);
        if batch.frames.is_empty() {
            return;
        }
        let bytes = Rc::new(batch.bytes);
        let mut i = 0;
        while let Some(&key) = self.hub.members(room).get(i) {
            self.deliver(key, &bytes, &batch.frames);
            // A member dropped by a write error left its slot to the last
            // member, which has not been served yet.
            if self.hub.members(room).get(i) == Some(&key) {
                i += 1;
            }
        }
    }

    /// Queues a batch on one member and writes it. Every member sees the
    /// messages in the order the server received them; with
    /// `--exclude-sender` a member that published this turn skips its own.
    fn deliver(&mut self, key: usize, bytes: &Rc<Vec<u8>>, frames: &[(ConnId, Range<usize>)]) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open || conn.session.state() != State::Open {
            return;
        }
        let id = conn.id(key);
        let publisher = !self.cfg.broadcast_to_sender && conn.sent_turn == self.turn;
        let theirs = if publisher {
            frames.iter().filter(|(sender, _)| *sender != id).count()
        } else {
            frames.len()
        };
        if theirs == 0 {
            return;
        }
        let q = conn.out.get_or_insert_with(Default::default);
        if q.pending() > self.cfg.output_high_water {
            // Output queued earlier this turn may not have been offered to
            // the socket yet: judge only what the socket refuses. An error
            // shows again at the write below.
            let _ = q.write_to(&mut conn.stream);
        }
        if q.pending() > self.cfg.output_high_water {
            match self.cfg.slow_consumer {
                SlowConsumerPolicy::Drop => {
                    self.stats.slow_consumer_drops += theirs as u64;
                    return;
                }
                SlowConsumerPolicy::Close => {
                    let dropped = q.discard_unstarted();
                    notice!(
                        self,
                        "conn {key}: slow consumer, {dropped} unsent bytes dropped; closing 1008"
                    );
                    self.stats.slow_consumer_cutoffs += 1;
                    conn.session
                        .close(close::POLICY, "slow consumer", &mut QueueSink(q));
                    self.close_timers.arm(self.now, id);
                }
            }
        } else if publisher {
            let mut from = 0;
            for (sender, range) in frames {
                if *sender == id {
                    q.push_shared(SharedBytes::new(bytes.clone(), from..range.start));
                    from = range.end;
                }
            }
            q.push_shared(SharedBytes::new(bytes.clone(), from..bytes.len()));
            self.stats.messages_out += theirs as u64;
        } else {
            q.push_shared(SharedBytes::new(bytes.clone(), 0..bytes.len()));
            self.stats.messages_out += theirs as u64;
        }
        self.write_out(key, false);
    }

    /// Writes the scratch output (this connection's, produced this turn)
    /// and the queue.
    fn flush(&mut self, key: usize) {
        self.write_out(key, true);
    }

    /// Writes the queue, after the scratch output if `scratch` (only for the
    /// connection whose input produced it); then updates write interest,
    /// backpressure, and the closing sequence.
    fn write_out(&mut self, key: usize, scratch: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            if scratch {
                self.io.out.clear();
            }
            return;
        };
        let res = if scratch {
            let res = conn.send(&self.io.out);
            self.io.out.clear();
            if self.io.out.capacity() > 4 * OUT_FLUSH_AT {
                self.io.out = Vec::new();
            }
            res
        } else {
            conn.send(&[])
        };
        match res {
            Ok(n) => self.stats.bytes_out += n as u64,
            Err(e) => return self.io_error(key, &e),
        }
        let id = conn.id(key);
        let pending = conn.pending_out();
        if pending == 0 && conn.phase == Phase::Closing {
            // The server closes TCP first (§7.1.1): shut our side, then
            // drain until the peer closes its side or the timeout.
            if conn.stream.shutdown(Shutdown::Write).is_err() {
                return self.drop_conn(key);
            }
            conn.phase = Phase::Draining;
            self.ready.push(id);
        }
        if pending > self.cfg.output_high_water && !conn.paused {
            // Stop reading a client whose replies pile up: TCP pushes back.
            conn.paused = true;
        } else if conn.paused && pending <= self.cfg.output_low_water {
            conn.paused = false;
            self.ready.push(id);
        }
        let want_write = pending > 0;
        if want_write != conn.writable_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(key), interest)
            {
                return self.io_error(key, &e);
            }
            conn.writable_interest = want_write;
        }
    }

    /// A closing connection's output is queued: arm its deadline.
    fn enter_closing(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id.key) {
            if matches!(conn.phase, Phase::Handshake | Phase::Open) {
                conn.phase = Phase::Closing;
                self.closing += 1;
                self.close_timers.arm(self.now, id);
            }
        }
    }

    /// Reads and discards until the peer closes.
    fn drain(&mut self, key: usize) {
        for _ in 0..READ_BUDGET {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.stream.read(&mut self.io.read) {
                Ok(0) => return self.drop_conn(key),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(key),
            }
        }
        if let Some(conn) = self.conns.get(key) {
            self.ready.push(conn.id(key));
        }
    }

    fn handshake_timeout(&mut self, key: usize) {
        notice!(self, "conn {key}: handshake timeout (408)");
        *self.stats.handshake_failures.entry(408).or_default() += 1;
        handshake::write_response(
            &mut self.io.out,
            408,
            "Request Timeout",
            "",
            "handshake timeout",
        );
        let Some(id) = self.conns.get(key).map(|c| c.id(key)) else {
            return;
        };
        self.enter_closing(id);
        self.flush(key);
    }

    /// The peer closed its side (read returned 0). It may still read: send
    /// what this turn produced for it and close like any other closing
    /// connection (flush, shut down, drain, bounded by the close timeout).
    fn peer_closed(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.phase == Phase::Open && conn.session.state() != State::Closed {
            self.stats.abnormal_closes += 1;
        }
        let id = conn.id(key);
        self.enter_closing(id);
        self.flush(key);
    }

    fn io_error(&mut self, key: usize, e: &io::Error) {
        debug!("conn {key}: {e}");
        self.stats.io_errors += 1;
        if let Some(conn) = self.conns.get(key) {
            if conn.phase == Phase::Open && conn.session.state() != State::Closed {
                self.stats.abnormal_closes += 1;
            }
        }
        self.drop_conn(key);
    }

    /// Removes a connection for good.
    fn drop_conn(&mut self, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        if matches!(conn.phase, Phase::Closing | Phase::Draining) {
            self.closing -= 1;
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Some(code) = conn.session.close_code() {
            *self.stats.closes.entry(code).or_default() += 1;
        }
        if let Some(seat) = conn.seat {
            if let Some(moved) = self.hub.leave(seat) {
                if let Some(m) = self.conns.get_mut(moved) {
                    m.seat = Some(seat);
                }
            }
        }
        conn.rbuf.release(&mut self.io.pool);
        // A file descriptor just came free: end an accept pause early.
        if self.accept_paused_until.is_some() {
            self.accept_paused_until = Some(self.now);
        }
    }
}

/// What became of input while waiting for the request.
enum Handshake {
    /// Incomplete: keep this many bytes.
    Keep(usize),
    /// Upgraded; keep this many bytes of frames that followed the request.
    Upgraded(usize),
    /// A plain HTTP request was answered: close once it is sent.
    Answered,
}

/// What `process` has to do after the protocol ran.
enum Outcome {
    Waiting,
    Upgraded,
    Answered,
}

/// What plain HTTP answers can see of the server, besides counters.
struct HttpContext {
    held: usize,
    started: Instant,
    now: Instant,
    draining: bool,
}

/// Handles input while waiting for the request. An upgrade is checked
/// (origin), answered 101 (with the first offered subprotocol we speak),
/// and the rest of the input fed to the session at once: a client may send
/// frames right behind its request. A plain request goes to [`http`].
fn handshake(
    conn: &mut Connection,
    key: usize,
    data: &mut [u8],
    cfg: &Config,
    ctx: &HttpContext,
    sink: &mut Sink<'_>,
) -> Result<Handshake, HandshakeError> {
    handshake::check_request_line(data)?;
    if !handshake::has_head_end(data) {
        if data.len() < cfg.max_header_bytes {
            return Ok(Handshake::Keep(data.len()));
        }
        return Err(HandshakeError::TooLarge);
    }
    let (req, offset) = match handshake::parse_request(data, cfg.max_header_bytes)? {
        Parsing::NeedMore(_) => return Ok(Handshake::Keep(data.len())),
        Parsing::Done {
            value: Head::Plain { method, path },
            ..
        } => {
            let snap = http::Snapshot {
                stats: sink.stats,
                open_connections: ctx.held,
                rooms: sink.hub.rooms(),
                mode: cfg.mode,
                uptime: ctx.now.duration_since(ctx.started),
                draining: ctx.draining,
                instance: &cfg.instance,
            };
            let status = http::respond(sink.out, method, path, &snap);
            *sink.stats.http_responses.entry(status).or_default() += 1;
            return Ok(Handshake::Answered);
        }
        Parsing::Done {
            value: Head::Upgrade(req),
            offset,
        } => (req, offset),
    };
    if ctx.draining {
        return Err(HandshakeError::Unavailable);
    }
    if !req.origin_allowed(&cfg.allowed_origins) {
        return Err(HandshakeError::Forbidden);
    }
    let protocol = req.negotiate_protocol(&cfg.protocols, cfg.require_protocol)?;
    handshake::write_accept(sink.out, req.key, protocol);
    sink.stats.handshakes += 1;
    conn.phase = Phase::Open;
    if cfg.mode == Mode::Broadcast {
        // The path names the room; the query string does not.
        let room = req.path.split('?').next().unwrap_or(req.path);
        let seat = sink.hub.join(room, key);
        conn.seat = Some(seat);
        sink.room = Some(seat.room);
    }
    let frames = data.get_mut(offset..).unwrap_or_default();
    let keep = conn.session.feed(frames, &cfg.limits, sink);
    data.copy_within(offset..offset + keep, 0);
    Ok(Handshake::Upgraded(keep))
}

/// ", N similar lines suppressed" when some were.
fn suppressed(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} similar lines suppressed)")
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// The answer to a client over the connection limit.
fn write_503(out: &mut Vec<u8>) {
    handshake::write_response(
        out,
        503,
        "Service Unavailable",
        "Retry-After: 1\r\n",
        "too many connections",
    );
}

/// What the session reports, turned into output.
struct Sink<'a> {
    out: &'a mut Vec<u8>,
    hub: &'a mut Hub,
    stats: &'a mut Stats,
    /// The connection whose input is being processed.
    sender: ConnId,
    /// Its broadcast room.
    room: Option<u32>,
    mode: Mode,
    /// A message arrived (for the idle timeout; in broadcast mode, the
    /// connection published this turn).
    got_message: bool,
}

impl Events for Sink<'_> {
    fn message(&mut self, kind: MessageKind, payload: &[u8]) {
        self.stats.messages_in += 1;
        self.got_message = true;
        match self.mode {
            Mode::Echo => {
                write_message(self.out, kind, payload);
                self.stats.messages_out += 1;
            }
            Mode::Broadcast => {
                // Encoded once, into the room's batch for this turn, which
                // every member (the sender too, unless excluded) gets in the
                // same order.
                if let Some(batch) = self.room.and_then(|r| self.hub.batch(r)) {
                    let start = batch.bytes.len();
                    write_message(&mut batch.bytes, kind, payload);
                    let end = batch.bytes.len();
                    batch.frames.push((self.sender, start..end));
                }
            }
        }
    }

    fn send(&mut self, frame: &[u8]) {
        self.out.extend_from_slice(frame);
    }
}
