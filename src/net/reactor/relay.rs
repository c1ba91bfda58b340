//! The reactor's side of the bus (`--redis`): messages from other nodes
//! join their room's batch like a client's, and the turn's publishes go out
//! together at its end. The bus itself lives in [`crate::bus`].
//!
//! A process keeps one bus, on its first reactor. With several reactors
//! (`--threads`), the others hand that reactor their rooms' batches with
//! the payloads to publish marked (the first reactor publishes its own
//! from its batches the same way), the room directory tells it which rooms the process has members
//! of (to subscribe), and it hands what the bus brings to the reactors with
//! members, as it does its own clients' messages.

use std::ops::Range;
use std::sync::Arc;

use super::Server;
use crate::bus::Bus;
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

/// Publishes each of `publish` (a message's kind and payload range in
/// `bytes`) to `room` on the bus.
pub(super) fn publish_all(
    bus: &mut dyn Bus,
    room: &str,
    bytes: &[u8],
    publish: &[(MessageKind, Range<usize>)],
) {
    for (kind, range) in publish {
        if let Some(payload) = bytes.get(range.clone()) {
            bus.publish(room, *kind, payload);
        }
    }
}

/// This turn's bus messages for a room this reactor has no members of,
/// encoded once for the reactors that have.
#[derive(Debug)]
pub(super) struct Remote {
    share: Arc<RoomShare>,
    bytes: Vec<u8>,
    messages: u32,
}

impl Server {
    /// Subscribes and unsubscribes as the process gains and loses rooms
    /// (several reactors), runs the bus's timers, and encodes every message
    /// the bus received, once: into its room's batch for this turn, which
    /// `fan_out` sends like a local one, or for the reactors with members.
    pub(super) fn bus_inbound(&mut self) {
        let Server {
            bus,
            hub,
            cluster,
            bus_rooms,
            remote,
            ..
        } = self;
        let Some(bus) = bus.as_deref_mut() else {
            return;
        };
        for change in cluster.take_room_changes() {
            match change {
                RoomChange::Opened(share) => {
                    bus.subscribe(share.name());
                    bus_rooms.insert(share.name().clone(), share);
                }
                RoomChange::Closed(name) => {
                    bus.unsubscribe(&name);
                    bus_rooms.remove(&name);
                }
            }
        }
        if bus.next_deadline().is_some_and(|t| t <= self.now) {
            bus.on_timer(self.poll.registry(), self.now);
        }
        bus.take_inbound(&mut |room, kind, payload| {
            // The bus skips rooms it is not subscribed to; a room may still
            // have emptied this turn, before the unsubscribe went out.
            if let Some(batch) = hub.find(room).and_then(|id| hub.batch(id)) {
                let start = batch.bytes.len();
                write_message(&mut batch.bytes, kind, payload);
                let end = batch.bytes.len();
                batch.frames.push((REMOTE, start..end));
            } else if let Some(share) = bus_rooms.get(room) {
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
        self.hand_off_remote();
    }

    /// Hands the bus's messages for rooms this reactor has no members of
    /// to the reactors that have.
    fn hand_off_remote(&mut self) {
        for r in std::mem::take(&mut self.remote) {
            let bytes = Arc::new(r.bytes);
            let others = r.share.others(self.me);
            for to in (0..self.cluster.reactors()).filter(|t| others & (1 << t) != 0) {
                self.cluster.hand_off(
                    to,
                    Handoff {
                        room: r.share.name().clone(),
                        bytes: bytes.clone(),
                        messages: r.messages,
                        publish: Vec::new(),
                    },
                );
                self.handed |= 1 << to;
            }
        }
    }

    /// Publishes a room's messages to the bus, each payload where it lies
    /// in its batch (`publish`: each message's kind and payload range): the
    /// one path for every reactor's clients, since the batch is handed to
    /// the first reactor, which has the bus, as it is.
    pub(super) fn publish_batch(
        &mut self,
        room: &str,
        bytes: &[u8],
        publish: &[(MessageKind, Range<usize>)],
    ) {
        if let Some(bus) = self.bus.as_deref_mut() {
            publish_all(bus, room, bytes, publish);
        }
    }

    /// Room `room` got its first member on this reactor: with several
    /// reactors, the directory learns it (and tells the first reactor,
    /// which owns the bus, when the process as a whole gains the room);
    /// alone, the bus subscribes.
    pub(super) fn room_opened(&mut self, room: Option<u32>) {
        let Some(name) = room.and_then(|r| self.hub.name(r)) else {
            return;
        };
        if self.cluster.reactors() > 1 {
            let share = self
                .cluster
                .join_room(name, self.me, self.cfg.redis.is_some());
            if let Some(r) = room {
                self.hub.set_share(r, share);
            }
        } else if let Some(bus) = self.bus.as_deref_mut() {
            bus.subscribe(name);
        }
    }

    /// Writes the turn's publishes and subscription changes.
    pub(super) fn bus_flush(&mut self) {
        if let Some(bus) = self.bus.as_deref_mut() {
            bus.flush(self.poll.registry(), self.now);
        }
    }
}
