//! Per-room history (`--history N`): the last messages of every room, for
//! a joining client to rewind (`?rewind=`) and a reconnecting one to
//! resume from its last offset (`?since=&epoch=`).
//!
//! Sans-IO: the store takes the time in as Unix milliseconds and hands
//! entries out; it never reads a clock or a socket. Each entry keeps the
//! message's frame as broadcast encoded it (copied once, when the message
//! is recorded, never per receiver), so a rewind for a plain client is the
//! stored bytes as they are.
//!
//! Bounds, and what happens at each:
//! - a room keeps its last `keep` messages: a new one drops the room's oldest;
//! - a message older than `ttl` is dropped (at the store's next call);
//! - all rooms together hold at most `memory` bytes (frames plus a fixed
//!   overhead per entry and per room): a new message drops the oldest
//!   messages of any room, oldest first, until it fits; a room that loses
//!   its last message this way loses its record (and epoch) too. Records
//!   of rooms that only have members and no messages are counted but not
//!   evicted (the members cost more).
//!
//! A room's record (its epoch and last offset) lives while it has messages,
//! or members, or was touched within `ttl`. A record that goes and comes
//! back gets a new epoch: its offsets start again, and a client holding the
//! old epoch is told to refetch.

pub mod offset;
pub mod query;
pub mod remote;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use slab::Slab;

pub use offset::Offset;
pub use query::Ask;

use crate::proto::MessageKind;
use crate::stats::{prometheus, Kind};

/// What an entry costs besides its frame: the entry, its place in the
/// eviction order, allocator slack.
pub const ENTRY_OVERHEAD: usize = 64;
/// What a room's record costs besides its name.
pub const ROOM_OVERHEAD: usize = 128;

/// History settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Messages kept per room (`--history`).
    pub keep: usize,
    /// How long a message is kept (`--history-ttl`).
    pub ttl: Duration,
    /// Bytes all rooms together may hold (`--history-memory`).
    pub memory: usize,
}

/// One recorded message.
#[derive(Debug)]
pub struct Entry {
    /// Its position in the room.
    pub offset: Offset,
    /// Text or binary.
    pub kind: MessageKind,
    /// The frame as broadcast sent it: header, then payload.
    pub frame: Box<[u8]>,
    /// Where the payload starts in `frame`.
    pub payload_at: usize,
}

impl Entry {
    /// The message's payload.
    pub fn payload(&self) -> &[u8] {
        self.frame.get(self.payload_at..).unwrap_or_default()
    }
}

/// How a join's ask was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing asked: live only.
    Live,
    /// `?rewind=`: this many past messages.
    Rewound(usize),
    /// `?since=`: everything after the offset, this many messages.
    Resumed(usize),
    /// `?since=` could not be served: the client must refetch its state.
    Reset(ResetReason),
}

/// Why a resume could not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// The history does not reach back to the offset.
    TooOld,
    /// The client's epoch is not the room's: the history it knew is gone.
    Epoch,
    /// The history could not be read (`--redis` down or slow): the client
    /// joined live and may have missed messages.
    Unavailable,
}

/// Where a joining client stands: the room's epoch, the offset its live
/// stream continues from, and what was replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The room's history epoch.
    pub epoch: u64,
    /// The last offset recorded when the client joined (after the
    /// replayed messages, which end there).
    pub last: Offset,
    /// What was replayed.
    pub outcome: Outcome,
}

/// Counters and gauges for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Rewinds served (`?rewind=`).
    pub rewinds: u64,
    /// Resumes served (`?since=`).
    pub resumes: u64,
    /// Resumes that could not be served: the client was told to refetch.
    pub resets: u64,
    /// Messages dropped to keep `--history-memory`.
    pub evicted: u64,
    /// Joins whose history could not be read (`--redis` down or slow): they
    /// went live, and a `wsd.offsets` client was told to refetch.
    pub unavailable: u64,
}

#[derive(Debug)]
struct Room {
    name: Box<str>,
    epoch: u64,
    last: Offset,
    /// The newest offset dropped: a resume from before it is incomplete.
    dropped: Offset,
    entries: VecDeque<Entry>,
    /// When a client joined or a message came, Unix ms.
    touched: u64,
}

/// An entry's place in the store-wide order, oldest first.
#[derive(Clone, Copy, Debug)]
struct Mark {
    room: usize,
    epoch: u64,
    offset: Offset,
}

/// The history of every room.
#[derive(Debug)]
pub struct History {
    cfg: HistoryConfig,
    rooms: Slab<Room>,
    by_name: HashMap<Box<str>, usize>,
    /// Every entry of every room in the order recorded (and entries already
    /// gone, skipped when met; compacted when they are half).
    order: VecDeque<Mark>,
    entries: usize,
    bytes: usize,
    /// Epochs are this plus a count: unique per room record and process.
    epoch_base: u64,
    epochs: u64,
    /// When empty records were last swept, Unix ms.
    swept: u64,
    stats: HistoryStats,
}

impl History {
    /// An empty store; `epoch_base` (random per process) makes epochs of
    /// this process differ from a previous one's.
    pub fn new(cfg: HistoryConfig, epoch_base: u64) -> History {
        History {
            cfg,
            rooms: Slab::new(),
            by_name: HashMap::new(),
            order: VecDeque::new(),
            entries: 0,
            bytes: 0,
            // Kept within 2^53, so that JavaScript reads an epoch exactly.
            epoch_base: epoch_base & ((1 << 52) - 1),
            epochs: 0,
            swept: 0,
            stats: HistoryStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &HistoryConfig {
        &self.cfg
    }

    /// Records a message of room `name` (`frame` as broadcast encoded it,
    /// its payload from `payload_at`) at `now_ms`; returns its offset.
    pub fn append(
        &mut self,
        name: &str,
        kind: MessageKind,
        frame: &[u8],
        payload_at: usize,
        now_ms: u64,
    ) -> Offset {
        self.expire_messages(now_ms);
        let id = self.room(name, now_ms);
        let cost = frame.len() + ENTRY_OVERHEAD;
        // Make room: the room's own limit first, then the memory cap,
        // oldest first across rooms (never the room record being written).
        if let Some(room) = self.rooms.get(id) {
            if room.entries.len() >= self.cfg.keep {
                self.drop_oldest_of(id);
            }
        }
        while self.bytes + cost > self.cfg.memory && self.entries > 0 {
            if !self.evict_oldest(id) {
                break;
            }
            self.stats.evicted += 1;
        }
        let Some(room) = self.rooms.get_mut(id) else {
            return Offset::ZERO;
        };
        let offset = room.last.next(now_ms);
        room.last = offset;
        room.touched = now_ms;
        room.entries.push_back(Entry {
            offset,
            kind,
            frame: frame.into(),
            payload_at,
        });
        self.order.push_back(Mark {
            room: id,
            epoch: room.epoch,
            offset,
        });
        self.entries += 1;
        self.bytes += cost;
        offset
    }

    /// A client joins room `name` at `now_ms` asking `ask`: `replay` gets
    /// the past messages it is owed, oldest first, and the answer says
    /// where its live stream continues.
    pub fn join(
        &mut self,
        name: &str,
        ask: Ask,
        now_ms: u64,
        replay: &mut dyn FnMut(&Entry),
    ) -> Recovery {
        self.expire_messages(now_ms);
        let id = self.room(name, now_ms);
        let Some(room) = self.rooms.get_mut(id) else {
            return Recovery {
                epoch: 0,
                last: Offset::ZERO,
                outcome: Outcome::Live,
            };
        };
        room.touched = now_ms;
        let entries = &room.entries;
        let (from, outcome) = match ask {
            Ask::Live => (entries.len(), Outcome::Live),
            Ask::Last(n) => {
                let n = n.min(self.cfg.keep).min(entries.len());
                (entries.len() - n, Outcome::Rewound(n))
            }
            Ask::Within(d) => {
                let since = now_ms.saturating_sub(millis(d));
                let from = entries.partition_point(|e| e.offset.ms < since);
                (from, Outcome::Rewound(entries.len() - from))
            }
            Ask::Since { offset, epoch } => {
                if epoch != room.epoch || offset > room.last {
                    (entries.len(), Outcome::Reset(ResetReason::Epoch))
                } else if offset < room.dropped {
                    // A message after `offset` is gone.
                    (entries.len(), Outcome::Reset(ResetReason::TooOld))
                } else {
                    let from = entries.partition_point(|e| e.offset <= offset);
                    (from, Outcome::Resumed(entries.len() - from))
                }
            }
        };
        for entry in entries.range(from..) {
            replay(entry);
        }
        match outcome {
            Outcome::Rewound(_) => self.stats.rewinds += 1,
            Outcome::Resumed(_) => self.stats.resumes += 1,
            Outcome::Reset(_) => self.stats.resets += 1,
            Outcome::Live => {}
        }
        Recovery {
            epoch: room.epoch,
            last: room.last,
            outcome,
        }
    }

    /// Drops messages older than the TTL and, at most once a second, the
    /// records of rooms with no messages, no members (`has_members`) and
    /// no touch within the TTL.
    pub fn expire(&mut self, now_ms: u64, has_members: &dyn Fn(&str) -> bool) {
        self.expire_messages(now_ms);
        let cutoff = now_ms.saturating_sub(millis(self.cfg.ttl));
        if now_ms.saturating_sub(self.swept) < 1000 {
            return;
        }
        self.swept = now_ms;
        let gone: Vec<usize> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.entries.is_empty() && r.touched < cutoff && !has_members(&r.name))
            .map(|(id, _)| id)
            .collect();
        for id in gone {
            self.remove_room(id);
        }
    }

    /// Drops messages older than the TTL: the oldest are first in `order`.
    fn expire_messages(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(millis(self.cfg.ttl));
        while let Some(mark) = self.order.front().copied() {
            if mark.offset.ms >= cutoff {
                break;
            }
            self.order.pop_front();
            self.drop_marked(mark);
        }
    }

    /// The rooms with a record.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// Messages held, all rooms.
    pub fn messages(&self) -> usize {
        self.entries
    }

    /// Bytes held, as counted against `--history-memory`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The counters.
    pub fn stats(&self) -> &HistoryStats {
        &self.stats
    }

    /// Writes the history's gauges and counters for `/metrics`.
    pub fn write_metrics(&self, w: &mut String) -> std::fmt::Result {
        let samples = [
            (
                "wsd_history_rooms",
                Kind::Gauge,
                "Rooms with a history record.",
                self.rooms.len() as u64,
            ),
            (
                "wsd_history_messages",
                Kind::Gauge,
                "Messages held in history, all rooms.",
                self.entries as u64,
            ),
            (
                "wsd_history_bytes",
                Kind::Gauge,
                "Bytes held in history, as counted against --history-memory.",
                self.bytes as u64,
            ),
            (
                "wsd_history_rewinds_total",
                Kind::Counter,
                "Joins served with ?rewind=.",
                self.stats.rewinds,
            ),
            (
                "wsd_history_resumes_total",
                Kind::Counter,
                "Resumes (?since=) served.",
                self.stats.resumes,
            ),
            (
                "wsd_history_resume_resets_total",
                Kind::Counter,
                "Resumes that could not be served: the client was told to refetch.",
                self.stats.resets,
            ),
            (
                "wsd_history_evicted_total",
                Kind::Counter,
                "Messages dropped from history to keep --history-memory.",
                self.stats.evicted,
            ),
        ];
        for (name, kind, help, value) in samples {
            prometheus::single(w, name, kind, help, value)?;
        }
        Ok(())
    }

    /// The record of room `name`, created (with a new epoch) if needed.
    fn room(&mut self, name: &str, now_ms: u64) -> usize {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        self.epochs += 1;
        let id = self.rooms.insert(Room {
            name: name.into(),
            epoch: self.epoch_base.wrapping_add(self.epochs),
            last: Offset::ZERO,
            dropped: Offset::ZERO,
            entries: VecDeque::new(),
            touched: now_ms,
        });
        self.by_name.insert(name.into(), id);
        self.bytes += name.len() + ROOM_OVERHEAD;
        id
    }

    /// Drops room `id`'s oldest entry (its mark goes stale).
    fn drop_oldest_of(&mut self, id: usize) {
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        if let Some(e) = room.entries.pop_front() {
            room.dropped = e.offset;
            self.entries -= 1;
            self.bytes -= e.frame.len() + ENTRY_OVERHEAD;
        }
        // Stale marks are skipped when met; compacted when they are most.
        if self.order.len() > 2 * self.entries + 64 {
            let rooms = &self.rooms;
            self.order.retain(|m| {
                rooms.get(m.room).is_some_and(|r| {
                    r.epoch == m.epoch && r.entries.front().is_some_and(|e| e.offset <= m.offset)
                })
            });
        }
    }

    /// Drops the oldest entry of the store, and its room's record if that
    /// was the room's last entry (unless it is room `keep`, being written):
    /// under memory pressure a room loses its epoch with its messages.
    /// False when nothing could go.
    fn evict_oldest(&mut self, keep: usize) -> bool {
        while let Some(mark) = self.order.pop_front() {
            if self.drop_marked(mark) {
                let emptied = self
                    .rooms
                    .get(mark.room)
                    .is_some_and(|r| r.entries.is_empty());
                if emptied && mark.room != keep {
                    self.remove_room(mark.room);
                }
                return true;
            }
        }
        false
    }

    /// Drops the entry `mark` points at, if it is still there; a room left
    /// with no entries and no recent touch goes at the next sweep.
    fn drop_marked(&mut self, mark: Mark) -> bool {
        let Some(room) = self.rooms.get_mut(mark.room) else {
            return false;
        };
        if room.epoch != mark.epoch || room.entries.front().map(|e| e.offset) != Some(mark.offset) {
            return false;
        }
        if let Some(e) = room.entries.pop_front() {
            room.dropped = e.offset;
            self.entries -= 1;
            self.bytes -= e.frame.len() + ENTRY_OVERHEAD;
        }
        true
    }

    fn remove_room(&mut self, id: usize) {
        if let Some(room) = self.rooms.try_remove(id) {
            self.by_name.remove(&room.name);
            for e in &room.entries {
                self.bytes -= e.frame.len() + ENTRY_OVERHEAD;
            }
            self.entries -= room.entries.len();
            self.bytes -= room.name.len() + ROOM_OVERHEAD;
        }
    }
}

/// 64 random bits for [`History::new`], from the process's randomly keyed
/// hasher (seeded by the OS), mixed with the time and the process id.
pub fn random_epoch_base() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(unix_ms());
    h.write_u32(std::process::id());
    h.finish()
}

/// The Unix time in milliseconds: the history's clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, millis)
}

/// The subprotocol a client speaks to learn each message's offset.
pub const OFFSETS_PROTOCOL: &str = "wsd.offsets";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
