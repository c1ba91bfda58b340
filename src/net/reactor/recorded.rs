//! Fan-out when the bus keeps the rooms' history (`--history` with
//! `--redis`): the bus orders every room's messages, so a node sends its
//! members its own clients' messages only when they come back from the
//! bus, recorded, in the same order and with the same offsets as every
//! other node. A message the bus refuses (it is down, or its queue is
//! full) is delivered here at once, unrecorded: it has no offset
//! (`wsd.offsets` members get it with an empty one) and no node keeps it.

use std::ops::Range;
use std::rc::Rc;

use super::Server;
use crate::history::Offset;
use crate::hub::{Batch, CATCHING, HELD};
use crate::id::ConnId;
use crate::net::buffer::Frames;

impl Server {
    /// Sends a room's batch for the bus to record (delivering here what it
    /// refuses), then delivers what the bus brought back this turn.
    pub(super) fn fan_out_recorded(&mut self, room: u32, batch: Batch) {
        if !batch.frames.is_empty() {
            let name = self.hub.name(room).unwrap_or_default().to_owned();
            let refused = self.link.publish_recorded(&name, &batch);
            if !refused.is_empty() {
                let mut bytes = Vec::new();
                let mut frames = Vec::with_capacity(refused.len());
                for i in refused {
                    if let Some((sender, range)) = batch.frames.get(i) {
                        let start = bytes.len();
                        bytes.extend_from_slice(batch.bytes.get(range.clone()).unwrap_or_default());
                        frames.push((*sender, start..bytes.len()));
                    }
                }
                let offsets = vec![Offset::ZERO; frames.len()];
                let frames_of = Frames::Local(Rc::new(bytes));
                self.deliver_all(room, &frames_of, &frames, &offsets);
            }
        }
        let (recorded, offsets) = self.hub.take_recorded(room);
        if !recorded.frames.is_empty() {
            let bytes = Frames::Local(Rc::new(recorded.bytes));
            self.deliver_all(room, &bytes, &recorded.frames, &offsets);
        }
    }

    /// The part of a delivery for members held for their history or
    /// catching up: the batch is logged once for the held ones, and each
    /// one catching up gets what it has not had. Returns the members to
    /// skip in the ordinary delivery, sorted.
    pub(super) fn deliver_held(
        &mut self,
        room: u32,
        bytes: &[u8],
        frames: &[(ConnId, Range<usize>)],
        offsets: &[Offset],
    ) -> Vec<usize> {
        let flagged: Vec<(usize, u8)> = (self.hub.members(room).iter().enumerate())
            .map(|(slot, &key)| (key, self.hub.flags(room, slot)))
            .filter(|(_, flags)| flags & (HELD | CATCHING) != 0)
            .collect();
        let mut held = false;
        for &(key, flags) in &flagged {
            if flags & HELD != 0 {
                held = true;
            } else {
                self.catch_up(key, bytes, frames, offsets);
            }
        }
        if held && !self.recall.log(room, bytes, frames, offsets) {
            notice!(
                self,
                "history reads for a room are slow to come: its joiners go live without"
            );
            self.give_up_room(room);
        }
        let mut skip: Vec<usize> = flagged.into_iter().map(|(key, _)| key).collect();
        skip.sort_unstable();
        skip
    }
}
