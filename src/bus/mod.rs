//! The bus: rooms that span processes and machines.
//!
//! Each node delivers a client's message to its own members at once, and
//! publishes it once to the room's channel; every other node subscribed to
//! that channel delivers it to its members. A node subscribes to a room's
//! channel while the room has local members, and ignores its own messages
//! when they come back. Delivery across nodes is at most once: a message is
//! dropped (and counted, by [`DropReason`]) rather than queued without
//! bound or retried.
//!
//! [`Bus`] is what the reactor sees. Two engines implement it:
//! [`RedisBus`], Redis pub/sub on two connections (one SUBSCRIBE, one
//! PUBLISH), spoken through a sans-IO codec ([`resp`]); and [`NatsBus`],
//! NATS core pub/sub on one connection, through another ([`nats::codec`]).
//! Both live in the reactor's own `Poll`, share the [`envelope`], and count
//! the same [`BusStats`].
//!
//! # Driving a bus
//!
//! The reactor owns the `Poll` and chooses the bus's tokens. Per turn:
//!
//! 1. for each event whose token the bus [`owns`](Bus::owns):
//!    [`on_event`](Bus::on_event);
//! 2. while handling clients: [`subscribe`](Bus::subscribe) when a room
//!    gets its first local member, [`unsubscribe`](Bus::unsubscribe) when
//!    it loses its last, [`publish`](Bus::publish) for each message (only
//!    queued: nothing is written yet);
//! 3. at the end of the turn: [`take_inbound`](Bus::take_inbound), whose
//!    messages join the rooms' batches like local ones, then
//!    [`flush`](Bus::flush), which writes the turn's publishes in one write;
//! 4. the poll timeout is no later than [`next_deadline`](Bus::next_deadline)
//!    (which may be now), and once it has passed, [`on_timer`](Bus::on_timer).
//!
//! Nothing in a bus blocks: connects are non-blocking, and the hosts are
//! resolved once, before the loop ([`RedisConfig::from_url`],
//! [`NatsConfig::from_url`]).

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Registry, Token};

use crate::history::remote::Answer;
use crate::history::{Ask, Offset};
use crate::proto::MessageKind;
use crate::stats::{prometheus, Kind};

mod clash;
pub mod envelope;
mod link;
pub mod nats;
mod recorder;
mod redis;
mod replies;
pub mod resp;
pub mod streams;
mod url;

pub use nats::{NatsBus, NatsConfig, NatsUrl};
pub use redis::RedisBus;
pub use url::{RedisConfig, RedisUrl};

/// A message bus between nodes, driven by the reactor (see the module doc
/// for the order of calls). No method blocks or panics; faults are logged,
/// counted, and recovered from by reconnecting.
pub trait Bus {
    /// Starts connecting. Called once, before the first turn.
    fn start(&mut self, registry: &Registry, now: Instant);

    /// Whether `token` is one of the bus's sockets.
    fn owns(&self, token: Token) -> bool;

    /// Handles readiness of one of the bus's sockets: reads until it would
    /// block (or the input buffer is full), writes what is queued, and
    /// moves connections through connect and login.
    fn on_event(&mut self, registry: &Registry, event: &Event, now: Instant);

    /// Room `room` got its first local member: receive its messages.
    /// Idempotent.
    fn subscribe(&mut self, room: &str);

    /// Room `room` lost its last local member: stop receiving. Idempotent.
    fn unsubscribe(&mut self, room: &str);

    /// Queues a message for the other nodes' members of `room`, sent by
    /// connection `sender` here (see [`Delivery::sender`]). Dropped and
    /// counted if the bus is down, the payload is over the message limit,
    /// or the outbound queue is over its bound: then false.
    fn publish(&mut self, room: &str, kind: MessageKind, payload: &[u8], sender: u64) -> bool;

    /// Ends the turn: resets connections found faulty, sends subscription
    /// changes, and writes everything queued, in one write per connection.
    fn flush(&mut self, registry: &Registry, now: Instant);

    /// When the bus wants the loop back: a reconnect attempt or a connect
    /// timeout ([`Bus::on_timer`]), or now if input is waiting beyond a
    /// turn's read budget (the next [`Bus::take_inbound`] reads it) or a
    /// connection awaits its reset. `None` if nothing is due.
    fn next_deadline(&self) -> Option<Instant>;

    /// Does what is due at `now`: connects, gives up on slow connects,
    /// resets connections found faulty.
    fn on_timer(&mut self, registry: &Registry, now: Instant);

    /// Hands each message received from other nodes, in order, to
    /// `deliver`; the payload is borrowed from the input buffer, not
    /// copied. Messages for rooms not subscribed (any more) are skipped,
    /// and so are the node's own, unless the bus keeps history
    /// ([`Bus::keep_history`]): then they come back recorded, and the node
    /// delivers them only now.
    fn take_inbound(&mut self, deliver: &mut dyn FnMut(&Delivery<'_>));

    /// Whether messages can flow both ways now.
    fn is_up(&self) -> bool;

    /// The counters.
    fn stats(&self) -> &BusStats;

    /// Asks the bus to keep every room's history, about `keep` messages
    /// each, a room's going after `ttl` without one (`--history`). Called
    /// once, before [`Bus::start`]. True if it does: then every message
    /// published comes back through [`Bus::take_inbound`] with its offset,
    /// the node's own included, in the history's order, and joins read the
    /// history with [`Bus::read_history`]. The default keeps none.
    fn keep_history(&mut self, keep: usize, ttl: Duration) -> bool {
        let _ = (keep, ttl);
        false
    }

    /// Starts reading what `ask` wants of `room`'s history at `now_ms`;
    /// the answer comes from [`Bus::take_answers`] with `id`. False if it
    /// cannot be read now (the bus is down, or keeps no history).
    fn read_history(&mut self, room: &str, ask: Ask, now_ms: u64, id: u64) -> bool {
        let _ = (room, ask, now_ms, id);
        false
    }

    /// Hands out the history reads answered since the last call: `None`
    /// for one that could not be read (the connection was lost).
    fn take_answers(&mut self, each: &mut dyn FnMut(u64, Option<Answer>)) {
        let _ = each;
    }
}

/// A message the bus brought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Its room.
    pub room: &'a str,
    /// Text or binary.
    pub kind: MessageKind,
    /// The message.
    pub payload: &'a [u8],
    /// Its offset in the room's history, if the bus keeps history and
    /// recorded it.
    pub offset: Option<Offset>,
    /// The connection that published it, if it was this node's: the value
    /// the node gave [`Bus::publish`].
    pub sender: Option<u64>,
}

/// Why a message did not cross the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Published while the publish connection was down.
    Down,
    /// Published while the outbound queue was over its bound (Redis slow
    /// or not reading).
    QueueFull,
    /// Published with a payload over the message limit.
    TooLarge,
    /// Queued or sent but not acknowledged when the publish connection
    /// was lost (it may or may not have reached Redis).
    Reset,
    /// Received but not a valid envelope (see [`envelope`]).
    BadEnvelope,
    /// Received for a room with no local member any more (in flight while
    /// unsubscribing).
    Unsubscribed,
}

impl DropReason {
    /// Every reason, in the order of [`BusStats::dropped`].
    pub const ALL: [DropReason; 6] = [
        DropReason::Down,
        DropReason::QueueFull,
        DropReason::TooLarge,
        DropReason::Reset,
        DropReason::BadEnvelope,
        DropReason::Unsubscribed,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Down => "down",
            DropReason::QueueFull => "queue_full",
            DropReason::TooLarge => "too_large",
            DropReason::Reset => "reset",
            DropReason::BadEnvelope => "bad_envelope",
            DropReason::Unsubscribed => "unsubscribed",
        }
    }
}

/// What a bus counts. Every call of [`Bus::publish`] ends, once nothing is
/// in flight, in `published` or one of the outbound drop reasons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// The engine: `redis` or `nats` (the `engine` label of
    /// `wsd_bus_info`).
    pub engine: &'static str,
    /// The bus's connections are up.
    pub up: bool,
    /// Rooms subscribed (each is two channels: the envelope one and the
    /// raw one), as the server last confirmed them.
    pub subscriptions: u64,
    /// Messages published and acknowledged by the server (Redis's `:n`,
    /// a NATS `PONG` after them).
    pub published: u64,
    /// Messages from other nodes handed to the reactor (raw ones included).
    pub received: u64,
    /// Of `received`, raw messages: published by a backend to a room's raw
    /// channel, not by a wsd (see [`envelope`]).
    pub raw: u64,
    /// Of `received`, messages that carried this node's id but came from
    /// another process: two nodes share a `--node-id`.
    pub clash: u64,
    /// Messages dropped, by reason, in the order of [`DropReason::ALL`].
    pub dropped: [u64; 6],
    /// Connections re-established after a loss (each of the two counts).
    pub reconnects: u64,
    /// Publish bytes waiting for the socket now.
    pub queued_bytes: u64,
    /// Messages recorded in their room's history on the bus.
    pub history_appended: u64,
    /// History commands the bus refused or answered with what was not
    /// ours (a message then is not recorded, or a join reads nothing).
    pub history_errors: u64,
}

impl BusStats {
    /// Messages dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason as usize).copied().unwrap_or(0)
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.add_drops(reason, 1);
    }

    fn add_drops(&mut self, reason: DropReason, n: u64) {
        if let Some(d) = self.dropped.get_mut(reason as usize) {
            *d += n;
        }
    }

    /// All drops, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// A fragment for the periodic stats line: `bus up, 3 subs, pub +10,
    /// recv +20, dropped +1 (queue_full:1)`, counting since `prev`.
    pub fn summary_since(&self, prev: &BusStats) -> String {
        let mut s = format!(
            "bus {}, {} subs, pub +{}, recv +{}",
            if self.up { "up" } else { "DOWN" },
            self.subscriptions,
            self.published.saturating_sub(prev.published),
            self.received.saturating_sub(prev.received),
        );
        let dropped = self.dropped_total().saturating_sub(prev.dropped_total());
        if dropped > 0 {
            let _ = write!(s, ", dropped +{dropped} (");
            let mut first = true;
            for r in DropReason::ALL {
                let d = self.dropped(r).saturating_sub(prev.dropped(r));
                if d > 0 {
                    let sep = if first { "" } else { " " };
                    let _ = write!(s, "{sep}{}:{d}", r.label());
                    first = false;
                }
            }
            s.push(')');
        }
        let reconnects = self.reconnects.saturating_sub(prev.reconnects);
        if reconnects > 0 {
            let _ = write!(s, ", {reconnects} reconnects");
        }
        s
    }

    /// Appends the bus's families to a Prometheus text exposition (0.0.4):
    /// `wsd_bus_up`, `wsd_bus_subscriptions`, `wsd_bus_queued_bytes`,
    /// `wsd_bus_published_total`, `wsd_bus_received_total`,
    /// `wsd_bus_raw_total`, `wsd_bus_clash_total`,
    /// `wsd_bus_dropped_total{reason}` (every reason, from 0),
    /// `wsd_bus_reconnects_total`, `wsd_bus_history_appended_total`,
    /// `wsd_bus_history_errors_total`, and `wsd_bus_info{engine}` (1).
    pub fn write_metrics(&self, w: &mut String) -> fmt::Result {
        let info = "wsd_bus_info";
        prometheus::family(w, info, Kind::Gauge, "The bus engine: redis or nats.")?;
        writeln!(w, "{info}{{engine=\"{}\"}} 1", self.engine)?;
        let samples = [
            (
                "wsd_bus_up",
                Kind::Gauge,
                "1 if both bus connections are up.",
                u64::from(self.up),
            ),
            (
                "wsd_bus_subscriptions",
                Kind::Gauge,
                "Bus channels subscribed (one per room with local members).",
                self.subscriptions,
            ),
            (
                "wsd_bus_queued_bytes",
                Kind::Gauge,
                "Publish bytes waiting for the bus connection.",
                self.queued_bytes,
            ),
            (
                "wsd_bus_published_total",
                Kind::Counter,
                "Messages published to the bus and acknowledged.",
                self.published,
            ),
            (
                "wsd_bus_received_total",
                Kind::Counter,
                "Messages received from other nodes.",
                self.received,
            ),
            (
                "wsd_bus_raw_total",
                Kind::Counter,
                "Raw messages received: published by a backend to a room's raw channel.",
                self.raw,
            ),
            (
                "wsd_bus_clash_total",
                Kind::Counter,
                "Messages received with this node's id from another process (a shared --node-id).",
                self.clash,
            ),
            (
                "wsd_bus_reconnects_total",
                Kind::Counter,
                "Bus connections re-established after a loss.",
                self.reconnects,
            ),
            (
                "wsd_bus_history_appended_total",
                Kind::Counter,
                "Messages recorded in their room's history on the bus (--history with --redis).",
                self.history_appended,
            ),
            (
                "wsd_bus_history_errors_total",
                Kind::Counter,
                "History commands the bus refused: a message not recorded, or a join that read nothing.",
                self.history_errors,
            ),
        ];
        for (name, kind, help, value) in samples {
            prometheus::single(w, name, kind, help, value)?;
        }
        let name = "wsd_bus_dropped_total";
        prometheus::family(
            w,
            name,
            Kind::Counter,
            "Messages that did not cross the bus, by reason.",
        )?;
        for r in DropReason::ALL {
            writeln!(w, "{name}{{reason=\"{}\"}} {}", r.label(), self.dropped(r))?;
        }
        Ok(())
    }
}

/// 64 random bits, from the process's randomly keyed hasher (seeded by the
/// OS), mixed with the time and the process id.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(since_epoch);
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_every_drop_reason_from_the_start() {
        let mut w = String::new();
        BusStats::default().write_metrics(&mut w).unwrap();
        for r in DropReason::ALL {
            assert!(
                w.contains(&format!(
                    "wsd_bus_dropped_total{{reason=\"{}\"}} 0\n",
                    r.label()
                )),
                "{w}"
            );
        }
        for name in [
            "wsd_bus_up",
            "wsd_bus_subscriptions",
            "wsd_bus_published_total",
            "wsd_bus_received_total",
            "wsd_bus_raw_total",
            "wsd_bus_clash_total",
            "wsd_bus_reconnects_total",
            "wsd_bus_history_appended_total",
            "wsd_bus_history_errors_total",
        ] {
            assert!(w.contains(&format!("\n{name} 0\n")), "{name}: {w}");
        }
        // Every sample's family has its HELP and TYPE.
        for line in w.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(w.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }

    #[test]
    fn summary_counts_since_the_last_one() {
        let prev = BusStats {
            published: 5,
            ..BusStats::default()
        };
        let mut now = BusStats {
            up: true,
            subscriptions: 3,
            published: 15,
            received: 20,
            reconnects: 2,
            ..BusStats::default()
        };
        now.count_drop(DropReason::QueueFull);
        now.count_drop(DropReason::Down);
        assert_eq!(
            now.summary_since(&prev),
            "bus up, 3 subs, pub +10, recv +20, dropped +2 (down:1 queue_full:1), 2 reconnects"
        );
        assert_eq!(
            BusStats::default().summary_since(&BusStats::default()),
            "bus DOWN, 0 subs, pub +0, recv +0"
        );
    }
}
