//! The reactor's deadlines: handshake, close, keepalive and token expiry
//! timers, and the graceful drain's end. Each job arms its own; the loop
//! asks for the nearest ([`Timers::next`]) to bound its wait.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::id::ConnId;
use crate::net::timer::{Deadlines, TimerQueue};

/// Every per-connection deadline of one reactor.
pub(super) struct Timers {
    /// Requests due by `--handshake-timeout`.
    pub(super) handshake: TimerQueue,
    /// Closing sequences due by `--close-timeout`.
    pub(super) close: TimerQueue,
    /// Keepalive and idle checks (only with those features on), in
    /// milliseconds of the reactor's clock.
    pub(super) keepalive: Deadlines,
    /// Token expiries (`exp` plus the leeway), in milliseconds of the
    /// reactor's clock: one entry per connection whose token expires.
    pub(super) expiry: Deadlines,
    /// Expired keepalive and expiry entries, reused.
    pub(super) due: Vec<ConnId>,
    /// Whether keepalive or idle checks are on: only then do reads note
    /// the time.
    pub(super) keepalive_on: bool,
    /// When draining, the time to give up waiting for clients.
    pub(super) drain_until: Option<Instant>,
}

impl Timers {
    /// The timers `cfg` asks for. Keepalive deadlines are checked a tenth
    /// of the shortest interval late at most.
    pub(super) fn new(cfg: &Config) -> Timers {
        let shortest = [cfg.idle_timeout, cfg.ping_interval]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(1));
        let granularity = (shortest.as_millis() / 10).clamp(10, 1000);
        Timers {
            handshake: TimerQueue::new(cfg.handshake_timeout),
            close: TimerQueue::new(cfg.close_timeout),
            keepalive: Deadlines::new(granularity as u64),
            // Tokens expire on whole seconds.
            expiry: Deadlines::new(250),
            due: Vec::new(),
            keepalive_on: cfg.idle_timeout.is_some() || cfg.ping_interval.is_some(),
            drain_until: None,
        }
    }

    /// The nearest deadline, the keepalive clock counting from `started`.
    pub(super) fn next(&self, started: Instant) -> Option<Instant> {
        let at = |ms: u64| started + Duration::from_millis(ms);
        [
            self.handshake.next(),
            self.close.next(),
            self.keepalive.next().map(at),
            self.expiry.next().map(at),
            self.drain_until,
        ]
        .into_iter()
        .fold(None, super::clock::earliest)
    }
}
