//! Broadcast fan-out: a room's batch of the turn becomes one shared buffer
//! that every member's queue references, under the slow-consumer policy.

use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use super::{compress, Server, BATCH_LIMIT};
use crate::config::SlowConsumerPolicy;
use crate::history::{unix_ms, wire, Offset};
use crate::id::ConnId;
use crate::net::buffer::{Frames, SharedBytes};
use crate::net::cluster::Handoff;
use crate::net::conn::{Phase, QueueSink};
use crate::net::transport::Wire;
use crate::proto::{close, State};

impl Server {
    /// Sends every room's batch of this turn's messages to its members.
    pub(super) fn fan_out(&mut self) {
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
    /// shared buffer that every member's queue references, and that every
    /// other reactor with members of the room gets a reference to.
    pub(super) fn fan_out_room(&mut self, room: u32) {
        let mut batch = self.hub.take_batch(room, BATCH_LIMIT);
        if self.link.records() {
            return self.fan_out_recorded(room, batch);
        }
        if batch.frames.is_empty() {
            return;
        }
        // History (`--history`): every message of the room passes here,
        // whichever way it came (a client, the bus, the publish API).
        let mut offsets = Vec::new();
        if let Some(cfg) = self.cfg.memory_history() {
            let now = unix_ms();
            self.hub.expire_history(now);
            let (bytes, frames) = (&batch.bytes, &batch.frames);
            self.hub.record(room, cfg, bytes, frames, now, &mut offsets);
        }
        // The bus is on the first reactor: it publishes its clients'
        // messages from the batch, and the others hand it theirs.
        if self.peers.me == 0 && !batch.publish.is_empty() {
            if let Some(name) = self.hub.name(room) {
                self.link.publish(name, &batch.bytes, &batch.publish);
            }
            batch.publish.clear();
        }
        let to_bus = !batch.publish.is_empty();
        let others = self
            .hub
            .share(room)
            .map_or(0, |s| s.others(self.peers.me) | u64::from(to_bus));
        let frames = if others == 0 {
            Frames::Local(Rc::new(batch.bytes))
        } else {
            let bytes = Arc::new(batch.bytes);
            if let Some(share) = self.hub.share(room) {
                let messages = u32::try_from(batch.frames.len()).unwrap_or(u32::MAX);
                for to in self.peers.each(others) {
                    let publish = if to == 0 {
                        std::mem::take(&mut batch.publish)
                    } else {
                        Vec::new()
                    };
                    let handoff = Handoff {
                        room: share.name().clone(),
                        bytes: bytes.clone(),
                        messages,
                        publish,
                    };
                    self.peers.hand_off(to, handoff);
                }
            }
            Frames::Crossing(bytes)
        };
        self.deliver_all(room, &frames, &batch.frames, &offsets);
    }

    /// Delivers `frames` to every member of `room`: `senders` names each
    /// frame's sender (empty for another reactor's batch), `offsets` each
    /// frame's offset in the room's history (empty without `--history`).
    pub(super) fn deliver_all(
        &mut self,
        room: u32,
        frames: &Frames,
        senders: &[(ConnId, Range<usize>)],
        offsets: &[Offset],
    ) {
        let messages = senders.len();
        self.deliver_counted(room, frames, senders, offsets, messages);
    }

    /// [`Self::deliver_all`] of `messages` messages.
    fn deliver_counted(
        &mut self,
        room: u32,
        frames: &Frames,
        senders: &[(ConnId, Range<usize>)],
        offsets: &[Offset],
        messages: usize,
    ) {
        // Compressed at most once here, for every member that agreed on
        // permessage-deflate.
        let packed = self.pack_room(room, frames, senders);
        // Framed at most once here, for every member that speaks
        // wsd.offsets.
        let framed = (self.hub.has_framed(room) && offsets.len() == senders.len())
            .then(|| frame_offsets(frames.bytes(), senders, offsets));
        // Members waiting for their history, or catching up (`--history`
        // with `--redis`), are served apart.
        let held = if self.hub.has_held(room) {
            self.deliver_held(room, frames.bytes(), senders, offsets)
        } else {
            Vec::new()
        };
        let mut i = 0;
        while let Some(&key) = self.hub.members(room).get(i) {
            if !held.is_empty() && held.binary_search(&key).is_ok() {
                i += 1;
                continue;
            }
            let (frames, senders) = match &framed {
                Some((f, s)) if self.hub.is_framed(room, i) => (f, s.as_slice()),
                _ => compress::pick(self.conns.get(key), (frames, senders), packed.as_ref()),
            };
            self.deliver(key, frames, senders, messages);
            // A member dropped by a write error left its slot to the last
            // member, which has not been served yet.
            if self.hub.members(room).get(i) == Some(&key) {
                i += 1;
            }
        }
    }

    /// Delivers the batches other reactors handed this one, in the order
    /// handed; then deals with rooms whose batches did not fit the mailbox.
    pub(super) fn take_handoffs(&mut self) {
        if !self.peers.several() {
            return;
        }
        while let Some(h) = self.peers.cluster.next_handoff(self.peers.me) {
            self.link.publish(&h.room, &h.bytes, &h.publish);
            // Members may all have left since: then nobody missed it.
            if let Some(room) = self.hub.find(&h.room) {
                let messages = h.messages as usize;
                let frames = Frames::Crossing(h.bytes);
                self.deliver_counted(room, &frames, &[], &[], messages);
            }
        }
        for name in self.peers.cluster.take_lost(self.peers.me) {
            let Some(room) = self.hub.find(&name) else {
                continue;
            };
            // Every member here missed messages: a slow consumer each.
            let members = self.hub.members(room).to_vec();
            for key in members {
                self.slow_consumer(key, 1);
            }
        }
    }

    /// Queues a batch of `messages` on one member and writes it. Every
    /// member sees the messages in the order the server received them; with
    /// `--exclude-sender` a member that published this turn skips its own
    /// (`senders` names each frame's sender; empty for another reactor's).
    fn deliver(
        &mut self,
        key: usize,
        frames: &Frames,
        senders: &[(ConnId, Range<usize>)],
        messages: usize,
    ) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open || conn.session.state() != State::Open {
            return;
        }
        let id = conn.id(key);
        let publisher = !self.cfg.broadcast_to_sender && conn.sent_turn == self.turn;
        let own = if publisher {
            senders.iter().filter(|(sender, _)| *sender == id).count()
        } else {
            0
        };
        let theirs = messages.saturating_sub(own);
        if theirs == 0 {
            return;
        }
        let q = conn.out.get_or_insert_with(Default::default);
        if q.pending() > self.cfg.output_high_water {
            // Output queued earlier this turn may not have been offered to
            // the socket yet: judge only what the socket refuses. An error
            // shows again at the write below.
            let _ = q.write_to(&mut Wire::new(&mut conn.stream, &mut conn.tls));
        }
        if q.pending() > self.cfg.output_high_water {
            return self.slow_consumer(key, theirs);
        }
        let len = frames.bytes().len();
        if own > 0 {
            let mut from = 0;
            for (sender, range) in senders {
                if *sender == id {
                    q.push_shared(SharedBytes::new(frames.clone(), from..range.start));
                    from = range.end;
                }
            }
            q.push_shared(SharedBytes::new(frames.clone(), from..len));
        } else {
            q.push_shared(SharedBytes::new(frames.clone(), 0..len));
        }
        self.report.stats.messages_out += theirs as u64;
        self.write_out(key, false);
    }

    /// A member over the high watermark misses `messages`: they are dropped
    /// for it, or it is cut off with 1008, per `--slow-consumer`.
    fn slow_consumer(&mut self, key: usize, messages: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open || conn.session.state() != State::Open {
            return;
        }
        match self.cfg.slow_consumer {
            SlowConsumerPolicy::Drop => {
                self.report.stats.slow_consumer_drops += messages as u64;
            }
            SlowConsumerPolicy::Close => {
                let id = conn.id(key);
                let q = conn.out.get_or_insert_with(Default::default);
                let dropped = q.discard_unstarted();
                notice!(
                    self,
                    "conn {key}: slow consumer, {dropped} unsent bytes dropped; closing 1008"
                );
                self.report.stats.slow_consumer_cutoffs += 1;
                conn.session
                    .close(close::POLICY, "slow consumer", &mut QueueSink(q));
                self.timers.close.arm(self.clock.now, id);
                self.write_out(key, false);
            }
        }
    }
}

/// The batch as `wsd.offsets` members get it: each frame's message again
/// with its offset in front, and the senders' ranges in the new bytes.
fn frame_offsets(
    bytes: &[u8],
    senders: &[(ConnId, Range<usize>)],
    offsets: &[Offset],
) -> (Frames, Vec<(ConnId, Range<usize>)>) {
    let mut out = Vec::with_capacity(bytes.len() + 24 * senders.len());
    let mut ranges = Vec::with_capacity(senders.len());
    for ((sender, range), offset) in senders.iter().zip(offsets) {
        let frame = bytes.get(range.clone()).unwrap_or_default();
        let start = out.len();
        if let Some((kind, at)) = wire::split(frame) {
            let payload = frame.get(at..).unwrap_or_default();
            wire::write_framed(&mut out, kind, *offset, payload);
        }
        ranges.push((*sender, start..out.len()));
    }
    (Frames::Local(Rc::new(out)), ranges)
}
