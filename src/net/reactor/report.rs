//! What the reactor counts and says: its [`Stats`], the throttle on log
//! lines about clients, and the `--stats-interval` summary line.

use std::time::Instant;

use log::info;

use crate::config::Config;
use crate::net::throttle::Throttle;
use crate::stats::Stats;

/// The counters and the log.
pub(super) struct Report {
    /// This reactor's counters.
    pub(super) stats: Stats,
    /// Log lines about refused and misbehaving clients: at most 10 a
    /// second (see `notice!`).
    pub(super) throttle: Throttle,
    /// The next summary line, and the counters at the last one.
    next_summary: Option<Instant>,
    summarized: (Instant, Stats),
}

impl Report {
    /// Nothing counted yet; the first summary one interval from `now`.
    pub(super) fn new(cfg: &Config, now: Instant) -> Report {
        Report {
            stats: Stats::default(),
            throttle: Throttle::new(10),
            next_summary: cfg.stats_interval.map(|d| now + d),
            summarized: (now, Stats::default()),
        }
    }

    /// When the next summary line is due, if there are any.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.next_summary
    }

    /// Whether the summary line is due at `now`.
    pub(super) fn summary_due(&self, now: Instant) -> bool {
        self.next_summary.is_some_and(|t| t <= now)
    }

    /// Logs the summary line of `stats` (the process's, with `held`
    /// connections) since the last one, with `more` appended (the bus's
    /// part), and schedules the next.
    pub(super) fn log_summary(
        &mut self,
        cfg: &Config,
        now: Instant,
        stats: Stats,
        held: usize,
        more: Option<String>,
    ) {
        let Some(at) = self.next_summary else {
            return;
        };
        let (since, prev) = &self.summarized;
        let mut line = stats.summary_since(prev, now.duration_since(*since), held);
        if let Some(more) = more {
            line.push_str("; ");
            line.push_str(&more);
        }
        info!("{line}");
        self.summarized = (now, stats);
        self.next_summary = cfg.stats_interval.map(|d| (at + d).max(now));
    }
}
