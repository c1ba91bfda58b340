//! Joins that read their room's history from the bus (`--history` with
//! `--redis`): a member asking `?rewind=` or `?since=`, or speaking
//! `wsd.offsets`, joins [`HELD`]. At the end of its turn its read goes to
//! the bus; the room's live messages meanwhile are kept in the room's
//! [`Log`] (once, for every member held there). When the answer comes,
//! the member gets its status (`wsd.offsets`), the replay, and what the
//! log holds after the replay's last offset, then goes [`CATCHING`]: live
//! messages it already had (the subscribe connection may lag the one the
//! read came on) are skipped until the first it had not.
//!
//! A read the bus cannot send (it is down), or that is not answered within
//! [`READ_TIMEOUT`], or a log past [`LOG_LIMIT`], sends the member live
//! with status `reset`, reason `unavailable`: it may have missed messages.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Server;
use crate::history::remote::{self, Answer};
use crate::history::{unix_ms, wire, Ask, Offset, Outcome, ResetReason};
use crate::hub::CATCHING;
use crate::id::ConnId;
use crate::net::buffer::{Frames, SharedBytes};
use crate::net::conn::Phase;
use crate::proto::session::write_message;

/// How long a join waits for its history before it goes live without.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The most a room's log holds for its held members: past it, they go
/// live at once, told their history is unavailable.
pub(super) const LOG_LIMIT: usize = 16 << 20;

/// A read in flight, and the joins waiting for it: several that ask the
/// same of a room (the last N, or nothing: a load balancer's restart
/// brings hundreds at once) share one read and one encoded replay.
#[derive(Debug)]
struct Pending {
    room: u32,
    ask: Ask,
    deadline: Instant,
    /// Each join's connection, and whether it speaks `wsd.offsets`.
    joins: Vec<(ConnId, bool)>,
}

impl Pending {
    /// Whether a join asking `ask` of `room` can take this read's answer:
    /// one that asks nothing or the same count of past messages (whatever
    /// came between the read and the join is in the room's log).
    fn fits(&self, room: u32, ask: Ask) -> bool {
        self.room == room && self.ask == ask && matches!(ask, Ask::Live | Ask::Last(_))
    }
}

/// A room's live messages held for its members waiting for their read:
/// each frame as broadcast encoded it, and its offset.
#[derive(Debug, Default)]
pub(super) struct Log {
    bytes: Vec<u8>,
    entries: Vec<(Offset, Range<usize>)>,
}

/// The reactor's joins in flight.
#[derive(Debug, Default)]
pub(super) struct Recall {
    next: u64,
    pending: HashMap<u64, Pending>,
    logs: HashMap<u32, Log>,
    /// Per member catching up: the last offset it has.
    marks: HashMap<usize, Offset>,
}

impl Recall {
    /// When the oldest read in flight times out.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Keeps frames a room's held members have not had yet: `offsets[i]`
    /// is the offset of `frames[i]` in `bytes`. False once the log is past
    /// [`LOG_LIMIT`].
    pub(super) fn log(
        &mut self,
        room: u32,
        bytes: &[u8],
        frames: &[(ConnId, Range<usize>)],
        offsets: &[Offset],
    ) -> bool {
        let log = self.logs.entry(room).or_default();
        for (i, (_, range)) in frames.iter().enumerate() {
            let frame = bytes.get(range.clone()).unwrap_or_default();
            let start = log.bytes.len();
            log.bytes.extend_from_slice(frame);
            let offset = offsets.get(i).copied().unwrap_or(Offset::ZERO);
            log.entries.push((offset, start..log.bytes.len()));
        }
        log.bytes.len() <= LOG_LIMIT
    }

    /// The last offset member `key` has, if it is catching up.
    pub(super) fn mark(&self, key: usize) -> Offset {
        self.marks.get(&key).copied().unwrap_or(Offset::ZERO)
    }

    /// Member `key` caught up, or left.
    pub(super) fn caught_up(&mut self, key: usize) {
        self.marks.remove(&key);
    }

    /// Room `room` emptied: its reads' answers and its log go (their
    /// joins have all left), before the id names another room.
    pub(super) fn forget_room(&mut self, room: u32) {
        self.pending.retain(|_, p| p.room != room);
        self.logs.remove(&room);
    }
}

impl Server {
    /// Sends the reads of the members held this turn; a read the bus cannot
    /// send is answered at once, unavailable. Runs before the turn's
    /// fan-out, so a read goes to Redis before the turn's publishes.
    pub(super) fn start_reads(&mut self) {
        let waiters = self.hub.take_waiters();
        if waiters.is_empty() {
            return;
        }
        let now_ms = unix_ms();
        for w in waiters {
            // Still the member that joined, in the room it joined.
            let here = self
                .conns
                .get(w.conn.key)
                .is_some_and(|c| c.gen == w.conn.gen && c.seat.is_some_and(|s| s.room == w.room));
            if !here {
                continue;
            }
            let join = (w.conn, w.framed);
            let recall = &mut self.recall;
            if let Some(p) = recall.pending.values_mut().find(|p| p.fits(w.room, w.ask)) {
                p.joins.push(join);
                continue;
            }
            recall.next += 1;
            let id = recall.next;
            let pending = Pending {
                room: w.room,
                ask: w.ask,
                deadline: self.clock.now + READ_TIMEOUT,
                joins: vec![join],
            };
            let name = self.hub.name(w.room).unwrap_or_default();
            if self.link.read_history(name, w.ask, now_ms, id) {
                self.recall.pending.insert(id, pending);
            } else {
                self.answer(&pending, None);
            }
        }
    }

    /// Answers the joins whose read the bus answered, or that waited past
    /// [`READ_TIMEOUT`]; drops logs nobody waits for any more.
    pub(super) fn take_answers(&mut self) {
        if self.recall.pending.is_empty() {
            self.recall.logs.clear();
            return;
        }
        let mut answered = Vec::new();
        self.link
            .take_answers(&mut |id, answer| answered.push((id, answer)));
        for (id, answer) in answered {
            if let Some(p) = self.recall.pending.remove(&id) {
                self.answer(&p, answer);
            }
        }
        let now = self.clock.now;
        let late: Vec<u64> = (self.recall.pending.iter())
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(p) = self.recall.pending.remove(&id) {
                notice!(self, "history read for a join timed out: joined live");
                self.answer(&p, None);
            }
        }
        let waiting: Vec<u32> = self.recall.pending.values().map(|p| p.room).collect();
        self.recall.logs.retain(|room, _| waiting.contains(room));
    }

    /// Every member held in `room` goes live now, unavailable: its log grew
    /// past [`LOG_LIMIT`] (Redis is slow to answer).
    pub(super) fn give_up_room(&mut self, room: u32) {
        let ids: Vec<u64> = (self.recall.pending.iter())
            .filter(|(_, p)| p.room == room)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(p) = self.recall.pending.remove(&id) {
                self.answer(&p, None);
            }
        }
        self.recall.logs.remove(&room);
    }

    /// Sends the members held for read `p` what they are owed: the status
    /// (`wsd.offsets`), the replay `answer` selects for their ask (none if
    /// `None`), and what their room's log holds after that, encoded once
    /// for all of them; then they catch up.
    fn answer(&mut self, p: &Pending, answer: Option<Answer>) {
        let (recovery, owed) = match &answer {
            Some(a) => remote::resolve(p.ask, a),
            None => (remote::unavailable(), 0),
        };
        let from = answer
            .as_ref()
            .map_or(0, |a| a.entries.len().saturating_sub(owed));
        let replay = answer
            .as_ref()
            .and_then(|a| a.entries.get(from..))
            .unwrap_or_default();
        let mark = replay.iter().fold(recovery.last, |m, e| m.max(e.offset));
        // Lent out while the members are written to, then put back for
        // the other reads of the room still out.
        let taken = self.recall.logs.remove(&p.room);
        let log = taken.as_ref();
        let (owed_log, mark, _) = unseen(
            log.iter().flat_map(|l| l.entries.iter().map(|(o, _)| *o)),
            mark,
        );
        let sent = (replay.len() + owed_log.len()) as u64;
        // The bytes for plain members and for wsd.offsets ones, each made
        // once, when the first such member needs them.
        let (mut for_plain, mut for_framed): (Option<Frames>, Option<Frames>) = (None, None);
        for &(conn_id, framed) in &p.joins {
            let Some(conn) = self.conns.get_mut(conn_id.key) else {
                continue;
            };
            if conn.gen != conn_id.gen || conn.phase != Phase::Open {
                continue;
            }
            let Some(seat) = conn.seat.filter(|s| s.room == p.room) else {
                continue;
            };
            let slot = if framed {
                &mut for_framed
            } else {
                &mut for_plain
            };
            let bytes = slot.get_or_insert_with(|| {
                let mut out = Vec::new();
                if framed {
                    wire::write_status(&mut out, &recovery);
                }
                for e in replay {
                    if framed {
                        wire::write_framed(&mut out, e.kind, e.offset, &e.payload);
                    } else {
                        write_message(&mut out, e.kind, &e.payload);
                    }
                }
                for &i in &owed_log {
                    if let Some((offset, range)) = log.and_then(|l| l.entries.get(i)) {
                        let frame = log.and_then(|l| l.bytes.get(range.clone()));
                        push_frame(&mut out, frame.unwrap_or_default(), *offset, framed);
                    }
                }
                Frames::Local(Rc::new(out))
            });
            let len = bytes.bytes().len();
            if len > 0 {
                let q = conn.out.get_or_insert_with(Default::default);
                q.push_shared(SharedBytes::new(bytes.clone(), 0..len));
            }
            let stats = self.hub.recall_stats();
            match recovery.outcome {
                Outcome::Live => {}
                Outcome::Rewound(_) => stats.rewinds += 1,
                Outcome::Resumed(_) => stats.resumes += 1,
                Outcome::Reset(ResetReason::Unavailable) => stats.unavailable += 1,
                Outcome::Reset(_) => stats.resets += 1,
            }
            self.report.stats.messages_out += sent;
            self.hub.set_held(seat, CATCHING);
            self.recall.marks.insert(conn_id.key, mark);
            self.write_out(conn_id.key, false);
        }
        if let Some(log) = taken {
            self.recall.logs.insert(p.room, log);
        }
    }

    /// Delivers to a member catching up the frames of a batch it has not
    /// had (`offsets[i]` is the offset of `frames[i]`; a frame without one
    /// was not recorded and is always new); it is caught up at the first
    /// recorded frame past its mark.
    pub(super) fn catch_up(
        &mut self,
        key: usize,
        bytes: &[u8],
        frames: &[(ConnId, Range<usize>)],
        offsets: &[Offset],
    ) {
        let mark = self.recall.mark(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(seat) = conn.seat else {
            return;
        };
        let framed = self.hub.is_framed(seat.room, seat.slot as usize);
        let id = conn.id(key);
        let skip_own = !self.cfg.broadcast_to_sender;
        let mut out = Vec::new();
        let mut sent = 0u64;
        let each = (0..frames.len()).map(|i| offsets.get(i).copied().unwrap_or(Offset::ZERO));
        let (owed, _, passed) = unseen(each, mark);
        for i in owed {
            let Some((sender, range)) = frames.get(i) else {
                continue;
            };
            if skip_own && *sender == id {
                continue;
            }
            let frame = bytes.get(range.clone()).unwrap_or_default();
            let offset = offsets.get(i).copied().unwrap_or(Offset::ZERO);
            push_frame(&mut out, frame, offset, framed);
            sent += 1;
        }
        if !out.is_empty() {
            conn.out.get_or_insert_with(Default::default).push_own(&out);
        }
        self.report.stats.messages_out += sent;
        if passed {
            self.hub.set_held(seat, 0);
            self.recall.caught_up(key);
        }
        self.write_out(key, false);
    }
}

/// Appends a broadcast frame, with its offset in front for a `wsd.offsets`
/// member.
fn push_frame(out: &mut Vec<u8>, frame: &[u8], offset: Offset, framed: bool) {
    if !framed {
        return out.extend_from_slice(frame);
    }
    if let Some((kind, at)) = wire::split(frame) {
        wire::write_framed(out, kind, offset, frame.get(at..).unwrap_or_default());
    }
}

/// Which of a run of messages (their `offsets`, in order) a member whose
/// last offset is `mark` has not had: those past the mark, and those not
/// recorded ([`Offset::ZERO`], never in a replay). Returns their indexes,
/// the member's mark after them, and whether a recorded one past the mark
/// came (from then on the live stream only brings new ones).
fn unseen(offsets: impl Iterator<Item = Offset>, mark: Offset) -> (Vec<usize>, Offset, bool) {
    let (mut owed, mut last, mut passed) = (Vec::new(), mark, false);
    for (i, offset) in offsets.enumerate() {
        if offset == Offset::ZERO {
            owed.push(i);
        } else if offset > mark {
            owed.push(i);
            last = last.max(offset);
            passed = true;
        }
    }
    (owed, last, passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(ms: u64) -> Offset {
        Offset { ms, seq: 0 }
    }

    #[test]
    fn a_member_gets_what_came_after_its_mark_and_what_was_not_recorded() {
        let run = [o(1), o(2), Offset::ZERO, o(3), o(4)];
        // Replayed up to 2: 1 and 2 again would be duplicates.
        assert_eq!(unseen(run.into_iter(), o(2)), (vec![2, 3, 4], o(4), true));
        // Nothing replayed (the read failed): everything.
        assert_eq!(
            unseen(run.into_iter(), Offset::ZERO),
            (vec![0, 1, 2, 3, 4], o(4), true)
        );
        // A lagging live stream: all of it was in the replay, but the
        // unrecorded one; still catching up.
        assert_eq!(unseen(run.into_iter(), o(9)), (vec![2], o(9), false));
        assert_eq!(unseen(std::iter::empty(), o(9)), (vec![], o(9), false));
    }
}
