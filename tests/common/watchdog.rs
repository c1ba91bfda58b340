//! Telling a stuck test from a slow one.
//!
//! A test that waits forever (a reply that never comes, a loop that never
//! ends) must fail instead of stalling CI. A test on a busy machine only
//! takes longer: under `STRESS_NICE=19 scripts/stress-tests.sh` (nice 19
//! against a busy loop per core) its threads get one or two percent of a
//! core, and a second of work takes a minute. A wall-clock deadline cannot tell the
//! two apart. What can: while anything is being done, this process uses
//! CPU (the test's threads, its in-process servers), however little of it
//! the scheduler grants, or the kernel holds bytes on their way to one of
//! its sockets (TCP resends on a timer of its own: on loopback a receiver
//! that stopped reading makes the kernel drop segments, and the resend
//! timer backs off to seconds, to minutes if the reader stays away long).
//! A stuck test has neither.
//!
//! So the watchdog aborts a test once the process has made no progress
//! ([`Progress`]: under [`SOME_WORK`] of CPU and no bytes on their way, at
//! every [`CHECK_EVERY`]) for [`TEST_DEADLINE`], or once it has run for
//! [`TEST_LIMIT`] (a loop that never ends is busy, not stuck), and a
//! socket wait that times out waits again if the process made progress
//! meanwhile. Other
//! tests running alongside count as progress too: a stuck test then fails
//! once they are done. Work in child processes (wsd, redis-server, wsload)
//! is not seen: a wait on a child is bounded as before.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test may go without progress before its watchdog aborts it.
pub const TEST_DEADLINE: Duration = Duration::from_secs(60);

/// How long a test may run at all: past this it is aborted even if busy,
/// as a loop that never ends uses CPU too. Five times the longest test
/// under `scripts/stress-tests.sh` (about a minute), and under its
/// per-binary limit of ten minutes.
pub const TEST_LIMIT: Duration = Duration::from_secs(300);

/// How often the watchdog looks.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The CPU this process must use in a wait for the wait to count as
/// progress. An idle process (threads blocked in reads and polls, the
/// watchdogs' own checks) uses microseconds in [`CHECK_EVERY`]; a thread
/// that is runnable gets at least tens of milliseconds in that time even at
/// nice 19 behind several busy loops.
pub const SOME_WORK: Duration = Duration::from_millis(2);

/// CPU time (user and system) used so far by this process: every thread.
pub fn cpu_used() -> Duration {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only
    // writes into the one we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Whether the kernel holds bytes on their way to a socket of this
/// process that has nothing left to read: a TCP connection whose other end
/// has bytes in its send queue (unsent, or sent and unacknowledged) while
/// this end's receive queue is empty. They come without anyone running.
/// A socket whose own receive queue is not empty does not count: its
/// reader is the one holding things up.
pub fn bytes_on_their_way() -> bool {
    let mine: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    // (local, remote) -> (send queue, receive queue), and which are ours.
    let mut queues: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut ours = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // sl local remote st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(q), Some(inode)) =
                (f.get(1), f.get(2), f.get(4), f.get(9))
            else {
                continue;
            };
            let Some((tx, rx)) = q.split_once(':') else {
                continue;
            };
            let (Ok(tx), Ok(rx)) = (u64::from_str_radix(tx, 16), u64::from_str_radix(rx, 16))
            else {
                continue;
            };
            let key = (local.to_string(), remote.to_string());
            if mine.contains(*inode) {
                ours.push(key.clone());
            }
            queues.insert(key, (tx, rx));
        }
    }
    ours.into_iter().any(|(local, remote)| {
        queues
            .get(&(local.clone(), remote.clone()))
            .is_some_and(|q| q.1 == 0)
            && queues.get(&(remote, local)).is_some_and(|q| q.0 > 0)
    })
}

/// Whether this process made progress between two looks: it used at least
/// [`SOME_WORK`] of CPU, or bytes are on their way to one of its sockets.
pub struct Progress {
    cpu: Duration,
}

impl Progress {
    /// Starts measuring from now.
    pub fn start() -> Progress {
        Progress { cpu: cpu_used() }
    }

    /// Whether the process made progress since the start or the last call;
    /// the next call measures from now.
    pub fn made(&mut self) -> bool {
        let now = cpu_used();
        let worked = now.saturating_sub(self.cpu) >= SOME_WORK;
        self.cpu = now;
        worked || bytes_on_their_way()
    }
}

/// Aborts the whole test process if the test makes no progress for
/// [`TEST_DEADLINE`] before it is dropped.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
}

/// Starts a watchdog for the calling test.
pub fn watchdog() -> Watchdog {
    let name = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut progress = Progress::start();
        let mut quiet_since = started;
        while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(CHECK_EVERY) {
            if started.elapsed() >= TEST_LIMIT {
                let _ = writeln!(
                    std::io::stderr(),
                    "watchdog: test `{name}` still running after {TEST_LIMIT:?}; aborting"
                );
                std::process::abort();
            }
            if progress.made() {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= TEST_DEADLINE {
                // Straight to fd 2: `eprintln!` would go to the test's
                // captured output, which the abort throws away unprinted.
                let _ = writeln!(
                    std::io::stderr(),
                    "watchdog: test `{name}` made no progress for {TEST_DEADLINE:?} \
                     (this process used under {SOME_WORK:?} of CPU in every {CHECK_EVERY:?}, \
                     and no bytes were on their way to its sockets), \
                     {:?} after it started; aborting",
                    started.elapsed()
                );
                std::process::abort();
            }
        }
    });
    Watchdog { done: Some(tx) }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
    }
}
