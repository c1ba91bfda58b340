//! What a joining client asks of its room's history, from the query string
//! of its upgrade request: `?rewind=N`, `?rewind=30s`, or
//! `?since=OFFSET&epoch=E`. Other parameters (a token) are left alone.

use std::time::Duration;

use super::offset::{digits, Offset};
use crate::units::parse_duration;

/// What a joining client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Nothing: live messages only.
    Live,
    /// The last `n` messages (`?rewind=N`).
    Last(usize),
    /// The messages of the last while (`?rewind=30s`).
    Within(Duration),
    /// Everything after `offset` in the history of `epoch`
    /// (`?since=OFFSET&epoch=E`).
    Since {
        /// The last offset the client has.
        offset: Offset,
        /// The history it is from.
        epoch: u64,
    },
}

/// Reads the ask from a request target (`/room?since=1-0&epoch=7`). An
/// error names what is wrong, for a 400.
pub fn parse(target: &str) -> Result<Ask, &'static str> {
    let Some((_, query)) = target.split_once('?') else {
        return Ok(Ask::Live);
    };
    let (mut rewind, mut since, mut epoch) = (None, None, None);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "rewind" => &mut rewind,
            "since" => &mut since,
            "epoch" => &mut epoch,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err("rewind, since and epoch may each be given once");
        }
    }
    match (rewind, since, epoch) {
        (None, None, None) => Ok(Ask::Live),
        (Some(value), None, None) => rewind_ask(value),
        (None, Some(since), Some(epoch)) => Ok(Ask::Since {
            offset: Offset::parse(since).ok_or("since is an offset (like 1765081234567-0)")?,
            epoch: digits(epoch).ok_or("epoch is a decimal number")?,
        }),
        (None, ..) => Err("since and epoch go together"),
        (Some(_), ..) => Err("rewind does not go with since"),
    }
}

/// `rewind=N` (messages) or `rewind=30s` (a duration).
fn rewind_ask(value: &str) -> Result<Ask, &'static str> {
    if let Some(n) = digits(value) {
        return Ok(match usize::try_from(n).unwrap_or(usize::MAX) {
            0 => Ask::Live,
            n => Ask::Last(n),
        });
    }
    // A duration needs its unit: a bare number is a count.
    match parse_duration(value) {
        Ok(d) if !d.is_zero() && value.ends_with(|c: char| c.is_ascii_alphabetic()) => {
            Ok(Ask::Within(d))
        }
        Ok(_) => Ok(Ask::Live),
        Err(_) => Err("rewind is a count (like 100) or a duration (like 30s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_come_from_the_query() {
        assert_eq!(parse("/chat"), Ok(Ask::Live));
        assert_eq!(parse("/chat?token=x"), Ok(Ask::Live));
        assert_eq!(parse("/chat?rewind=10"), Ok(Ask::Last(10)));
        assert_eq!(parse("/chat?rewind=0"), Ok(Ask::Live));
        assert_eq!(
            parse("/chat?token=a&rewind=30s"),
            Ok(Ask::Within(Duration::from_secs(30)))
        );
        assert_eq!(
            parse("/chat?since=5-2&epoch=77"),
            Ok(Ask::Since {
                offset: Offset { ms: 5, seq: 2 },
                epoch: 77
            })
        );
        assert_eq!(
            parse("/?epoch=1&since=9"),
            Ok(Ask::Since {
                offset: Offset { ms: 9, seq: 0 },
                epoch: 1
            })
        );
    }

    #[test]
    fn bad_asks_are_refused() {
        for bad in [
            "/?rewind=x",
            "/?rewind=",
            "/?rewind=-1",
            "/?rewind=1&rewind=2",
            "/?since=1-0",
            "/?epoch=3",
            "/?since=x&epoch=1",
            "/?since=1&epoch=y",
            "/?rewind=3&since=1&epoch=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
