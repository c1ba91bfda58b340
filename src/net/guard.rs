//! What a connection carries of access control once it is open: may it
//! publish, its rate buckets, and the client address it is counted under.
//!
//! Only a connection that needs one has a guard (boxed, so the others pay
//! one pointer): one without `write` for its room, or with a rate limit or
//! a per-address count on. Everyone else's data messages meet a single
//! `None` check. The token's expiry is not here: it is an entry on the
//! reactor's deadline wheel.

use std::net::IpAddr;

use crate::auth::{Bucket, Limited, Rate, REASON_NOT_ALLOWED, REASON_RATE_LIMIT};

/// Why a guarded connection must be closed (1008).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A data message without `write` for the room.
    NotAllowed,
    /// Over a rate limit.
    Limited(Limited),
}

impl Stop {
    /// The close reason.
    pub fn reason(self) -> &'static str {
        match self {
            Stop::NotAllowed => REASON_NOT_ALLOWED,
            Stop::Limited(_) => REASON_RATE_LIMIT,
        }
    }
}

/// One connection's access control after the upgrade.
#[derive(Debug)]
pub struct Guard {
    /// May it send data messages (publish into its room, or be echoed).
    write: bool,
    messages: Option<(Rate, Bucket)>,
    bytes: Option<(Rate, Bucket)>,
    /// The reactor clock in milliseconds, set before each read is handed
    /// to the protocol: the buckets refill by it.
    pub now_ms: u64,
    /// The address counted for `--max-connections-per-ip`: released once,
    /// when the connection leaves the slab.
    pub client: Option<IpAddr>,
    /// Set by the first message refused: every later one of the same read
    /// is dropped too, and the reactor closes the connection.
    stop: Option<Stop>,
}

impl Guard {
    /// A guard, if the connection needs one: without `write`, with a rate,
    /// or counted under a client address. Buckets start full at `now_ms`.
    pub fn new(
        write: bool,
        message_rate: Option<Rate>,
        bytes_rate: Option<Rate>,
        client: Option<IpAddr>,
        now_ms: u64,
    ) -> Option<Box<Guard>> {
        let needed = !write || message_rate.is_some() || bytes_rate.is_some() || client.is_some();
        needed.then(|| {
            Box::new(Guard {
                write,
                messages: message_rate.map(|r| (r, Bucket::full(r, now_ms))),
                bytes: bytes_rate.map(|r| (r, Bucket::full(r, now_ms))),
                now_ms,
                client,
                stop: None,
            })
        })
    }

    /// Whether a data message of `len` payload bytes may pass; the first
    /// refusal is kept for [`Guard::take_stop`], and nothing passes after
    /// it. Control frames never come here.
    pub fn admit(&mut self, len: usize) -> bool {
        if self.stop.is_some() {
            return false;
        }
        if !self.write {
            self.stop = Some(Stop::NotAllowed);
            return false;
        }
        let now = self.now_ms;
        if let Some((rate, bucket)) = &mut self.messages {
            if !bucket.take(*rate, now, 1) {
                self.stop = Some(Stop::Limited(Limited::Messages));
                return false;
            }
        }
        if let Some((rate, bucket)) = &mut self.bytes {
            if !bucket.take(*rate, now, len as u64) {
                self.stop = Some(Stop::Limited(Limited::Bytes));
                return false;
            }
        }
        true
    }

    /// Why the connection must be closed, once.
    pub fn take_stop(&mut self) -> Option<Stop> {
        self.stop.take().inspect(|_| {
            // Stays shut: nothing more is admitted on this connection.
            self.write = false;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_connection_that_needs_a_guard_gets_one() {
        assert!(Guard::new(true, None, None, None, 0).is_none());
        assert!(Guard::new(false, None, None, None, 0).is_some());
        assert!(Guard::new(true, Rate::per_second(1), None, None, 0).is_some());
        let ip = IpAddr::from([127, 0, 0, 1]);
        assert!(Guard::new(true, None, None, Some(ip), 0).is_some());
    }

    #[test]
    fn a_message_without_write_stops_the_connection_once() {
        let mut g = Guard::new(false, None, None, None, 0).unwrap();
        assert!(!g.admit(1));
        assert!(!g.admit(1));
        assert_eq!(g.take_stop(), Some(Stop::NotAllowed));
        assert_eq!(g.take_stop(), None);
        assert_eq!(Stop::NotAllowed.reason(), "not allowed to publish");
    }

    #[test]
    fn rates_hold_a_second_and_refill_with_the_clock() {
        let mut g = Guard::new(true, Rate::per_second(2), Rate::per_second(100), None, 0).unwrap();
        assert!(g.admit(10) && g.admit(10));
        assert!(!g.admit(10));
        assert_eq!(g.take_stop(), Some(Stop::Limited(Limited::Messages)));
        let mut g =
            Guard::new(true, Rate::per_second(100), Rate::per_second(100), None, 0).unwrap();
        assert!(g.admit(60));
        assert!(!g.admit(60));
        assert_eq!(g.take_stop(), Some(Stop::Limited(Limited::Bytes)));
        let mut g = Guard::new(true, Rate::per_second(1), None, None, 0).unwrap();
        assert!(g.admit(0) && !g.admit(0));
        let mut g = Guard::new(true, Rate::per_second(1), None, None, 0).unwrap();
        assert!(g.admit(0));
        g.now_ms = 1000;
        assert!(g.admit(0));
    }
}
