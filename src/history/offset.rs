//! A message's position in its room's history, and the history's epoch.
//!
//! An [`Offset`] has the shape of a Redis stream ID, `ms-seq`: the Unix
//! time in milliseconds the message was recorded at, and a sequence number
//! within that millisecond. The in-memory history makes them the way Redis
//! does (never going back, even if the clock does), so a client sees one
//! format whichever keeps the history, and a time rewind (`?rewind=30s`)
//! reads the time from the offset.

use std::fmt;

/// A message's position in its room: increasing per room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset {
    /// Unix time in milliseconds.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl Offset {
    /// Before any message: a room whose history is empty reports this.
    pub const ZERO: Offset = Offset { ms: 0, seq: 0 };

    /// The offset after `self` for a message recorded at `now_ms`: the
    /// time, or `self`'s if the clock went back, with the sequence bumped
    /// within one millisecond (as Redis's `XADD *` does).
    pub fn next(self, now_ms: u64) -> Offset {
        if now_ms > self.ms {
            Offset { ms: now_ms, seq: 0 }
        } else {
            Offset {
                ms: self.ms,
                seq: self.seq.saturating_add(1),
            }
        }
    }

    /// Parses `ms-seq` or a bare `ms` (sequence 0), digits only: `None`
    /// for anything else, or a number beyond 64 bits.
    pub fn parse(s: &str) -> Option<Offset> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Some(Offset {
            ms: digits(ms)?,
            seq: digits(seq)?,
        })
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Parses a decimal `u64` of ASCII digits only (no sign, no space).
pub(crate) fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_print_and_parse_like_stream_ids() {
        let o = Offset { ms: 1700, seq: 3 };
        assert_eq!(o.to_string(), "1700-3");
        assert_eq!(Offset::parse("1700-3"), Some(o));
        assert_eq!(Offset::parse("1700"), Some(Offset { ms: 1700, seq: 0 }));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "+1",
            " 1",
            "18446744073709551616",
        ] {
            assert_eq!(Offset::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_never_goes_back() {
        let o = Offset { ms: 10, seq: 4 };
        assert_eq!(o.next(11), Offset { ms: 11, seq: 0 });
        assert_eq!(o.next(10), Offset { ms: 10, seq: 5 });
        // The clock went back: still after.
        assert_eq!(o.next(3), Offset { ms: 10, seq: 5 });
        assert!(o.next(3) > o);
    }
}
