//! One connection as the reactor sees it: a socket (and TLS over it, if the
//! listener speaks TLS), its TCP-level phase, its protocol [`Session`], and
//! lazily allocated buffers.

use std::io::{self, Write};

use mio::net::TcpStream;

use super::buffer::{OutQueue, ReadBuf};
use super::guard::Guard;
use super::transport::{Tls, Wire};
use super::zcontext::{Context, Terms};
use crate::hub::Seat;
use crate::id::ConnId;
use crate::proto::{Events, MessageKind, Role, Session};

/// Where a connection stands at the TCP level.
///
/// ```text
/// Handshake ──101──▶ Open ──session Closed──▶ Closing ──output flushed,──▶ Draining ──EOF or──▶ (dropped)
///     │                                          ▲       shutdown(Write)              timeout
///     └──────── 4xx answer queued ───────────────┘
///     │                                          ▲
///     └──POST /publish──▶ Api ──Connection: close─┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the upgrade request.
    Handshake,
    /// Frames flow (the session may be in its closing handshake).
    Open,
    /// The first request routed to the publish API: HTTP/1.1 requests,
    /// keep-alive, until one closes it (`net::reactor::api`).
    Api,
    /// A final answer is queued: flush it, then shut down our side.
    Closing,
    /// Our side is shut down; read and discard until the peer closes, so
    /// that unread input cannot turn our close into a reset that destroys
    /// the Close frame still in flight.
    Draining,
}

/// A connection in the slab.
#[derive(Debug)]
pub struct Connection {
    /// The socket.
    pub stream: TcpStream,
    /// TLS over the socket, on a TLS listener; boxed, so that a plain
    /// connection pays one pointer. Socket I/O goes through a
    /// [`Wire`] of both.
    pub tls: Option<Box<Tls>>,
    /// TCP-level phase.
    pub phase: Phase,
    /// WebSocket protocol state.
    pub session: Session,
    /// Input kept between reads (an incomplete frame or message); empty and
    /// unallocated most of the time.
    pub rbuf: ReadBuf,
    /// Output the socket has not taken yet; allocated on first need.
    pub out: Option<Box<OutQueue>>,
    /// Generation, against slab key reuse.
    pub gen: u32,
    /// Room and slot in the broadcast hub, while a member.
    pub seat: Option<Seat>,
    /// When bytes last arrived (reactor milliseconds, wrapping): keepalive.
    pub seen_at: u32,
    /// When a message last arrived (reactor milliseconds, wrapping): idle timeout.
    pub message_at: u32,
    /// A keepalive ping was sent and nothing has arrived since.
    pub awaiting_pong: bool,
    /// Registered for writable events (only while output is pending).
    pub writable_interest: bool,
    /// Reading is paused until output drains below the low watermark.
    pub paused: bool,
    /// An event said the peer closed its side or the socket failed. Reading
    /// finds that out by itself, but a paused connection is not read.
    pub hup: bool,
    /// Accepted on a `--metrics-listen` address: plain HTTP only.
    pub metrics_only: bool,
    /// The reactor turn in which this connection last published a
    /// broadcast message (so fan-out skips its own frames).
    pub sent_turn: u32,
    /// The permessage-deflate terms, if the connection agreed on it: a few
    /// bytes, no allocation.
    pub(crate) deflate: Option<Terms>,
    /// Compression context kept between messages: only with context
    /// takeover, else `None` (a deflate connection then costs what a plain
    /// one does).
    pub(crate) zcontext: Option<Box<Context>>,
    /// Access control once open (no `write`, rate buckets, the counted
    /// client address); `None`, one pointer, for a connection that needs
    /// none of it.
    pub guard: Option<Box<Guard>>,
}

impl Connection {
    /// A freshly accepted connection, waiting for its upgrade request.
    pub fn new(stream: TcpStream, gen: u32) -> Connection {
        Connection {
            stream,
            tls: None,
            phase: Phase::Handshake,
            session: Session::new(Role::Server),
            rbuf: ReadBuf::default(),
            out: None,
            gen,
            seat: None,
            seen_at: 0,
            message_at: 0,
            awaiting_pong: false,
            writable_interest: false,
            paused: false,
            hup: false,
            metrics_only: false,
            sent_turn: u32::MAX,
            deflate: None,
            zcontext: None,
            guard: None,
        }
    }

    /// This connection's identity, for timers and deferred work.
    pub fn id(&self, key: usize) -> ConnId {
        ConnId { key, gen: self.gen }
    }

    /// Unsent output bytes (under TLS, plus 1 while ciphertext waits
    /// inside rustls).
    pub fn pending_out(&self) -> usize {
        let tls = self.tls.as_ref().map_or(0, |t| t.pending());
        self.out.as_ref().map_or(0, |q| q.pending()) + tls
    }

    /// The socket as a plaintext stream.
    pub fn wire(&mut self) -> Wire<'_> {
        Wire::new(&mut self.stream, &mut self.tls)
    }

    /// The output queue, allocated on first use and kept (it is small; its
    /// byte buffer gives memory back by itself).
    pub fn queue(&mut self) -> &mut OutQueue {
        self.out.get_or_insert_with(Default::default)
    }

    /// Sends `bytes` after anything already queued, and then whatever is
    /// queued, until done or the socket would block. Returns bytes written.
    ///
    /// With nothing queued, `bytes` goes straight to the socket with one
    /// `write` and only the part the socket refuses is copied into the queue:
    /// the steady-state echo path costs no copy and no allocation.
    #[inline]
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.tls.is_none() && self.out.as_ref().is_none_or(|q| q.is_empty()) {
            // The common case, plain TCP with nothing queued: one `send`,
            // and done if the socket takes it all.
            if bytes.is_empty() {
                return Ok(0);
            }
            let res = super::sys::send(&self.stream, bytes);
            if let Ok(n) = res {
                if n == bytes.len() {
                    return Ok(n);
                }
            }
            return self.send_rest(bytes, res);
        }
        self.send_queued(bytes, 0)
    }

    /// [`Connection::send`] after a plain socket's `send` of all of
    /// `bytes` returned `res` and did not take them all.
    #[inline(never)]
    fn send_rest(&mut self, bytes: &[u8], res: io::Result<usize>) -> io::Result<usize> {
        match res {
            Ok(0) => Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => self.send_queued(bytes.get(n..).unwrap_or_default(), n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                self.send_queued(bytes, 0)
            }
            Err(e) => Err(e),
        }
    }

    /// The rest of [`Connection::send`]: `rest` after anything queued, and
    /// then whatever is queued, `written` bytes having gone already.
    #[inline(never)]
    fn send_queued(&mut self, mut rest: &[u8], mut written: usize) -> io::Result<usize> {
        // TLS records already encrypted go first.
        self.wire().flush()?;
        if self.pending_out() == 0 {
            let mut wire = self.wire();
            while !rest.is_empty() {
                match wire.write(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        written += n;
                        rest = rest.get(n..).unwrap_or_default();
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if rest.is_empty() {
                return Ok(written);
            }
        }
        let Connection {
            out, stream, tls, ..
        } = self;
        let q = out.get_or_insert_with(Default::default);
        let continues = written > 0 && q.is_empty();
        q.push_own(rest);
        if continues {
            // The frame in progress is partly on the wire: a slow
            // consumer's cut-off must not drop the rest of it.
            q.mark_front_started();
        }
        let before = q.pending();
        match q.write_to(&mut Wire::new(stream, tls)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(written + before - q.pending())
    }

    /// All output is sent: under TLS, queue `close_notify` (once) and send
    /// it. True when nothing is left to send and the socket may be shut
    /// down; false while TLS output waits for the socket.
    pub fn finish(&mut self) -> io::Result<bool> {
        self.wire().finish()
    }
}

/// Lets a session's control frames go straight into a connection's queue
/// (used when the reactor, not the peer, starts a close).
pub struct QueueSink<'a>(pub &'a mut OutQueue);

impl Events for QueueSink<'_> {
    fn message(&mut self, _: MessageKind, _: &[u8]) {}
    fn send(&mut self, frame: &[u8]) {
        self.0.push_own(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_is_small() {
        // The per-connection RSS target is 256 bytes; the slab entry is most
        // of it. Buffers are allocated only while in use. 168 since
        // permessage-deflate's terms (3 bytes) and context pointer (8)
        // joined TLS's pointer: 165 bytes of fields. 176 since access
        // control's guard pointer (8): its state is boxed, and only for
        // connections that need it.
        let size = std::mem::size_of::<Connection>();
        assert!(size <= 176, "Connection is {size} bytes");
    }

    #[test]
    fn the_rest_of_a_partly_sent_frame_is_never_discarded() {
        // A peer that reads nothing: the socket takes part of a large frame
        // and the rest is queued. A slow consumer's cut-off drops only what
        // has not started, so the rest must count as started.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut conn = Connection::new(TcpStream::from_std(server), 0);
        let frame = vec![7u8; 16 << 20];
        let taken = conn.send(&frame).unwrap();
        assert!(taken > 0 && taken < frame.len(), "the socket took {taken}");
        assert_eq!(conn.pending_out(), frame.len() - taken);
        assert_eq!(conn.queue().discard_unstarted(), 0);
        assert_eq!(conn.pending_out(), frame.len() - taken);
        drop(client);
    }
}
