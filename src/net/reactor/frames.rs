//! An open connection's input: frames through its session, messages out
//! through the [`Sink`]. The hot path of every echo and publish, kept apart
//! from the request path (upgrade, publish API) so that it borrows the
//! connection's parts where they lie and does nothing a frame does not need.

use super::read::stopped;
use super::sink::{Direct, Sink};
use super::{compress, Io, Server, BATCH_LIMIT};
use crate::config::Mode;
use crate::net::conn::Connection;
use crate::proto::State;

impl Server {
    /// Hands `n` bytes to an open connection's session: the kept ones and
    /// those just read, in the connection's buffer if `into_own`, else at
    /// the front of the shared one.
    pub(super) fn process_frames(&mut self, key: usize, n: usize, into_own: bool) {
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
            ..
        } = self;
        let Some(conn) = conns.get_mut(key) else {
            return;
        };
        let id = conn.id(key);
        let Io { read, out, pool } = io;
        let Connection {
            stream,
            tls,
            session,
            rbuf,
            out: queue,
            seat,
            seen_at,
            message_at,
            awaiting_pong,
            sent_turn,
            deflate,
            zcontext,
            guard,
            ..
        } = conn;
        let data: &mut [u8] = if into_own {
            rbuf.advance(n);
            rbuf.filled_mut()
        } else {
            read.get_mut(..n).unwrap_or_default()
        };
        let now_ms = if timers.keepalive_on {
            let now = clock.now_ms32();
            *seen_at = now;
            *awaiting_pong = false;
            now
        } else {
            0
        };
        // The connection's own compressor and inflater (context takeover).
        let mut no_own = None;
        let (inflater, own) = match zcontext.as_deref_mut() {
            Some(c) => c.parts(),
            None => (None, &mut no_own),
        };
        // Lent like the compressor: a pointer moved, no lock.
        let mut lent = guard.take();
        if let Some(g) = lent.as_deref_mut() {
            g.now_ms = clock.now_ms();
        }
        let room = seat.map(|s| s.room);
        let mut sink = Sink {
            out,
            hub,
            stats: &mut report.stats,
            sender: id,
            room,
            mode: cfg.mode,
            got_message: false,
            to_bus: cfg.bus_on(),
            deflate: *deflate,
            tx: &mut zlib.tx,
            own,
            direct: Some(Direct {
                stream,
                queue,
                plain: tls.is_none(),
            }),
            guard: lent,
        };
        let (keep, inflated) = match *deflate {
            // Without permessage-deflate, straight to the session.
            None => (session.feed(data, &cfg.limits, &mut sink), 0),
            terms => compress::feed(
                session,
                terms,
                inflater,
                data,
                &cfg.limits,
                &mut zlib.rx,
                &mut sink,
            ),
        };
        sink.stats.deflate.messages_inflated += inflated;
        // The guard goes back; without one this is the only branch.
        let mut stop = None;
        if let Some(g) = sink.guard.take() {
            stop = stopped(g, guard, session, &mut sink);
        }
        if sink.got_message {
            *message_at = now_ms;
            if cfg.mode == Mode::Broadcast {
                *sent_turn = *turn;
            }
        }
        // Most reads leave nothing to keep, in a connection keeping nothing.
        if into_own || keep != 0 || !rbuf.is_empty() {
            rbuf.settle(into_own, read, keep, session.wants(), pool);
        }
        let failed = session.state() == State::Closed;
        let error = session.error();
        if let Some(e) = error.filter(|_| failed) {
            notice!(
                self,
                "conn {key}: protocol error: {e} (close {})",
                e.close_code()
            );
            self.report.stats.protocol_errors += 1;
        }
        if let Some(stop) = stop {
            notice!(self, "conn {key}: closing 1008 ({})", stop.reason());
            self.timers.close.arm(self.clock.now, id);
        }
        if failed {
            self.enter_closing(id);
        }
        if let Some(room) = room {
            if self.hub.batched(room) >= BATCH_LIMIT {
                self.fan_out_room(room);
            }
        }
    }
}
