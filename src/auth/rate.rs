//! Rate limits: a token bucket per connection, and connections per client
//! address.
//!
//! A bucket is two numbers, refilled lazily when a message arrives: no timer
//! per connection, no work for a quiet one. It holds one second's allowance
//! (`--max-message-rate N` holds N messages, `--max-bytes-rate SIZE` holds
//! SIZE bytes), so a client may burst up to a second's worth, then is held
//! to the rate. It counts in thousandths of a unit so that refilling by the
//! millisecond is exact at any rate.
//!
//! A single message costing more than the bucket holds (a message larger
//! than one second's byte allowance) is always over the limit, however long
//! the client waited: the bucket never runs into debt, so the limit means
//! what it says. `--max-bytes-rate` should therefore be at least
//! `--max-message`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// The highest rate, so that a bucket's thousandths fit in a `u64`.
pub const MAX_RATE: u64 = u64::MAX / 1000;

/// A limit of so many units (messages, or bytes) per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    per_second: u64,
}

impl Rate {
    /// `n` units per second, at most [`MAX_RATE`]; `None` for 0 (no limit).
    pub fn per_second(n: u64) -> Option<Rate> {
        (n > 0).then(|| Rate {
            per_second: n.min(MAX_RATE),
        })
    }

    /// Units per second, which is also what a full bucket holds.
    pub fn get(self) -> u64 {
        self.per_second
    }

    /// A full bucket, in thousandths.
    fn capacity(self) -> u64 {
        self.per_second.saturating_mul(1000)
    }
}

/// One connection's bucket for one [`Rate`]: the thousandths of a unit it
/// holds and when it was last refilled (milliseconds of any monotonic
/// clock, e.g. since the reactor started).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    milli: u64,
    last_ms: u64,
}

impl Bucket {
    /// A full bucket at `now_ms`: a new connection may burst a second's
    /// worth at once.
    pub fn full(rate: Rate, now_ms: u64) -> Bucket {
        Bucket {
            milli: rate.capacity(),
            last_ms: now_ms,
        }
    }

    /// Refills for the time since the last call, then takes `cost` units if
    /// the bucket holds them: `true` if taken, `false` (nothing taken) if
    /// the connection is over its limit. A clock that goes back refills
    /// nothing and is not remembered.
    ///
    /// The naive equivalent: add `rate` thousandths once for every
    /// millisecond since the last call, each time capped at a second's
    /// worth; then take `cost * 1000` thousandths if there are that many.
    pub fn take(&mut self, rate: Rate, now_ms: u64, cost: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(rate.per_second))
            .min(rate.capacity());
        self.last_ms = self.last_ms.max(now_ms);
        let need = cost.saturating_mul(1000);
        if need > self.milli {
            return false;
        }
        self.milli -= need;
        true
    }

    /// Whole units held at the last refill.
    pub fn available(&self) -> u64 {
        self.milli / 1000
    }
}

/// Which limit refused a client: the `limit` label of
/// `wsd_rate_limited_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    /// `--max-message-rate`: the connection is closed (1008 `rate limit`).
    Messages,
    /// `--max-bytes-rate`: the connection is closed (1008 `rate limit`).
    Bytes,
    /// `--max-connections-per-ip`: the upgrade is answered 429.
    ConnectionsPerIp,
}

impl Limited {
    /// Every limit, for printing every series from 0.
    pub const ALL: [Limited; 3] = [Limited::Messages, Limited::Bytes, Limited::ConnectionsPerIp];

    /// The stable `limit` label.
    pub fn label(self) -> &'static str {
        match self {
            Limited::Messages => "messages",
            Limited::Bytes => "bytes",
            Limited::ConnectionsPerIp => "connections_per_ip",
        }
    }
}

/// Open connections per client, for `--max-connections-per-ip N`.
///
/// Acquire at upgrade, release at close, each exactly once per admitted
/// connection; an entry is freed when its count returns to zero, so the map
/// follows the open connections. A release without an acquire cannot
/// underflow: it is ignored and reported. Shared by the reactors behind a
/// mutex taken only at upgrade and close, hence the plain `&mut self`.
///
/// Clients are grouped by [`ConnectionsPerIp::client`]: an IPv4 address
/// (IPv4-mapped IPv6 too), or an IPv6 /64, the block one site is given, so
/// a client cannot escape the limit by hopping addresses within its own
/// network.
#[derive(Debug)]
pub struct ConnectionsPerIp {
    max: u32,
    open: HashMap<IpAddr, u32>,
}

impl ConnectionsPerIp {
    /// A counter allowing `max` connections per client; `None` for 0 (no
    /// limit).
    pub fn new(max: u32) -> Option<ConnectionsPerIp> {
        (max > 0).then(|| ConnectionsPerIp {
            max,
            open: HashMap::new(),
        })
    }

    /// The client `ip` is counted as.
    pub fn client(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        }
    }

    /// Counts one more connection from `ip` if it is under the limit:
    /// `true` if counted, `false` if it is at the limit (answer 429; do not
    /// release it later).
    pub fn try_acquire(&mut self, ip: IpAddr) -> bool {
        let open = self.open.entry(Self::client(ip)).or_insert(0);
        if *open >= self.max {
            return false;
        }
        *open += 1;
        true
    }

    /// Counts one connection from `ip` fewer, freeing the entry at zero.
    /// `false` if `ip` held none (a release without an acquire: ignored).
    pub fn release(&mut self, ip: IpAddr) -> bool {
        let client = Self::client(ip);
        match self.open.get_mut(&client) {
            Some(open) if *open > 1 => {
                *open -= 1;
                true
            }
            Some(_) => {
                self.open.remove(&client);
                true
            }
            None => false,
        }
    }

    /// The connections counted for `ip`'s client.
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.open.get(&Self::client(ip)).copied().unwrap_or(0)
    }

    /// How many clients have a connection counted.
    pub fn clients(&self) -> usize {
        self.open.len()
    }

    /// The limit.
    pub fn max(&self) -> u32 {
        self.max
    }
}

#[cfg(test)]
mod tests;
