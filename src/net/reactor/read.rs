//! The read path: read until WouldBlock or the budget, hand each read to the
//! upgrade or the session, keep what the protocol did not consume.

use std::io::{self, Read};

use log::info;

use super::api::Cx as ApiCx;
use super::compress::{self, Incoming};
use super::sink::Sink;
use super::upgrade::{handshake, Denied, Handshake, HttpContext};
use super::{suppressed, Io, Server, Wakeup, BATCH_LIMIT, OUT_FLUSH_AT, READ_BUDGET};
use crate::auth::{Limited, CLOSE_POLICY};
use crate::config::Mode;
use crate::net::conn::Phase;
use crate::net::guard::{Guard, Stop};
use crate::net::transport::{tls_failure, Wire};
use crate::proto::handshake as http_upgrade;
use crate::proto::{Session, State};

impl Server {
    /// Reads until WouldBlock (or the budget), processing each read, then
    /// writes what was produced.
    ///
    /// A read that returns less than it was offered drained the socket, and
    /// epoll raises a new edge for anything that arrives later, so the read
    /// that would only return WouldBlock is skipped: one syscall less per
    /// echoed message. Not when the event said the peer closed (the FIN is
    /// already in, and no further edge will come for it) and not for visits
    /// from the ready list, which have no event behind them.
    ///
    /// A paused connection is not read, so the EOF or reset behind its
    /// unread input would never be seen: an event that says the peer closed
    /// or failed ends it now, through the ordinary closing sequence (flush
    /// what it can take, bounded by `--close-timeout`). Its unread input is
    /// abandoned; a peer that stops sending has no use for replies it will
    /// not read in time anyway.
    pub(super) fn on_readable(&mut self, key: usize, wakeup: Wakeup) {
        let hup = wakeup == Wakeup::Event { hup: true };
        let until_blocked = hup || wakeup == Wakeup::Revisit;
        if hup {
            // Kept: the edge comes once, and the connection may be paused
            // later in this very visit.
            if let Some(conn) = self.conns.get_mut(key) {
                conn.hup = true;
            }
        }
        let mut reads = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.phase {
                Phase::Handshake | Phase::Open | Phase::Api => {}
                Phase::Closing => break,
                Phase::Draining => return self.drain(key),
            }
            if conn.paused {
                if conn.hup {
                    return self.peer_closed(key);
                }
                break;
            }
            if reads == READ_BUDGET {
                self.ready.push(conn.id(key));
                break;
            }
            reads += 1;
            // Most reads go into the shared buffer: the protocol's wants
            // matter only while bytes are kept.
            let (carried, into_own, want) = if conn.rbuf.is_empty() {
                (0, false, 0)
            } else {
                let want = conn.session.wants();
                let carried = conn.rbuf.carry(&mut self.io.read, want);
                (carried, carried == 0, want)
            };
            let spare = if into_own {
                conn.rbuf.spare(want, &mut self.io.pool)
            } else {
                self.io.read.get_mut(carried..).unwrap_or_default()
            };
            let offered = spare.len();
            let res = Wire::new(&mut conn.stream, &mut conn.tls).read(spare);
            match res {
                Ok(0) => return self.peer_closed(key),
                Ok(n) => {
                    self.report.stats.bytes_in += n as u64;
                    self.process(key, carried + n, into_own);
                    if n < offered && !until_blocked {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Output produced for this connection must not reach the next one.
                    self.io.out.clear();
                    if tls_failure(&e).is_some() {
                        return self.tls_failed(key, &e);
                    }
                    return self.io_error(key, &e);
                }
            }
            if self.io.out.len() >= OUT_FLUSH_AT {
                self.flush(key);
            }
        }
        self.flush(key);
    }

    /// Hands `n` bytes to the session of an open connection (see
    /// `frames`), or to the upgrade or the publish API: the kept ones and
    /// those just read, in the connection's buffer if `into_own`, else at
    /// the front of the shared one.
    pub(super) fn process(&mut self, key: usize, n: usize, into_own: bool) {
        match self.conns.get(key).map(|c| c.phase) {
            Some(Phase::Open) => self.process_frames(key, n, into_own),
            Some(_) => self.process_request(key, n, into_own),
            None => {}
        }
    }

    /// [`Server::process`] before the upgrade, and for the publish API.
    #[inline(never)]
    fn process_request(&mut self, key: usize, n: usize, into_own: bool) {
        let held = self.conns.len();
        let now_ms = if self.timers.keepalive_on {
            self.clock.now_ms32()
        } else {
            0
        };
        let Server {
            conns,
            io,
            cfg,
            hub,
            report,
            clock,
            timers,
            turn,
            zlib,
            peers,
            link,
            api,
            ..
        } = self;
        let Io { read, out, pool } = io;
        let (stats, throttle) = (&mut report.stats, &mut report.throttle);
        let Some(conn) = conns.get_mut(key) else {
            return;
        };
        // The connection's own compressor and inflater (context takeover),
        // lent for this call.
        let (mut own_in, mut own_out) = compress::lend(&mut conn.zcontext);
        let mut rbuf = std::mem::take(&mut conn.rbuf);
        let data: &mut [u8] = if into_own {
            rbuf.advance(n);
            rbuf.filled_mut()
        } else {
            read.get_mut(..n).unwrap_or_default()
        };
        if timers.keepalive_on {
            conn.seen_at = now_ms;
            conn.awaiting_pong = false;
        }
        let mut sink = Sink {
            out,
            hub,
            stats,
            sender: conn.id(key),
            room: conn.seat.map(|s| s.room),
            mode: cfg.mode,
            got_message: false,
            to_bus: cfg.bus_on(),
            deflate: conn.deflate,
            tx: &mut zlib.tx,
            own: &mut own_out,
            direct: None,
            // Lent like the compressor: a pointer moved, no lock.
            guard: conn.guard.take(),
        };
        if let Some(guard) = sink.guard.as_deref_mut() {
            guard.now_ms = clock.now_ms();
        }
        let mut incoming = Incoming {
            neg: &mut zlib.neg,
            rx: &mut zlib.rx,
            inflater: &mut own_in,
        };
        let (keep, outcome) = match conn.phase {
            Phase::Handshake => {
                let ctx = HttpContext {
                    held,
                    started: clock.started,
                    now: clock.now,
                    draining: timers.drain_until.is_some(),
                    now_ms: clock.now_ms(),
                    cluster: &peers.cluster,
                    me: peers.me,
                    bus: link.stats(),
                };
                match handshake(conn, key, data, cfg, &ctx, &mut sink, &mut incoming) {
                    Ok(Handshake::Keep(keep)) => (keep, Outcome::Waiting),
                    Ok(Handshake::Upgraded(up)) => (
                        up.keep,
                        Outcome::Upgraded {
                            new_room: up.new_room,
                            expires_in: up.expires_in,
                        },
                    ),
                    Ok(Handshake::Answered) => (0, Outcome::Answered),
                    Ok(Handshake::Denied(denied)) => {
                        // The reason's label only: never the token, nor
                        // the request target that may carry it.
                        if let Some(held_back) = throttle.pass(clock.now) {
                            info!(
                                "conn {key}: upgrade refused: {} {}{}",
                                denied.status(),
                                denied.label(),
                                suppressed(held_back)
                            );
                        }
                        let stats = &mut *sink.stats;
                        *stats.handshake_failures.entry(denied.status()).or_default() += 1;
                        match denied {
                            Denied::Auth(refusal) => stats.count_auth_denied(refusal),
                            Denied::PerIp => stats.count_rate_limited(Limited::ConnectionsPerIp),
                        }
                        denied.write(sink.out);
                        (0, Outcome::Answered)
                    }
                    Ok(Handshake::Api) => {
                        conn.phase = Phase::Api;
                        (0, Outcome::Api)
                    }
                    Err(e) => {
                        if let Some(held_back) = throttle.pass(clock.now) {
                            info!(
                                "conn {key}: handshake refused: {} {}{}",
                                e.status(),
                                e.reason().1,
                                suppressed(held_back)
                            );
                        }
                        *sink.stats.handshake_failures.entry(e.status()).or_default() += 1;
                        http_upgrade::write_refusal(sink.out, e, &cfg.protocols);
                        (0, Outcome::Answered)
                    }
                }
            }
            Phase::Api => (0, Outcome::Api),
            // Open input goes to `process_frames`.
            Phase::Open | Phase::Closing | Phase::Draining => (0, Outcome::Waiting),
        };
        // The guard goes back; without one this is the only branch.
        let mut stop = None;
        if let Some(guard) = sink.guard.take() {
            stop = stopped(guard, &mut conn.guard, &mut conn.session, &mut sink);
        }
        if sink.got_message {
            conn.message_at = now_ms;
            if cfg.mode == Mode::Broadcast {
                conn.sent_turn = *turn;
            }
        }
        let (keep, outcome) = if outcome == Outcome::Api {
            let mut cx = ApiCx {
                cfg,
                out,
                hub,
                peers,
                link,
                stats,
                now: clock.now,
                draining: timers.drain_until.is_some(),
            };
            let served = api.serve(conn.id(key), data, &mut cx);
            let outcome = if served.close {
                Outcome::Answered
            } else {
                Outcome::Waiting
            };
            (served.keep, outcome)
        } else {
            (keep, outcome)
        };
        rbuf.settle(into_own, read, keep, conn.session.wants(), pool);
        conn.rbuf = rbuf;
        compress::give_back(&mut conn.zcontext, (own_in, own_out));
        let failed = conn.phase == Phase::Open && conn.session.state() == State::Closed;
        if failed {
            if let Some(e) = conn.session.error() {
                notice!(
                    self,
                    "conn {key}: protocol error: {e} (close {})",
                    e.close_code()
                );
                self.report.stats.protocol_errors += 1;
            }
        }
        let id = conn.id(key);
        let room = conn.seat.map(|s| s.room);
        if let Some(stop) = stop {
            notice!(self, "conn {key}: closing 1008 ({})", stop.reason());
            self.timers.close.arm(self.clock.now, id);
        }
        match outcome {
            Outcome::Answered => self.enter_closing(id),
            Outcome::Upgraded {
                new_room,
                expires_in,
            } => {
                if new_room {
                    self.room_opened(room);
                }
                // Frames that came with the request may already have
                // closed the session (a protocol error, or the client's
                // Close).
                if failed {
                    self.enter_closing(id);
                } else {
                    self.arm_keepalive(id);
                    if let Some(secs) = expires_in {
                        self.arm_expiry(id, secs);
                    }
                }
            }
            Outcome::Waiting if failed => self.enter_closing(id),
            Outcome::Waiting | Outcome::Api => {}
        }
        self.api_fan_out();
        if let Some(room) = room {
            if self.hub.batched(room) >= BATCH_LIMIT {
                self.fan_out_room(room);
            }
        }
    }

    /// A connection just made `room` new on this reactor.
    fn room_opened(&mut self, room: Option<u32>) {
        if let Some(id) = room {
            let bus_on = self.cfg.bus_on();
            self.link
                .room_opened(&mut self.hub, id, &self.peers, bus_on);
        }
    }
}

/// Gives a lent guard back to its connection; if it refused a message,
/// queues Close 1008 after the replies to the messages before it, in the
/// same output, and says why.
#[cold]
#[inline(never)]
pub(super) fn stopped(
    mut guard: Box<Guard>,
    slot: &mut Option<Box<Guard>>,
    session: &mut Session,
    sink: &mut Sink<'_>,
) -> Option<Stop> {
    let stop = guard.take_stop();
    *slot = Some(guard);
    if let Some(stop) = stop {
        if let Stop::Limited(limit) = stop {
            sink.stats.count_rate_limited(limit);
        }
        session.close(CLOSE_POLICY, stop.reason(), sink);
    }
    stop
}

/// What `process` has to do after the protocol ran.
#[derive(PartialEq, Eq)]
enum Outcome {
    /// The input is the publish API's.
    Api,
    Waiting,
    /// Upgraded (`new_room`: the first member of its room on this
    /// reactor), with a token that expires in so many seconds.
    Upgraded {
        new_room: bool,
        expires_in: Option<u64>,
    },
    Answered,
}
