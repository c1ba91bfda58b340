//! What the server does with a message: echo it into the connection's
//! output (a large one straight from the read buffer, see [`Direct`]), or
//! encode it once into its room's batch for the turn.

use mio::net::TcpStream;

use super::compress::{Terms, Tx};
use crate::config::Mode;
use crate::hub::Hub;
use crate::id::ConnId;
use crate::net::buffer::{write_through, OutQueue};
use crate::net::guard::Guard;
use crate::proto::deflate::Deflater;
use crate::proto::session::{message_header, write_message};
use crate::proto::{Events, MessageKind};
use crate::stats::Stats;

/// What the session reports, turned into output.
pub(super) struct Sink<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) hub: &'a mut Hub,
    pub(super) stats: &'a mut Stats,
    /// The connection whose input is being processed.
    pub(super) sender: ConnId,
    /// Its broadcast room.
    pub(super) room: Option<u32>,
    pub(super) mode: Mode,
    /// A message arrived (for the idle timeout; in broadcast mode, the
    /// connection published this turn).
    pub(super) got_message: bool,
    /// There is a bus to other nodes: each broadcast message is also
    /// published there, once, from its room's batch.
    pub(super) to_bus: bool,
    /// The connection's permessage-deflate terms, if it agreed on it.
    pub(super) deflate: Option<Terms>,
    /// The shared compressors, for echo replies.
    pub(super) tx: &'a mut Tx,
    /// The connection's own compressor (server context takeover).
    pub(super) own: &'a mut Option<Deflater>,
    /// The connection's socket and queue, for echo replies written from
    /// the read buffer (once the connection is open).
    pub(super) direct: Option<Direct<'a>>,
    /// The connection's access control, lent for this read (see
    /// [`crate::net::guard`]); `None` for most connections.
    pub(super) guard: Option<Box<Guard>>,
}

/// Where an echo reply is written without copying its payload.
pub(super) struct Direct<'a> {
    pub(super) stream: &'a mut TcpStream,
    pub(super) queue: &'a mut Option<Box<OutQueue>>,
    /// No TLS: the socket takes the payload as it is.
    pub(super) plain: bool,
}

/// Echo payloads from this size on are written at once from the read
/// buffer, with the output before them, by one `writev`; smaller ones are
/// copied into the scratch output, so that one `send` carries every reply of
/// a read (a copy of a few KiB costs less than a system call).
const DIRECT_FROM: usize = 16 << 10;

impl Events for Sink<'_> {
    // Inlined into the session's fast path: one small echo costs less
    // than a call.
    #[inline(always)]
    fn message(&mut self, kind: MessageKind, payload: &[u8]) {
        // The one branch access control costs a connection without a guard.
        if let Some(guard) = self.guard.as_deref_mut() {
            if !guard.admit(payload.len()) {
                return;
            }
        }
        self.stats.messages_in += 1;
        self.got_message = true;
        match self.mode {
            Mode::Echo if payload.len() >= DIRECT_FROM && self.writes_through() => {
                self.echo_through(kind, payload);
            }
            Mode::Echo if self.deflate.is_none() => {
                write_message(self.out, kind, payload);
                self.stats.messages_out += 1;
            }
            Mode::Echo => {
                // Compressed for a client that agreed on permessage-deflate.
                let own = self.own.as_mut();
                let stats = &mut self.stats.deflate;
                self.tx
                    .write(self.out, kind, payload, self.deflate, own, stats);
                self.stats.messages_out += 1;
            }
            Mode::Broadcast => {
                // Encoded once, into the room's batch for this turn, which
                // every member (the sender too, unless excluded) gets in the
                // same order.
                if let Some(batch) = self.room.and_then(|r| self.hub.batch(r)) {
                    let start = batch.bytes.len();
                    write_message(&mut batch.bytes, kind, payload);
                    let end = batch.bytes.len();
                    batch.frames.push((self.sender, start..end));
                    if self.to_bus {
                        batch.publish.push((kind, end - payload.len()..end));
                    }
                }
            }
        }
    }

    fn send(&mut self, frame: &[u8]) {
        self.out.extend_from_slice(frame);
    }
}

impl Sink<'_> {
    /// Whether a reply may go out from the read buffer now: on plain TCP
    /// (TLS copies into its records anyway), uncompressed (deflate writes a
    /// new payload), with nothing queued ahead of it.
    fn writes_through(&self) -> bool {
        self.deflate.is_none()
            && self
                .direct
                .as_ref()
                .is_some_and(|d| d.plain && d.queue.as_ref().is_none_or(|q| q.is_empty()))
    }

    /// Echoes `payload` with one `writev` of the output before it, its
    /// header and the payload where it lies; only what the socket does not
    /// take is copied, into the queue.
    #[inline(never)]
    fn echo_through(&mut self, kind: MessageKind, payload: &[u8]) {
        let header = message_header(kind, payload.len());
        if let Some(d) = self.direct.as_mut() {
            let parts = [self.out.as_slice(), header.as_slice(), payload];
            // A socket error stays with the socket: the flush that ends
            // this read meets it again and ends the connection.
            if let Ok(n) = write_through(d.stream, d.queue, &parts) {
                self.stats.bytes_out += n as u64;
            }
            self.out.clear();
        }
        self.stats.messages_out += 1;
    }
}
