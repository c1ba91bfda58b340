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
use crate::bus::{Bus, BusStats, NatsBus, RedisBus};
use crate::config::Config;
use crate::hub::{Hub, Left};
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
        if let Some(bus) = bus.as_deref_mut() {
            bus.start(registry, Instant::now());
        }
        Ok(BusLink {
            bus,
            rooms: HashMap::new(),
            remote: Vec::new(),
            summarized: BusStats::default(),
        })
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
        bus.take_inbound(&mut |room, kind, payload| {
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
                bus.publish(room, *kind, payload);
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
