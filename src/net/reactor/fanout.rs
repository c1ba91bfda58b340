//! Broadcast fan-out: a room's batch of the turn becomes one shared buffer
//! that every member's queue references, under the slow-consumer policy.

use std::ops::Range;
use std::rc::Rc;

use super::{compress, Server, BATCH_LIMIT};
use crate::config::SlowConsumerPolicy;
use crate::net::buffer::SharedBytes;
use crate::net::conn::{Phase, QueueSink};
use crate::net::timer::ConnId;
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
    /// shared buffer that every member's queue references.
    pub(super) fn fan_out_room(&mut self, room: u32) {
        let batch = self.hub.take_batch(room, BATCH_LIMIT);
        if batch.frames.is_empty() {
            return;
        }
        // Compressed at most once, for every member that agreed on
        // permessage-deflate.
        let packed = self.pack_room(room, &batch);
        let plain = (Rc::new(batch.bytes), batch.frames);
        let mut i = 0;
        while let Some(&key) = self.hub.members(room).get(i) {
            let (bytes, frames) = compress::pick(self.conns.get(key), &plain, packed.as_ref());
            self.deliver(key, bytes, frames);
            // A member dropped by a write error left its slot to the last
            // member, which has not been served yet.
            if self.hub.members(room).get(i) == Some(&key) {
                i += 1;
            }
        }
    }

    /// Queues a batch on one member and writes it. Every member sees the
    /// messages in the order the server received them; with
    /// `--exclude-sender` a member that published this turn skips its own.
    fn deliver(&mut self, key: usize, bytes: &Rc<Vec<u8>>, frames: &[(ConnId, Range<usize>)]) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open || conn.session.state() != State::Open {
            return;
        }
        let id = conn.id(key);
        let publisher = !self.cfg.broadcast_to_sender && conn.sent_turn == self.turn;
        let theirs = if publisher {
            frames.iter().filter(|(sender, _)| *sender != id).count()
        } else {
            frames.len()
        };
        if theirs == 0 {
            return;
        }
        let q = conn.out.get_or_insert_with(Default::default);
        if q.pending() > self.cfg.output_high_water {
            // Output queued earlier this turn may not have been offered to
            // the socket yet: judge only what the socket refuses. An error
            // shows again at the write below.
            let _ = q.write_to(&mut conn.stream);
        }
        if q.pending() > self.cfg.output_high_water {
            match self.cfg.slow_consumer {
                SlowConsumerPolicy::Drop => {
                    self.stats.slow_consumer_drops += theirs as u64;
                    return;
                }
                SlowConsumerPolicy::Close => {
                    let dropped = q.discard_unstarted();
                    notice!(
                        self,
                        "conn {key}: slow consumer, {dropped} unsent bytes dropped; closing 1008"
                    );
                    self.stats.slow_consumer_cutoffs += 1;
                    conn.session
                        .close(close::POLICY, "slow consumer", &mut QueueSink(q));
                    self.close_timers.arm(self.now, id);
                }
            }
        } else if publisher {
            let mut from = 0;
            for (sender, range) in frames {
                if *sender == id {
                    q.push_shared(SharedBytes::new(bytes.clone(), from..range.start));
                    from = range.end;
                }
            }
            q.push_shared(SharedBytes::new(bytes.clone(), from..bytes.len()));
            self.stats.messages_out += theirs as u64;
        } else {
            q.push_shared(SharedBytes::new(bytes.clone(), 0..bytes.len()));
            self.stats.messages_out += theirs as u64;
        }
        self.write_out(key, false);
    }
}
