//! A connection's transport: the socket itself, or TLS over it. The only
//! file that knows rustls's connection API; [`crate::tls`] loads the
//! certificates.
//!
//! rustls is a state machine the caller drives, and the socket stays ours:
//! ciphertext goes in (`read_tls`, `process_new_packets`), plaintext comes
//! out (`reader`), and whatever TLS wants to say (handshake flights,
//! alerts, encrypted replies) is flushed with `write_tls`. [`Wire`] wraps
//! that into the `Read` and `Write` the reactor already uses on a plain
//! socket, so the read path, the handshake parser and the sessions see
//! plaintext and nothing else; [`crate::proto`] never learns TLS exists.
//!
//! ```text
//!            socket ──ciphertext──▶ rustls ──plaintext──▶ read buffer ──▶ proto
//!  proto ──▶ reply  ──plaintext───▶ rustls ──ciphertext─▶ socket
//! ```
//!
//! # Edge-triggered reads
//!
//! A plain read that returns less than it was offered drained the socket,
//! and the reactor then skips the read that would only say WouldBlock.
//! [`Wire::read`] keeps that contract under TLS: it fills the buffer from
//! the plaintext rustls holds and reads more ciphertext until the buffer is
//! full or the socket is drained, so a short count still means "nothing
//! more until the next edge". Plaintext that rustls decrypted but the
//! buffer had no room for is handed out first at the next read, before the
//! socket is touched, so it is never stranded behind a WouldBlock.
//!
//! # Memory
//!
//! The transport keeps no buffer of its own. An idle TLS connection holds
//! what rustls holds: its state, the record keys, and a 4 KiB buffer for
//! the next incoming record. Output is accepted only once the previous
//! write's ciphertext has gone to the socket, so the ciphertext waiting
//! inside rustls is at most one write's worth (rustls's own 64 KiB limit);
//! everything else waits, unencrypted and shared, in the output queue.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use crate::proto::handshake::check_request_line;
use crate::stats::HandshakeFailure;

/// How many of the peer's first bytes are kept to tell what it spoke.
const START_LEN: usize = 16;

/// The first bytes the peer sent (up to [`START_LEN`], from its first
/// read), to tell plain HTTP and other protocols from a bad TLS handshake.
#[derive(Clone, Copy, Debug, Default)]
struct Start {
    bytes: [u8; START_LEN],
    len: u8,
}

impl Start {
    fn get(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Keeps the start of the first read that gave bytes.
    fn note(&mut self, read: &[u8]) {
        if self.len == 0 {
            let n = read.len().min(START_LEN);
            if let (Some(dst), Some(src)) = (self.bytes.get_mut(..n), read.get(..n)) {
                dst.copy_from_slice(src);
                self.len = n as u8;
            }
        }
    }
}

/// The reason for a rustls error, given the first bytes the peer sent.
fn classify(e: &rustls::Error, start: &[u8]) -> HandshakeFailure {
    match start.first() {
        // 0x16: a handshake record, the only way a TLS client can begin.
        None | Some(0x16) => {}
        // A request line as far as it came (`GET / HTTP/1.1`), as the plain
        // port tells one; an SSH banner or a typed word is something else.
        // A method ends within the bytes kept (the longest in use is far
        // shorter), so a whole window without a space is no request line.
        Some(_)
            if check_request_line(start).is_ok()
                && (start.contains(&b' ') || start.len() < START_LEN) =>
        {
            return HandshakeFailure::PlainHttp
        }
        Some(_) => return HandshakeFailure::NotTls,
    }
    match e {
        rustls::Error::AlertReceived(_) => HandshakeFailure::Alert,
        rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => {
            HandshakeFailure::Incompatible
        }
        _ => HandshakeFailure::Protocol,
    }
}

/// A TLS failure, carried out of [`Wire::read`] inside an `io::Error`
/// (kind `InvalidData`); [`tls_failure`] finds it again.
#[derive(Debug)]
pub struct TlsFailure {
    /// Why, if the handshake was still going on; `None` for a failure of
    /// an established session (a bad record, an alert).
    pub handshake: Option<HandshakeFailure>,
    error: rustls::Error,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.handshake {
            Some(reason) => write!(
                f,
                "TLS handshake failed ({}): {}",
                reason.name(),
                self.error
            ),
            None => write!(f, "TLS failed: {}", self.error),
        }
    }
}

impl std::error::Error for TlsFailure {}

/// The TLS failure inside `e`, if it is one.
pub fn tls_failure(e: &io::Error) -> Option<&TlsFailure> {
    e.get_ref()?.downcast_ref::<TlsFailure>()
}

/// The body of the answer to a plain HTTP request on the TLS port.
const PLAIN_HTTP_BODY: &str = "This port speaks TLS: use https:// or wss://.\n";

/// One connection's TLS state; boxed in the connection, so that a plain
/// connection pays one pointer for it.
pub struct Tls {
    conn: ServerConnection,
    /// The peer's first bytes, to tell plain HTTP and garbage from a bad
    /// handshake.
    start: Start,
    /// A TLS error ended the session: rustls's alert may still go out, but
    /// nothing else.
    failed: bool,
    /// Nothing more goes out through TLS (the peer spoke plain HTTP and was
    /// answered in the clear).
    muted: bool,
    /// `close_notify` is queued.
    closing: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("handshaking", &self.conn.is_handshaking())
            .field("failed", &self.failed)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// A server-side TLS session for a freshly accepted connection.
    pub fn new(config: Arc<ServerConfig>) -> Result<Box<Tls>, rustls::Error> {
        Ok(Box::new(Tls {
            conn: ServerConnection::new(config)?,
            start: Start::default(),
            failed: false,
            muted: false,
            closing: false,
        }))
    }

    /// Whether the TLS handshake is still going on (and has not failed).
    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking() && !self.failed
    }

    /// Whether encrypted output waits inside rustls for the socket.
    fn has_output(&self) -> bool {
        !self.muted && self.conn.wants_write()
    }

    /// Encrypted output waiting inside rustls: 1 if any, else 0 (rustls
    /// does not say how much; it is at most one write's worth).
    pub fn pending(&self) -> usize {
        usize::from(self.has_output())
    }

    /// The failure for a rustls error: counted by reason if the handshake
    /// was going on. rustls has queued the alert that tells the peer.
    fn fail(&mut self, error: rustls::Error) -> io::Error {
        let handshake = self
            .conn
            .is_handshaking()
            .then(|| classify(&error, self.start.get()));
        self.failed = true;
        io::Error::new(io::ErrorKind::InvalidData, TlsFailure { handshake, error })
    }
}

/// A `Read` that remembers whether the socket gave less than asked (it is
/// drained) and the first bytes it ever gave.
struct Probe<'a> {
    socket: &'a mut TcpStream,
    short: bool,
    start: &'a mut Start,
}

impl Read for Probe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.short = n < buf.len();
        self.start.note(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// A connection's byte stream as the reactor sees it: plaintext in and out,
/// over TLS or not. Built for one operation from the connection's socket
/// and TLS state (borrowed separately, so the connection's buffers stay
/// free to borrow).
pub struct Wire<'a> {
    socket: &'a mut TcpStream,
    tls: Option<&'a mut Tls>,
}

impl<'a> Wire<'a> {
    /// The stream of a connection with this socket and TLS state.
    pub fn new(socket: &'a mut TcpStream, tls: &'a mut Option<Box<Tls>>) -> Wire<'a> {
        Wire {
            socket,
            tls: tls.as_deref_mut(),
        }
    }

    /// Encrypted output waiting inside rustls: see [`Tls::pending`].
    pub fn pending(&self) -> usize {
        self.tls.as_ref().map_or(0, |t| t.pending())
    }

    /// Starts the end of the connection: queues TLS `close_notify` once
    /// (after an established session, not after a failure) and flushes.
    /// True when nothing is left to send, so the socket may be shut down.
    pub fn finish(&mut self) -> io::Result<bool> {
        if let Some(tls) = self.tls.as_deref_mut() {
            if !tls.closing && !tls.failed && !tls.muted && !tls.conn.is_handshaking() {
                tls.conn.send_close_notify();
            }
            tls.closing = true;
        }
        self.flush()?;
        Ok(self.pending() == 0)
    }

    /// Writes ciphertext rustls holds until it is all sent or the socket
    /// would block (`WouldBlock`, the rest stays queued).
    fn flush_tls(socket: &mut TcpStream, tls: &mut Tls) -> io::Result<()> {
        while tls.has_output() {
            match tls.conn.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A TLS failure: answer plain HTTP in the clear (rustls's alert
    /// would mean nothing to it); otherwise rustls's alert goes out with
    /// the connection's other output.
    fn failed(socket: &mut TcpStream, tls: &mut Tls, error: rustls::Error) -> io::Error {
        let e = tls.fail(error);
        if tls_failure(&e).and_then(|f| f.handshake) == Some(HandshakeFailure::PlainHttp) {
            tls.muted = true;
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_BODY}",
                PLAIN_HTTP_BODY.len()
            );
            // Best effort, like any refusal: it fits an empty socket buffer.
            let _ = socket.write(answer.as_bytes());
        }
        e
    }
}

impl Read for Wire<'_> {
    /// Reads plaintext. `Ok(0)` is the end of the stream (TLS
    /// `close_notify`, or TCP EOF); a count short of `buf.len()` means the
    /// socket is drained and rustls holds no more plaintext. A TLS error is
    /// an `InvalidData` error carrying a [`TlsFailure`].
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return super::sys::recv(&*self.socket, buf);
        };
        let mut n = 0;
        // The socket gave less than asked (drained of data, though a FIN
        // may follow), or said WouldBlock.
        let mut short = false;
        let mut blocked = false;
        loop {
            let room = buf.get_mut(n..).unwrap_or_default();
            if room.is_empty() {
                return Ok(n);
            }
            match tls.conn.reader().read(room) {
                // close_notify: the end, once what came before is handed out.
                Ok(0) => return Ok(n),
                Ok(k) => {
                    n += k;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP EOF without close_notify: an end all the same; the
                // WebSocket layer tells a clean close from a cut.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
                Err(e) => return Err(e),
            }
            if blocked || tls.failed {
                return if n > 0 {
                    Ok(n)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            // A short count says "drained" to the caller. With nothing to
            // hand out, read on: the socket says WouldBlock, or shows the
            // FIN that may have come behind the data.
            if short && n > 0 {
                return Ok(n);
            }
            let mut probe = Probe {
                socket: self.socket,
                short: false,
                start: &mut tls.start,
            };
            match tls.conn.read_tls(&mut probe) {
                // TCP EOF: rustls notes it, and the reader says so above.
                Ok(_) => short = probe.short,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => blocked = true,
                Err(e) => return Err(e),
            }
            if let Err(error) = tls.conn.process_new_packets() {
                return Err(Wire::failed(self.socket, tls, error));
            }
            // The handshake's next flight, or an alert: out at once. A
            // socket that will not take it now gets it when writable (the
            // reactor flushes after every read, and asks for writability
            // while [`Wire::pending`] is not 0).
            match Wire::flush_tls(self.socket, tls) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Writes plaintext. Under TLS: first the ciphertext already queued
    /// (WouldBlock if the socket will not take it all), then as much of
    /// `bufs` as rustls accepts, encrypted and offered to the socket; what
    /// the socket refuses of that stays queued inside rustls. Output before
    /// the TLS handshake is over (a 408 or 503 to a client that never
    /// finished it) is dropped: there is no way to say it.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.socket.write_vectored(bufs);
        };
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if tls.conn.is_handshaking() || tls.failed || tls.muted || tls.closing {
            return Ok(total);
        }
        Wire::flush_tls(self.socket, tls)?;
        let taken = tls.conn.writer().write_vectored(bufs)?;
        if taken == 0 && total > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match Wire::flush_tls(self.socket, tls) {
            Ok(()) => Ok(taken),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    /// Sends the ciphertext queued inside rustls, as far as the socket
    /// takes it (WouldBlock is not an error here: the rest stays queued).
    fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => match Wire::flush_tls(self.socket, tls) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                other => other,
            },
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_by_the_first_bytes_before_the_error() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
        let bad = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let old = rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::SupportedVersionsExtensionRequired,
        );
        let none = rustls::Error::NoApplicationProtocol;
        for (start, error, want) in [
            (
                &b"GET / HTTP/1.1\r\n"[..],
                &bad,
                HandshakeFailure::PlainHttp,
            ),
            (b"POST /publish/c", &bad, HandshakeFailure::PlainHttp),
            (b"G", &bad, HandshakeFailure::PlainHttp),
            (b"get /", &bad, HandshakeFailure::PlainHttp),
            (b"SSH-2.0-x\r\n", &bad, HandshakeFailure::NotTls),
            (b"SSH-2.0-OpenSSH_", &bad, HandshakeFailure::NotTls),
            (b"HELLO\r\n", &bad, HandshakeFailure::NotTls),
            (b"\x00\x00", &bad, HandshakeFailure::NotTls),
            (b"{\"a\":1}", &bad, HandshakeFailure::NotTls),
            (b"\x16\x03\x01", &bad, HandshakeFailure::Protocol),
            (b"\x16\x03\x01", &alert, HandshakeFailure::Alert),
            (b"\x16\x03\x01", &old, HandshakeFailure::Incompatible),
            (b"\x16", &none, HandshakeFailure::Incompatible),
            (b"", &alert, HandshakeFailure::Alert),
        ] {
            assert_eq!(classify(error, start), want, "{start:?} {error}");
        }
    }

    #[test]
    fn the_start_kept_is_the_first_read_that_gave_bytes() {
        let mut start = Start::default();
        start.note(b"");
        start.note(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n");
        start.note(b"GET / HTTP/1.1\r\n");
        assert_eq!(start.get(), b"SSH-2.0-OpenSSH_");
    }

    #[test]
    fn every_reason_has_its_own_index_and_name() {
        for (i, reason) in HandshakeFailure::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
            let same = HandshakeFailure::ALL
                .iter()
                .filter(|r| r.name() == reason.name())
                .count();
            assert_eq!(same, 1, "{}", reason.name());
        }
    }
}
