//! Token expiry: a connection admitted with a token is closed with 1008
//! `token expired` when the token's `exp` (plus the leeway) passes, from
//! one entry on the reactor's deadline wheel, armed at the upgrade: no
//! timer per message, nothing per connection beyond the entry.

use super::clock::millis;
use super::Server;
use crate::auth::{CLOSE_POLICY, REASON_EXPIRED};
use crate::id::ConnId;
use crate::net::conn::Phase;
use crate::proto::State;

impl Server {
    /// Arms the expiry of a just-opened connection whose token expires in
    /// `secs` seconds.
    pub(super) fn arm_expiry(&mut self, id: ConnId, secs: u64) {
        let at = self
            .clock
            .now_ms()
            .saturating_add(millis(std::time::Duration::from_secs(secs)));
        self.timers.expiry.arm(at, id);
    }

    /// Closes the connections whose tokens expired.
    #[inline]
    pub(super) fn expire_tokens(&mut self) {
        if !self.timers.expiry.is_empty() {
            self.close_expired();
        }
    }

    #[inline(never)]
    fn close_expired(&mut self) {
        let mut due = std::mem::take(&mut self.timers.due);
        self.timers.expiry.expire(self.clock.now_ms(), &mut due);
        for id in due.drain(..) {
            if self
                .conns
                .get(id.key)
                .is_some_and(|c| c.gen == id.gen && open(c.phase, c.session.state()))
            {
                self.close_with(id, CLOSE_POLICY, REASON_EXPIRED);
            }
        }
        self.timers.due = due;
        let conns = &self.conns;
        self.timers.expiry.compact(|id| {
            conns
                .get(id.key)
                .is_some_and(|c| c.gen == id.gen && open(c.phase, c.session.state()))
        });
    }
}

/// Whether a connection can still be closed for its token.
fn open(phase: Phase, state: State) -> bool {
    phase == Phase::Open && state == State::Open
}
