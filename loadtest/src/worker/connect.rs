//! Opening connections: the first ones, then slots the workload opens
//! again, at most [`MAX_PENDING`] connecting at once; a handshake done.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::Token;

use super::workload::{cx, Ended, Workload};
use super::{Worker, MAX_PENDING};
use crate::client::Conn;
use crate::stats::ErrorKind;
use crate::window::Window;

impl<W: Workload> Worker<W> {
    pub(super) fn start_connects(&mut self) {
        while self.pending < MAX_PENDING && self.next_spec < self.specs.len() {
            let idx = self.next_spec;
            self.next_spec += 1;
            let seed = self.specs[idx].seed;
            if let Err(e) = self.connect(idx, seed) {
                self.stats.failed += 1;
                let (kind, detail) = crate::client::io_failure(&e);
                self.stats.on_error(None, kind, 1, || detail);
            }
        }
    }

    /// Connects the slots queued by [`Workload::reopen`], each with a
    /// fresh seed.
    pub(super) fn start_reopens(&mut self, win: &Window) {
        while self.pending < MAX_PENDING {
            let Some(idx) = self.reopen.pop_front() else {
                break;
            };
            self.reopened = self.reopened.wrapping_add(1);
            let seed = self.specs[idx].seed ^ self.reopened.wrapping_mul(0x85EB_CA6B);
            if let Err(e) = self.connect(idx, seed) {
                self.stats.failed += 1;
                let now = self.shared.ns(Instant::now());
                let (kind, detail) = crate::client::io_failure(&e);
                self.stats.on_error(win.row(now), kind, 1, || detail);
                self.ended(idx, Ended::Unopened, win);
            }
        }
    }

    /// Starts connecting slot `idx`.
    pub(super) fn connect(&mut self, idx: usize, seed: u32) -> io::Result<()> {
        let spec = self.specs[idx];
        let t = &self.targets[spec.target];
        let tls = t.tls.as_ref().zip(t.tls_name.as_deref());
        let mut c = if spec.api {
            Conn::connect_api(t.addr, spec.source, tls)?
        } else {
            Conn::connect(t.addr, spec.source, seed, tls)?
        };
        c.register(self.poll.registry(), Token(idx))?;
        self.conns[idx] = Some(c);
        self.pending += 1;
        Ok(())
    }

    pub(super) fn opened(&mut self, idx: usize, now: u64, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let at = Instant::now();
        let took = at.duration_since(conn.started).as_nanos() as u64;
        self.stats.connect.saturating_record(took.max(1));
        self.stats.opened += 1;
        self.stats.connect_span = Some(match self.stats.connect_span {
            Some((a, b)) => (a.min(conn.started), b.max(at)),
            None => (conn.started, at),
        });
        self.pending -= 1;
        self.live += 1;
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        if self.upgrade.deflate() && !conn.deflating() {
            self.stats
                .on_error(win.row(now), ErrorKind::DeflateDeclined, 1, || {
                    "the 101 agreed to no permessage-deflate: this connection is uncompressed"
                        .into()
                });
        }
        if self.load {
            let mut cx = cx(
                win,
                now,
                &mut self.stats,
                &mut self.dirty,
                &mut self.requests,
            );
            self.work.on_open(idx, conn.out(), &mut cx);
        }
        // Frames may have come with the 101.
        self.read(idx, now, win);
    }
}
