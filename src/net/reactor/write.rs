//! The write path: one `write`/`writev` of what is pending, write interest
//! only while output waits, and backpressure (pause reading above the high
//! watermark, resume below the low one).

use std::net::Shutdown;

use mio::{Interest, Token};

use super::{Server, OUT_FLUSH_AT};
use crate::net::conn::Phase;

impl Server {
    /// Writes the scratch output (this connection's, produced this turn)
    /// and the queue.
    #[inline(always)]
    pub(super) fn flush(&mut self, key: usize) {
        self.write_out(key, true);
    }

    /// Writes the queue, after the scratch output if `scratch` (only for the
    /// connection whose input produced it); then updates write interest,
    /// backpressure, and the closing sequence.
    ///
    /// The common case (all written, nothing to change) is inlined into
    /// the read path; the rest is `after_write`.
    #[inline(always)]
    pub(super) fn write_out(&mut self, key: usize, scratch: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            if scratch {
                self.io.out.clear();
            }
            return;
        };
        let res = if scratch {
            let res = conn.send(&self.io.out);
            self.io.out.clear();
            if self.io.out.capacity() > 4 * OUT_FLUSH_AT {
                self.io.out = Vec::new();
            }
            res
        } else {
            conn.send(&[])
        };
        match res {
            Ok(n) => self.report.stats.bytes_out += n as u64,
            Err(e) => return self.io_error(key, &e),
        }
        if conn.pending_out() == 0
            && !conn.paused
            && !conn.writable_interest
            && conn.phase != Phase::Closing
        {
            // All written and nothing to change: the common case.
            return;
        }
        self.after_write(key);
    }

    /// After a write that left output, or when something is to change
    /// ([`Server::write_out`]'s rest): the closing sequence, backpressure,
    /// write interest.
    #[inline(never)]
    fn after_write(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut pending = conn.pending_out();
        let id = conn.id(key);
        if pending == 0 && conn.phase == Phase::Closing {
            // TLS says close_notify first; the socket may make it wait.
            match conn.finish() {
                Ok(true) => {
                    // The server closes TCP first (§7.1.1): shut our side,
                    // then drain until the peer closes its side or the
                    // timeout.
                    if conn.stream.shutdown(Shutdown::Write).is_err() {
                        return self.drop_conn(key);
                    }
                    conn.phase = Phase::Draining;
                    self.ready.push(id);
                }
                Ok(false) => pending = conn.pending_out(),
                Err(_) => return self.drop_conn(key),
            }
        }
        if pending > self.cfg.output_high_water && !conn.paused {
            // Stop reading a client whose replies pile up: TCP pushes back.
            conn.paused = true;
        } else if conn.paused && pending <= self.cfg.output_low_water {
            conn.paused = false;
            self.ready.push(id);
        }
        let want_write = pending > 0;
        if want_write != conn.writable_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(key), interest)
            {
                return self.io_error(key, &e);
            }
            conn.writable_interest = want_write;
        }
    }
}
