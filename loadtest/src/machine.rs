//! What machine a comparison ran on, kept with its figures: figures from
//! two machines are not comparable, and a report says so.

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cpus::CpuList;

/// The machine, as /proc and /etc tell it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model (`model name` in /proc/cpuinfo).
    pub cpu_model: Option<String>,
    /// CPUs online.
    pub cpus: usize,
    /// The CPUs wsload was allowed to run on when it started.
    pub allowed_cpus: String,
    /// Total memory in bytes (MemTotal).
    pub memory_bytes: Option<u64>,
    /// The kernel release.
    pub kernel: Option<String>,
    /// The distribution (PRETTY_NAME in /etc/os-release).
    pub os: Option<String>,
    /// The load averages (1, 5, 15 minutes) when the comparison started:
    /// a shared machine's other work shows here.
    pub loadavg: Option<String>,
}

impl Machine {
    /// Reads this machine's description; what cannot be read is left out.
    pub fn describe() -> Machine {
        let read = |p: &str| fs::read_to_string(p).ok();
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        let meminfo = read("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu_model: cpuinfo_field(&cpuinfo, "model name"),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            allowed_cpus: CpuList::allowed().map_or_else(|_| "?".into(), |l| l.to_string()),
            memory_bytes: meminfo_kib(&meminfo, "MemTotal:").map(|k| k * 1024),
            kernel: read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()),
            os: read("/etc/os-release").and_then(|s| os_name(&s)),
            loadavg: read("/proc/loadavg").map(|s| {
                s.split_ascii_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        }
    }

    /// One line: `2 CPUs (Model), 24.0 GiB, Linux 6.1, Debian 12`.
    pub fn line(&self) -> String {
        let mut s = format!("{} CPUs", self.cpus);
        if let Some(m) = &self.cpu_model {
            s.push_str(&format!(" ({m})"));
        }
        if let Some(b) = self.memory_bytes {
            s.push_str(&format!(", {:.1} GiB", b as f64 / (1u64 << 30) as f64));
        }
        if let Some(k) = &self.kernel {
            s.push_str(&format!(", Linux {k}"));
        }
        if let Some(o) = &self.os {
            s.push_str(&format!(", {o}"));
        }
        s
    }
}

fn cpuinfo_field(cpuinfo: &str, name: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

fn meminfo_kib(meminfo: &str, name: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(name))?;
    line.get(name.len()..)?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

fn os_name(os_release: &str) -> Option<String> {
    let v = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(v.trim_matches('"').to_string())
}

/// Now, in UTC, as `2026-11-24T10:31:07Z`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's
/// `civil_from_days`, for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_match_known_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn proc_fields_are_found() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t: x\n";
        assert_eq!(
            cpuinfo_field(cpuinfo, "model name").as_deref(),
            Some("Some CPU @ 2.0GHz")
        );
        assert_eq!(
            meminfo_kib("MemTotal:       24000 kB\n", "MemTotal:"),
            Some(24000)
        );
        assert_eq!(
            os_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n").as_deref(),
            Some("Debian GNU/Linux 12")
        );
    }

    #[test]
    fn this_machine_has_cpus() {
        let m = Machine::describe();
        assert!(m.cpus > 0, "{m:?}");
        assert!(!m.line().is_empty());
    }
}
