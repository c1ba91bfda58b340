//! Broadcast rooms: which connections a message fans out to.
//!
//! In broadcast mode the request path (without its query) names the room a
//! client joins; `/` and `/chat` are different rooms. Join and leave are
//! O(1): a room's members live in a dense vector and a leaving member's
//! place is taken by the last one, whose owner is told its new slot. A room
//! exists while it has members. Each room also collects the turn's
//! messages for it in a [`Batch`], encoded once.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use slab::Slab;

use crate::history::{wire, Ask, History, HistoryConfig, Offset};
use crate::id::{ConnId, RoomShare};
use crate::proto::session::write_message;
use crate::proto::MessageKind;

/// A turn's broadcast messages for one room, encoded once and back to
/// back, fanned out at the end of the turn as one shared buffer.
#[derive(Debug, Default)]
pub struct Batch {
    /// The encoded frames.
    pub bytes: Vec<u8>,
    /// Each frame's sender and where the frame is in `bytes`.
    pub frames: Vec<(ConnId, Range<usize>)>,
    /// The messages to publish to other nodes (`--redis`): each one's kind
    /// and where its payload is in `bytes`. Messages that came from the
    /// bus are not among them.
    pub publish: Vec<(MessageKind, Range<usize>)>,
}

/// A member speaks `wsd.offsets`: its messages go out with their offsets.
pub const FRAMED: u8 = 1;
/// A member waits for its room's history to be read (`--history` with
/// `--redis`): the room's live messages are held for it meanwhile.
pub const HELD: u8 = 2;
/// A member got its history and skips live messages it already had, until
/// the first it had not.
pub const CATCHING: u8 = 4;

#[derive(Debug)]
struct Room {
    name: Box<str>,
    members: Vec<usize>,
    /// Per member (the same slots): [`FRAMED`], [`HELD`], [`CATCHING`].
    flags: Vec<u8>,
    /// How many members speak `wsd.offsets`.
    framed_count: usize,
    /// How many members are [`HELD`] or [`CATCHING`].
    held_count: usize,
    batch: Batch,
    /// The turn's messages from the bus with their offsets (`--history`
    /// with `--redis`: the bus orders the room's messages).
    recorded: Batch,
    offsets: Vec<Offset>,
    /// Which other reactors have members (`--threads`).
    share: Option<Arc<RoomShare>>,
}

/// Where a connection sits: its room and its slot in the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    /// The room's id.
    pub room: u32,
    /// The member's slot in the room.
    pub slot: u32,
}

/// What joining did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined {
    /// Where the member sits.
    pub seat: Seat,
    /// The member is the room's first: the room was just created.
    pub new_room: bool,
}

/// What leaving did.
#[derive(Debug)]
pub struct Left {
    /// The member moved into the leaver's slot, whose seat is now the
    /// leaver's.
    pub moved: Option<usize>,
    /// The room's name, if the leaver was its last member and the room went
    /// away.
    pub emptied: Option<Box<str>>,
    /// The emptied room's share of the reactors' directory, if it had one.
    pub share: Option<Arc<RoomShare>>,
}

/// The rooms.
#[derive(Debug, Default)]
pub struct Hub {
    rooms: Slab<Room>,
    by_name: HashMap<Box<str>, usize>,
    /// Rooms whose batch has frames this turn.
    active: Vec<u32>,
    /// Every room's recent messages (`--history`), members or not.
    history: Option<History>,
    /// Members that joined [`HELD`] this turn, for their history to be read.
    waiters: Vec<Waiter>,
    /// The joins' counters when the bus keeps the history.
    recall: crate::history::HistoryStats,
}

/// A member whose room's history must be read before it goes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// The member's connection.
    pub conn: ConnId,
    /// Its room.
    pub room: u32,
    /// What it asked of the history.
    pub ask: Ask,
    /// It speaks `wsd.offsets`.
    pub framed: bool,
}

impl Hub {
    /// Adds connection `key` to the room `name`, creating the room if
    /// needed; `framed`: it speaks `wsd.offsets`.
    pub fn join(&mut self, name: &str, key: usize, framed: bool) -> Joined {
        let existing = self
            .by_name
            .get(name)
            .copied()
            .filter(|&id| self.rooms.contains(id));
        let new_room = existing.is_none();
        let id = existing.unwrap_or_else(|| {
            let id = self.rooms.insert(Room {
                name: name.into(),
                members: Vec::new(),
                flags: Vec::new(),
                framed_count: 0,
                held_count: 0,
                batch: Batch::default(),
                recorded: Batch::default(),
                offsets: Vec::new(),
                share: None,
            });
            self.by_name.insert(name.into(), id);
            id
        });
        // The room exists: found above or just inserted.
        let slot = self.rooms.get_mut(id).map_or(0, |room| {
            room.members.push(key);
            room.flags.push(if framed { FRAMED } else { 0 });
            room.framed_count += usize::from(framed);
            if let Some(share) = &room.share {
                share.joined(1);
            }
            room.members.len() - 1
        });
        Joined {
            seat: Seat {
                // Room ids and slots are bounded by the connection count.
                room: id as u32,
                slot: slot as u32,
            },
            new_room,
        }
    }

    /// Removes the member in `seat`: the last member takes its slot, and an
    /// emptied room goes away.
    pub fn leave(&mut self, seat: Seat) -> Left {
        let mut left = Left {
            moved: None,
            emptied: None,
            share: None,
        };
        let Some(room) = self.rooms.get_mut(seat.room as usize) else {
            return left;
        };
        let slot = seat.slot as usize;
        if slot >= room.members.len() {
            return left;
        }
        room.members.swap_remove(slot);
        if room.flags.len() > slot {
            let flags = room.flags.swap_remove(slot);
            room.framed_count -= usize::from(flags & FRAMED != 0);
            room.held_count -= usize::from(flags & (HELD | CATCHING) != 0);
        }
        if let Some(share) = &room.share {
            share.left();
        }
        left.moved = room.members.get(slot).copied();
        if room.members.is_empty() {
            let room = self.rooms.remove(seat.room as usize);
            self.by_name.remove(&room.name);
            left.emptied = Some(room.name);
            left.share = room.share;
        }
        left
    }

    /// Records which reactors share room `id`.
    pub fn set_share(&mut self, id: u32, share: Arc<RoomShare>) {
        if let Some(room) = self.rooms.get_mut(id as usize) {
            // The members so far (the first), from now on counted as they
            // come and go.
            share.joined(room.members.len());
            room.share = Some(share);
        }
    }

    /// The reactors' directory entry of room `id`, if it has one.
    pub fn share(&self, id: u32) -> Option<&Arc<RoomShare>> {
        self.rooms.get(id as usize)?.share.as_ref()
    }

    /// The id of the room named `name`, if it has members.
    pub fn find(&self, name: &str) -> Option<u32> {
        let id = *self.by_name.get(name)?;
        self.rooms.contains(id).then_some(id as u32)
    }

    /// The name of room `id`.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.rooms.get(id as usize).map(|r| &*r.name)
    }

    /// The members of room `id` (empty if there is no such room).
    pub fn members(&self, id: u32) -> &[usize] {
        self.rooms.get(id as usize).map_or(&[], |r| &r.members)
    }

    /// Whether the member in `slot` of room `id` speaks `wsd.offsets`.
    pub fn is_framed(&self, id: u32, slot: usize) -> bool {
        self.flags(id, slot) & FRAMED != 0
    }

    /// The flags of the member in `slot` of room `id` ([`FRAMED`],
    /// [`HELD`], [`CATCHING`]).
    pub fn flags(&self, id: u32, slot: usize) -> u8 {
        self.rooms
            .get(id as usize)
            .and_then(|r| r.flags.get(slot).copied())
            .unwrap_or(0)
    }

    /// Whether any member of room `id` is [`HELD`] or [`CATCHING`].
    pub fn has_held(&self, id: u32) -> bool {
        self.rooms
            .get(id as usize)
            .is_some_and(|r| r.held_count > 0)
    }

    /// Sets whether the member in `seat` is [`HELD`] or [`CATCHING`] (or
    /// neither: `hold` 0); its [`FRAMED`] flag stays.
    pub fn set_held(&mut self, seat: Seat, hold: u8) {
        let Some(room) = self.rooms.get_mut(seat.room as usize) else {
            return;
        };
        let Some(flags) = room.flags.get_mut(seat.slot as usize) else {
            return;
        };
        let was = *flags & (HELD | CATCHING) != 0;
        *flags = (*flags & FRAMED) | (hold & (HELD | CATCHING));
        let is = *flags & (HELD | CATCHING) != 0;
        room.held_count = room.held_count + usize::from(is) - usize::from(was);
    }

    /// Holds the member in `seat` (connection `conn`) until its room's
    /// history, read for `ask`, is sent ([`Hub::take_waiters`]).
    pub fn hold(&mut self, seat: Seat, conn: ConnId, ask: Ask, framed: bool) {
        self.set_held(seat, HELD);
        self.waiters.push(Waiter {
            conn,
            room: seat.room,
            ask,
            framed,
        });
    }

    /// The joins' counters when the bus keeps the history.
    pub fn recall_stats(&mut self) -> &mut crate::history::HistoryStats {
        &mut self.recall
    }

    /// The members held since the last call.
    pub fn take_waiters(&mut self) -> Vec<Waiter> {
        std::mem::take(&mut self.waiters)
    }

    /// Whether any member of room `id` speaks `wsd.offsets`.
    pub fn has_framed(&self, id: u32) -> bool {
        self.rooms
            .get(id as usize)
            .is_some_and(|r| r.framed_count > 0)
    }

    /// The history of every room, made on first use if `cfg` turns it on.
    pub fn history(&mut self, cfg: Option<&HistoryConfig>) -> Option<&mut History> {
        if self.history.is_none() {
            self.history = cfg.map(|c| History::new(*c, crate::history::random_epoch_base()));
        }
        self.history.as_mut()
    }

    /// Records the messages of room `id`'s batch (`bytes`, each frame's
    /// range in `frames`) in its history at `now_ms` (made on first use
    /// with `cfg`), and puts their offsets in `offsets`, one per frame.
    pub fn record(
        &mut self,
        id: u32,
        cfg: &HistoryConfig,
        bytes: &[u8],
        frames: &[(ConnId, Range<usize>)],
        now_ms: u64,
        offsets: &mut Vec<Offset>,
    ) {
        offsets.clear();
        let history = self
            .history
            .get_or_insert_with(|| History::new(*cfg, crate::history::random_epoch_base()));
        let Some(room) = self.rooms.get(id as usize) else {
            return;
        };
        for (_, range) in frames {
            let frame = bytes.get(range.clone()).unwrap_or_default();
            let offset = match wire::split(frame) {
                Some((kind, at)) => history.append(&room.name, kind, frame, at, now_ms),
                None => Offset::ZERO,
            };
            offsets.push(offset);
        }
    }

    /// Records a message for room `name`, which has no members here, in
    /// its history (if `cfg` turns history on).
    pub fn record_alone(
        &mut self,
        name: &str,
        kind: MessageKind,
        payload: &[u8],
        cfg: Option<&HistoryConfig>,
    ) {
        if cfg.is_none() {
            return;
        }
        let now = crate::history::unix_ms();
        self.expire_history(now);
        if let Some(history) = self.history(cfg) {
            let mut frame = Vec::with_capacity(payload.len() + 14);
            write_message(&mut frame, kind, payload);
            let at = frame.len() - payload.len();
            history.append(name, kind, &frame, at, now);
        }
    }

    /// Drops expired history, and the records of rooms idle past the TTL
    /// with no members.
    pub fn expire_history(&mut self, now_ms: u64) {
        let by_name = &self.by_name;
        if let Some(history) = self.history.as_mut() {
            history.expire(now_ms, &|name| by_name.contains_key(name));
        }
    }

    /// How many rooms have members.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// The batch of room `id`, for the session to encode a message into;
    /// marks the room active for this turn.
    pub fn batch(&mut self, id: u32) -> Option<&mut Batch> {
        let room = self.rooms.get_mut(id as usize)?;
        if room.batch.frames.is_empty() && room.recorded.frames.is_empty() {
            self.active.push(id);
        }
        Some(&mut room.batch)
    }

    /// The batch of room `id`'s messages from the bus with their offsets
    /// (one per frame); marks the room active for this turn.
    pub fn recorded(&mut self, id: u32) -> Option<(&mut Batch, &mut Vec<Offset>)> {
        let room = self.rooms.get_mut(id as usize)?;
        if room.batch.frames.is_empty() && room.recorded.frames.is_empty() {
            self.active.push(id);
        }
        Some((&mut room.recorded, &mut room.offsets))
    }

    /// Takes room `id`'s messages from the bus and their offsets.
    pub fn take_recorded(&mut self, id: u32) -> (Batch, Vec<Offset>) {
        match self.rooms.get_mut(id as usize) {
            Some(room) => (
                std::mem::take(&mut room.recorded),
                std::mem::take(&mut room.offsets),
            ),
            None => Default::default(),
        }
    }

    /// Bytes batched for room `id` this turn.
    pub fn batched(&self, id: u32) -> usize {
        self.rooms
            .get(id as usize)
            .map_or(0, |r| r.batch.bytes.len())
    }

    /// Takes the batch of room `id`, leaving an empty one with room for as
    /// much as this one held (up to `cap`).
    pub fn take_batch(&mut self, id: u32, cap: usize) -> Batch {
        match self.rooms.get_mut(id as usize) {
            Some(room) => {
                let next = Batch {
                    bytes: Vec::with_capacity(room.batch.bytes.len().min(cap)),
                    frames: Vec::with_capacity(room.batch.frames.len()),
                    publish: Vec::with_capacity(room.batch.publish.len()),
                };
                std::mem::replace(&mut room.batch, next)
            }
            None => Batch::default(),
        }
    }

    /// Whether any room has frames this turn.
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Takes the list of rooms with frames this turn.
    pub fn take_active(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.active)
    }

    /// Gives back the (emptied) active list, to keep its capacity.
    pub fn restore_active(&mut self, mut list: Vec<u32>) {
        list.clear();
        if self.active.is_empty() {
            self.active = list;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_moves_the_last_member_into_the_hole() {
        let mut hub = Hub::default();
        let seats: Vec<Seat> = (10..15).map(|k| hub.join("/", k, false).seat).collect();
        assert_eq!(
            seats.iter().map(|s| s.slot).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let room = seats[0].room;
        assert_eq!(hub.leave(seats[1]).moved, Some(14));
        assert_eq!(hub.members(room), [10, 14, 12, 13]);
        // Leaving from the end moves nobody.
        assert_eq!(hub.leave(Seat { room, slot: 3 }).moved, None);
        assert_eq!(hub.members(room), [10, 14, 12]);
        let nothing = hub.leave(Seat { room, slot: 7 });
        assert!(nothing.moved.is_none() && nothing.emptied.is_none() && nothing.share.is_none());
    }

    #[test]
    fn rooms_are_separate_and_go_away_when_empty() {
        let mut hub = Hub::default();
        let a = hub.join("/", 1, false);
        let b = hub.join("/chat", 2, false);
        let c = hub.join("/chat", 3, false);
        assert!(a.new_room && b.new_room && !c.new_room);
        let (a, b, c) = (a.seat, b.seat, c.seat);
        assert_eq!(hub.find("/chat"), Some(b.room));
        assert_eq!(hub.name(b.room), Some("/chat"));
        assert_ne!(a.room, b.room);
        assert_eq!(b.room, c.room);
        assert_eq!(hub.rooms(), 2);
        assert_eq!(hub.members(b.room), [2, 3]);
        assert_eq!(hub.leave(a).emptied.as_deref(), Some("/"));
        assert_eq!(hub.find("/"), None);
        assert_eq!(hub.rooms(), 1);
        assert!(hub.members(a.room).is_empty() || a.room == b.room);
        // The name can be joined again: a fresh room.
        let again = hub.join("/", 4, false);
        assert!(again.new_room);
        assert_eq!(hub.members(again.seat.room), [4]);
    }

    #[test]
    fn a_room_is_active_once_per_turn() {
        let mut hub = Hub::default();
        let s = hub.join("/", 1, false).seat;
        let sender = ConnId { key: 1, gen: 1 };
        for _ in 0..3 {
            let b = hub.batch(s.room).unwrap();
            b.bytes.extend_from_slice(b"xy");
            b.frames.push((sender, 0..2));
        }
        assert_eq!(hub.take_active(), [s.room]);
        assert_eq!(hub.batched(s.room), 6);
        let batch = hub.take_batch(s.room, 1024);
        assert_eq!(batch.frames.len(), 3);
        assert_eq!(hub.batched(s.room), 0);
    }

    #[test]
    fn held_members_are_counted_and_keep_their_flags_through_leaves() {
        let mut hub = Hub::default();
        let a = hub.join("/r", 10, true).seat;
        let b = hub.join("/r", 11, false).seat;
        assert!(!hub.has_held(a.room));
        hub.hold(a, ConnId { key: 10, gen: 1 }, Ask::Last(3), true);
        assert!(hub.has_held(a.room));
        assert_eq!(hub.flags(a.room, 0), FRAMED | HELD);
        let w = hub.take_waiters();
        assert_eq!((w.len(), w[0].conn.key, w[0].ask), (1, 10, Ask::Last(3)));
        assert!(hub.take_waiters().is_empty());
        hub.set_held(a, CATCHING);
        assert_eq!(hub.flags(a.room, 0), FRAMED | CATCHING);
        hub.set_held(b, HELD);
        // Leaving takes its count along; the mover keeps its flags.
        hub.leave(a);
        assert_eq!(hub.flags(a.room, 0), HELD);
        assert!(hub.has_held(a.room));
        hub.set_held(
            Seat {
                room: a.room,
                slot: 0,
            },
            0,
        );
        assert!(!hub.has_held(a.room));
    }

    #[test]
    fn framed_members_are_known_by_slot_through_leaves() {
        let mut hub = Hub::default();
        let a = hub.join("/", 1, true).seat;
        let _b = hub.join("/", 2, false).seat;
        let _c = hub.join("/", 3, true).seat;
        let room = a.room;
        assert!(hub.has_framed(room));
        assert_eq!(
            (0..3).map(|s| hub.is_framed(room, s)).collect::<Vec<_>>(),
            [true, false, true]
        );
        // The last member (framed) moves into slot 0, and keeps its flag.
        assert_eq!(hub.leave(a).moved, Some(3));
        assert_eq!(hub.members(room), [3, 2]);
        assert!(hub.is_framed(room, 0) && !hub.is_framed(room, 1));
        hub.leave(Seat { room, slot: 0 });
        assert!(!hub.has_framed(room));
        assert!(!hub.is_framed(room, 5));
    }
}
