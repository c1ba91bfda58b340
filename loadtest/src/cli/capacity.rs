//! `rate --find-max`'s flags: the capacity search's bounds and output,
//! read here, searched in `crate::capacity`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::results::num;

/// `rate`'s capacity-search flags.
#[derive(Args, Debug, Clone)]
pub struct CapacityArgs {
    /// Search for the highest rate at which p99 stays under --p99 with no
    /// error, instead of running one rate. The rate doubles from --from
    /// until a step fails, then bisects between the last rate that held and
    /// the first that did not, down to --resolution.
    ///
    /// Each step is a run of its own: new connections, --warmup, the -d
    /// window, at most --grace. A step fails on p99 (from the intended send
    /// time) over the bound, on any error, or on no reply; a step where
    /// wsload itself was saturated is reported as such and ends the search,
    /// since it measures wsload, not the server. At most --max-steps steps,
    /// so the search takes at most --max-steps × (--connect-timeout +
    /// --warmup + -d + --grace).
    #[arg(long, help_heading = "Capacity search")]
    pub find_max: bool,

    /// The p99 latency bound of --find-max.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_positive_duration,
          help_heading = "Capacity search")]
    pub p99: Option<Duration>,

    /// The first rate --find-max tries, in messages per second [default:
    /// 1000].
    #[arg(long, value_name = "MSGS_PER_S", value_parser = super::parse_rate,
          help_heading = "Capacity search")]
    pub from: Option<f64>,

    /// The highest rate --find-max tries [default: 1000000].
    #[arg(long, value_name = "MSGS_PER_S", value_parser = super::parse_rate,
          help_heading = "Capacity search")]
    pub to: Option<f64>,

    /// The most steps --find-max runs [default: 12].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Capacity search")]
    pub max_steps: Option<u32>,

    /// --find-max stops bisecting once the first failing rate is within
    /// this many percent of the last rate that held [default: 5].
    #[arg(long, value_name = "PCT",
          value_parser = clap::value_parser!(u32).range(1..=100), help_heading = "Capacity search")]
    pub resolution: Option<u32>,

    /// The HTML page to write, from [`CurveOut`] (a single run's flag:
    /// `compare` has its own --html).
    #[arg(skip)]
    pub html: Option<PathBuf>,
}

/// A single `rate` run's capacity output (not `compare`'s, whose --html is
/// its own report).
#[derive(Args, Debug, Clone)]
pub struct CurveOut {
    /// Write the --find-max curve as a self-contained HTML page with its
    /// chart (latency against rate, the bound drawn across).
    #[arg(long, value_name = "FILE", help_heading = "Capacity search")]
    pub html: Option<PathBuf>,
}

impl CapacityArgs {
    /// The search's bounds.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            from: self.from.unwrap_or(1000.0),
            to: self.to.unwrap_or(1e6),
            max_steps: self.max_steps.unwrap_or(12),
            resolution: f64::from(self.resolution.unwrap_or(5)) / 100.0,
        }
    }

    /// Checks what clap cannot (`per_run`: a single run's --hgrm or --csv
    /// was asked for, which a search of many runs does not write);
    /// returns a usage error's message.
    pub fn validate(&self, per_run: bool) -> Result<(), String> {
        let search_flags = self.p99.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.max_steps.is_some()
            || self.resolution.is_some()
            || self.html.is_some();
        if !self.find_max && search_flags {
            return Err(
                "--p99, --from, --to, --max-steps, --resolution and --html belong to --find-max"
                    .into(),
            );
        }
        if self.find_max && self.p99.is_none() {
            return Err("--find-max needs --p99, the latency bound a rate must hold".into());
        }
        if self.find_max && per_run {
            return Err(
                "--find-max runs many rates: it writes --json and --html, not --hgrm or --csv"
                    .into(),
            );
        }
        let b = self.bounds();
        if self.find_max && b.from > b.to {
            return Err(format!(
                "--from {} is above --to {}: the search climbs from one to the other",
                b.from, b.to
            ));
        }
        Ok(())
    }
}

/// The search's bounds.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// The first rate tried.
    pub from: f64,
    /// The highest rate tried.
    pub to: f64,
    /// The most steps.
    pub max_steps: u32,
    /// Stop bisecting when (first-bad − last-good) / last-good is at most this.
    pub resolution: f64,
}

/// The scenario in words: `capacity at p99 ≤ 5 ms, from 1000 msg/s`.
pub fn describe(cap: &CapacityArgs) -> String {
    format!(
        "capacity at p99 ≤ {}, from {} msg/s",
        fmt_bound(cap.p99.unwrap_or_default()),
        crate::results::num(cap.bounds().from)
    )
}

/// The bound as people write it: 5ms, 250µs.
pub fn fmt_bound(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{} ms", num(us / 1000.0))
    } else {
        format!("{} µs", num(us))
    }
}
