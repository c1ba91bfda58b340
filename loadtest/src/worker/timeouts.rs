//! Deadlines: connects past the connect timeout, closes the server does
//! not answer, and how long the loop may sleep in poll.

use std::time::{Duration, Instant};

use super::workload::Workload;
use super::{Stage, Worker};
use crate::client::Phase;
use crate::stats::ErrorKind;
use crate::window::{Window, CLOSE_WAIT};

impl<W: Workload> Worker<W> {
    /// Every 50 ms: fails connects past the connect timeout and, once the
    /// workload has closed connections itself, closes whose answer is
    /// later than [`CLOSE_WAIT`].
    pub(super) fn scan_timeouts(&mut self, now: Instant, win: &Window, last: &mut Instant) {
        if (self.pending == 0 && !self.churned)
            || now.duration_since(*last) < Duration::from_millis(50)
        {
            return;
        }
        *last = now;
        for idx in 0..self.conns.len() {
            let Some(c) = self.conns[idx].as_ref() else {
                continue;
            };
            let failure = match c.phase() {
                Phase::Connecting | Phase::Handshake
                    if now.duration_since(c.started) > self.timing.connect_timeout =>
                {
                    let t = self.timing.connect_timeout;
                    (ErrorKind::Timeout, format!("no handshake within {t:?}"))
                }
                Phase::Closing | Phase::Lingering
                    if self.load
                        && c.closed_at
                            .is_some_and(|t| now.duration_since(t) > CLOSE_WAIT) =>
                {
                    let what = if c.phase() == Phase::Closing {
                        "the server's Close"
                    } else {
                        "the server to end the stream after the Close"
                    };
                    (
                        ErrorKind::CloseTimeout,
                        format!("waited {CLOSE_WAIT:?} for {what}"),
                    )
                }
                _ => continue,
            };
            self.fail(idx, failure, win);
        }
    }

    pub(super) fn poll_timeout(
        &self,
        stage: Stage,
        now: u64,
        win: &Window,
        tick: Option<u64>,
    ) -> Duration {
        let cap = match stage {
            Stage::Waiting => 1_000_000,
            _ => 50_000_000,
        };
        let mut until = now + cap;
        if matches!(stage, Stage::Running | Stage::Draining) {
            if let Some(t) = tick {
                until = until.min(t);
            }
            let boundary = if stage == Stage::Running {
                win.measure_end
            } else {
                win.drain_end
            };
            until = until.min(boundary);
        }
        Duration::from_nanos(until.saturating_sub(now))
    }
}
