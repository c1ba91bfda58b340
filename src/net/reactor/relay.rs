//! The reactor's side of the bus (`--redis` or `--nats`): messages from other nodes
//! join their room's batch like a client's, and the turn's publishes go out
//! together at its end. The bus itself lives in [`crate::bus`].
//!
//! A process keeps one bus, on its first reactor. With several reactors
//! (`--threads`), the others hand that reactor their rooms' batches with
//! the payloads to publish marked (the first reactor publishes its own
//! from its batches the same way), the room directory tells it which rooms
//! the process has members of (to subscribe), and it hands what the bus
//! brings to the reactors with members, as it does its own clients'
//! messages.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use mio::event::Event;
use mio::Registry;

use super::peers::Peers;
use super::{BUS_PUB, BUS_SUB};
use crate::bus::{Bus, BusStats, Delivery, NatsBus, RedisBus};
use crate::config::Config;
use crate::history::remote::Answer;
use crate::history::Ask;
use crate::history::Offset;
use crate::hub::{Batch, Hub, Left};
use crate::id::ConnId;
use crate::net::cluster::{Handoff, RoomChange, RoomShare};
use crate::proto::session::write_message;
use crate::proto::MessageKind;

/// The sender of frames that came from another node: no connection here,
/// so `--exclude-sender` skips nobody for them.
pub(super) const REMOTE: ConnId = ConnId {
    key: usize::MAX,
    gen: u32::MAX,
};

/// This turn's bus messages for a room this reactor has no members of,
/// encoded once for the reactors that have.
#[derive(Debug)]
pub(super) struct Remote {
    share: Arc<RoomShare>,
    bytes: Vec<u8>,
    messages: u32,
}

/// The bus link of a reactor: the bus itself on the first reactor
/// (`--redis` or `--nats`), nothing on the others.
pub(super) struct BusLink {
    /// The bus to other nodes.
    bus: Option<Box<dyn Bus>>,
    /// With several reactors: every room the process has members of, for
    /// the bus's messages.
    rooms: HashMap<Arc<str>, Arc<RoomShare>>,
    /// This turn's bus messages for rooms with members on other reactors only.
    remote: Vec<Remote>,
    /// The bus's counters at the last summary line.
    summarized: BusStats,
    /// The bus keeps the rooms' history (`--history` with `--redis`): it
    /// orders every message, this node's own included.
    records: bool,
    /// This turn's own messages back from the bus: their senders.
    returned: Vec<ConnId>,
}

impl BusLink {
    /// The bus `cfg` asks for, connecting, if this is reactor 0.
    pub(super) fn new(cfg: &Config, me: usize, registry: &Registry) -> io::Result<BusLink> {
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidInput, e);
        let max = cfg.limits.max_message;
        let mut bus: Option<Box<dyn Bus>> = match (&cfg.redis, &cfg.nats, me) {
            (Some(redis), _, 0) => Some(Box::new(
                RedisBus::new(redis.clone(), max, BUS_SUB, BUS_PUB).map_err(invalid)?,
            )),
            (None, Some(nats), 0) => Some(Box::new(
                NatsBus::new(nats.clone(), max, BUS_SUB).map_err(invalid)?,
            )),
            _ => None,
        };
        let mut records = false;
        if let Some(bus) = bus.as_deref_mut() {
            if let (Some(h), true) = (&cfg.history, cfg.redis_history()) {
                records = bus.keep_history(h.keep, h.ttl);
            }
            bus.start(registry, Instant::now());
        }
        Ok(BusLink {
            bus,
            rooms: HashMap::new(),
            remote: Vec::new(),
            summarized: BusStats::default(),
            records,
            returned: Vec::new(),
        })
    }

    /// Whether the bus keeps the rooms' history and orders their messages
    /// (see [`super::recorded`]).
    pub(super) fn records(&self) -> bool {
        self.records
    }

    /// The senders of this turn's own messages back from the bus.
    pub(super) fn take_returned(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.returned)
    }

    /// Starts reading room `room`'s history for a join (see
    /// [`Bus::read_history`]).
    pub(super) fn read_history(&mut self, room: &str, ask: Ask, now_ms: u64, id: u64) -> bool {
        self.bus
            .as_deref_mut()
            .is_some_and(|b| b.read_history(room, ask, now_ms, id))
    }

    /// The history reads answered since the last call.
    pub(super) fn take_answers(&mut self, each: &mut dyn FnMut(u64, Option<Answer>)) {
        if let Some(bus) = self.bus.as_deref_mut() {
            bus.take_answers(each);
        }
    }

    /// Publishes a room's batch for the bus to record and bring back;
    /// returns the index of each frame the bus refused (it is down, or its
    /// queue is full), which the caller delivers here, unrecorded.
    pub(super) fn publish_recorded(&mut self, room: &str, batch: &Batch) -> Vec<usize> {
        let Some(bus) = self.bus.as_deref_mut() else {
            return (0..batch.frames.len()).collect();
        };
        let mut refused = Vec::new();
        let mut entries = batch.publish.iter().peekable();
        for (i, (sender, range)) in batch.frames.iter().enumerate() {
            // Each frame's payload to publish lies within the frame.
            let entry = loop {
                match entries.peek() {
                    Some((_, p)) if p.end <= range.start => {
                        entries.next();
                    }
                    Some((kind, p)) if p.start >= range.start && p.end <= range.end => {
                        break Some((*kind, p.clone()));
                    }
                    _ => break None,
                }
            };
            let published = entry.is_some_and(|(kind, p)| {
                let payload = batch.bytes.get(p).unwrap_or_default();
                bus.publish(room, kind, payload, sender_code(*sender))
            });
            if !published {
                refused.push(i);
            }
        }
        refused
    }

    /// Hands a readiness event to the bus if `token` is one of its
    /// sockets; false if it is not.
    pub(super) fn on_event(&mut self, registry: &Registry, event: &Event, now: Instant) -> bool {
        match self.bus.as_deref_mut() {
            Some(bus) if bus.owns(event.token()) => {
                bus.on_event(registry, event, now);
                true
            }
            _ => false,
        }
    }

    /// When the bus wants the loop back.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.bus.as_deref().and_then(|b| b.next_deadline())
    }

    /// The bus's counters, if this reactor has it.
    pub(super) fn stats(&self) -> Option<&BusStats> {
        self.bus.as_deref().map(|b| b.stats())
    }

    /// The bus's part of the summary line, since the last one.
    pub(super) fn summary(&mut self) -> Option<String> {
        let stats = self.bus.as_deref()?.stats();
        let line = stats.summary_since(&self.summarized);
        self.summarized = stats.clone();
        Some(line)
    }

    /// Writes the turn's publishes and subscription changes.
    pub(super) fn flush(&mut self, registry: &Registry, now: Instant) {
        if let Some(bus) = self.bus.as_deref_mut() {
            bus.flush(registry, now);
        }
    }

    /// Subscribes and unsubscribes as the process gains and loses rooms
    /// (several reactors), runs the bus's timers, and encodes every message
    /// the bus received, once: into its room's batch in `hub` for this
    /// turn, which fan-out sends like a local one, or for the reactors
    /// with members, handed to them through `peers`.
    pub(super) fn inbound(
        &mut self,
        registry: &Registry,
        now: Instant,
        hub: &mut Hub,
        peers: &mut Peers,
    ) {
        let BusLink {
            bus, rooms, remote, ..
        } = self;
        let Some(bus) = bus.as_deref_mut() else {
            return;
        };
        for change in peers.cluster.take_room_changes() {
            match change {
                RoomChange::Opened(share) => {
                    bus.subscribe(share.name());
                    rooms.insert(share.name().clone(), share);
                }
                RoomChange::Closed(name) => {
                    bus.unsubscribe(&name);
                    rooms.remove(&name);
                }
            }
        }
        if bus.next_deadline().is_some_and(|t| t <= now) {
            bus.on_timer(registry, now);
        }
        if self.records {
            let returned = &mut self.returned;
            return bus.take_inbound(&mut |d| take_recorded(d, hub, returned));
        }
        bus.take_inbound(&mut |&Delivery {
                                   room,
                                   kind,
                                   payload,
                                   ..
                               }| {
            // The bus skips rooms it is not subscribed to; a room may still
            // have emptied this turn, before the unsubscribe went out.
            if let Some(batch) = hub.find(room).and_then(|id| hub.batch(id)) {
                let start = batch.bytes.len();
                write_message(&mut batch.bytes, kind, payload);
                let end = batch.bytes.len();
                batch.frames.push((REMOTE, start..end));
            } else if let Some(share) = rooms.get(room) {
                let at = match remote.iter().position(|r| Arc::ptr_eq(&r.share, share)) {
                    Some(at) => at,
                    None => {
                        remote.push(Remote {
                            share: share.clone(),
                            bytes: Vec::new(),
                            messages: 0,
                        });
                        remote.len() - 1
                    }
                };
                if let Some(r) = remote.get_mut(at) {
                    write_message(&mut r.bytes, kind, payload);
                    r.messages += 1;
                }
            }
        });
        // The bus's messages for rooms this reactor has no members of go
        // to the reactors that have.
        for r in std::mem::take(remote) {
            let bytes = Arc::new(r.bytes);
            for to in peers.each(r.share.others(peers.me)) {
                let handoff = Handoff {
                    room: r.share.name().clone(),
                    bytes: bytes.clone(),
                    messages: r.messages,
                    publish: Vec::new(),
                };
                peers.hand_off(to, handoff);
            }
        }
    }

    /// Publishes a room's messages to the bus, each payload where it lies
    /// in its batch (`publish`: each message's kind and payload range): the
    /// one path for every reactor's clients, since the batch is handed to
    /// the first reactor, which has the bus, as it is.
    pub(super) fn publish(
        &mut self,
        room: &str,
        bytes: &[u8],
        publish: &[(MessageKind, Range<usize>)],
    ) {
        let Some(bus) = self.bus.as_deref_mut() else {
            return;
        };
        for (kind, range) in publish {
            if let Some(payload) = bytes.get(range.clone()) {
                bus.publish(room, *kind, payload, sender_code(REMOTE));
            }
        }
    }

    /// Room `name` (`id` in `hub`) got its first member on this reactor:
    /// with several reactors, the directory learns it (and tells the first
    /// reactor, which owns the bus, when the process as a whole gains the
    /// room); alone, the bus subscribes.
    pub(super) fn room_opened(&mut self, hub: &mut Hub, id: u32, peers: &Peers, bus_on: bool) {
        let Some(name) = hub.name(id) else {
            return;
        };
        if peers.several() {
            let share = peers.cluster.join_room(name, peers.me, bus_on);
            hub.set_share(id, share);
        } else if let Some(bus) = self.bus.as_deref_mut() {
            bus.subscribe(name);
        }
    }

    /// Room `left` emptied on this reactor: the mirror of `room_opened`.
    pub(super) fn room_closed(&mut self, left: Left, peers: &Peers, bus_on: bool) {
        if let Some(share) = left.share {
            peers.cluster.leave_room(&share, peers.me, bus_on);
        } else if let (Some(name), Some(bus)) = (left.emptied, self.bus.as_deref_mut()) {
            bus.unsubscribe(&name);
        }
    }
}

/// Puts a recorded message from the bus into its room's batch of recorded
/// messages, with its offset (a message not recorded, a backend's raw one,
/// has [`Offset::ZERO`]); a message of this node's notes its sender.
fn take_recorded(d: &Delivery<'_>, hub: &mut Hub, returned: &mut Vec<ConnId>) {
    let Some((batch, offsets)) = hub.find(d.room).and_then(|id| hub.recorded(id)) else {
        return;
    };
    let sender = d.sender.map_or(REMOTE, sender_of);
    let start = batch.bytes.len();
    write_message(&mut batch.bytes, d.kind, d.payload);
    let end = batch.bytes.len();
    batch.frames.push((sender, start..end));
    offsets.push(d.offset.unwrap_or(Offset::ZERO));
    if sender != REMOTE && !returned.contains(&sender) {
        returned.push(sender);
    }
}

/// A connection as the bus carries it in a recorded message's envelope.
fn sender_code(id: ConnId) -> u64 {
    (u64::try_from(id.key).unwrap_or(u64::MAX) << 32) | u64::from(id.gen)
}

/// The connection [`sender_code`] made `code` of.
fn sender_of(code: u64) -> ConnId {
    if code == u64::MAX {
        return REMOTE;
    }
    ConnId {
        key: usize::try_from(code >> 32).unwrap_or(usize::MAX),
        gen: code as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_cross_the_bus_and_come_back_the_same() {
        for id in [
            ConnId { key: 0, gen: 0 },
            ConnId {
                key: 19_999,
                gen: u32::MAX - 1,
            },
        ] {
            assert_eq!(sender_of(sender_code(id)), id);
        }
        // Nobody's: the API's messages.
        assert_eq!(sender_of(sender_code(REMOTE)), REMOTE);
    }
}
