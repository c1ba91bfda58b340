//! Log lines to stderr: journald's priority prefix under systemd, an
//! RFC 3339 timestamp anywhere else.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sets up the logger: `level`, else `RUST_LOG`, else info.
pub fn init(level: Option<log::LevelFilter>) {
    let level = level
        .or_else(|| std::env::var("RUST_LOG").ok().and_then(|v| v.parse().ok()))
        .unwrap_or(log::LevelFilter::Info);
    log::set_max_level(level);
    let logger = Box::leak(Box::new(StderrLogger {
        journal: stderr_is_journal(),
    }));
    let _ = log::set_logger(logger);
}

/// Log lines to stderr, one per record, in one of two forms.
///
/// Under the journal: `<P>LEVEL message`, where `<P>` is the syslog
/// priority (3 error, 4 warning, 6 info, 7 debug) that journald takes off
/// the line and records, so `journalctl -p warning` works; the journal
/// stamps the time itself. Anywhere else (a terminal, a file, a pipe):
/// `2024-05-01T12:34:56.789Z LEVEL message`, an RFC 3339 UTC timestamp with
/// milliseconds.
struct StderrLogger {
    journal: bool,
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.journal {
            let priority = match r.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(err, "<{priority}>{:5} {}", r.level(), r.args())
        } else {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            writeln!(err, "{} {:5} {}", Rfc3339(now), r.level(), r.args())
        };
    }
    fn flush(&self) {}
}

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM` to the
/// `device:inode` of the stream it connected, and the variable is only
/// believed if stderr still is that stream (a child whose stderr was
/// redirected inherits the variable, not the journal).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM")
        .ok()
        .and_then(|v| parse_journal_stream(&v))
    else {
        return false;
    };
    // fstat(2) through a duplicate of the descriptor: no unsafe needed.
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata());
    meta.is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// `device:inode`, both decimal, as systemd writes `JOURNAL_STREAM`.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// A time since the Unix epoch, displayed as RFC 3339 UTC with
/// milliseconds: `2024-02-29T23:59:59.999Z`.
struct Rfc3339(Duration);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs();
        let (y, m, d) = civil_from_days(secs / 86_400);
        let day = secs % 86_400;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            day / 3600,
            day % 3600 / 60,
            day % 60,
            self.0.subsec_millis()
        )
    }
}

/// The proleptic Gregorian (year, month, day) of a day number counted from
/// 1970-01-01, after Howard Hinnant's `civil_from_days`: shift the year to
/// start in March, so the leap day ends it, then split into 400-year eras
/// of 146097 days, years of the era, and months of 153 days per 5.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of the era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March year, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stamp(secs: u64, millis: u32) -> String {
        Rfc3339(Duration::new(secs, millis * 1_000_000)).to_string()
    }

    #[test]
    fn timestamps_of_known_instants() {
        for (secs, millis, want) in [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (951_782_399, 999, "2000-02-28T23:59:59.999Z"),
            (951_782_400, 1, "2000-02-29T00:00:00.001Z"),
            (951_868_800, 0, "2000-03-01T00:00:00.000Z"),
            (978_307_199, 500, "2000-12-31T23:59:59.500Z"),
            (1_709_251_199, 999, "2024-02-29T23:59:59.999Z"),
            (1_714_566_896, 789, "2024-05-01T12:34:56.789Z"),
            (4_107_456_000, 0, "2100-02-28T00:00:00.000Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799, 0, "9999-12-31T23:59:59.000Z"),
        ] {
            assert_eq!(stamp(secs, millis), want, "{secs}");
        }
    }

    /// The naive twin: walk the calendar a day at a time.
    #[test]
    fn civil_from_days_agrees_with_counting_days_through_four_centuries() {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..(2400 - 1970) * 366 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let month_len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > month_len {
                (d, m) = (1, m + 1);
                if m > 12 {
                    (m, y) = (1, y + 1);
                }
            }
        }
    }

    #[test]
    fn journal_stream_is_device_colon_inode() {
        assert_eq!(parse_journal_stream("2049:123456"), Some((2049, 123_456)));
        for bad in ["", "2049", "2049:", ":1", "a:1", "1:2:3", "-1:2"] {
            assert_eq!(parse_journal_stream(bad), None, "{bad:?}");
        }
    }
}
