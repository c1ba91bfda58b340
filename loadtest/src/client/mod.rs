//! One client connection: non-blocking connect, the opening handshake, then
//! frames through a [`Session`], with a read buffer and an output buffer.
//!
//! ```text
//!  Connecting ──writable──▶ Handshake ──101 + accept──▶ Open ──close()──▶ Closing ──server's Close──▶ Lingering
//!      │                        │                        │                   │                              │
//!      └── error / timeout ─────┴──── error, EOF, peer Close, abort() ───────┴──────────── EOF ─────────────┴──▶ Done
//! ```
//!
//! The connection never decides what to send: messages are handed to the
//! caller's closure, which appends frames to the output buffer, and the
//! caller flushes once per wakeup.
//!
//! Under `--deflate`, frames queued since the last flush are compressed
//! just before it (`crate::deflate::seal`), and compressed messages are
//! inflated as the session assembles them.
//!
//! A `wss://` connection runs rustls between the socket and the buffers:
//! the TLS handshake starts with the TCP connection (the upgrade request
//! waits inside rustls until it is done, so the handshake time includes
//! TLS), reads take plaintext out of rustls, and flushes encrypt the output
//! buffer into it.
//!
//! A publisher of `broadcast --publish-url` is a connection of the same
//! kind that speaks HTTP instead ([`http`]): Open once TCP (and TLS) is
//! up, requests out of the same output buffer, answers read into the same
//! read buffer.
//!
//! The connection's state and its reads, writes and endings are here; each
//! other job has a file: `connect` the non-blocking connect and the first
//! writable edge, `handshake` the 101 read and checked, [`http`] the
//! publish API's requests and answers.

mod connect;
mod handshake;
mod http;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Registry;
use rustls::ClientConnection;
use wsd::proto::{Events, Inflate, Limits, MessageKind, Session, State};

use crate::deflate::{seal, Deflate};
use crate::stats::{ErrorKind, Wire};
use crate::tls::{read_tls, write_tls};

/// A failure with its kind and a human-readable detail.
pub type Failure = (ErrorKind, String);

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent, waiting for the 101.
    Handshake,
    /// Messages flow.
    Open,
    /// We sent Close and wait for the server's.
    Closing,
    /// Both Closes exchanged: we wait for the server to end the TCP
    /// connection, as RFC 6455 section 7.1.1 has the server close first.
    Lingering,
    /// Finished, cleanly or not; the socket is closed.
    Done,
}

/// How a read of frames ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Drained to WouldBlock; the connection goes on.
    Blocked,
    /// The session closed: the server's Close (answered) or a protocol error.
    SessionClosed,
    /// TCP end of stream.
    Eof,
}

/// A client connection.
pub struct Conn {
    stream: TcpStream,
    /// TLS over the stream (`wss://`); boxed, so a `ws://` connection pays
    /// a pointer for it.
    tls: Option<Box<ClientConnection>>,
    phase: Phase,
    key: [u8; 24],
    session: Session,
    rbuf: Vec<u8>,
    rlen: usize,
    out: Vec<u8>,
    wpos: usize,
    /// permessage-deflate, if agreed; boxed, so a plain connection pays a
    /// pointer for it.
    deflate: Option<Box<Deflate>>,
    /// Where the frames not yet sealed start in `out` (see [`seal`]).
    sealed_to: usize,
    /// Bytes written and read since [`Conn::take_wire`].
    wire: Wire,
    /// When the connect began.
    pub started: Instant,
    /// When [`Conn::close`] sent our Close, if it did.
    pub closed_at: Option<Instant>,
    /// An HTTP publish API connection, not a WebSocket (see [`http`]).
    api: bool,
}

/// Hands a session's events to the caller's closure and queues its frames.
struct Sink<'a, F> {
    out: &'a mut Vec<u8>,
    on_message: &'a mut F,
    /// Message bytes received.
    msg_in: &'a mut u64,
}

impl<F: FnMut(MessageKind, &[u8], &mut Vec<u8>)> Events for Sink<'_, F> {
    fn message(&mut self, kind: MessageKind, payload: &[u8]) {
        *self.msg_in += payload.len() as u64;
        (self.on_message)(kind, payload, self.out);
    }

    fn send(&mut self, frame: &[u8]) {
        self.out.extend_from_slice(frame);
    }
}

/// Classifies a socket error (a TLS failure comes as one too).
pub fn io_failure(e: &io::Error) -> Failure {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return (ErrorKind::Tls, tls.to_string());
    }
    let kind = match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Io,
    };
    (kind, e.to_string())
}

impl Conn {
    /// Where the connection stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The output buffer, to append frames to; flushed by [`Conn::flush`].
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Output bytes not yet written (over TLS, plus 1 while records wait
    /// inside rustls).
    pub fn pending(&self) -> usize {
        let tls = self
            .tls
            .as_ref()
            .map_or(0, |t| usize::from(t.wants_write()));
        self.out.len() - self.wpos + tls
    }

    /// Whether permessage-deflate was agreed.
    pub fn deflating(&self) -> bool {
        self.deflate.is_some()
    }

    /// The bytes written and read since the last call.
    pub fn take_wire(&mut self) -> Wire {
        std::mem::take(&mut self.wire)
    }

    /// The session's close code, once the closing handshake began.
    pub fn close_code(&self) -> Option<u16> {
        self.session.close_code()
    }

    /// The protocol error that ended the session, if one did.
    pub fn protocol_error(&self) -> Option<&'static str> {
        self.session.error().map(|e| e.as_str())
    }
    /// Feeds buffered and newly read bytes to the session until the socket
    /// would block, the session closes, or the stream ends. Complete
    /// messages go to `on_message` with the output buffer.
    pub fn read_frames<F>(
        &mut self,
        limits: &Limits,
        on_message: &mut F,
    ) -> Result<ReadEnd, Failure>
    where
        F: FnMut(MessageKind, &[u8], &mut Vec<u8>),
    {
        let max = limits.max_message + 4096;
        // A stream read that returns less than it could means the socket
        // was drained: data arriving later raises a new readiness edge, so
        // the read that would only say WouldBlock is skipped.
        let mut short_read = false;
        loop {
            if self.rlen > 0 {
                let mut sink = Sink {
                    out: &mut self.out,
                    on_message,
                    msg_in: &mut self.wire.msg_in,
                };
                let inflate = self.deflate.as_deref_mut().map(|d| Inflate {
                    reset: d.agreement.server_no_context_takeover,
                    inflater: &mut d.inflater,
                    out: &mut d.inflated,
                });
                self.rlen =
                    self.session
                        .feed_with(&mut self.rbuf[..self.rlen], limits, inflate, &mut sink);
                if self.session.state() == State::Closed {
                    return Ok(ReadEnd::SessionClosed);
                }
            }
            if short_read {
                return Ok(ReadEnd::Blocked);
            }
            match self.read_some(max) {
                Ok(Some((0, _))) => return Ok(ReadEnd::Eof),
                Ok(Some((n, filled))) => {
                    self.wire.frames_in += n as u64;
                    short_read = !filled;
                }
                Ok(None) => return Ok(ReadEnd::Blocked),
                Err(e) => return Err(io_failure(&e)),
            }
        }
    }

    /// One read into the buffer, growing it up to `max`. `None` on
    /// WouldBlock; else the count and whether it filled the free space.
    fn read_some(&mut self, max: usize) -> io::Result<Option<(usize, bool)>> {
        if self.rbuf.len() - self.rlen < 4096 && self.rbuf.len() < max {
            let grown = (self.rbuf.len() * 2).clamp(16 << 10, max);
            self.rbuf.resize(grown, 0);
        }
        if self.rlen == self.rbuf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "read buffer full: a message above the limit",
            ));
        }
        let room = &mut self.rbuf[self.rlen..];
        let res = match self.tls.as_deref_mut() {
            Some(tls) => read_tls(tls, &mut self.stream, room),
            None => loop {
                match self.stream.read(room) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            },
        };
        match res {
            Ok(n) => {
                let filled = self.rlen + n == self.rbuf.len();
                self.rlen += n;
                Ok(Some((n, filled)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes queued output until done or the socket would block. Over
    /// TLS: TLS records first, then the output encrypted into rustls (which
    /// holds it until the handshake is done) and on to the socket.
    pub fn flush(&mut self) -> Result<(), Failure> {
        let framing = matches!(self.phase, Phase::Open | Phase::Closing | Phase::Lingering);
        if framing && !self.api && self.sealed_to < self.out.len() {
            self.sealed_to = seal(
                &mut self.out,
                self.sealed_to,
                self.deflate.as_deref_mut(),
                &mut self.wire,
            );
        }
        loop {
            let res = match self.tls.as_deref_mut() {
                Some(tls) => match write_tls(tls, &mut self.stream) {
                    Ok(()) if self.wpos < self.out.len() => {
                        match tls.writer().write(&self.out[self.wpos..]) {
                            // rustls's buffer is full until the handshake ends.
                            Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                            other => other,
                        }
                    }
                    Ok(()) => break,
                    Err(e) => Err(e),
                },
                None if self.wpos < self.out.len() => self.stream.write(&self.out[self.wpos..]),
                None => break,
            };
            match res {
                Ok(0) => return Err((ErrorKind::Io, "write returned 0".into())),
                Ok(n) => {
                    self.wpos += n;
                    if framing {
                        self.wire.frames_out += n as u64;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Keep the buffer from creeping: drop what is written
                    // once it is most of it.
                    if self.wpos >= self.out.len() / 2 {
                        self.out.drain(..self.wpos);
                        self.sealed_to = self.sealed_to.saturating_sub(self.wpos);
                        self.wpos = 0;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure(&e)),
            }
        }
        self.out.clear();
        self.wpos = 0;
        self.sealed_to = 0;
        Ok(())
    }

    /// Starts the closing handshake (Close 1000) if the connection is Open.
    pub fn close(&mut self) {
        if self.phase == Phase::Open {
            let mut ignore = |_: MessageKind, _: &[u8], _: &mut Vec<u8>| {};
            let mut msg_in = 0;
            let mut sink = Sink {
                out: &mut self.out,
                on_message: &mut ignore,
                msg_in: &mut msg_in,
            };
            self.session.close(1000, "", &mut sink);
            self.phase = Phase::Closing;
            self.closed_at = Some(Instant::now());
        }
    }

    /// The server answered our Close: wait for its end of the stream.
    pub fn linger(&mut self) {
        if self.phase == Phase::Closing {
            self.phase = Phase::Lingering;
        }
    }

    /// Lingering: reads and drops whatever arrives until the socket would
    /// block (`Ok(false)`) or the stream ends (`Ok(true)`).
    pub fn read_eof(&mut self) -> Result<bool, Failure> {
        self.rlen = 0;
        loop {
            match self.read_some(16 << 10) {
                Ok(Some((0, _))) => return Ok(true),
                Ok(Some(_)) => self.rlen = 0,
                Ok(None) => return Ok(false),
                Err(e) => return Err(io_failure(&e)),
            }
        }
    }

    /// Ends the connection abruptly, without a Close: deregisters and
    /// frees it like [`Conn::finish`], but leaves the socket open for the
    /// caller to drop, which sends a FIN, or with `reset` an RST.
    pub fn abort(&mut self, registry: &Registry, reset: bool) {
        if reset {
            // SO_LINGER 0: close() discards the send queue and resets.
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
        let _ = registry.deregister(&mut self.stream);
        self.release();
    }

    /// Ends the connection: deregisters, frees its buffers, and marks it Done.
    pub fn finish(&mut self, registry: &Registry) {
        if self.phase != Phase::Done {
            if let Some(tls) = self.tls.as_deref_mut() {
                // Best effort: the session is over either way.
                tls.send_close_notify();
                let _ = write_tls(tls, &mut self.stream);
            }
            let _ = registry.deregister(&mut self.stream);
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
            self.release();
        }
    }

    /// Marks the connection Done and frees its buffers.
    fn release(&mut self) {
        self.phase = Phase::Done;
        self.tls = None;
        self.rbuf = Vec::new();
        self.out = Vec::new();
        self.deflate = None;
        self.rlen = 0;
        self.wpos = 0;
        self.sealed_to = 0;
    }
}
