//! A room's history kept by the bus (`--history` with `--redis`): what a
//! join's read of it brings back ([`Answer`]), and how that answers the
//! client's ask ([`resolve`]). Sans-IO, like the in-memory store: the bus
//! reads, the reactor writes, this decides.
//!
//! The history is a Redis stream per room, its entries' IDs the offsets;
//! the epoch is the ID of the stream's first entry ever, kept beside it,
//! and it changes when the stream is made anew (lost with a Redis that
//! restarted empty, or gone after `--history-ttl` without a message).

use super::{Ask, HistoryStats, Outcome, Recovery, ResetReason};
use crate::history::Offset;
use crate::proto::MessageKind;
use crate::stats::{prometheus, Kind};

/// One message read back from the bus's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its offset: the stream entry's ID.
    pub offset: Offset,
    /// Text or binary.
    pub kind: MessageKind,
    /// The message.
    pub payload: Vec<u8>,
}

/// What a join's read of a room's history found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// The history's epoch: the ID its stream was made with; `None` if the
    /// room has no history.
    pub epoch: Option<Offset>,
    /// The oldest offset still held; `None` if none is.
    pub first: Option<Offset>,
    /// The newest offset the room ever had ([`Offset::ZERO`] if none).
    pub last: Offset,
    /// Whether any entry was ever removed from the stream (trimmed to
    /// `--history`): a resume from before `first` may then miss some.
    pub removed: bool,
    /// The messages the ask selected, oldest first.
    pub entries: Vec<Stored>,
}

/// The epoch a client is told, from the ID the history began with: the
/// milliseconds and three digits of sequence, within 2^53 (JavaScript
/// reads it exactly) for the next two centuries. 0 is no history.
pub fn epoch_of(begun: Offset) -> u64 {
    begun
        .ms
        .saturating_mul(1000)
        .saturating_add(begun.seq.min(999))
}

/// Answers `ask` from what the read found: where the client's stream
/// stands, and how many of `answer.entries` (the last ones) it is owed.
pub fn resolve(ask: Ask, answer: &Answer) -> (Recovery, usize) {
    let epoch = answer.epoch.map_or(0, epoch_of);
    let all = answer.entries.len();
    let (outcome, owed) = match ask {
        Ask::Live => (Outcome::Live, 0),
        Ask::Last(n) => {
            let n = n.min(all);
            (Outcome::Rewound(n), n)
        }
        Ask::Within(_) => (Outcome::Rewound(all), all),
        Ask::Since { offset, epoch: e } => {
            if epoch == 0 || e != epoch || offset > answer.last {
                (Outcome::Reset(ResetReason::Epoch), 0)
            } else if answer.removed
                && offset != answer.last
                && answer.first.is_none_or(|first| offset < first)
            {
                // Something after `offset` may have been trimmed.
                (Outcome::Reset(ResetReason::TooOld), 0)
            } else {
                // The read brought exactly the entries after `offset`.
                let owed = answer.entries.iter().filter(|s| s.offset > offset).count();
                (Outcome::Resumed(owed), owed)
            }
        }
    };
    let recovery = Recovery {
        epoch,
        last: answer.last,
        outcome,
    };
    (recovery, owed)
}

/// The answer to a join whose history could not be read (the bus is
/// down, or did not answer in time): live only, and a `wsd.offsets`
/// client is told to refetch.
pub fn unavailable() -> Recovery {
    Recovery {
        epoch: 0,
        last: Offset::ZERO,
        outcome: Outcome::Reset(ResetReason::Unavailable),
    }
}

/// Writes the joins' counters for `/metrics` when the bus keeps the
/// history (what it holds is Redis's to tell).
pub fn write_metrics(stats: &HistoryStats, w: &mut String) -> std::fmt::Result {
    let samples = [
        (
            "wsd_history_rewinds_total",
            "Joins served with ?rewind=.",
            stats.rewinds,
        ),
        (
            "wsd_history_resumes_total",
            "Resumes (?since=) served.",
            stats.resumes,
        ),
        (
            "wsd_history_resume_resets_total",
            "Resumes that could not be served: the client was told to refetch.",
            stats.resets,
        ),
        (
            "wsd_history_unavailable_total",
            "Joins whose history could not be read (the bus down or slow): they went live.",
            stats.unavailable,
        ),
    ];
    for (name, help, value) in samples {
        prometheus::single(w, name, Kind::Counter, help, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn o(ms: u64, seq: u64) -> Offset {
        Offset { ms, seq }
    }

    fn stored(ms: u64) -> Stored {
        Stored {
            offset: o(ms, 0),
            kind: MessageKind::Text,
            payload: ms.to_string().into_bytes(),
        }
    }

    /// A stream begun at 100-0 holding 105..=109, the newest 109.
    fn answer(removed: bool, entries: &[u64]) -> Answer {
        Answer {
            epoch: Some(o(100, 0)),
            first: Some(o(105, 0)),
            last: o(109, 0),
            removed,
            entries: entries.iter().map(|&ms| stored(ms)).collect(),
        }
    }

    fn since(ms: u64, epoch: u64) -> Ask {
        Ask::Since {
            offset: o(ms, 0),
            epoch,
        }
    }

    #[test]
    fn the_epoch_is_the_first_id_within_javascripts_integers() {
        assert_eq!(epoch_of(o(1_765_081_234_567, 3)), 1_765_081_234_567_003);
        assert_eq!(epoch_of(o(1, 5000)), 1999);
        assert!(epoch_of(o(4_102_444_800_000, 999)) < 1 << 53, "year 2100");
    }

    #[test]
    fn rewinds_take_what_the_read_selected() {
        let a = answer(true, &[107, 108, 109]);
        let (r, n) = resolve(Ask::Last(2), &a);
        assert_eq!(
            (r.outcome, n, r.epoch, r.last),
            (Outcome::Rewound(2), 2, 100_000, o(109, 0))
        );
        let (r, n) = resolve(Ask::Last(50), &a);
        assert_eq!((r.outcome, n), (Outcome::Rewound(3), 3));
        let (r, n) = resolve(Ask::Within(Duration::from_secs(1)), &a);
        assert_eq!((r.outcome, n), (Outcome::Rewound(3), 3));
        let (r, n) = resolve(Ask::Live, &a);
        assert_eq!((r.outcome, n), (Outcome::Live, 0));
    }

    #[test]
    fn a_resume_within_the_stream_is_served_exactly() {
        // 106 is held: everything after it is there.
        let a = answer(true, &[107, 108, 109]);
        let (r, n) = resolve(since(106, 100_000), &a);
        assert_eq!((r.outcome, n), (Outcome::Resumed(3), 3));
        // Up to date: nothing owed.
        let a = answer(true, &[]);
        let (r, n) = resolve(since(109, 100_000), &a);
        assert_eq!((r.outcome, n), (Outcome::Resumed(0), 0));
    }

    #[test]
    fn a_resume_from_before_a_trimmed_stream_is_too_old() {
        let a = answer(true, &[105, 106, 107, 108, 109]);
        let (r, n) = resolve(since(103, 100_000), &a);
        assert_eq!((r.outcome, n), (Outcome::Reset(ResetReason::TooOld), 0));
        // Never trimmed: the stream holds everything since it began.
        let a = answer(false, &[105, 106, 107, 108, 109]);
        let (r, n) = resolve(since(103, 100_000), &a);
        assert_eq!((r.outcome, n), (Outcome::Resumed(5), 5));
    }

    #[test]
    fn another_epoch_or_an_offset_from_the_future_is_an_epoch_reset() {
        let a = answer(false, &[107]);
        for ask in [since(106, 99), since(110, 100_000)] {
            assert_eq!(
                resolve(ask, &a).0.outcome,
                Outcome::Reset(ResetReason::Epoch)
            );
        }
        // A room without history has no epoch to resume in.
        let none = Answer::default();
        let (r, _) = resolve(since(0, 0), &none);
        assert_eq!(
            (r.outcome, r.epoch),
            (Outcome::Reset(ResetReason::Epoch), 0)
        );
    }
}
