//! Telling a stuck test from a slow one.
//!
//! A test that waits forever (a reply that never comes, a loop that never
//! ends) must fail instead of stalling CI. A test on a busy machine only
//! takes longer: under `scripts/stress-tests.sh` (nice 19 against a busy
//! loop per core) its threads get one or two percent of a core, and a
//! second of work takes a minute. A wall-clock deadline cannot tell the
//! two apart; CPU time can. While anything is being done (the test's
//! threads, its in-process servers) this process uses CPU, however little
//! of it the scheduler grants; a stuck test uses none.
//!
//! So the watchdog aborts a test once the process has made no progress
//! (used less than [`SOME_WORK`] of CPU in each [`CHECK_EVERY`]) for
//! [`TEST_DEADLINE`], and a socket wait that times out waits again if the
//! process made progress meanwhile ([`Progress`]). Other tests running
//! alongside count as progress too: a stuck test then fails once they are
//! done. Work in child processes (wsd, redis-server, wsload) is not seen:
//! a wait on a child is bounded as before.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test may go without progress before its watchdog aborts it.
pub const TEST_DEADLINE: Duration = Duration::from_secs(60);

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

/// Whether this process did some work between two looks.
pub struct Progress {
    cpu: Duration,
}

impl Progress {
    /// Starts measuring from now.
    pub fn start() -> Progress {
        Progress { cpu: cpu_used() }
    }

    /// Whether the process used at least [`SOME_WORK`] of CPU since the
    /// start or the last call; the next call measures from now.
    pub fn made(&mut self) -> bool {
        let now = cpu_used();
        let made = now.saturating_sub(self.cpu) >= SOME_WORK;
        self.cpu = now;
        made
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
            if progress.made() {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= TEST_DEADLINE {
                // Straight to fd 2: `eprintln!` would go to the test's
                // captured output, which the abort throws away unprinted.
                let _ = writeln!(
                    std::io::stderr(),
                    "watchdog: test `{name}` made no progress for {TEST_DEADLINE:?} \
                     (this process used under {SOME_WORK:?} of CPU in every {CHECK_EVERY:?}), \
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
