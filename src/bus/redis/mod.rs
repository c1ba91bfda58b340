//! [`RedisBus`]: the [`Bus`] over Redis pub/sub, two connections in the
//! reactor's `Poll`.
//!
//! The subscribe connection carries SUBSCRIBE/UNSUBSCRIBE (up to 256
//! channels a command) and receives `message` pushes; the publish
//! connection carries PUBLISH, whose `:n` replies acknowledge each message.
//! Both log in on connect with AUTH (if the URL has a password), SELECT
//! (if it names a database other than 0) and CLIENT SETNAME, pipelined, and
//! are Ready once every one of those replies is `+OK`. Any reply out of
//! step, an error reply, or a protocol violation is logged and resets that
//! connection; it comes back after a capped, jittered backoff, and the
//! subscribe connection then resubscribes every room with local members.
//!
//! Each room is two channels, subscribed and unsubscribed together: the
//! envelope channel wsd nodes publish to (`wsd:/chat`), and the raw one a
//! backend publishes plain bytes to (`wsd:raw:/chat`); see [`envelope`].
//!
//! With `--history`, the publish connection also loads two scripts at
//! login and runs them: one records and publishes each message, one reads
//! a room's history for a join (see [`super::streams`] and
//! [`super::recorder`]; `recorded` here is how this bus uses them).
//!
//! Every envelope carries this process's instance token beside the node
//! id. A message with our id and another token means a second process runs
//! with our `--node-id`: it is delivered, counted (`clash`), and warned
//! about at most once a minute.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::event::Event;
use mio::{Registry, Token};

use super::clash::ClashWarning;
use super::envelope::{self, Instance, MAX_HEADER};
use super::link::{Expect, Link, State};
use super::recorder::Recorder;
use super::resp::{self, BULK_OVERHEAD};
use super::streams::Streams;
use super::{Bus, BusStats, Delivery, DropReason, RedisConfig};
use crate::history::remote::Answer;
use crate::history::Ask;
use crate::proto::MessageKind;

mod inbound;
mod recorded;
mod subscriptions;

/// The longest channel name (prefix and room) published to. Request paths
/// are far shorter (the request head is limited).
const MAX_CHANNEL: usize = 64 << 10;

/// The largest reply the publish connection accepts: its replies are `:n`
/// (and, with history, a join's read, up to [`MAX_READ_REPLY`]).
const MAX_PUBLISH_REPLY: usize = 64 << 10;

/// The largest history read accepted: a larger one is skipped, and its
/// joiner goes live without a replay.
const MAX_READ_REPLY: usize = 64 << 20;

/// Buffer room beyond the largest reply, so one in progress always leaves
/// space to read into.
const SLACK: usize = 128 << 10;

/// Read rounds of the subscribe connection per `take_inbound`, on top of
/// `on_event`'s: at most 9 × 256 KiB of input a turn.
const READ_ROUNDS: usize = 8;

/// Which of the two connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Sub,
    Pub,
}

/// A [`Bus`] over Redis pub/sub. See the module doc.
#[derive(Debug)]
pub struct RedisBus {
    cfg: RedisConfig,
    /// The largest message payload published or accepted from the bus:
    /// the server's `--max-message`, the one carrier of that limit.
    max_message: usize,
    /// This process's token in every envelope: tells our own messages
    /// from those of another process given the same node id.
    instance: Instance,
    sub_limits: resp::Limits,
    pub_limits: resp::Limits,
    sub: Link,
    publ: Link,
    /// History in Redis Streams (`--history`), if kept.
    recorder: Option<Recorder>,
    /// Rooms with local members: the channels wanted.
    rooms: HashSet<Box<str>>,
    /// Rooms SUBSCRIBEd on the current subscribe connection.
    told: HashSet<Box<str>>,
    /// Rooms whose membership changed since the last flush.
    dirty: Vec<Box<str>>,
    stats: BusStats,
    /// The latest time the reactor passed in.
    now: Instant,
    /// An outage was logged and the bus has not come back since: further
    /// failures are logged at debug, not once per attempt.
    outage_logged: bool,
    ever_up: bool,
    /// Warns about node-id clashes.
    clash: ClashWarning,
}

impl RedisBus {
    /// A bus on `cfg` for messages of up to `max_message` bytes (the
    /// server's message limit), its subscribe connection on `sub_token` and
    /// its publish connection on `pub_token` (the reactor's to choose).
    /// Nothing connects before [`Bus::start`].
    pub fn new(
        cfg: RedisConfig,
        max_message: usize,
        sub_token: Token,
        pub_token: Token,
    ) -> Result<RedisBus, String> {
        cfg.validate()?;
        let max_frame = max_message.saturating_add(MAX_HEADER + MAX_CHANNEL + 4 * BULK_OVERHEAD);
        let backoff = (cfg.backoff_min, cfg.backoff_max);
        let seed = super::random_u64();
        let instance = super::random_u64().to_le_bytes();
        Ok(RedisBus {
            max_message,
            instance,
            sub_limits: resp::Limits { max_frame },
            pub_limits: resp::Limits {
                max_frame: MAX_PUBLISH_REPLY,
            },
            sub: Link::new(
                "subscribe",
                sub_token,
                max_frame.saturating_add(SLACK),
                backoff,
                seed,
            ),
            publ: Link::new(
                "publish",
                pub_token,
                MAX_PUBLISH_REPLY + SLACK,
                backoff,
                seed.rotate_left(32),
            ),
            recorder: None,
            rooms: HashSet::new(),
            told: HashSet::new(),
            dirty: Vec::new(),
            stats: BusStats {
                engine: "redis",
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

    fn link(&mut self, w: Which) -> &mut Link {
        match w {
            Which::Sub => &mut self.sub,
            Which::Pub => &mut self.publ,
        }
    }

    /// Starts a connection attempt.
    fn attempt(&mut self, registry: &Registry, w: Which) {
        let (addrs, timeout, now) = (&self.cfg.addrs, self.cfg.connect_timeout, self.now);
        let link = match w {
            Which::Sub => &mut self.sub,
            Which::Pub => &mut self.publ,
        };
        if let Err(e) = link.connect(registry, addrs, timeout, now) {
            self.fail(registry, w, &format!("cannot connect: {e}"));
        }
    }

    /// TCP is up: queue the login (and, for the subscribe connection, every
    /// room), pipelined; the end of the turn writes it.
    fn on_connected(&mut self, w: Which) {
        let url = &self.cfg.url;
        let link = match w {
            Which::Sub => &mut self.sub,
            Which::Pub => &mut self.publ,
        };
        let out = link.out();
        let mut logins = 0;
        if let Some(pass) = &url.password {
            match &url.username {
                Some(user) => {
                    resp::write_command(out, &[b"AUTH", user.as_bytes(), pass.as_bytes()])
                }
                None => resp::write_command(out, &[b"AUTH", pass.as_bytes()]),
            }
            logins += 1;
        }
        if url.db != 0 {
            resp::write_command(out, &[b"SELECT", url.db.to_string().as_bytes()]);
            logins += 1;
        }
        // Names the connection in CLIENT LIST, and makes sure a login
        // always has a reply to wait for: Ready means a Redis answered.
        let role = match w {
            Which::Sub => "sub",
            Which::Pub => "pub",
        };
        let name = format!("wsd-{}-{role}", self.cfg.node_id);
        resp::write_command(out, &[b"CLIENT", b"SETNAME", name.as_bytes()]);
        logins += 1;
        link.expect.push(Expect::Ok, logins);
        if let (Which::Pub, Some(recorder)) = (w, &self.recorder) {
            recorder.streams.write_load(link.out());
            link.expect.push(Expect::Loaded, 2);
        }
        if w == Which::Sub {
            self.told.clear();
            self.dirty.clear();
            self.dirty.extend(self.rooms.iter().cloned());
        }
    }

    /// The last login reply came.
    fn on_ready(&mut self, w: Which) {
        let now = self.now;
        let link = self.link(w);
        link.set_ready(now);
        let again = link.ever_ready;
        link.ever_ready = true;
        if again {
            self.stats.reconnects += 1;
        }
        if self.sub.state == State::Ready && self.publ.state == State::Ready {
            self.stats.up = true;
            if !self.ever_up {
                info!(
                    "redis bus: connected to {} as node {}",
                    self.cfg.url, self.cfg.node_id
                );
            } else if self.outage_logged {
                info!("redis bus: connected again to {}", self.cfg.url);
            }
            self.ever_up = true;
            self.outage_logged = false;
        }
    }

    /// Resets a connection: counts what it loses, logs (once per outage),
    /// and schedules the next attempt.
    fn fail(&mut self, registry: &Registry, w: Which, why: &str) {
        let now = self.now;
        let link = self.link(w);
        let name = link.name;
        let lost = link.expect.count(Expect::Integer) + link.expect.count(Expect::Script);
        link.reset(registry, now);
        let retry = link
            .deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or_default();
        match w {
            Which::Pub => {
                let waited = self.recorder.as_mut().map_or(0, Recorder::on_pub_reset);
                self.stats.add_drops(DropReason::Reset, lost + waited);
                self.stats.queued_bytes = 0;
            }
            Which::Sub => {
                self.told.clear();
                self.dirty.clear();
                self.stats.subscriptions = 0;
                if let Some(recorder) = self.recorder.as_mut() {
                    recorder.on_sub_reset();
                }
            }
        }
        self.stats.up = false;
        if self.outage_logged {
            debug!("redis bus: {name} connection: {why}; retrying in {retry:?}");
        } else {
            warn!(
                "redis bus: {name} connection to {}: {why}; retrying with backoff (up to {:?}), messages to other nodes are dropped meanwhile",
                self.cfg.url, self.cfg.backoff_max
            );
            self.outage_logged = true;
        }
    }
}

impl Bus for RedisBus {
    fn start(&mut self, registry: &Registry, now: Instant) {
        self.now = now;
        self.attempt(registry, Which::Sub);
        self.attempt(registry, Which::Pub);
    }

    fn owns(&self, token: Token) -> bool {
        token == self.sub.token || token == self.publ.token
    }

    fn on_event(&mut self, registry: &Registry, event: &Event, now: Instant) {
        self.now = now;
        let w = if event.token() == self.sub.token {
            Which::Sub
        } else if event.token() == self.publ.token {
            Which::Pub
        } else {
            return;
        };
        let link = self.link(w);
        if link.state == State::Connecting {
            match link.finish_connect() {
                Ok(true) => self.on_connected(w),
                Ok(false) => return,
                Err(e) => return self.fail(registry, w, &format!("cannot connect: {e}")),
            }
        }
        let link = self.link(w);
        // A stale event for a connection already reset, or one marked
        // broken: the flush resets it.
        if !link.is_connected() || link.broken.is_some() {
            return;
        }
        if event.is_writable() {
            if let Err(e) = link.write() {
                return self.fail(registry, w, &format!("write: {e}"));
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            match w {
                Which::Sub => self.read_sub(),
                Which::Pub => self.read_pub(registry),
            }
        }
        self.stats.queued_bytes = self.publ.pending_out() as u64;
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
            if let Some(recorder) = self.recorder.as_mut() {
                recorder.unsubscribed(&room, &mut self.publ);
            }
            self.dirty.push(room);
        }
    }

    fn publish(&mut self, room: &str, kind: MessageKind, payload: &[u8], sender: u64) -> bool {
        let prefix = self.cfg.prefix.as_bytes();
        let channel_len = prefix.len() + room.len();
        if payload.len() > self.max_message || channel_len > MAX_CHANNEL {
            self.stats.count_drop(DropReason::TooLarge);
            return false;
        }
        if self.publ.state != State::Ready {
            self.stats.count_drop(DropReason::Down);
            return false;
        }
        if self.recorder.is_some() {
            return self.publish_recorded(room, kind, payload, sender);
        }
        let node = self.cfg.node_id.as_bytes();
        let envelope_len = envelope::header_len(node.len()) + payload.len();
        let size = 4 + 3 * BULK_OVERHEAD + 7 + channel_len + envelope_len;
        let pending = self.publ.pending_out();
        // An empty queue takes any one message, so the bound never stops a
        // message under the size limit from ever passing.
        if pending > 0 && pending + size > self.cfg.max_queue {
            self.stats.count_drop(DropReason::QueueFull);
            return false;
        }
        let out = self.publ.out();
        resp::write_array_header(out, 3);
        resp::write_bulk(out, b"PUBLISH");
        resp::write_bulk_header(out, channel_len);
        out.extend_from_slice(prefix);
        out.extend_from_slice(room.as_bytes());
        resp::write_crlf(out);
        resp::write_bulk_header(out, envelope_len);
        envelope::write_header(out, node, &self.instance, kind);
        out.extend_from_slice(payload);
        resp::write_crlf(out);
        self.publ.expect.push(Expect::Integer, 1);
        self.stats.queued_bytes = self.publ.pending_out() as u64;
        true
    }

    fn flush(&mut self, registry: &Registry, now: Instant) {
        self.now = now;
        for w in [Which::Sub, Which::Pub] {
            if let Some(why) = self.link(w).broken.take() {
                self.fail(registry, w, &why);
            }
        }
        if self.sub.is_connected() {
            self.send_subscriptions();
        } else {
            // Connecting queues every room anew.
            self.dirty.clear();
        }
        for w in [Which::Sub, Which::Pub] {
            let link = self.link(w);
            if link.is_connected() && link.pending_out() > 0 {
                if let Err(e) = link.write() {
                    self.fail(registry, w, &format!("write: {e}"));
                }
            }
        }
        self.stats.queued_bytes = self.publ.pending_out() as u64;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let urgent =
            self.sub.read_pending || self.sub.broken.is_some() || self.publ.broken.is_some();
        [
            self.sub.deadline,
            self.publ.deadline,
            urgent.then_some(self.now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timer(&mut self, registry: &Registry, now: Instant) {
        self.now = now;
        for w in [Which::Sub, Which::Pub] {
            let link = self.link(w);
            if let Some(why) = link.broken.take() {
                self.fail(registry, w, &why);
                continue;
            }
            if link.deadline.is_some_and(|d| d <= now) {
                match link.state {
                    State::Down => self.attempt(registry, w),
                    State::Connecting | State::Greeting => {
                        self.fail(registry, w, "timed out connecting and logging in");
                    }
                    State::Ready => link.deadline = None,
                }
            }
        }
    }

    fn take_inbound(&mut self, deliver: &mut dyn FnMut(&Delivery<'_>)) {
        self.read_inbound(deliver);
        self.warn_clash();
    }

    fn is_up(&self) -> bool {
        self.stats.up
    }

    fn stats(&self) -> &BusStats {
        &self.stats
    }

    fn keep_history(&mut self, keep: usize, ttl: Duration) -> bool {
        self.recorder = Some(Recorder::new(Streams::new(keep, ttl)));
        // A read brings up to `keep` messages back on this connection.
        let read = keep
            .saturating_mul(self.max_message.saturating_add(64))
            .saturating_add(4096)
            .clamp(MAX_PUBLISH_REPLY, MAX_READ_REPLY);
        self.pub_limits.max_frame = read;
        self.publ.set_input_cap(read.saturating_add(SLACK));
        true
    }

    fn read_history(&mut self, room: &str, ask: Ask, now_ms: u64, id: u64) -> bool {
        self.read_recorded(room, ask, now_ms, id)
    }

    fn take_answers(&mut self, each: &mut dyn FnMut(u64, Option<Answer>)) {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.take_answers(each);
        }
    }
}

/// Whether a connection awaiting `front` is still logging in.
fn logging_in(front: Option<Expect>) -> bool {
    matches!(front, Some(Expect::Ok | Expect::Loaded))
}
