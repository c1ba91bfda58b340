//! CPU lists (`0`, `0-3,6`) and pinning with sched_setaffinity: `compare`
//! keeps the servers and its own threads on different cores, so the
//! server's CPU time per message is not mixed with the load tool's.

use std::fmt;
use std::io;
use std::mem;

/// The highest CPU number a list may name (the kernel's `cpu_set_t` size).
const MAX_CPU: usize = libc::CPU_SETSIZE as usize - 1;

/// A set of CPU numbers, sorted, without repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// The CPUs this thread may run on now.
    pub fn allowed() -> io::Result<CpuList> {
        // SAFETY: cpu_set_t is plain old data; all zeroes is the empty set.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        // SAFETY: a valid pointer to a cpu_set_t of the size given; pid 0
        // is the calling thread.
        let r = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let cpus = (0..=MAX_CPU)
            // SAFETY: CPU_ISSET reads one bit of a valid set, i < CPU_SETSIZE.
            .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect();
        Ok(CpuList(cpus))
    }

    /// Checks that every CPU is one this process may use.
    pub fn check_allowed(&self, allowed: &CpuList) -> Result<(), String> {
        match self.0.iter().find(|c| !allowed.0.contains(c)) {
            Some(c) => Err(format!(
                "CPU {c} is not available to this process (allowed: {allowed})"
            )),
            None => Ok(()),
        }
    }

    /// The list as a `cpu_set_t`, for sched_setaffinity.
    pub fn to_set(&self) -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is plain old data; all zeroes is the empty set.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        for &c in &self.0 {
            // SAFETY: writes one bit of a valid set; parse() keeps c <= MAX_CPU.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        set
    }

    /// Pins the calling thread, and so every thread it starts afterwards.
    pub fn pin_current_thread(&self) -> io::Result<()> {
        set_affinity(0, &self.to_set())
    }
}

/// sched_setaffinity(pid, set): pid 0 is the calling thread. Only a system
/// call, so it may run between fork and exec.
pub fn set_affinity(pid: libc::pid_t, set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: a valid pointer to a cpu_set_t of the size given.
    let r = unsafe { libc::sched_setaffinity(pid, mem::size_of::<libc::cpu_set_t>(), set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Parses `0`, `0,2`, `0-3,6`: what taskset -c and /sys take.
pub fn parse(s: &str) -> Result<CpuList, String> {
    let bad = || format!("'{s}' is not a CPU list (e.g. 0, 0,2 or 0-3,6)");
    let num = |t: &str| -> Result<usize, String> {
        let n: usize = t.trim().parse().map_err(|_| bad())?;
        if n > MAX_CPU {
            return Err(format!("CPU {n} is above the highest possible, {MAX_CPU}"));
        }
        Ok(n)
    };
    let mut cpus = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(CpuList(cpus))
}

impl fmt::Display for CpuList {
    /// Runs of consecutive CPUs as ranges: `0-3,6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while let Some(&start) = self.0.get(i) {
            let mut end = start;
            while self.0.get(i + 1) == Some(&(end + 1)) {
                end += 1;
                i += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_taskset_reads_them() {
        assert_eq!(parse("1").map(|l| l.0), Ok(vec![1]));
        assert_eq!(parse("3,0-2,2").map(|l| l.0), Ok(vec![0, 1, 2, 3]));
        for bad in ["", "a", "2-1", "1,", "-1", "0-", "99999"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_print_as_ranges() {
        for s in ["0", "0-3,6", "1,3,5", "0-1,4-5"] {
            assert_eq!(parse(s).map(|l| l.to_string()), Ok(s.to_string()));
        }
    }

    #[test]
    fn this_process_runs_on_some_cpu() {
        let allowed = CpuList::allowed().expect("sched_getaffinity");
        assert!(!allowed.0.is_empty());
        assert!(allowed.check_allowed(&allowed).is_ok());
        let far = parse(&MAX_CPU.to_string()).expect("list");
        assert!(far.check_allowed(&allowed).is_err());
    }
}
