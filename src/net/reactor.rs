//! The event loop: one thread, one mio `Poll`, one slab of connections.
//! A process runs one of these per `--threads` (see [`crate::net::process`]).
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
//! This file holds the loop (poll, `dispatch` by token, the end-of-turn
//! steps in `end_turn`'s order) and the [`Server`]
//! struct, whose state is in named parts, one per job, each with its own
//! methods; a job that needs another part gets it passed:
//!
//! - `accept` (`Doors`): listeners, the connection
//!   limit, accept back-off;
//! - `timers` (`Timers`): handshake, close and keepalive
//!   deadlines and the drain's end, and the nearest of them;
//! - `peers` (`Peers`): the other reactors of the process
//!   (`--threads`): hand-offs, wake-ups, counters published on a deadline;
//! - `relay` (`BusLink`): the bus to other nodes
//!   (`--redis`), on the first reactor;
//! - `report` (`Report`): the counters, the log
//!   throttle, the summary line;
//! - `compress` (`Zlib`): permessage-deflate's shared state;
//! - the connections' slab, the ready list and the shared buffers (`Io`)
//!   stay here; the hub is [`crate::hub`].
//!
//! The jobs that work across parts are `impl Server` blocks, one file each:
//! `upgrade` (the handshake phase, plain HTTP, the handshake timeout),
//! `read` (reads, budgets, handing bytes to the protocol), `sink` (what a
//! message does: echo, or a room's batch), `write` (writes, write
//! interest, backpressure), `fanout` (room batches to members, the
//! slow-consumer policy), `keepalive` (pings, ping and idle timeouts),
//! `expiry` (closing connections whose token expired) and
//! `closing` (the closing sequence, the graceful drain, removal).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Poll, Token, Waker};
use slab::Slab;

use super::buffer::{BufPool, SHARED_READ_LEN};
use super::cluster::Cluster;
use super::conn::Connection;
use crate::api::ApiKeySlot;
use crate::auth::{KeyError, KeySet, KeySlot};
use crate::config::Config;
use crate::hub::Hub;
use crate::id::ConnId;
pub use crate::stats::Stats;
use crate::tls::{Loaded, TlsSlot};
use accept::{Doors, REFUSAL_HEADROOM};
use clock::{earliest, millis, Clock};
use peers::{Current, Peers};
use relay::BusLink;
use report::Report;
use timers::Timers;

/// Logs a refusal or a misbehaving client at info, through the server's
/// throttle: at most 10 such lines a second, never one per frame.
macro_rules! notice {
    ($server:expr, $($arg:tt)*) => {
        if let Some(held) = $server.report.throttle.pass($server.clock.now) {
            log::info!("{}{}", format_args!($($arg)*), $crate::net::reactor::suppressed(held));
        }
    };
}

// After `notice!`, which they use.
mod accept;
mod api;
mod clock;
mod closing;
pub(crate) mod compress;
mod expiry;
mod fanout;
mod frames;
mod keepalive;
mod peers;
mod read;
mod recall;
mod recorded;
mod relay;
mod report;
mod sink;
mod timers;
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

pub use crate::config::MAX_LISTENERS;

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
    /// The `--auth-key` files the reactors share, if any.
    auth: Option<KeySlot>,
    /// The publish API's keys, if any.
    api_keys: Option<ApiKeySlot>,
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

    /// Reloads the `--auth-key` files, on the calling thread, like
    /// [`ShutdownHandle::reload_tls`]: new upgrades on every reactor are
    /// checked with the new keys, open connections keep their rights.
    /// `None` without keys; an error (the old keys stay) names the file.
    pub fn reload_auth(&self) -> Option<Result<Arc<KeySet>, KeyError>> {
        self.auth.as_ref().map(KeySlot::reload)
    }

    /// Rereads the `--api-key` files on the calling thread: every
    /// reactor's next request is checked against the new keys. `None`
    /// without keys; an error (the old keys stay) names the file, never a
    /// key. `Ok` says how many keys there are.
    pub fn reload_api_keys(&self) -> Option<Result<usize, String>> {
        self.api_keys.as_ref().map(ApiKeySlot::reload)
    }

    /// Whether there are `--api-key` files to reload.
    pub fn has_api_keys(&self) -> bool {
        self.api_keys.is_some()
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

/// Connections to read again without a new readiness edge: those that
/// used their read budget with input left, and paused ones that drained.
/// Double-buffered, so a visit may put a connection back for next turn.
#[derive(Default)]
struct Ready {
    next: Vec<ConnId>,
    spare: Vec<ConnId>,
}

impl Ready {
    fn push(&mut self, id: ConnId) {
        self.next.push(id);
    }

    fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// The connections to visit now; hand the emptied list back with
    /// [`Ready::done`].
    fn take(&mut self) -> Vec<ConnId> {
        std::mem::replace(&mut self.next, std::mem::take(&mut self.spare))
    }

    fn done(&mut self, mut visited: Vec<ConnId>) {
        visited.clear();
        self.spare = visited;
    }
}

/// A WebSocket server: listeners, a slab of connections, one thread.
///
/// Its state is in parts, one per job: each part's fields are for its own
/// methods, and a job that needs another part gets it passed.
pub struct Server {
    poll: Poll,
    cfg: Config,
    clock: Clock,
    /// The listening sockets and the accept pause (`accept`).
    doors: Doors,
    /// The connections; a connection's state is its own (`net::conn`).
    conns: Slab<Connection>,
    ready: Ready,
    /// Counts reactor turns; marks which connections published this turn.
    turn: u32,
    /// Handshake, close, keepalive and drain deadlines.
    timers: Timers,
    /// Buffers shared by every connection (`read`, `write`).
    io: Io,
    /// Broadcast rooms and their batches of the turn (`sink`, `fanout`).
    hub: Hub,
    /// permessage-deflate's shared state (`compress`).
    zlib: compress::Zlib,
    /// The other reactors of the process (`--threads`).
    peers: Peers,
    /// The bus to other nodes (`--redis`, `relay`).
    link: BusLink,
    /// Joins reading their room's history from the bus (`recall`).
    recall: recall::Recall,
    /// The counters and the log.
    report: Report,
    /// Publish API connections' states and deadlines (`api`).
    api: api::ApiPart,
}

impl Server {
    /// Binds the listeners and sets up the reactor: a server on its own.
    pub fn bind(cfg: Config) -> io::Result<Server> {
        Server::bind_reactor(cfg, Cluster::new(1), 0)
    }

    /// Binds the listeners and sets up reactor `me` of `cluster`.
    pub fn bind_reactor(cfg: Config, cluster: Arc<Cluster>, me: usize) -> io::Result<Server> {
        let poll = Poll::new()?;
        let doors = Doors::bind(&cfg, poll.registry())?;
        cluster.set_waker(me, Arc::new(Waker::new(poll.registry(), WAKER)?));
        let link = BusLink::new(&cfg, me, poll.registry())?;
        let now = Instant::now();
        Ok(Server {
            poll,
            doors,
            clock: Clock::new(now),
            // Reserve the slab up front: untouched capacity is virtual
            // memory, so resident memory grows only with real connections,
            // and the slab never reallocates (and copies) under load.
            conns: Slab::with_capacity(cfg.max_connections.min(1 << 20) + REFUSAL_HEADROOM),
            ready: Ready::default(),
            turn: 0,
            timers: Timers::new(&cfg),
            io: Io {
                read: vec![0u8; SHARED_READ_LEN].into_boxed_slice(),
                out: Vec::new(),
                pool: BufPool::new(64),
            },
            hub: Hub::default(),
            zlib: compress::Zlib::new(&cfg, cluster.reactors()),
            peers: Peers::new(cluster, me, now),
            link,
            recall: recall::Recall::default(),
            report: Report::new(&cfg, now),
            api: api::ApiPart::new(&cfg),
            cfg,
        })
    }

    /// The address the first listener is bound to (the real port if 0 was
    /// asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.doors.primary
    }

    /// The addresses of every WebSocket listener, in the order configured.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.doors
            .addrs
            .get(..self.cfg.listen.len())
            .unwrap_or_default()
    }

    /// The addresses of the `--metrics-listen` listeners, in the order
    /// configured.
    pub fn metrics_addrs(&self) -> &[SocketAddr] {
        self.doors
            .addrs
            .get(self.cfg.listen.len()..)
            .unwrap_or_default()
    }

    /// A handle that stops or drains [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            cluster: self.peers.cluster.clone(),
            tls: self.cfg.tls.clone(),
            auth: self.cfg.auth.keys.clone(),
            api_keys: self.cfg.api_keys.clone(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.report.stats
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
            match self.peers.cluster.control().load(Ordering::Acquire) {
                STOP => {
                    self.publish_stats(true);
                    return Ok(());
                }
                DRAIN if self.timers.drain_until.is_none() => self.begin_drain(),
                _ => {}
            }
            if let Some(until) = self.timers.drain_until {
                if self.conns.is_empty() || self.clock.now >= until {
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
            self.clock.tick();
            for ev in events.iter() {
                self.dispatch(ev);
            }
            self.end_turn();
        }
    }

    /// Routes one readiness event: to the bus, a listener or a connection.
    fn dispatch(&mut self, ev: &mio::event::Event) {
        if self.link.on_event(self.poll.registry(), ev, self.clock.now) {
            return;
        }
        match ev.token() {
            WAKER => {}
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

    /// How long the poll may sleep: not at all if connections wait on the
    /// ready list, else until the nearest deadline of any part.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [
            self.timers.next(self.clock.started),
            self.doors.paused_until,
            self.report.next_deadline(),
            self.peers.next_deadline(),
            self.link.next_deadline(),
            self.recall.next_deadline(),
            self.api.next_deadline(),
        ]
        .into_iter()
        .fold(None, earliest)?;
        // Round up to whole milliseconds so a wakeup never comes early and
        // spins. From the turn's reading: the turn's own work only makes
        // the wakeup later, never earlier.
        let wait = next.saturating_duration_since(self.clock.now);
        Some(Duration::from_millis(millis(wait).saturating_add(1)))
    }

    /// The steps that close a turn, in order.
    fn end_turn(&mut self) {
        self.revisit_ready();
        self.expire_handshakes();
        self.expire_closes();
        self.expire_keepalive();
        self.expire_tokens();
        self.expire_api();
        self.resume_accepts();
        self.take_handoffs();
        self.bus_inbound();
        self.fan_out();
        self.link.flush(self.poll.registry(), self.clock.now);
        self.peers.wake_handed();
        self.publish_stats(false);
        self.log_summary();
        self.turn = self.turn.wrapping_add(1);
    }

    /// Reads again from connections that still had input when their budget
    /// ran out, or that were paused and have drained.
    fn revisit_ready(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        let mut ready = self.ready.take();
        for id in ready.drain(..) {
            if self.live(id) {
                self.on_readable(id.key, Wakeup::Revisit);
            }
        }
        self.ready.done(ready);
    }

    /// The bus's messages of the turn, into the rooms' batches here or
    /// handed to the reactors with members.
    fn bus_inbound(&mut self) {
        let registry = self.poll.registry();
        let (hub, peers) = (&mut self.hub, &mut self.peers);
        self.link.inbound(registry, self.clock.now, hub, peers);
        if self.link.records() {
            // Its own clients' messages, back recorded: their senders
            // published this turn, for --exclude-sender.
            for id in self.link.take_returned() {
                if let Some(conn) = self.conns.get_mut(id.key).filter(|c| c.gen == id.gen) {
                    conn.sent_turn = self.turn;
                }
            }
            self.take_answers();
            self.start_reads();
        }
    }

    /// The `--stats-interval` line, when it is due.
    /// With several reactors, the first logs the process's totals and the
    /// others none.
    fn log_summary(&mut self) {
        if self.peers.me != 0 || !self.report.summary_due(self.clock.now) {
            return;
        }
        let (stats, held) = self.process_stats();
        let more = self.link.summary();
        self.report
            .log_summary(&self.cfg, self.clock.now, stats, held, more);
    }

    /// The process's counters and connections held: this reactor's now,
    /// plus the others' as last published.
    fn process_stats(&self) -> (Stats, usize) {
        self.peers
            .process_stats(&self.report.stats, self.conns.len())
    }

    /// Publishes this reactor's counters for the others, if due (or `now`).
    fn publish_stats(&mut self, now: bool) {
        if !self.peers.several() {
            return;
        }
        compress::report(&self.zlib.neg, &mut self.report.stats);
        let current = Current {
            stats: &self.report.stats,
            connections: self.conns.len(),
            bus: self.link.stats(),
        };
        if now {
            self.peers.publish(self.clock.now, current);
        } else {
            self.peers.publish_if_due(self.clock.now, current);
        }
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
