//! What a mode implements ([`Workload`]) and what its callbacks get
//! ([`Cx`]): the loop's side of the contract, below the loop itself.

use std::net::IpAddr;

use wsd::proto::MessageKind;

use crate::client::Conn;
use crate::publish::answer::Answer;
use crate::stats::{ErrorKind, Stats};
use crate::window::Window;

/// What a mode's callbacks get: the time, the schedule, the counters, a
/// list to put connections on whose output needs flushing, and a list of
/// requests to end connections.
pub struct Cx<'a> {
    /// Now, in ns since the epoch.
    pub now: u64,
    /// The schedule.
    pub win: &'a Window,
    /// This thread's counters.
    pub stats: &'a mut Stats,
    /// Connections written to outside their own events.
    pub dirty: &'a mut Vec<usize>,
    /// Connections the workload wants ended; honoured once the callback
    /// returns, after the connection's output is flushed.
    pub requests: &'a mut Vec<Request>,
}

/// A workload's request to end an open connection during the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Close 1000, then wait (bounded) for the server's Close and its end
    /// of the stream.
    Close(usize),
    /// Drop the TCP connection without a Close, with a FIN or, with
    /// `reset`, an RST. Whatever is queued (say half a frame) is written
    /// first, as far as the socket takes it.
    Abort {
        /// The connection.
        idx: usize,
        /// Reset instead of FIN.
        reset: bool,
    },
}

/// How a connection ended during the load, for [`Workload::reopen`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Our Close was answered by the server's Close and its end of stream.
    Closed,
    /// Dropped abruptly at the workload's request.
    Aborted,
    /// Failed after opening; the error is counted and
    /// [`Workload::on_lost`] was called.
    Lost,
    /// Never opened: the connect or the handshake failed (counted).
    Unopened,
}

impl Cx<'_> {
    /// Counts a sent message.
    pub fn sent(&mut self) {
        let (sec, m) = (
            self.win.row(self.now),
            self.win.sending(self.now) && self.now >= self.win.measure_start,
        );
        self.stats.on_sent(sec, m);
    }

    /// Counts a received message with its latency.
    pub fn received(&mut self, bytes: usize, lat: Option<u64>) {
        let (sec, m) = (self.win.row(self.now), self.win.measuring(self.now));
        self.stats.on_received(sec, m, bytes, lat);
    }

    /// Counts an error.
    pub fn error(&mut self, kind: ErrorKind, n: u64, detail: impl FnOnce() -> String) {
        let sec = self.win.row(self.now);
        self.stats.on_error(sec, kind, n, detail);
    }
}

/// A mode: what to send and how to check what comes back. Indices are the
/// thread's connection indices, `0..n`.
pub trait Workload {
    /// The load starts: every connection that will open is open.
    fn on_start(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx);
    /// A complete message arrived on connection `idx`; `out` is its output.
    fn on_message(
        &mut self,
        idx: usize,
        kind: MessageKind,
        payload: &[u8],
        out: &mut Vec<u8>,
        cx: &mut Cx,
    );
    /// Timed sends; returns when it next wants to be called (ns since epoch).
    fn on_tick(&mut self, conns: &mut [Option<Conn>], cx: &mut Cx) -> Option<u64>;
    /// Connection `idx` ended before the run did.
    fn on_lost(&mut self, idx: usize, cx: &mut Cx);
    /// Whether nothing is outstanding any more, after the window.
    fn drained(&self) -> bool;
    /// The drain is over: count what is still outstanding.
    fn finish(&mut self, cx: &mut Cx);
    /// A publish API connection `idx` read a whole answer, `raw` its bytes.
    fn on_answer(&mut self, _idx: usize, _answer: &Answer, _raw: &[u8], _cx: &mut Cx) {}
    /// Connection `idx` completed its handshake after the load started
    /// (only slots that [`Workload::reopen`] asked for); `out` is its output.
    fn on_open(&mut self, _idx: usize, _out: &mut Vec<u8>, _cx: &mut Cx) {}
    /// Connection `idx` ended while the load ran (not in the final close):
    /// returns whether to open a new connection in its place. By default
    /// a slot stays empty.
    fn reopen(&mut self, _idx: usize, _how: Ended, _cx: &mut Cx) -> bool {
        false
    }
}

/// One connection to open.
#[derive(Clone, Copy, Debug)]
pub struct ConnSpec {
    /// Which of the run's targets.
    pub target: usize,
    /// The source address to bind, if any.
    pub source: Option<IpAddr>,
    /// Seed for masking keys and the handshake nonce.
    pub seed: u32,
    /// An HTTP publish API connection (`broadcast --publish-url`).
    pub api: bool,
}

/// The context of one callback.
pub(super) fn cx<'a>(
    win: &'a Window,
    now: u64,
    stats: &'a mut Stats,
    dirty: &'a mut Vec<usize>,
    requests: &'a mut Vec<Request>,
) -> Cx<'a> {
    Cx {
        now,
        win,
        stats,
        dirty,
        requests,
    }
}
