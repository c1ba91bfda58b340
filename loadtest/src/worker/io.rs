//! A connection's events: the connect finishing, the 101, frames read
//! and handed to the workload, output flushed.

use std::time::Instant;

use wsd::proto::MessageKind;

use super::workload::{cx, Ended, Workload};
use super::Worker;
use crate::client::{Phase, ReadEnd};
use crate::publish::answer::Answer;
use crate::stats::ErrorKind;
use crate::window::Window;

impl<W: Workload> Worker<W> {
    pub(super) fn on_event(
        &mut self,
        idx: usize,
        readable: bool,
        writable: bool,
        now: u64,
        win: &Window,
    ) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        match conn.phase() {
            Phase::Done => return,
            Phase::Connecting => {
                if !(readable || writable) {
                    return;
                }
                let t = &self.targets[self.specs[idx].target];
                if let Err(f) = conn.on_connected(&t.host, &t.path, &self.upgrade) {
                    return self.fail(idx, f, win);
                }
                if conn.phase() == Phase::Open {
                    // A publish API connection: no upgrade to wait for.
                    self.opened(idx, now, win);
                }
            }
            Phase::Handshake => {
                if readable {
                    match conn.read_handshake(&self.upgrade) {
                        Ok(true) => self.opened(idx, now, win),
                        Ok(false) => {}
                        Err(f) => return self.fail(idx, f, win),
                    }
                }
            }
            Phase::Open | Phase::Closing => {
                if readable {
                    self.read(idx, now, win);
                }
            }
            Phase::Lingering => {
                if readable {
                    self.read_eof(idx, win);
                }
            }
        }
        self.flush(idx, win);
    }

    pub(super) fn read(&mut self, idx: usize, now: u64, win: &Window) {
        if self.conns[idx].as_ref().is_some_and(|c| c.is_api()) {
            return self.read_api(idx, now, win);
        }
        let Worker {
            conns,
            work,
            stats,
            dirty,
            requests,
            limits,
            ..
        } = self;
        let Some(conn) = conns[idx].as_mut() else {
            return;
        };
        let mut cx = cx(win, now, stats, dirty, requests);
        let mut on_message = |kind: MessageKind, payload: &[u8], out: &mut Vec<u8>| {
            work.on_message(idx, kind, payload, out, &mut cx);
        };
        let closing = conn.phase() == Phase::Closing;
        let end = conn.read_frames(limits, &mut on_message);
        stats.on_wire(win.row(now), &conn.take_wire());
        match end {
            Ok(ReadEnd::Blocked) => {}
            Ok(ReadEnd::SessionClosed) if closing && conn.protocol_error().is_none() => {
                // The closing handshake is done: the server ends the stream next.
                let _ = conn.flush();
                conn.linger();
                self.read_eof(idx, win);
            }
            Ok(ReadEnd::SessionClosed) | Ok(ReadEnd::Eof) if closing && !self.load => {
                let _ = conn.flush();
                self.end(idx, Ended::Closed, win);
            }
            Ok(ReadEnd::SessionClosed) => {
                let f = match conn.protocol_error() {
                    Some(e) => (
                        ErrorKind::Protocol(e),
                        format!("server broke RFC 6455: {e}"),
                    ),
                    None => {
                        let code = conn.close_code().unwrap_or(1005);
                        (
                            ErrorKind::UnexpectedClose(code),
                            format!("server sent Close {code} during the run"),
                        )
                    }
                };
                // Our Close reply or protocol-error Close goes out first.
                let _ = conn.flush();
                self.fail(idx, f, win);
            }
            Ok(ReadEnd::Eof) => {
                let detail = if closing {
                    "server closed the TCP connection without answering our Close"
                } else {
                    "server closed the TCP connection without a Close"
                };
                self.fail(idx, (ErrorKind::UnexpectedEof, detail.into()), win);
            }
            Err(f) => self.fail(idx, f, win),
        }
    }

    /// A publish API connection: answers to the workload. A server that
    /// ends the connection fails the publisher, which does not reconnect
    /// (the detail says whether an answer just read announced it with
    /// `Connection: close`).
    fn read_api(&mut self, idx: usize, now: u64, win: &Window) {
        let Worker {
            conns,
            work,
            stats,
            dirty,
            requests,
            ..
        } = self;
        let Some(conn) = conns[idx].as_mut() else {
            return;
        };
        let mut cx = cx(win, now, stats, dirty, requests);
        let mut closing = false;
        let mut on_answer = |a: &Answer, raw: &[u8]| {
            closing |= a.close;
            work.on_answer(idx, a, raw, &mut cx);
        };
        let end = conn.read_answers(&mut on_answer);
        stats.on_wire(win.row(now), &conn.take_wire());
        match end {
            Ok(ReadEnd::Blocked) => {}
            Ok(_) => {
                let detail = if closing {
                    "the publish API closed the connection after Connection: close"
                } else {
                    "the publish API closed the keep-alive connection"
                };
                self.fail(idx, (ErrorKind::UnexpectedEof, detail.into()), win);
            }
            Err(f) => self.fail(idx, f, win),
        }
    }

    /// Lingering: a clean end once the server ends the stream.
    pub(super) fn read_eof(&mut self, idx: usize, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        match conn.read_eof() {
            Ok(true) => self.end(idx, Ended::Closed, win),
            Ok(false) => {}
            Err(f) => self.fail(idx, f, win),
        }
    }

    pub(super) fn flush(&mut self, idx: usize, win: &Window) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        if conn.phase() == Phase::Done || conn.pending() == 0 {
            return;
        }
        let res = conn.flush();
        let now = self.shared.ns(Instant::now());
        self.stats.on_wire(win.row(now), &conn.take_wire());
        if let Err(f) = res {
            self.fail(idx, f, win);
        }
    }

    pub(super) fn flush_dirty(&mut self, win: &Window) {
        let dirty = std::mem::take(&mut self.dirty);
        let row = win.row(self.shared.ns(Instant::now()));
        for &idx in &dirty {
            if let Some(conn) = self.conns[idx].as_mut() {
                if conn.phase() != Phase::Done && conn.pending() > 0 {
                    // A write error shows again as an error on the next read.
                    let _ = conn.flush();
                    self.stats.on_wire(row, &conn.take_wire());
                }
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }
}
