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
//!
//! # Layout
//!
//! This file holds the loop: poll, dispatch by token, and the end-of-turn
//! steps in [`Server::end_turn`]'s order. Each job has a file of its own,
//! all of them `impl Server` blocks over the same state:
//!
//! - `accept`: listeners, the connection limit, accept back-off;
//! - `upgrade`: the handshake phase, plain HTTP, the handshake timeout;
//! - `read`: reads, budgets, handing bytes to the protocol;
//! - `sink`: what a message does (echo, or a room's batch);
//! - `write`: writes, write interest, backpressure;
//! - `fanout`: room batches to members, the slow-consumer policy;
//! - `keepalive`: pings, ping and idle timeouts;
//! - `closing`: the closing sequence, the graceful drain, removal;
//! - `relay`: messages to and from the bus to other nodes (`--redis`).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::info;
use mio::net::TcpListener;
use mio::{Interest, Poll, Token, Waker};
use slab::Slab;

use super::buffer::{BufPool, SHARED_READ_LEN};
use super::cluster::{Cluster, Published, RoomShare};
use super::conn::Connection;
use super::listener;
use super::throttle::Throttle;
use super::timer::{Deadlines, TimerQueue};
use super::tls::{Loaded, TlsSlot};
use crate::bus::{Bus, BusStats, RedisBus};
use crate::config::Config;
use crate::hub::Hub;
use crate::id::ConnId;
pub use crate::stats::Stats;
use accept::REFUSAL_HEADROOM;

/// Logs a refusal or a misbehaving client at info, through the server's
/// throttle: at most 10 such lines a second, never one per frame.
macro_rules! notice {
    ($server:expr, $($arg:tt)*) => {
        if let Some(held) = $server.throttle.pass($server.now) {
            log::info!("{}{}", format_args!($($arg)*), $crate::net::reactor::suppressed(held));
        }
    };
}

// After `notice!`, which they use.
mod accept;
mod closing;
pub(crate) mod compress;
mod fanout;
mod keepalive;
mod read;
mod relay;
mod sink;
mod upgrade;
mod write;

const WAKER: Token = Token(usize::MAX);

/// The bus's two sockets: just below the listeners' tokens.
const BUS_SUB: Token = Token(usize::MAX - 1 - MAX_LISTENERS);
const BUS_PUB: Token = Token(usize::MAX - 2 - MAX_LISTENERS);

/// Listener `i`'s token: counted down from just below the waker's, far
/// above any slab key.
fn listener_token(i: usize) -> Token {
    Token(usize::MAX - 1 - i)
}

/// The most listening sockets one server takes.
pub const MAX_LISTENERS: usize = 64;

/// Reads one connection may do per turn before others get a go.
const READ_BUDGET: usize = 16;

/// A turn's broadcast batch above which it is fanned out at once, so one
/// busy turn cannot hold an unbounded batch.
const BATCH_LIMIT: usize = 256 << 10;

/// Scratch output above which it is written out before reading more.
const OUT_FLUSH_AT: usize = 256 << 10;

/// Why a connection is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wakeup {
    /// A readiness event; `hup` if it also said the peer closed its side or
    /// the socket has an error.
    Event { hup: bool },
    /// A visit from the ready list, with no event behind it.
    Revisit,
}

// The control word every reactor reads: 0 (run, the start), then these.
const DRAIN: u8 = 1;
const STOP: u8 = 2;

/// Stops a running [`Server`], or every reactor of a process, from another
/// thread (a signal handler's, say).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    cluster: Arc<Cluster>,
    /// The certificate the reactors share, if they speak TLS.
    tls: Option<TlsSlot>,
}

impl ShutdownHandle {
    /// Asks for a graceful shutdown: send Close 1001 (going away) to every
    /// client, refuse new upgrades with 503 (plain HTTP is still answered,
    /// `/healthz` with 503), and return from [`Server::run`] once every
    /// connection has closed or the drain timeout has passed.
    pub fn drain(&self) {
        self.cluster.control().fetch_max(DRAIN, Ordering::AcqRel);
        self.cluster.wake_all();
    }

    /// Asks [`Server::run`] to return at once.
    pub fn shutdown(&self) {
        self.cluster.control().store(STOP, Ordering::Release);
        self.cluster.wake_all();
    }

    /// Reloads the TLS certificate and key from their files, on the
    /// calling thread (the reactors do no file I/O): new handshakes on
    /// every reactor get the new pair, established connections keep
    /// theirs. `None` without TLS; an error (the old pair stays) says why.
    pub fn reload_tls(&self) -> Option<Result<Loaded, String>> {
        self.tls.as_ref().map(TlsSlot::reload)
    }
}

/// How often a reactor of several publishes its counters for the others'
/// `/metrics` and summary lines.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

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
    /// The WebSocket listeners' addresses, then the metrics listeners'.
    local_addrs: Vec<SocketAddr>,
    /// The first of `local_addrs` (there is always one).
    primary_addr: SocketAddr,
    cfg: Config,
    /// What the process's reactors share; this one is number `me`.
    cluster: Arc<Cluster>,
    me: usize,
    /// Reactors handed a batch this turn, to wake once each.
    handed: u64,
    /// The earliest this reactor publishes its counters again (with
    /// several), and when it will: only once something changed.
    next_publish: Instant,
    publish_due: Option<Instant>,
    /// What it published last.
    published: Published,
    /// The bus to other nodes (`--redis`), on the first reactor only.
    bus: Option<Box<dyn Bus>>,
    /// The bus's counters at the last summary line.
    bus_summarized: BusStats,
    /// With several reactors: every room the process has members of, for
    /// the bus's messages (the first reactor only).
    bus_rooms: HashMap<Arc<str>, Arc<RoomShare>>,
    /// This turn's bus messages for rooms with members on other reactors only.
    remote: Vec<relay::Remote>,
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
    /// permessage-deflate's shared state.
    zlib: compress::Zlib,
}

impl Server {
    /// Binds the listeners and sets up the reactor: a server on its own.
    pub fn bind(cfg: Config) -> io::Result<Server> {
        Server::bind_reactor(cfg, Cluster::new(1), 0)
    }

    /// Binds the listeners and sets up reactor `me` of `cluster`.
    pub fn bind_reactor(cfg: Config, cluster: Arc<Cluster>, me: usize) -> io::Result<Server> {
        let all = cfg.listen.len() + cfg.metrics_listen.len();
        if cfg.listen.is_empty() || all > MAX_LISTENERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("between 1 and {MAX_LISTENERS} listen addresses"),
            ));
        }
        let poll = Poll::new()?;
        let reactors = cluster.reactors();
        let mut listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for (i, addr) in cfg.listen.iter().chain(&cfg.metrics_listen).enumerate() {
            let mut l = listener::bind(*addr, cfg.backlog, cfg.reuse_port, cfg.tcp_keepalive)?;
            poll.registry()
                .register(&mut l, listener_token(i), Interest::READABLE)?;
            local_addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let primary_addr = *local_addrs
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listen address"))?;
        cluster.set_waker(me, Arc::new(Waker::new(poll.registry(), WAKER)?));
        let mut bus: Option<Box<dyn Bus>> = match (&cfg.redis, me) {
            (Some(redis), 0) => Some(Box::new(
                RedisBus::new(redis.clone(), BUS_SUB, BUS_PUB)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            )),
            _ => None,
        };
        if let Some(bus) = bus.as_deref_mut() {
            bus.start(poll.registry(), Instant::now());
        }
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
            cluster,
            me,
            handed: 0,
            next_publish: now,
            publish_due: None,
            published: Published::default(),
            bus,
            bus_summarized: BusStats::default(),
            bus_rooms: HashMap::new(),
            remote: Vec::new(),
            // Reserve the slab up front: untouched capacity is virtual
            // memory, so resident memory grows only with real connections,
            // and the slab never reallocates (and copies) under load.
            conns: Slab::with_capacity(cfg.max_connections.min(1 << 20) + REFUSAL_HEADROOM),
            hub: Hub::default(),
            io: Io {
                read: vec![0u8; SHARED_READ_LEN].into_boxed_slice(),
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
            zlib: compress::Zlib::new(&cfg, reactors),
            cfg,
        })
    }

    /// The address the first listener is bound to (the real port if 0 was
    /// asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.primary_addr
    }

    /// The addresses of every WebSocket listener, in the order configured.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.local_addrs
            .get(..self.cfg.listen.len())
            .unwrap_or_default()
    }

    /// The addresses of the `--metrics-listen` listeners, in the order
    /// configured.
    pub fn metrics_addrs(&self) -> &[SocketAddr] {
        self.local_addrs
            .get(self.cfg.listen.len()..)
            .unwrap_or_default()
    }

    /// A handle that stops or drains [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            cluster: self.cluster.clone(),
            tls: self.cfg.tls.clone(),
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
            match self.cluster.control().load(Ordering::Acquire) {
                STOP => {
                    self.publish_now();
                    return Ok(());
                }
                DRAIN if self.drain_until.is_none() => self.begin_drain(),
                _ => {}
            }
            if let Some(until) = self.drain_until {
                if self.conns.is_empty() || self.now >= until {
                    self.end_drain();
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
                    token if self.bus.as_deref().is_some_and(|b| b.owns(token)) => {
                        if let Some(bus) = self.bus.as_deref_mut() {
                            bus.on_event(self.poll.registry(), ev, self.now);
                        }
                    }
                    Token(t) if t >= usize::MAX - MAX_LISTENERS => self.accept(usize::MAX - 1 - t),
                    Token(key) => {
                        let hup = ev.is_read_closed() || ev.is_error();
                        if ev.is_readable() || hup {
                            self.on_readable(key, Wakeup::Event { hup });
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
            self.publish_due,
            self.bus.as_deref().and_then(|b| b.next_deadline()),
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

    /// The steps that close a turn, in order.
    fn end_turn(&mut self) {
        self.revisit_ready();
        self.tick();
        self.expire_handshakes();
        self.expire_closes();
        self.expire_keepalive();
        self.resume_accepts();
        self.take_handoffs();
        self.bus_inbound();
        self.fan_out();
        self.bus_flush();
        self.wake_handed();
        self.publish_stats();
        self.log_summary();
        self.turn = self.turn.wrapping_add(1);
    }

    /// Reads again from connections that still had input when their budget
    /// ran out, or that were paused and have drained.
    fn revisit_ready(&mut self) {
        let mut ready = std::mem::replace(&mut self.ready, std::mem::take(&mut self.spare));
        for id in ready.drain(..) {
            if self.live(id) {
                self.on_readable(id.key, Wakeup::Revisit);
            }
        }
        self.spare = ready;
    }

    /// The `--stats-interval` line, when it is due.
    /// With several reactors, the first logs the process's totals and the
    /// others none.
    fn log_summary(&mut self) {
        if self.me != 0 {
            return;
        }
        if let Some(at) = self.next_summary.filter(|t| *t <= self.now) {
            let (stats, held) = self.process_stats();
            let (since, prev) = &self.summarized;
            let mut line = stats.summary_since(prev, self.now.duration_since(*since), held);
            if let Some(bus) = self.bus.as_deref() {
                line.push_str("; ");
                line.push_str(&bus.stats().summary_since(&self.bus_summarized));
                self.bus_summarized = bus.stats().clone();
            }
            info!("{line}");
            self.summarized = (self.now, stats);
            self.next_summary = self.cfg.stats_interval.map(|d| (at + d).max(self.now));
        }
    }

    /// The process's counters and connections held: this reactor's now,
    /// plus the others' as last published (at most [`PUBLISH_EVERY`] old).
    fn process_stats(&self) -> (Stats, usize) {
        let mut stats = self.stats.clone();
        let held = self.conns.len() + self.cluster.add_others(self.me, &mut stats);
        (stats, held)
    }

    /// Publishes this reactor's counters for the others: at most every
    /// [`PUBLISH_EVERY`], and only after a change, whose publish is then a
    /// deadline of the poll (so an idle reactor's last burst is not held
    /// back until something else wakes it, and an idle reactor sleeps).
    fn publish_stats(&mut self) {
        if self.cluster.reactors() == 1 {
            return;
        }
        if self.publish_due.is_none() && self.changed_since_publish() {
            self.publish_due = Some(self.next_publish.max(self.now));
        }
        if self.publish_due.is_some_and(|t| t <= self.now) {
            self.publish_now();
        }
    }

    /// Whether the counters, the connections held or the bus's counters
    /// differ from what was published last.
    fn changed_since_publish(&mut self) -> bool {
        compress::report(&self.zlib.neg, &mut self.stats);
        let p = &self.published;
        p.connections != self.conns.len()
            || p.stats != self.stats
            || p.bus.as_ref() != self.bus.as_deref().map(|b| b.stats())
    }

    fn publish_now(&mut self) {
        compress::report(&self.zlib.neg, &mut self.stats);
        self.published = Published {
            stats: self.stats.clone(),
            connections: self.conns.len(),
            bus: self.bus.as_deref().map(|b| b.stats().clone()),
        };
        self.cluster.publish(self.me, self.published.clone());
        self.next_publish = self.now + PUBLISH_EVERY;
        self.publish_due = None;
    }

    /// Whether `id` still names a connection in the slab (slab keys are
    /// reused; the generation tells).
    fn live(&self, id: ConnId) -> bool {
        self.conns.get(id.key).is_some_and(|c| c.gen == id.gen)
    }
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
