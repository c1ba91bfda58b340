//! Publishing and reading with history in Redis Streams (`--history`):
//! the [`RedisBus`]'s use of its [`super::Recorder`].

use super::super::link::{Expect, State};
use super::super::streams::Origin;
use super::super::DropReason;
use super::RedisBus;
use crate::history::Ask;
use crate::proto::MessageKind;

impl RedisBus {
    /// Records and publishes a message through the script, or holds it
    /// until its room's subscription is confirmed. Both connections must be
    /// up: the node delivers the message to its own members only when it
    /// comes back on the subscribe connection.
    pub(super) fn publish_recorded(
        &mut self,
        room: &str,
        kind: MessageKind,
        payload: &[u8],
        sender: u64,
    ) -> bool {
        let RedisBus {
            recorder: Some(recorder),
            publ,
            sub,
            cfg,
            instance,
            rooms,
            stats,
            ..
        } = self
        else {
            return false;
        };
        if sub.state != State::Ready {
            stats.count_drop(DropReason::Down);
            return false;
        }
        let prefix = cfg.prefix.as_bytes();
        let from = Origin {
            node: cfg.node_id.as_bytes(),
            instance,
            sender,
        };
        let streams = &recorder.streams;
        let size = streams.publish_size(prefix, room, from.header_len(), payload.len());
        if recorder.must_wait(rooms, room) {
            let mut bytes = Vec::with_capacity(size);
            streams.write_publish(&mut bytes, prefix, room, &from, kind, payload);
            if let Err(why) = recorder.hold(room, bytes, None, cfg.max_queue) {
                stats.count_drop(why);
                return false;
            }
            return true;
        }
        let pending = publ.pending_out();
        if pending > 0 && pending + size > cfg.max_queue {
            stats.count_drop(DropReason::QueueFull);
            return false;
        }
        streams.write_publish(publ.out(), prefix, room, &from, kind, payload);
        publ.expect.push(Expect::Script, 1);
        stats.queued_bytes = publ.pending_out() as u64;
        true
    }

    /// Sends the read of `room`'s history a join asks for, or holds it
    /// until the room's subscription is confirmed. False if the bus is
    /// down or keeps no history: the join goes live.
    pub(super) fn read_recorded(&mut self, room: &str, ask: Ask, now_ms: u64, id: u64) -> bool {
        let RedisBus {
            recorder: Some(recorder),
            publ,
            sub,
            cfg,
            rooms,
            stats,
            ..
        } = self
        else {
            return false;
        };
        if publ.state != State::Ready || sub.state != State::Ready {
            return false;
        }
        let prefix = cfg.prefix.as_bytes();
        if recorder.must_wait(rooms, room) {
            let mut bytes = Vec::new();
            recorder
                .streams
                .write_read(&mut bytes, prefix, room, ask, now_ms);
            return recorder.hold(room, bytes, Some(id), cfg.max_queue).is_ok();
        }
        recorder
            .streams
            .write_read(publ.out(), prefix, room, ask, now_ms);
        recorder.sent_read(publ, id);
        stats.queued_bytes = publ.pending_out() as u64;
        true
    }
}
