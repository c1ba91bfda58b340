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

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Interest, Poll, Token, Waker};
use slab::Slab;

use super::buffer::{BufPool, SharedBytes, READ_CHUNK};
use super::conn::{Connection, Phase, QueueSink};
use super::listener;
use super::timer::{ConnId, TimerQueue};
use crate::config::{Config, Mode, SlowConsumerPolicy};
use crate::hub::Hub;
use crate::proto::handshake::{self, HandshakeError};
use crate::proto::session::write_message;
use crate::proto::{close, Events, MessageKind, Parsing, State};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

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

/// Counters of everything the server did and refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted (refusals not counted).
    pub accepted: u64,
    /// Connections answered 503 because `max_connections` were open.
    pub refused_max_connections: u64,
    /// Errors from accept (EMFILE and the like); accepting backs off.
    pub accept_errors: u64,
    /// Handshakes answered 101.
    pub handshakes: u64,
    /// Handshakes refused, by HTTP status (400, 405, 408, 426, 431).
    pub handshake_failures: BTreeMap<u16, u64>,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent (broadcast: one per receiver).
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Connections failed for a protocol error.
    pub protocol_errors: u64,
    /// Closing handshakes by close code (sent or received).
    pub closes: BTreeMap<u16, u64>,
    /// Connections that ended without a closing handshake.
    pub abnormal_closes: u64,
    /// Closing connections dropped because the close timeout passed.
    pub close_timeouts: u64,
    /// Slow broadcast consumers cut off (policy `close`).
    pub slow_consumer_cutoffs: u64,
    /// Broadcast messages skipped for slow consumers (policy `drop`).
    pub slow_consumer_drops: u64,
    /// Connections ended by a socket error.
    pub io_errors: u64,
}

/// Stops a running [`Server`] from another thread.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Asks the server to return from [`Server::run`].
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        // A failed wake leaves the loop to notice at its next wakeup.
        let _ = self.waker.wake();
    }
}

/// Reactor-wide buffers, reused by every connection.
struct Io {
    /// Where reads land when a connection keeps no input.
    read: Box<[u8]>,
    /// Output produced while handling one connection's input.
    out: Vec<u8>,
    /// This turn's broadcast messages.
    batch: Batch,
    pool: BufPool,
}

/// A turn's broadcast messages, encoded once and back to back, fanned out at
/// the end of the turn as one shared buffer: each receiver gets one queue
/// entry and one `writev` for the whole turn, however many messages.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Each frame's sender and where the frame is in `bytes`.
    frames: Vec<(ConnId, Range<usize>)>,
}

/// A WebSocket server: a listener, a slab of connections, one thread.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    cfg: Config,
    conns: Slab<Connection>,
    hub: Hub,
    io: Io,
    handshake_timers: TimerQueue,
    close_timers: TimerQueue,
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
    now: Instant,
    stats: Stats,
}

impl Server {
    /// Binds the listener and sets up the reactor.
    pub fn bind(cfg: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = listener::bind(cfg.listen, cfg.backlog, cfg.reuse_port)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listener.local_addr()?;
        Ok(Server {
            poll,
            listener,
            local_addr,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            // Reserve the slab up front: untouched capacity is virtual
            // memory, so resident memory grows only with real connections,
            // and the slab never reallocates (and copies) under load.
            conns: Slab::with_capacity(cfg.max_connections.min(1 << 20) + REFUSAL_HEADROOM),
            hub: Hub::default(),
            io: Io {
                read: vec![0u8; READ_CHUNK].into_boxed_slice(),
                out: Vec::new(),
                batch: Batch::default(),
                pool: BufPool::new(64),
            },
            handshake_timers: TimerQueue::new(cfg.handshake_timeout),
            close_timers: TimerQueue::new(cfg.close_timeout),
            ready: Vec::new(),
            turn: 0,
            spare: Vec::new(),
            closing: 0,
            next_gen: 0,
            accept_paused_until: None,
            now: Instant::now(),
            stats: Stats::default(),
            cfg,
        })
    }

    /// The address the listener is bound to (the real port if 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            waker: self.waker.clone(),
            stop: self.stop.clone(),
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

    /// Runs the loop until a [`ShutdownHandle`] stops it. Only a failure of
    /// the poller itself ends it with an error; per-connection and accept
    /// errors are counted and handled.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = mio::Events::with_capacity(1024);
        while !self.stop.load(Ordering::Acquire) {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
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
        Ok(())
    }

    /// How long the poll may sleep: not at all if connections wait on the
    /// ready list, else until the nearest deadline.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [
            self.handshake_timers.next(),
            self.close_timers.next(),
            self.accept_paused_until,
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

        self.now = Instant::now();
        while let Some(id) = self.handshake_timers.expired(self.now) {
            if self.live(id) && self.conns[id.key].phase == Phase::Handshake {
                self.handshake_timeout(id.key);
            }
        }
        while let Some(id) = self.close_timers.expired(self.now) {
            if self.live(id) {
                debug!("conn {}: close timeout", id.key);
                self.stats.close_timeouts += 1;
                self.drop_conn(id.key);
            }
        }
        if self.accept_paused_until.is_some_and(|t| t <= self.now) {
            self.accept_paused_until = None;
            self.accept();
        }

        self.fan_out();
        self.turn = self.turn.wrapping_add(1);
    }

    fn live(&self, id: ConnId) -> bool {
        self.conns.get(id.key).is_some_and(|c| c.gen == id.gen)
    }

    fn accept(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let (mut stream, peer) = match self.listener.accept() {
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
                debug!("{peer}: refused, {} connections held", self.conns.len());
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
        let Server {
            conns,
            io,
            cfg,
            hub,
            stats,
            ..
        } = self;
        let Io {
            read,
            out,
            batch,
            pool,
        } = io;
        let Some(conn) = conns.get_mut(key) else {
            return;
        };
        let mut rbuf = std::mem::take(&mut conn.rbuf);
        let data: &mut [u8] = if into_own {
            rbuf.advance(n);
            rbuf.filled_mut()
        } else {
            &mut read[..n]
        };
        let published = batch.frames.len();
        let mut sink = Sink {
            out,
            batch,
            stats,
            sender: conn.id(key),
            mode: cfg.mode,
        };
        let (keep, refused) = match conn.phase {
            Phase::Handshake => match handshake(conn, key, data, cfg, hub, &mut sink) {
                Ok(keep) => (keep, false),
                Err(e) => {
                    info!(
                        "conn {key}: handshake refused: {} {}",
                        e.status(),
                        e.reason().1
                    );
                    *stats.handshake_failures.entry(e.status()).or_default() += 1;
                    handshake::write_error(out, e);
                    (0, true)
                }
            },
            Phase::Open => (conn.session.feed(data, &cfg.limits, &mut sink), false),
            Phase::Closing | Phase::Draining => (0, false),
        };
        if into_own {
            rbuf.keep(keep, pool);
        } else if keep > 0 {
            rbuf.store(&read[..keep], pool);
        }
        conn.rbuf = rbuf;
        if batch.frames.len() > published {
            conn.sent_turn = self.turn;
        }
        let failed = conn.phase == Phase::Open && conn.session.state() == State::Closed;
        if failed {
            if let Some(e) = conn.session.error() {
                debug!("conn {key}: protocol error: {e}");
                stats.protocol_errors += 1;
            }
        }
        if refused || failed {
            let id = conn.id(key);
            self.enter_closing(id);
        }
        if self.io.batch.bytes.len() >= BATCH_LIMIT {
            self.fan_out();
        }
    }

    /// Sends the batch of broadcast messages to every open member: the
    /// bytes become one shared buffer that every member's queue references.
    fn fan_out(&mut self) {
        if self.io.batch.frames.is_empty() {
            return;
        }
        let next_capacity = self.io.batch.bytes.len().min(BATCH_LIMIT);
        let bytes = Rc::new(std::mem::replace(
            &mut self.io.batch.bytes,
            Vec::with_capacity(next_capacity),
        ));
        let mut frames = std::mem::take(&mut self.io.batch.frames);
        let mut i = 0;
        while let Some(&key) = self.hub.members().get(i) {
            self.deliver(key, &bytes, &frames);
            // A member dropped by a write error left its slot to the last
            // member, which has not been served yet.
            if self.hub.members().get(i) == Some(&key) {
                i += 1;
            }
        }
        frames.clear();
        self.io.batch.frames = frames;
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
                    debug!(
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
        debug!("conn {key}: handshake timeout");
        *self.stats.handshake_failures.entry(408).or_default() += 1;
        handshake::write_response(
            &mut self.io.out,
            408,
            "Request Timeout",
            "",
            "handshake timeout",
        );
        let id = self.conns[key].id(key);
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
        if let Some(slot) = conn.hub_slot {
            if let Some(moved) = self.hub.leave(slot as usize) {
                if let Some(m) = self.conns.get_mut(moved) {
                    m.hub_slot = Some(slot);
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

/// Handles input while waiting for the upgrade request; returns the bytes to
/// keep, or the reason to refuse it. On success the rest of the input is fed
/// to the session at once: a client may send frames right behind its request.
fn handshake(
    conn: &mut Connection,
    key: usize,
    data: &mut [u8],
    cfg: &Config,
    hub: &mut Hub,
    sink: &mut Sink<'_>,
) -> Result<usize, HandshakeError> {
    if !handshake::has_head_end(data) {
        if data.len() < cfg.max_header_bytes {
            return Ok(data.len());
        }
        return Err(HandshakeError::TooLarge);
    }
    let offset = match handshake::parse_request(data, cfg.max_header_bytes)? {
        Parsing::NeedMore(_) => return Ok(data.len()),
        Parsing::Done { value, offset } => {
            handshake::write_accept(sink.out, value.key, None);
            offset
        }
    };
    sink.stats.handshakes += 1;
    conn.phase = Phase::Open;
    if sink.mode == Mode::Broadcast {
        // Slots are below the slab's capacity, which fits in u32 by far.
        conn.hub_slot = u32::try_from(hub.join(key)).ok();
    }
    let keep = conn.session.feed(&mut data[offset..], &cfg.limits, sink);
    data.copy_within(offset..offset + keep, 0);
    Ok(keep)
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
    batch: &'a mut Batch,
    stats: &'a mut Stats,
    /// The connection whose input is being processed.
    sender: ConnId,
    mode: Mode,
}

impl Events for Sink<'_> {
    fn message(&mut self, kind: MessageKind, payload: &[u8]) {
        self.stats.messages_in += 1;
        match self.mode {
            Mode::Echo => {
                write_message(self.out, kind, payload);
                self.stats.messages_out += 1;
            }
            Mode::Broadcast => {
                // Encoded once, into the turn's batch, which every member
                // (the sender too, unless excluded) gets in the same order.
                let start = self.batch.bytes.len();
                write_message(&mut self.batch.bytes, kind, payload);
                let end = self.batch.bytes.len();
                self.batch.frames.push((self.sender, start..end));
            }
        }
    }

    fn send(&mut self, frame: &[u8]) {
        self.out.extend_from_slice(frame);
    }
}
