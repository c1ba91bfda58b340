//! Ending connections: the closing sequence (flush, shut down our side,
//! drain until the peer closes, bounded by `--close-timeout`), the graceful
//! drain of the whole server, and removal from the slab.

use std::io::{self, Read};

use log::{debug, info, warn};

use super::{Server, READ_BUDGET};
use crate::id::ConnId;
use crate::net::conn::{Phase, QueueSink};
use crate::net::transport::tls_failure;
use crate::proto::{close, State};
use crate::stats::HandshakeFailure;

impl Server {
    /// Drops connections whose closing sequence ran past `--close-timeout`.
    pub(super) fn expire_closes(&mut self) {
        while let Some(id) = self.timers.close.expired(self.clock.now) {
            if self.live(id) {
                notice!(self, "conn {}: close timeout, dropped", id.key);
                self.report.stats.close_timeouts += 1;
                self.drop_conn(id.key);
            }
        }
        let conns = &self.conns;
        self.timers
            .close
            .compact(|id| conns.get(id.key).is_some_and(|c| c.gen == id.gen));
    }

    /// Says Close 1001 to every open client and starts the drain deadline.
    /// From now on upgrades are refused (503) while plain HTTP is still
    /// answered, so health checks see `/healthz` turn 503 instead of a
    /// refused port.
    pub(super) fn begin_drain(&mut self) {
        if self.peers.cluster.begin_drain() {
            // The first reactor to begin speaks for the process.
            info!(
                "draining {} connections (at most {:?})",
                self.peers.cluster.active(),
                self.cfg.drain_timeout
            );
        }
        self.timers.drain_until = Some(self.clock.now + self.cfg.drain_timeout);
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            match conn.phase {
                Phase::Open => {
                    let q = conn.out.get_or_insert_with(Default::default);
                    conn.session.close(
                        close::GOING_AWAY,
                        "server shutting down",
                        &mut QueueSink(q),
                    );
                    self.write_out(key, false);
                }
                Phase::Api => self.drain_api(key),
                Phase::Handshake | Phase::Closing | Phase::Draining => {}
            }
        }
    }

    /// This reactor's drain is over: every connection closed, or the
    /// drain timeout passed and the rest are dropped. The last reactor
    /// to end says how it went, once for the process.
    pub(super) fn end_drain(&mut self) {
        self.publish_stats(true);
        match self.peers.cluster.end_drain(self.conns.len()) {
            Some(0) => info!("drained: every connection closed"),
            Some(left) => warn!(
                "drain timed out after {:?}: {left} connections left, dropped",
                self.cfg.drain_timeout
            ),
            None => {}
        }
    }

    /// Starts the closing handshake from our side; the close timeout bounds
    /// the wait for the answer.
    pub(super) fn close_with(&mut self, id: ConnId, code: u16, reason: &str) {
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        notice!(self, "conn {}: closing {code} ({reason})", id.key);
        let q = conn.out.get_or_insert_with(Default::default);
        conn.session.close(code, reason, &mut QueueSink(q));
        self.timers.close.arm(self.clock.now, id);
        self.write_out(id.key, false);
    }

    /// A closing connection's output is queued: arm its deadline.
    pub(super) fn enter_closing(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id.key) {
            if matches!(conn.phase, Phase::Handshake | Phase::Open | Phase::Api) {
                conn.phase = Phase::Closing;
                self.peers.cluster.deactivate();
                self.timers.close.arm(self.clock.now, id);
            }
        }
    }

    /// Reads and discards until the peer closes.
    pub(super) fn drain(&mut self, key: usize) {
        for _ in 0..READ_BUDGET {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.stream.read(&mut self.io.read) {
                Ok(0) => return self.drop_conn(key),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(key),
            }
        }
        if let Some(conn) = self.conns.get(key) {
            self.ready.push(conn.id(key));
        }
    }

    /// The peer closed its side (read returned 0). It may still read: send
    /// what this turn produced for it and close like any other closing
    /// connection (flush, shut down, drain, bounded by the close timeout).
    pub(super) fn peer_closed(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.phase == Phase::Open && conn.session.state() != State::Closed {
            self.report.stats.abnormal_closes += 1;
        }
        if conn.tls.as_ref().is_some_and(|t| t.handshaking()) {
            self.report.stats.count_tls_failure(HandshakeFailure::Eof);
        }
        let id = conn.id(key);
        self.enter_closing(id);
        self.flush(key);
    }

    /// TLS failed: count why, and close like any closing connection, so
    /// that the alert rustls queued (or the plain-HTTP answer) is not lost
    /// to a reset.
    pub(super) fn tls_failed(&mut self, key: usize, e: &io::Error) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        notice!(self, "conn {key}: {e}");
        match tls_failure(e).and_then(|f| f.handshake) {
            Some(reason) => self.report.stats.count_tls_failure(reason),
            None => {
                self.report.stats.io_errors += 1;
                if conn.phase == Phase::Open && conn.session.state() != State::Closed {
                    self.report.stats.abnormal_closes += 1;
                }
            }
        }
        let id = conn.id(key);
        self.enter_closing(id);
        self.flush(key);
    }

    pub(super) fn io_error(&mut self, key: usize, e: &io::Error) {
        debug!("conn {key}: {e}");
        self.report.stats.io_errors += 1;
        if let Some(conn) = self.conns.get(key) {
            if conn.phase == Phase::Open && conn.session.state() != State::Closed {
                self.report.stats.abnormal_closes += 1;
            }
        }
        self.drop_conn(key);
    }

    /// Removes a connection for good.
    pub(super) fn drop_conn(&mut self, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        if matches!(conn.phase, Phase::Handshake | Phase::Open | Phase::Api) {
            self.peers.cluster.deactivate();
        }
        self.api.forget(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Some(code) = conn.session.close_code() {
            *self.report.stats.closes.entry(code).or_default() += 1;
        }
        if let Some(seat) = conn.seat {
            let left = self.hub.leave(seat);
            if let Some(m) = left.moved.and_then(|moved| self.conns.get_mut(moved)) {
                m.seat = Some(seat);
            }
            if left.emptied.is_some() {
                // Its id may name another room next: nothing of this one
                // may reach that one's joiners.
                self.recall.forget_room(seat.room);
            }
            self.recall.caught_up(key);
            let bus_on = self.cfg.bus_on();
            self.link.room_closed(left, &self.peers, bus_on);
        }
        conn.rbuf.release(&mut self.io.pool);
        // Every way out of the slab passes here, once: the client's count
        // for --max-connections-per-ip is given back.
        if let Some(ip) = conn.guard.as_ref().and_then(|g| g.client) {
            self.peers.cluster.release_ip(ip);
        }
        // A file descriptor just came free: end an accept pause early.
        if self.doors.paused_until.is_some() {
            self.doors.paused_until = Some(self.clock.now);
        }
    }
}
