//! The Redis bus's side of history in Redis Streams (`--history` with
//! `--redis`): runs the scripts of [`super::streams`] on the publish
//! connection, and keeps their order right against the subscribe one.
//!
//! A node sends its members its own messages when they come back on the
//! room's channel, in the stream's order with everyone else's. So a room's
//! channel must be subscribed before a message of the room is recorded,
//! or the node would never see its own message; and before a join reads
//! the room's history, or a message recorded between the read and the
//! subscription would reach the joiner neither way. Commands for a room
//! with local members whose subscription Redis has not confirmed yet wait
//! here (bounded, like the publish queue) and go out at the confirmation.

use std::collections::{HashSet, VecDeque};

use super::link::{Expect, Link};
use super::resp::{Frame, Value};
use super::streams::{parse_answer, Streams};
use super::{BusStats, DropReason};
use crate::history::remote::Answer;

/// A command held until its room's subscription is confirmed.
#[derive(Debug)]
struct Waiting {
    room: Box<str>,
    bytes: Vec<u8>,
    /// The read's id, for a read; `None` for a publish.
    read: Option<u64>,
}

/// The history state of a Redis bus.
#[derive(Debug)]
pub(super) struct Recorder {
    pub(super) streams: Streams,
    /// Rooms whose subscription Redis confirmed on the current subscribe
    /// connection.
    confirmed: HashSet<Box<str>>,
    waiting: Vec<Waiting>,
    waiting_bytes: usize,
    /// Reads sent and not answered, in order.
    reads: VecDeque<u64>,
    /// Reads answered (`None`: could not be read), for the reactor.
    answers: Vec<(u64, Option<Answer>)>,
}

impl Recorder {
    pub(super) fn new(streams: Streams) -> Recorder {
        Recorder {
            streams,
            confirmed: HashSet::new(),
            waiting: Vec::new(),
            waiting_bytes: 0,
            reads: VecDeque::new(),
            answers: Vec::new(),
        }
    }

    /// Whether a command for `room` must wait for its subscription: the
    /// room has local members (`rooms`) and Redis has not confirmed it.
    pub(super) fn must_wait(&self, rooms: &HashSet<Box<str>>, room: &str) -> bool {
        rooms.contains(room) && !self.confirmed.contains(room)
    }

    /// Holds a command of `room` (written to `bytes`) until its
    /// subscription is confirmed; refused past `max_queue` bytes held.
    pub(super) fn hold(
        &mut self,
        room: &str,
        bytes: Vec<u8>,
        read: Option<u64>,
        max_queue: usize,
    ) -> Result<(), DropReason> {
        if self.waiting_bytes > 0 && self.waiting_bytes + bytes.len() > max_queue {
            return Err(DropReason::QueueFull);
        }
        self.waiting_bytes += bytes.len();
        self.waiting.push(Waiting {
            room: room.into(),
            bytes,
            read,
        });
        Ok(())
    }

    /// Sends a read now: its answer is awaited in order.
    pub(super) fn sent_read(&mut self, publ: &mut Link, id: u64) {
        publ.expect.push(Expect::Read, 1);
        self.reads.push_back(id);
    }

    /// Redis confirmed the subscription of `room`: what waited for it goes
    /// out, in the order it came.
    pub(super) fn confirm(&mut self, room: &str, publ: &mut Link) {
        if !self.confirmed.contains(room) {
            self.confirmed.insert(room.into());
        }
        self.release(publ, |w| &*w.room == room);
    }

    /// The room lost its last local member: nothing of it needs to wait
    /// any more.
    pub(super) fn unsubscribed(&mut self, room: &str, publ: &mut Link) {
        self.confirmed.remove(room);
        self.release(publ, |w| &*w.room == room);
    }

    /// Sends the waiting commands `which` picks, in order, if the publish
    /// connection is up; else fails them.
    fn release(&mut self, publ: &mut Link, which: impl Fn(&Waiting) -> bool) {
        if !self.waiting.iter().any(&which) {
            return;
        }
        let up = publ.is_connected();
        let (go, stay): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(which);
        self.waiting = stay;
        for w in go {
            self.waiting_bytes = self.waiting_bytes.saturating_sub(w.bytes.len());
            match (up, w.read) {
                (true, read) => {
                    publ.out().extend_from_slice(&w.bytes);
                    match read {
                        Some(id) => self.sent_read(publ, id),
                        None => publ.expect.push(Expect::Script, 1),
                    }
                }
                (false, Some(id)) => self.answers.push((id, None)),
                (false, None) => {}
            }
        }
    }

    /// The subscribe connection was lost: every subscription must be
    /// confirmed anew.
    pub(super) fn on_sub_reset(&mut self) {
        self.confirmed.clear();
    }

    /// The publish connection was lost: reads in flight are not answered,
    /// and what waits is dropped (`lost` counts the publishes).
    pub(super) fn on_pub_reset(&mut self) -> u64 {
        for id in self.reads.drain(..) {
            self.answers.push((id, None));
        }
        let mut lost = 0;
        for w in self.waiting.drain(..) {
            match w.read {
                Some(id) => self.answers.push((id, None)),
                None => lost += 1,
            }
        }
        self.waiting_bytes = 0;
        lost
    }

    /// Handles a reply to one of the history commands, if the reply awaited
    /// is one (`None` if not: the caller handles it). An error reply to a
    /// publish is counted, not a fault, unless Redis lost the script
    /// (`NOSCRIPT`: the reset loads it again).
    pub(super) fn on_reply(
        &mut self,
        frame: &Frame<'_>,
        expect: &mut super::link::Expected,
        stats: &mut BusStats,
    ) -> Option<Result<(), String>> {
        match (expect.front()?, frame) {
            (Expect::Loaded, Frame::Value(Value::Bulk(sha))) if self.streams.is_loaded(sha) => {
                expect.pop(Expect::Loaded);
                Some(Ok(()))
            }
            (Expect::Script, Frame::Value(Value::Integer(_))) => {
                expect.pop(Expect::Script);
                stats.published += 1;
                stats.history_appended += 1;
                Some(Ok(()))
            }
            (Expect::Script, Frame::Value(Value::Error(text)))
                if !text.starts_with(b"NOSCRIPT") =>
            {
                expect.pop(Expect::Script);
                // Not recorded, so not published, and lost (the key holds
                // another type, say): counted.
                stats.history_errors += 1;
                Some(Ok(()))
            }
            (Expect::Read, Frame::Value(Value::Bulk(bytes))) => {
                expect.pop(Expect::Read);
                // Not our script's answer: out of step, reset.
                let (answer, done) = match parse_answer(bytes) {
                    Ok(answer) => (Some(answer), Ok(())),
                    Err(why) => {
                        stats.history_errors += 1;
                        (
                            None,
                            Err(format!("a history read's answer is not ours: {why}")),
                        )
                    }
                };
                self.answered(answer);
                Some(done)
            }
            (Expect::Read, Frame::Value(Value::Error(text))) if !text.starts_with(b"NOSCRIPT") => {
                expect.pop(Expect::Read);
                stats.history_errors += 1;
                self.answered(None);
                Some(Ok(()))
            }
            (Expect::Read, Frame::Oversized(_)) => {
                // The caller skips its bytes; the joiner goes live.
                expect.pop(Expect::Read);
                stats.history_errors += 1;
                self.answered(None);
                Some(Ok(()))
            }
            _ => None,
        }
    }

    fn answered(&mut self, answer: Option<Answer>) {
        if let Some(id) = self.reads.pop_front() {
            self.answers.push((id, answer));
        }
    }

    /// Hands the answered reads out.
    pub(super) fn take_answers(&mut self, each: &mut dyn FnMut(u64, Option<Answer>)) {
        for (id, answer) in self.answers.drain(..) {
            each(id, answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bus::link::State;
    use crate::bus::resp::{decode, Limits};
    use crate::proto::Parsing;

    fn link() -> Link {
        let mut l = Link::new(
            "publish",
            mio::Token(1),
            1 << 16,
            (Duration::ZERO, Duration::ZERO),
            1,
        );
        l.state = State::Ready;
        l
    }

    fn recorder() -> Recorder {
        Recorder::new(Streams::new(10, Duration::from_secs(60)))
    }

    fn frame(bytes: &[u8]) -> Frame<'_> {
        match decode(bytes, &Limits { max_frame: 1 << 20 }) {
            Ok(Parsing::Done { value, .. }) => value,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_of_a_room_wait_for_its_subscription_in_order() {
        let (mut r, mut publ) = (recorder(), link());
        let rooms: HashSet<Box<str>> = ["/a".into(), "/b".into()].into();
        assert!(r.must_wait(&rooms, "/a"));
        assert!(
            !r.must_wait(&rooms, "/nobody-here"),
            "no members: no echo to wait for"
        );
        r.hold("/a", b"one;".to_vec(), None, 100).unwrap();
        r.hold("/b", b"other;".to_vec(), Some(9), 100).unwrap();
        r.hold("/a", b"two;".to_vec(), Some(7), 100).unwrap();
        // Past the bound (something already held): refused.
        assert_eq!(
            r.hold("/a", vec![0; 100], None, 100),
            Err(DropReason::QueueFull)
        );
        r.confirm("/a", &mut publ);
        assert!(!r.must_wait(&rooms, "/a"));
        assert_eq!(publ.out(), b"one;two;");
        assert_eq!(publ.expect.front(), Some(Expect::Script));
        assert!(publ.expect.pop(Expect::Script) && publ.expect.pop(Expect::Read));
        // The read of /a is answered; /b's still waits.
        let mut stats = BusStats::default();
        let answer = b"$10\r\n\n\n0-0\n1\n0\n\r\n";
        publ.expect.push(Expect::Read, 1);
        assert_eq!(
            r.on_reply(&frame(answer), &mut publ.expect, &mut stats),
            Some(Ok(()))
        );
        let mut got = Vec::new();
        r.take_answers(&mut |id, a| got.push((id, a.is_some())));
        assert_eq!(got, [(7, true)]);
        // The publish connection lost: /b's read is answered with nothing.
        assert_eq!(r.on_pub_reset(), 0);
        let mut got = Vec::new();
        r.take_answers(&mut |id, a| got.push((id, a.is_some())));
        assert_eq!(got, [(9, false)]);
    }

    #[test]
    fn a_lost_subscription_makes_commands_wait_again() {
        let (mut r, mut publ) = (recorder(), link());
        let rooms: HashSet<Box<str>> = ["/a".into()].into();
        r.confirm("/a", &mut publ);
        assert!(!r.must_wait(&rooms, "/a"));
        r.on_sub_reset();
        assert!(r.must_wait(&rooms, "/a"));
        // A room that loses its members lets what waited go.
        r.hold("/a", b"pub;".to_vec(), None, 100).unwrap();
        r.unsubscribed("/a", &mut publ);
        assert_eq!(publ.out(), b"pub;");
    }

    #[test]
    fn replies_to_history_commands_are_counted_and_errors_told_apart() {
        let (mut r, mut publ) = (recorder(), link());
        let mut stats = BusStats::default();
        publ.expect.push(Expect::Script, 2);
        let e = &mut publ.expect;
        assert_eq!(r.on_reply(&frame(b":2\r\n"), e, &mut stats), Some(Ok(())));
        // A refused record is counted, the connection stays.
        let wrongtype = frame(b"-WRONGTYPE Operation against a key\r\n");
        assert_eq!(r.on_reply(&wrongtype, e, &mut stats), Some(Ok(())));
        assert_eq!(
            (
                stats.published,
                stats.history_appended,
                stats.history_errors
            ),
            (1, 1, 1)
        );
        // NOSCRIPT is not ours to handle: the caller resets and reloads.
        e.push(Expect::Script, 1);
        assert_eq!(
            r.on_reply(&frame(b"-NOSCRIPT No matching script\r\n"), e, &mut stats),
            None
        );
        // A read answered with what is not our script's answer: a fault.
        let (mut r, mut e) = (recorder(), crate::bus::link::Expected::default());
        e.push(Expect::Read, 1);
        r.reads.push_back(3);
        let bad = r.on_reply(&frame(b"$3\r\nxyz\r\n"), &mut e, &mut stats);
        assert!(matches!(bad, Some(Err(_))), "{bad:?}");
        // A login's SCRIPT LOAD must name one of ours.
        e.push(Expect::Loaded, 2);
        let sha = r.streams.read_sha.clone();
        let ok = format!("$40\r\n{sha}\r\n");
        assert_eq!(
            r.on_reply(&frame(ok.as_bytes()), &mut e, &mut stats),
            Some(Ok(()))
        );
        let other = format!("$40\r\n{}\r\n", "0".repeat(40));
        assert_eq!(
            r.on_reply(&frame(other.as_bytes()), &mut e, &mut stats),
            None
        );
    }
}
