//! Keepalive: pings for quiet connections, the ping timeout, and the idle
//! timeout, on one coarse deadline wheel.
//!
//! What a check does is [`decide`]: a pure function of the clock and the
//! connection's times, tested below with simulated time. The reactor only
//! carries it out.

use super::clock::millis;
use super::Server;
use crate::id::ConnId;
use crate::net::conn::{Connection, Phase, QueueSink};
use crate::proto::{close, State};

/// What one keepalive check of an open connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// No message for the idle timeout: close 1001 "idle timeout".
    IdleTimeout,
    /// Quiet for an interval with a ping already unanswered: close 1001
    /// "ping timeout".
    PingTimeout,
    /// Quiet for an interval: send a ping, check again at `next`.
    Ping { next: u64 },
    /// Nothing due: check again at `next`, if any timer applies.
    Wait { next: Option<u64> },
}

/// The keepalive decision at `now_ms` (reactor milliseconds) for a
/// connection last heard from at `seen_at` (any bytes) and last sent a
/// message at `message_at`, both as wrapping 32-bit milliseconds, with a
/// ping outstanding if `awaiting_pong`. `idle_ms` and `interval_ms` are
/// the idle timeout and ping interval, if set.
///
/// The idle timeout is checked first: when both are due, a connection that
/// sent no message is closed as idle, whatever became of its pings.
fn decide(
    now_ms: u64,
    seen_at: u32,
    message_at: u32,
    awaiting_pong: bool,
    idle_ms: Option<u64>,
    interval_ms: Option<u64>,
) -> Check {
    let now = now_ms as u32;
    let quiet = u64::from(now.wrapping_sub(seen_at));
    let idle = u64::from(now.wrapping_sub(message_at));
    let mut next = None;
    if let Some(limit) = idle_ms {
        if idle >= limit {
            return Check::IdleTimeout;
        }
        next = Some(now_ms + (limit - idle));
    }
    let Some(interval) = interval_ms else {
        return Check::Wait { next };
    };
    if quiet < interval {
        let at = now_ms + (interval - quiet);
        Check::Wait {
            next: Some(next.map_or(at, |n| n.min(at))),
        }
    } else if awaiting_pong {
        Check::PingTimeout
    } else {
        let at = now_ms + interval;
        Check::Ping {
            next: next.map_or(at, |n| n.min(at)),
        }
    }
}

impl Server {
    /// Runs the keepalive checks that are due.
    pub(super) fn expire_keepalive(&mut self) {
        if !self.timers.keepalive_on {
            return;
        }
        let mut due = std::mem::take(&mut self.timers.due);
        self.timers.keepalive.expire(self.clock.now_ms(), &mut due);
        for id in due.drain(..) {
            self.check_keepalive(id);
        }
        self.timers.due = due;
        let conns = &self.conns;
        self.timers.keepalive.compact(|id| {
            conns
                .get(id.key)
                .is_some_and(|c| c.gen == id.gen && checked(c))
        });
    }

    /// Arms the first keepalive check of a just-opened connection.
    pub(super) fn arm_keepalive(&mut self, id: ConnId) {
        let first = [self.cfg.idle_timeout, self.cfg.ping_interval]
            .into_iter()
            .flatten()
            .min();
        let Some(first) = first else { return };
        let now_ms = self.clock.now_ms();
        if let Some(conn) = self.conns.get_mut(id.key) {
            conn.seen_at = now_ms as u32;
            conn.message_at = now_ms as u32;
            self.timers.keepalive.arm(now_ms + millis(first), id);
        }
    }

    /// A keepalive deadline: close an idle connection, ping a quiet one,
    /// close one that let a ping go unanswered, and re-arm.
    fn check_keepalive(&mut self, id: ConnId) {
        if !self.live(id) {
            return;
        }
        let now_ms = self.clock.now_ms();
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        if !checked(conn) {
            return;
        }
        let next = match decide(
            now_ms,
            conn.seen_at,
            conn.message_at,
            conn.awaiting_pong,
            self.cfg.idle_timeout.map(millis),
            self.cfg.ping_interval.map(millis),
        ) {
            Check::IdleTimeout => {
                self.report.stats.idle_timeouts += 1;
                return self.close_with(id, close::GOING_AWAY, "idle timeout");
            }
            Check::PingTimeout => {
                self.report.stats.ping_timeouts += 1;
                return self.close_with(id, close::GOING_AWAY, "ping timeout");
            }
            Check::Ping { next } => {
                let q = conn.out.get_or_insert_with(Default::default);
                conn.session.ping(b"", &mut QueueSink(q));
                conn.awaiting_pong = true;
                self.report.stats.pings_sent += 1;
                self.write_out(id.key, false);
                Some(next)
            }
            Check::Wait { next } => next,
        };
        if let Some(next) = next.filter(|_| self.live(id)) {
            self.timers.keepalive.arm(next, id);
        }
    }
}

/// Whether keepalive still watches `conn`: only open sessions are pinged
/// or timed out idle.
fn checked(conn: &Connection) -> bool {
    conn.phase == Phase::Open && conn.session.state() == State::Open
}

#[cfg(test)]
mod tests {
    //! The keepalive timers on simulated time: one connection, the
    //! reactor's deadline wheel and [`decide`], with a scripted peer. No
    //! clock is read, so these outcomes hold however the machine is
    //! loaded; the loopback tests (tests/keepalive.rs) check only what no
    //! scheduling can change.

    use super::*;
    use crate::net::timer::Deadlines;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    const ID: ConnId = ConnId { key: 0, gen: 0 };

    /// What reaches the server from the peer.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Bytes {
        /// A data message.
        Message,
        /// Anything else: a pong, a ping, part of a frame.
        Control,
    }

    /// How the peer answers the server's pings.
    #[derive(Clone, Copy, Debug)]
    enum Answer {
        Never,
        /// With a pong, this long after the ping was sent.
        Pong(u64),
        /// With a data message instead, this long after.
        Message(u64),
    }

    /// One connection opened at time 0, as the reactor keeps it.
    struct Sim {
        idle: Option<u64>,
        interval: Option<u64>,
        wheel: Deadlines,
        /// Every check runs this long after its deadline (a busy reactor).
        late: u64,
        answer: Answer,
        /// Bytes due from the peer: (arrival time, kind), earliest first.
        peer: BinaryHeap<Reverse<(u64, Bytes)>>,
        seen_at: u32,
        message_at: u32,
        awaiting_pong: bool,
        /// When each ping was sent.
        pings: Vec<u64>,
        /// How and when the connection was closed.
        closed: Option<(Check, u64)>,
    }

    impl Sim {
        /// Granularity as the reactor picks it: a tenth of the shortest
        /// timer, at least 10 ms.
        fn open(idle: Option<u64>, interval: Option<u64>, answer: Answer) -> Sim {
            let shortest = [idle, interval].into_iter().flatten().min().unwrap();
            let mut wheel = Deadlines::new((shortest / 10).clamp(10, 1000));
            wheel.arm(shortest, ID);
            Sim {
                idle,
                interval,
                wheel,
                late: 0,
                answer,
                peer: BinaryHeap::new(),
                seen_at: 0,
                message_at: 0,
                awaiting_pong: false,
                pings: Vec::new(),
                closed: None,
            }
        }

        fn late(mut self, ms: u64) -> Sim {
            self.late = ms;
            self
        }

        /// The peer sends `kind` at `at`.
        fn peer_sends(&mut self, at: u64, kind: Bytes) {
            self.peer.push(Reverse((at, kind)));
        }

        /// Runs everything up to and including `end`. At equal times the
        /// peer's bytes come first, as the reactor reads before it runs
        /// the turn's timers.
        fn run_until(&mut self, end: u64) {
            while self.closed.is_none() {
                let check = self.wheel.next().map(|at| at + self.late);
                let bytes = self.peer.peek().map(|Reverse((at, _))| *at);
                match (bytes, check) {
                    (Some(b), c) if b <= end && c.is_none_or(|c| b <= c) => {
                        let Some(Reverse((at, kind))) = self.peer.pop() else {
                            unreachable!()
                        };
                        self.seen_at = at as u32;
                        self.awaiting_pong = false;
                        if kind == Bytes::Message {
                            self.message_at = at as u32;
                        }
                    }
                    (_, Some(c)) if c <= end => self.check(c),
                    _ => return,
                }
            }
        }

        fn check(&mut self, now: u64) {
            let mut due = Vec::new();
            self.wheel.expire(now, &mut due);
            for _ in due {
                let step = decide(
                    now,
                    self.seen_at,
                    self.message_at,
                    self.awaiting_pong,
                    self.idle,
                    self.interval,
                );
                let next = match step {
                    Check::IdleTimeout | Check::PingTimeout => {
                        self.closed = Some((step, now));
                        return;
                    }
                    Check::Ping { next } => {
                        self.awaiting_pong = true;
                        self.pings.push(now);
                        match self.answer {
                            Answer::Never => {}
                            Answer::Pong(after) => self.peer_sends(now + after, Bytes::Control),
                            Answer::Message(after) => self.peer_sends(now + after, Bytes::Message),
                        }
                        Some(next)
                    }
                    Check::Wait { next } => next,
                };
                if let Some(next) = next {
                    self.wheel.arm(next, ID);
                }
            }
        }
    }

    #[test]
    fn a_quiet_peer_is_pinged_every_interval_and_kept_while_it_answers_in_time() {
        let mut sim = Sim::open(None, Some(300), Answer::Pong(250));
        sim.run_until(10_000);
        assert_eq!(sim.closed, None);
        // A ping goes out an interval after the last answer.
        assert_eq!(sim.pings[0], 300);
        for w in sim.pings.windows(2) {
            assert!((550..=580).contains(&(w[1] - w[0])), "{:?}", sim.pings);
        }
        assert!(sim.pings.len() >= 17, "{:?}", sim.pings);
    }

    #[test]
    fn a_ping_left_unanswered_for_an_interval_closes_with_ping_timeout() {
        let mut sim = Sim::open(None, Some(300), Answer::Never);
        sim.run_until(10_000);
        assert_eq!(sim.pings, [300]);
        assert_eq!(sim.closed, Some((Check::PingTimeout, 600)));
    }

    #[test]
    fn an_answer_by_the_check_keeps_the_connection_and_one_after_it_does_not() {
        // The check after a ping comes an interval later: an answer read in
        // the same turn still counts.
        let mut sim = Sim::open(None, Some(300), Answer::Pong(300));
        sim.run_until(10_000);
        assert_eq!(sim.closed, None);
        let mut sim = Sim::open(None, Some(300), Answer::Pong(301));
        sim.run_until(10_000);
        assert_eq!(sim.pings, [300]);
        assert_eq!(sim.closed, Some((Check::PingTimeout, 600)));
    }

    #[test]
    fn any_message_answers_a_ping() {
        let mut sim = Sim::open(None, Some(300), Answer::Message(200));
        sim.run_until(10_000);
        assert_eq!(sim.closed, None);
        assert!(sim.pings.len() >= 19, "{:?}", sim.pings);
    }

    #[test]
    fn a_late_reactor_gives_the_peer_more_time_never_less() {
        // The first check, due at 300, runs at 600 and pings; the next,
        // due at 900, runs at 1200: the answer at 1050 came before it.
        let mut sim = Sim::open(None, Some(300), Answer::Pong(450)).late(300);
        sim.run_until(10_000);
        assert_eq!(sim.closed, None);
        assert_eq!(sim.pings[0], 600);
        // Unanswered, it is closed one late check after its ping.
        let mut sim = Sim::open(None, Some(300), Answer::Never).late(300);
        sim.run_until(10_000);
        assert_eq!(sim.pings, [600]);
        assert_eq!(sim.closed, Some((Check::PingTimeout, 1200)));
    }

    #[test]
    fn a_peer_that_answers_every_ping_but_sends_no_message_is_closed_as_idle() {
        let mut sim = Sim::open(Some(300), Some(100), Answer::Pong(10));
        sim.run_until(10_000);
        assert_eq!(sim.closed, Some((Check::IdleTimeout, 300)));
        assert_eq!(sim.pings, [100, 210]);
    }

    #[test]
    fn pings_from_the_peer_are_traffic_not_messages() {
        let mut sim = Sim::open(Some(300), None, Answer::Never);
        for at in (50..10_000).step_by(50) {
            sim.peer_sends(at, Bytes::Control);
        }
        sim.run_until(10_000);
        assert_eq!(sim.closed, Some((Check::IdleTimeout, 300)));
        assert!(sim.pings.is_empty());
    }

    #[test]
    fn messages_keep_a_connection_open_past_the_idle_timeout_until_they_stop() {
        let mut sim = Sim::open(Some(400), None, Answer::Never);
        for at in (100..=4_000).step_by(100) {
            sim.peer_sends(at, Bytes::Message);
        }
        sim.run_until(4_399);
        assert_eq!(sim.closed, None);
        sim.run_until(10_000);
        assert_eq!(sim.closed, Some((Check::IdleTimeout, 4_400)));
    }

    /// With the idle timeout under two ping intervals, the only close a
    /// connection that sends no message can get is the idle one, after at
    /// most one ping: however late the reactor runs its checks, and
    /// whether or not (and whenever) the peer answers. The loopback test
    /// `answering_keepalive_pings_does_not_stop_the_idle_timeout` relies
    /// on this.
    #[test]
    fn idle_under_two_intervals_always_closes_as_idle_after_at_most_one_ping() {
        let answers = [
            Answer::Never,
            Answer::Pong(0),
            Answer::Pong(50),
            Answer::Pong(150),
            Answer::Pong(1_000),
        ];
        for late in (0..1_500).step_by(7) {
            for answer in answers {
                let mut sim = Sim::open(Some(300), Some(200), answer).late(late);
                sim.run_until(100_000);
                let what = format!("late {late}, {answer:?}: {:?}", sim.pings);
                assert!(
                    matches!(sim.closed, Some((Check::IdleTimeout, _))),
                    "{what}: {:?}",
                    sim.closed
                );
                assert!(sim.pings.len() <= 1, "{what}");
            }
        }
    }

    #[test]
    fn a_message_is_all_that_moves_the_idle_clock() {
        // Pinged and answering, then a message at 250 restarts the idle
        // clock: closed 300 after the message, not 300 after the open.
        let mut sim = Sim::open(Some(300), Some(200), Answer::Pong(10));
        sim.peer_sends(250, Bytes::Message);
        sim.run_until(10_000);
        assert_eq!(sim.closed, Some((Check::IdleTimeout, 560)));
    }

    #[test]
    fn clocks_that_wrapped_at_32_bits_still_compare() {
        let now: u64 = (1 << 32) + 100;
        let before = ((1u64 << 32) - 200) as u32;
        assert_eq!(
            decide(now, before, before, false, Some(1_000), Some(250)),
            Check::Ping { next: now + 250 }
        );
        assert_eq!(
            decide(now, before, before, true, Some(1_000), Some(250)),
            Check::PingTimeout
        );
        assert_eq!(
            decide(now, before, before, false, Some(300), Some(250)),
            Check::IdleTimeout
        );
        assert_eq!(
            decide(now, before, before, false, Some(1_000), Some(400)),
            Check::Wait {
                next: Some(now + 100)
            }
        );
    }

    #[test]
    fn without_timers_nothing_is_ever_due() {
        assert_eq!(
            decide(123_456, 0, 0, true, None, None),
            Check::Wait { next: None }
        );
    }
}
