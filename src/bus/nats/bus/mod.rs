//! [`NatsBus`]: the [`Bus`] over NATS core pub/sub, one connection in the
//! reactor's `Poll`.
//!
//! The connection is a [`Link`], as each of Redis's two is. Its login:
//! the server speaks first with `INFO`; the bus answers `CONNECT` (no
//! verbose `+OK`s, no echo of its own publishes, credentials from the URL)
//! and `PING`, and is Ready at the `PONG`. Any `-ERR` but a permissions
//! violation, a protocol violation, or a `PING` of ours unanswered for the
//! connect timeout resets it; it comes back after a capped, jittered
//! backoff, to the next server of the list (and of those the cluster
//! advertises in `INFO`), and then resubscribes every room with local
//! members.
//!
//! NATS acknowledges nothing per message, so the bus asks: after a turn's
//! publishes and subscription changes it sends one `PING` (while none is
//! unanswered), and the server's `PONG`, which comes after it has handled
//! everything sent before, acknowledges them all. `published` and
//! `subscriptions` count what a `PONG` confirmed; what was sent and not
//! confirmed when the connection is lost is dropped as `reset`, as with
//! Redis.
//!
//! Each room is two subscriptions with consecutive ids, an even one for its
//! envelope subject and the next for its raw subject (see
//! [`super::subject`]); a `MSG` finds its room by its subscription id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use log::{debug, info, warn};
use mio::event::Event;
use mio::{Registry, Token};

use super::codec;
use super::info::{ServerInfo, DEFAULT_MAX_PAYLOAD};
use super::subject::{self, RAW};
use super::url::{Credentials, NatsConfig};
use crate::bus::clash::ClashWarning;
use crate::bus::envelope::{self, Instance, MAX_HEADER};
use crate::bus::link::{Link, ReadEnd, State};
use crate::bus::{Bus, BusStats, Delivery, DropReason};
use crate::proto::MessageKind;

mod ops;

/// The longest subject published or subscribed to: a control line of the
/// server (`max_control_line`, 4 KiB by default) holds it and a number.
const MAX_SUBJECT: usize = 4000;

/// Buffer room beyond the largest message, so one in progress always
/// leaves space to read into.
const SLACK: usize = 128 << 10;

/// Read rounds per `take_inbound`, on top of `on_event`'s.
const READ_ROUNDS: usize = 8;

/// A `PING` of ours awaiting its `PONG`, and what the `PONG` confirms.
#[derive(Clone, Copy, Debug)]
struct Ping {
    /// Publishes sent before it.
    publishes: u64,
    /// Rooms subscribed when it was sent.
    subscriptions: u64,
}

/// A [`Bus`] over NATS. See the module doc.
#[derive(Debug)]
pub struct NatsBus {
    cfg: NatsConfig,
    /// The server's `--max-message`: the largest payload published or
    /// accepted.
    max_message: usize,
    instance: Instance,
    limits: codec::Limits,
    link: Link,
    /// The servers to try, in turn: the configured ones, then those the
    /// cluster advertised.
    addrs: Vec<SocketAddr>,
    /// The connected server's `max_payload`: a larger envelope is dropped,
    /// never sent (the server would close the connection).
    server_max_payload: usize,
    /// The connected server's id, for logs.
    server_id: String,
    /// `CONNECT` went out on this connection.
    greeted: bool,
    /// A permissions violation was warned about on this connection.
    denied_warned: bool,
    /// Rooms with local members.
    rooms: HashSet<Box<str>>,
    /// Rooms subscribed on this connection, with their envelope sid.
    told: HashMap<Box<str>, u64>,
    /// The inverse of `told`: envelope sid to room.
    sids: HashMap<u64, Box<str>>,
    next_sid: u64,
    /// Rooms whose membership changed since the last flush.
    dirty: Vec<Box<str>>,
    /// Our `PING`s awaiting their `PONG`, oldest first.
    pings: VecDeque<Ping>,
    /// When the oldest unanswered `PING` went out.
    ping_sent: Option<Instant>,
    /// Publishes queued since the last `PING`.
    unpinged: u64,
    /// Subscriptions changed since the last `PING`.
    subs_changed: bool,
    /// Scratch for a subject.
    subject: Vec<u8>,
    stats: BusStats,
    now: Instant,
    outage_logged: bool,
    ever_up: bool,
    /// Warns about node-id clashes.
    clash: ClashWarning,
}

impl NatsBus {
    /// A bus on `cfg` for messages of up to `max_message` bytes, its
    /// connection on `token`. Nothing connects before [`Bus::start`].
    pub fn new(cfg: NatsConfig, max_message: usize, token: Token) -> Result<NatsBus, String> {
        cfg.validate()?;
        let max_payload = max_message.saturating_add(MAX_HEADER);
        let in_cap = max_payload
            .saturating_add(codec::MAX_LINE)
            .saturating_add(SLACK);
        let backoff = (cfg.backoff_min, cfg.backoff_max);
        Ok(NatsBus {
            max_message,
            instance: crate::bus::random_u64().to_le_bytes(),
            limits: codec::Limits { max_payload },
            link: Link::new("nats", token, in_cap, backoff, crate::bus::random_u64()),
            addrs: cfg.addrs.clone(),
            server_max_payload: DEFAULT_MAX_PAYLOAD,
            server_id: String::new(),
            greeted: false,
            denied_warned: false,
            rooms: HashSet::new(),
            told: HashMap::new(),
            sids: HashMap::new(),
            next_sid: 2,
            dirty: Vec::new(),
            pings: VecDeque::new(),
            ping_sent: None,
            unpinged: 0,
            subs_changed: false,
            subject: Vec::new(),
            stats: BusStats {
                engine: "nats",
                ..BusStats::default()
            },
            now: Instant::now(),
            outage_logged: false,
            ever_up: false,
            clash: ClashWarning::default(),
            cfg,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    fn attempt(&mut self, registry: &Registry) {
        let (timeout, now) = (self.cfg.connect_timeout, self.now);
        if let Err(e) = self.link.connect(registry, &self.addrs, timeout, now) {
            self.fail(registry, &format!("cannot connect: {e}"));
        }
    }

    /// Resets the connection: counts what it loses, logs (once per
    /// outage), and schedules the next attempt.
    fn fail(&mut self, registry: &Registry, why: &str) {
        let lost = self.unpinged + self.pings.iter().map(|p| p.publishes).sum::<u64>();
        self.stats.add_drops(DropReason::Reset, lost);
        self.link.reset(registry, self.now);
        self.pings.clear();
        self.ping_sent = None;
        self.unpinged = 0;
        self.subs_changed = false;
        self.greeted = false;
        self.told.clear();
        self.sids.clear();
        self.dirty.clear();
        self.stats.up = false;
        self.stats.subscriptions = 0;
        self.stats.queued_bytes = 0;
        let retry = self
            .link
            .deadline
            .map(|d| d.saturating_duration_since(self.now))
            .unwrap_or_default();
        if self.outage_logged {
            debug!("nats bus: {why}; retrying in {retry:?}");
        } else {
            warn!(
                "nats bus: {} (server {}): {why}; retrying with backoff (up to {:?}) over {} servers, messages to other nodes are dropped meanwhile",
                self.cfg.url,
                self.server_id,
                self.cfg.backoff_max,
                self.addrs.len()
            );
            self.outage_logged = true;
        }
    }

    /// The last login reply came.
    fn on_ready(&mut self) {
        self.link.set_ready(self.now);
        if self.link.ever_ready {
            self.stats.reconnects += 1;
        }
        self.link.ever_ready = true;
        self.stats.up = true;
        if !self.ever_up {
            info!(
                "nats bus: connected to {} (server {}) as node {}",
                self.cfg.url, self.server_id, self.cfg.node_id
            );
        } else if self.outage_logged {
            info!("nats bus: connected again (server {})", self.server_id);
        }
        self.ever_up = true;
        self.outage_logged = false;
    }

    /// Handles `INFO`: the server's limits and peers; the first one on a
    /// connection is answered with the login.
    fn on_info(&mut self, json: &[u8]) -> Result<(), String> {
        let info = ServerInfo::parse(json)?;
        if info.tls_required {
            return Err("the server requires TLS, which wsd's NATS client does not speak".into());
        }
        self.server_max_payload = info.max_payload();
        for addr in info.cluster_addrs() {
            if !self.addrs.contains(&addr) {
                debug!("nats bus: the cluster advertises {addr}");
                self.addrs.push(addr);
            }
        }
        self.server_id = info.server_id;
        if !self.greeted {
            self.greeted = true;
            let name = format!("wsd-{}", self.cfg.node_id);
            let (user, pass, token) = match &self.cfg.url.credentials {
                Some(Credentials::UserPassword(u, p)) => (Some(u.as_str()), Some(p.as_str()), None),
                Some(Credentials::Token(t)) => (None, None, Some(t.as_str())),
                None => (None, None, None),
            };
            let out = self.link.out();
            codec::write_connect(
                out,
                &codec::Connect {
                    verbose: false,
                    pedantic: false,
                    tls_required: false,
                    name: &name,
                    lang: "rust",
                    version: env!("CARGO_PKG_VERSION"),
                    protocol: 1,
                    echo: false,
                    headers: false,
                    user,
                    pass,
                    auth_token: token,
                },
            );
            self.send_ping();
            // Every room is subscribed anew on this connection.
            self.dirty.clear();
            self.dirty.extend(self.rooms.iter().cloned());
        }
        Ok(())
    }

    fn on_pong(&mut self) -> Result<(), String> {
        let ping = self.pings.pop_front().ok_or("a PONG for no PING")?;
        self.ping_sent = (!self.pings.is_empty()).then_some(self.now);
        self.stats.published += ping.publishes;
        self.stats.subscriptions = ping.subscriptions;
        if self.link.state == State::Greeting {
            self.on_ready();
        }
        Ok(())
    }

    fn send_ping(&mut self) {
        codec::write_ping(self.link.out());
        if self.pings.is_empty() {
            self.ping_sent = Some(self.now);
        }
        self.pings.push_back(Ping {
            publishes: self.unpinged,
            subscriptions: self.told.len() as u64,
        });
        self.unpinged = 0;
        self.subs_changed = false;
    }

    /// Warns about a node-id clash, at most once a minute.
    fn warn_clash(&mut self) {
        let (count, now) = (self.stats.clash, self.now);
        self.clash.check("nats", &self.cfg.node_id, count, now);
    }

    fn ping_deadline(&self) -> Option<Instant> {
        match self.link.state {
            State::Ready => self.ping_sent.map(|t| t + self.cfg.connect_timeout),
            _ => None,
        }
    }
}

/// Writes the subject of `room` into `out` (cleared first): its envelope
/// subject, or its raw one.
fn write_subject(out: &mut Vec<u8>, prefix: &str, raw: bool, room: &str) {
    out.clear();
    out.extend_from_slice(prefix.as_bytes());
    if raw {
        out.extend_from_slice(RAW);
    }
    subject::encode_room(out, room);
}

/// At most 80 bytes of `bytes`, escaped, for a log line.
fn show(bytes: &[u8]) -> String {
    let shown = bytes.iter().take(80).flat_map(|b| b.escape_ascii());
    shown.map(char::from).collect()
}

impl Bus for NatsBus {
    fn start(&mut self, registry: &Registry, now: Instant) {
        self.now = now;
        self.attempt(registry);
    }

    fn owns(&self, token: Token) -> bool {
        token == self.link.token
    }

    fn on_event(&mut self, registry: &Registry, event: &Event, now: Instant) {
        self.now = now;
        if event.token() != self.link.token {
            return;
        }
        if self.link.state == State::Connecting {
            match self.link.finish_connect() {
                // The server speaks first (INFO).
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => return self.fail(registry, &format!("cannot connect: {e}")),
            }
        }
        if !self.link.is_connected() || self.link.broken.is_some() {
            return;
        }
        if event.is_writable() {
            if let Err(e) = self.link.write() {
                return self.fail(registry, &format!("write: {e}"));
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            match self.link.read() {
                ReadEnd::Drained | ReadEnd::More => {}
                // What came before the end is still handled; the next
                // flush resets the connection.
                ReadEnd::Eof => self.link.broken = Some("closed by the server".into()),
                ReadEnd::Error(e) => self.link.broken = Some(format!("read: {e}")),
            }
        }
        self.stats.queued_bytes = self.link.pending_out() as u64;
    }

    fn subscribe(&mut self, room: &str) {
        if !self.rooms.contains(room) {
            let room: Box<str> = room.into();
            self.rooms.insert(room.clone());
            self.dirty.push(room);
        }
    }

    fn unsubscribe(&mut self, room: &str) {
        if let Some(room) = self.rooms.take(room) {
            self.dirty.push(room);
        }
    }

    fn publish(&mut self, room: &str, kind: MessageKind, payload: &[u8], _sender: u64) -> bool {
        let prefix_len = self.cfg.prefix.len();
        let subject_len = prefix_len + subject::encoded_len(room);
        let envelope_len = envelope::header_len(self.cfg.node_id.len()) + payload.len();
        if payload.len() > self.max_message
            || envelope_len > self.server_max_payload
            || subject_len > MAX_SUBJECT
        {
            self.stats.count_drop(DropReason::TooLarge);
            return false;
        }
        if self.link.state != State::Ready {
            self.stats.count_drop(DropReason::Down);
            return false;
        }
        let size = codec::pub_overhead(subject_len, envelope_len) + envelope_len;
        let pending = self.link.pending_out();
        // An empty queue takes any one message, so the bound never stops a
        // message under the size limits from ever passing.
        if pending > 0 && pending + size > self.cfg.max_queue {
            self.stats.count_drop(DropReason::QueueFull);
            return false;
        }
        write_subject(&mut self.subject, &self.cfg.prefix, false, room);
        let out = self.link.out();
        codec::write_pub_header(out, &self.subject, envelope_len);
        envelope::write_header(out, self.cfg.node_id.as_bytes(), &self.instance, kind);
        out.extend_from_slice(payload);
        codec::write_crlf(out);
        self.unpinged += 1;
        self.stats.queued_bytes = self.link.pending_out() as u64;
        true
    }

    fn flush(&mut self, registry: &Registry, now: Instant) {
        self.now = now;
        if let Some(why) = self.link.broken.take() {
            self.fail(registry, &why);
        }
        if self.greeted {
            self.send_subscriptions();
            if (self.unpinged > 0 || self.subs_changed) && self.pings.is_empty() {
                self.send_ping();
            }
        } else if !self.link.is_connected() {
            // The login queues every room anew.
            self.dirty.clear();
        }
        if self.link.is_connected() && self.link.pending_out() > 0 {
            if let Err(e) = self.link.write() {
                self.fail(registry, &format!("write: {e}"));
            }
        }
        self.stats.queued_bytes = self.link.pending_out() as u64;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let urgent = self.link.read_pending || self.link.broken.is_some();
        [
            self.link.deadline,
            self.ping_deadline(),
            urgent.then_some(self.now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timer(&mut self, registry: &Registry, now: Instant) {
        self.now = now;
        // A connection found broken is reset by the flush, after
        // `take_inbound` has handled what came before the fault: the
        // server's last words (`-ERR 'Authorization Violation'`) included.
        if self.link.broken.is_some() {
            return;
        }
        if self.ping_deadline().is_some_and(|d| d <= now) {
            let why = format!("no PONG within {:?}", self.cfg.connect_timeout);
            return self.fail(registry, &why);
        }
        if self.link.deadline.is_some_and(|d| d <= now) {
            match self.link.state {
                State::Down => self.attempt(registry),
                State::Connecting | State::Greeting => {
                    self.fail(registry, "timed out connecting and logging in");
                }
                State::Ready => self.link.deadline = None,
            }
        }
    }

    fn take_inbound(&mut self, deliver: &mut dyn FnMut(&Delivery<'_>)) {
        // NATS keeps no history: no message has an offset, and the node's
        // own are skipped.
        let deliver = &mut |room: &str, kind, payload: &[u8]| {
            deliver(&Delivery {
                room,
                kind,
                payload,
                offset: None,
                sender: None,
            })
        };
        for _ in 0..READ_ROUNDS {
            self.handle_ops(deliver);
            if !self.link.read_pending || self.link.broken.is_some() {
                break;
            }
            match self.link.read() {
                ReadEnd::Drained | ReadEnd::More => {}
                ReadEnd::Eof => self.link.broken = Some("closed by the server".into()),
                ReadEnd::Error(e) => self.link.broken = Some(format!("read: {e}")),
            }
        }
        self.handle_ops(deliver);
        self.warn_clash();
    }

    fn is_up(&self) -> bool {
        self.stats.up
    }

    fn stats(&self) -> &BusStats {
        &self.stats
    }
}
