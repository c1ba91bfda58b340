//! Keepalive: pings for quiet connections, the ping timeout, and the idle
//! timeout, on one coarse deadline wheel.

use super::{millis, Server};
use crate::net::conn::{Connection, Phase, QueueSink};
use crate::net::timer::ConnId;
use crate::proto::{close, State};

impl Server {
    /// Runs the keepalive checks that are due.
    pub(super) fn expire_keepalive(&mut self) {
        if !self.keepalive_on {
            return;
        }
        let mut due = std::mem::take(&mut self.due);
        self.keepalive.expire(self.now_ms(), &mut due);
        for id in due.drain(..) {
            self.check_keepalive(id);
        }
        self.due = due;
        let conns = &self.conns;
        self.keepalive.compact(|id| {
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
        let now_ms = self.now_ms();
        if let Some(conn) = self.conns.get_mut(id.key) {
            conn.seen_at = now_ms as u32;
            conn.message_at = now_ms as u32;
            self.keepalive.arm(now_ms + millis(first), id);
        }
    }

    /// A keepalive deadline: close an idle connection, ping a quiet one,
    /// close one that let a ping go unanswered, and re-arm.
    fn check_keepalive(&mut self, id: ConnId) {
        if !self.live(id) {
            return;
        }
        let now_ms = self.now_ms();
        let now = now_ms as u32;
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        if !checked(conn) {
            return;
        }
        let quiet = u64::from(now.wrapping_sub(conn.seen_at));
        let idle = u64::from(now.wrapping_sub(conn.message_at));
        let mut next = u64::MAX;
        if let Some(limit) = self.cfg.idle_timeout.map(millis) {
            if idle >= limit {
                self.stats.idle_timeouts += 1;
                return self.close_with(id, close::GOING_AWAY, "idle timeout");
            }
            next = next.min(now_ms + (limit - idle));
        }
        if let Some(interval) = self.cfg.ping_interval.map(millis) {
            if quiet < interval {
                next = next.min(now_ms + (interval - quiet));
            } else if conn.awaiting_pong {
                self.stats.ping_timeouts += 1;
                return self.close_with(id, close::GOING_AWAY, "ping timeout");
            } else {
                let q = conn.out.get_or_insert_with(Default::default);
                conn.session.ping(b"", &mut QueueSink(q));
                conn.awaiting_pong = true;
                self.stats.pings_sent += 1;
                next = next.min(now_ms + interval);
                self.write_out(id.key, false);
            }
        }
        if next != u64::MAX && self.live(id) {
            self.keepalive.arm(next, id);
        }
    }
}

/// Whether keepalive still watches `conn`: only open sessions are pinged
/// or timed out idle.
fn checked(conn: &Connection) -> bool {
    conn.phase == Phase::Open && conn.session.state() == State::Open
}
