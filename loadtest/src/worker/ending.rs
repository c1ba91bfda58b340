//! How connections end while the load runs: closes and aborts the
//! workload asks for, failures counted, and slots opened again.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::workload::{cx, Ended, Request, Workload};
use super::Worker;
use crate::client::{Failure, Phase};
use crate::window::Window;

impl<W: Workload> Worker<W> {
    /// Honours the workload's requests to end connections.
    pub(super) fn handle_requests(&mut self, win: &Window) {
        let mut requests = std::mem::take(&mut self.requests);
        while !requests.is_empty() {
            self.churned = true;
            for &r in &requests {
                let idx = match r {
                    Request::Close(idx) | Request::Abort { idx, .. } => idx,
                };
                let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                    continue;
                };
                if conn.phase() != Phase::Open {
                    continue;
                }
                match r {
                    Request::Close(_) => {
                        conn.close();
                        self.flush(idx, win);
                    }
                    Request::Abort { reset, .. } => {
                        // Best effort: the point is to drop it anyway.
                        let _ = conn.flush();
                        conn.abort(self.poll.registry(), reset);
                        self.live -= 1;
                        self.shared.open.fetch_sub(1, Ordering::Relaxed);
                        self.ended(idx, Ended::Aborted, win);
                    }
                }
            }
            // What the callbacks above asked for is handled next round.
            requests.clear();
            std::mem::swap(&mut self.requests, &mut requests);
        }
        self.requests = requests;
    }

    /// A connection failed: count it (while closing, only during the load,
    /// where the workload closed it) and end it.
    pub(super) fn fail(&mut self, idx: usize, (kind, detail): Failure, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let phase = conn.phase();
        let now = self.shared.ns(Instant::now());
        match phase {
            Phase::Done => {}
            Phase::Connecting | Phase::Handshake => {
                self.pending -= 1;
                self.stats.failed += 1;
                self.stats.on_error(win.row(now), kind, 1, || detail);
                conn.finish(self.poll.registry());
                if self.load {
                    self.ended(idx, Ended::Unopened, win);
                }
            }
            Phase::Open => {
                self.stats.on_error(win.row(now), kind, 1, || detail);
                let mut cx = cx(
                    win,
                    now,
                    &mut self.stats,
                    &mut self.dirty,
                    &mut self.requests,
                );
                self.work.on_lost(idx, &mut cx);
                self.end(idx, Ended::Lost, win);
            }
            Phase::Closing | Phase::Lingering => {
                if self.load {
                    self.stats.on_error(win.row(now), kind, 1, || detail);
                }
                self.end(idx, Ended::Lost, win);
            }
        }
    }

    /// An open connection ended.
    pub(super) fn end(&mut self, idx: usize, how: Ended, win: &Window) {
        if let Some(conn) = self.conns[idx].as_mut() {
            if conn.phase() != Phase::Done {
                conn.finish(self.poll.registry());
                self.live -= 1;
                self.shared.open.fetch_sub(1, Ordering::Relaxed);
                if self.load {
                    self.ended(idx, how, win);
                }
            }
        }
    }

    /// During the load: asks the workload whether slot `idx` opens again,
    /// and queues it if so; a slot that does, or whose connection was
    /// aborted, drops its socket now.
    pub(super) fn ended(&mut self, idx: usize, how: Ended, win: &Window) {
        let now = self.shared.ns(Instant::now());
        let mut cx = cx(
            win,
            now,
            &mut self.stats,
            &mut self.dirty,
            &mut self.requests,
        );
        let again = self.work.reopen(idx, how, &mut cx);
        if again || how == Ended::Aborted {
            self.conns[idx] = None;
        }
        if again {
            self.reopen.push_back(idx);
        }
    }
}
