//! The subscribe connection's upkeep: subscription changes, and warnings
//! about a shared node id.

use super::super::envelope::RAW;
use super::super::link::Expect;
use super::super::replies::CHANNELS_PER_ROOM;
use super::super::resp;
use super::RedisBus;

/// Rooms named in one SUBSCRIBE or UNSUBSCRIBE: two channels each.
const ROOMS_PER_COMMAND: usize = 128;

impl RedisBus {
    /// Sends the subscription changes since the last flush.
    pub(super) fn send_subscriptions(&mut self) {
        let mut subs = Vec::new();
        let mut unsubs = Vec::new();
        for room in self.dirty.drain(..) {
            let want = self.rooms.contains(&room);
            if want && !self.told.contains(&room) {
                self.told.insert(room.clone());
                subs.push(room);
            } else if !want && self.told.remove(&room) {
                unsubs.push(room);
            }
        }
        let prefix = self.cfg.prefix.as_bytes();
        for (command, rooms, expect) in [
            (&b"SUBSCRIBE"[..], subs, Expect::Subscribe),
            (b"UNSUBSCRIBE", unsubs, Expect::Unsubscribe),
        ] {
            for chunk in rooms.chunks(ROOMS_PER_COMMAND) {
                let out = self.sub.out();
                resp::write_array_header(out, 1 + 2 * chunk.len());
                resp::write_bulk(out, command);
                for room in chunk {
                    for raw in [&b""[..], RAW] {
                        resp::write_bulk_header(out, prefix.len() + raw.len() + room.len());
                        out.extend_from_slice(prefix);
                        out.extend_from_slice(raw);
                        out.extend_from_slice(room.as_bytes());
                        resp::write_crlf(out);
                    }
                }
                self.sub
                    .expect
                    .push(expect, CHANNELS_PER_ROOM * chunk.len() as u64);
            }
        }
    }

    /// Warns about a node-id clash, at most once a minute.
    pub(super) fn warn_clash(&mut self) {
        let (count, now) = (self.stats.clash, self.now);
        self.clash.check("redis", &self.cfg.node_id, count, now);
    }
}
