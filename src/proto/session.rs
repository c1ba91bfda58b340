//! One connection's WebSocket protocol state, after the handshake.
//!
//! A [`Session`] is fed the bytes that arrived ([`Session::feed`]); it parses
//! and unmasks frames in place, assembles messages, answers pings and closes,
//! and reports complete messages and frames to send through [`Events`]. It
//! never does I/O: the caller owns the buffer and the socket.
//!
//! # Buffer contract
//!
//! `feed` takes the unprocessed bytes as one mutable slice and returns how
//! many bytes to keep: after the call, the caller's buffer must hold exactly
//! `buf[..keep]` (the session has already moved them to the front), then
//! append newly read bytes after them and call `feed` again with the whole.
//! The kept bytes are the part of a fragmented or not yet complete message
//! assembled so far, followed by an incomplete frame header or control frame.
//! A message's payload is handed out as a slice of `buf`, valid during the
//! [`Events::message`] call.
//!
//! # permessage-deflate
//!
//! [`Session::feed_with`] takes an [`Inflate`] when the connection agreed on
//! permessage-deflate (RFC 7692): RSV1 is then allowed on a message's first
//! frame and marks it compressed. A compressed message is assembled in
//! `buf` like any other and, once its last frame is in, inflated into the
//! `Inflate`'s buffer, its size counted against the message limit while it
//! is inflated and text checked as it comes out; the message handed out is
//! a slice of that buffer. No inflater state is needed between messages
//! unless the peer keeps its context.

use super::close::{self, CloseFrame};
use super::deflate::Inflater;
use super::error::ProtocolError;
use super::frame::{
    self, decode_header, encode_header, EncodedHeader, Header, OpCode, Parsing,
    MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1,
};
use super::mask::apply_mask;
use super::message::{Assembly, Limits, MessageKind};
use super::utf8::Utf8Validator;
use whole::whole_frames;

/// Which end of the connection this session speaks for. It decides the
/// masking direction (§5.1): clients mask, servers do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Expects masked frames, sends unmasked ones.
    Server,
    /// Expects unmasked frames, sends masked ones.
    Client,
}

/// Where the closing handshake stands (RFC 6455 §7).
///
/// ```text
///            peer's Close: reply Close            ┌────────┐
///   ┌──────┐ ───────────────────────────────────▶ │        │
///   │ Open │ protocol error: send Close(code)     │ Closed │ ─▶ caller flushes
///   └──────┘ ───────────────────────────────────▶ │        │    output, then
///      │ close(): send Close                      └────────┘    closes TCP
///      ▼                                               ▲       (server first)
///  ┌───────────┐  peer's Close (no reply) or error     │
///  │ CloseSent │ ──────────────────────────────────────┘
///  └───────────┘  (data frames still parsed, not delivered)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close and wait for the peer's.
    CloseSent,
    /// Both Closes were sent, or the connection failed: nothing more will be
    /// parsed or sent. The caller flushes what is queued and closes TCP.
    Closed,
}

/// What a session reports while it is fed.
pub trait Events {
    /// A complete, validated text or binary message. `payload` borrows the
    /// read buffer and is valid only during the call.
    fn message(&mut self, kind: MessageKind, payload: &[u8]);
    /// A fully encoded frame the protocol needs sent: a pong or a close.
    /// Queue it for writing after what is already queued.
    fn send(&mut self, frame: &[u8]);
}

/// What a session needs to take compressed messages (permessage-deflate):
/// passed to [`Session::feed_with`] by a connection that agreed on it.
#[derive(Debug)]
pub struct Inflate<'a> {
    /// The inflater: shared and reset per message, or the connection's own.
    pub inflater: &'a mut Inflater,
    /// Start every message from an empty window: the peer agreed to
    /// `client_no_context_takeover` (or, for a client, the server to
    /// `server_no_context_takeover`).
    pub reset: bool,
    /// Where a message is inflated to; its contents are replaced.
    pub out: &'a mut Vec<u8>,
}

/// One connection's protocol state: a few dozen bytes, no buffers.
#[derive(Clone, Debug)]
pub struct Session {
    role: Role,
    state: State,
    msg: Option<Assembly>,
    /// The close code received, sent on failure, or sent by [`Session::close`].
    close_code: Option<u16>,
    /// Why the session failed, if it did.
    error: Option<ProtocolError>,
    /// xorshift32 state for client masking keys; unused by servers.
    mask_seed: u32,
}

impl Session {
    /// A session in the Open state, as after a successful handshake.
    pub fn new(role: Role) -> Session {
        Session::with_seed(role, 0x9E37_79B9)
    }

    /// A session whose client masking keys start from `seed` (must not be 0).
    pub fn with_seed(role: Role, seed: u32) -> Session {
        Session {
            role,
            state: State::Open,
            msg: None,
            close_code: None,
            error: None,
            mask_seed: seed.max(1),
        }
    }

    /// The closing-handshake state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The close code received or sent, if the closing handshake has begun.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// The protocol error that failed the connection, if one did.
    pub fn error(&self) -> Option<ProtocolError> {
        self.error
    }

    /// Whether a message is partly received (its bytes are kept in the buffer).
    pub fn in_message(&self) -> bool {
        self.msg.is_some()
    }

    /// Payload bytes of the data frame being received that have not arrived
    /// yet (0 between frames). Bounded by the limits, which the frame's
    /// header was checked against before it was accepted: a caller may size
    /// a buffer by it, so that the rest of the frame lands in one read.
    pub fn wants(&self) -> usize {
        self.msg
            .as_ref()
            .and_then(|m| m.frame)
            .map_or(0, |f| f.remaining)
    }

    /// Processes `buf`, the bytes kept from the last call followed by new
    /// ones, and returns how many bytes the caller keeps (see the module doc).
    #[inline(always)]
    pub fn feed<E: Events>(&mut self, buf: &mut [u8], limits: &Limits, ev: &mut E) -> usize {
        self.feed_with(buf, limits, None, ev)
    }

    /// [`Session::feed`] on a connection that agreed on permessage-deflate
    /// when `inflate` is given (see the module doc).
    ///
    /// Inlined, with [`whole_frames`], into the reactor's read path: most
    /// reads are one small frame, and a call costs what parsing it does.
    #[inline(always)]
    pub fn feed_with<E: Events>(
        &mut self,
        buf: &mut [u8],
        limits: &Limits,
        inflate: Option<Inflate<'_>>,
        ev: &mut E,
    ) -> usize {
        if self.state == State::Closed {
            return 0;
        }
        // The assembled part of a message in progress is at the front.
        let mut cur = Cursor {
            base: 0,
            pos: self.msg.as_ref().map_or(0, |m| m.len),
        };
        if self.msg.is_none() && self.state == State::Open && self.role == Role::Server {
            match whole_frames(buf, limits, ev) {
                // All taken: nothing to keep.
                Ok(pos) if pos == buf.len() => return 0,
                Ok(pos) => cur.pos = pos,
                Err(e) => {
                    self.fail(e, ev);
                    return 0;
                }
            }
        }
        self.parse(buf, cur, limits, inflate, ev)
    }

    /// [`Session::feed_with`] past the frames [`whole_frames`] took: the
    /// general parser, which assembles fragments and answers control
    /// frames. Kept out of line so the common case stays small.
    #[inline(never)]
    fn parse<E: Events>(
        &mut self,
        buf: &mut [u8],
        mut cur: Cursor,
        limits: &Limits,
        mut inflate: Option<Inflate<'_>>,
        ev: &mut E,
    ) -> usize {
        if let Err(e) = self.run(buf, &mut cur, limits, &mut inflate, ev) {
            self.fail(e, ev);
        }
        if self.state == State::Closed {
            return 0;
        }
        let tail = buf.len() - cur.pos;
        match &self.msg {
            Some(m) => {
                if cur.base != 0 {
                    buf.copy_within(cur.base..cur.base + m.len, 0);
                }
                if cur.pos != m.len {
                    buf.copy_within(cur.pos.., m.len);
                }
                m.len + tail
            }
            None => {
                if tail != 0 {
                    buf.copy_within(cur.pos.., 0);
                }
                tail
            }
        }
    }

    /// Sends a ping (for keepalive) carrying `payload` (cut to 125 bytes).
    /// Does nothing unless Open.
    pub fn ping<E: Events>(&mut self, payload: &[u8], ev: &mut E) {
        if self.state == State::Open {
            self.send_control(OpCode::Ping, payload, ev);
        }
    }

    /// Starts the closing handshake: sends a Close with `code` and `reason`
    /// and moves to [`State::CloseSent`]. Does nothing unless Open.
    pub fn close<E: Events>(&mut self, code: u16, reason: &str, ev: &mut E) {
        if self.state == State::Open {
            self.send_close(code, reason, ev);
            self.state = State::CloseSent;
        }
    }

    fn run<E: Events>(
        &mut self,
        buf: &mut [u8],
        cur: &mut Cursor,
        limits: &Limits,
        inflate: &mut Option<Inflate<'_>>,
        ev: &mut E,
    ) -> Result<(), ProtocolError> {
        loop {
            if self.msg.as_ref().is_some_and(|m| m.frame.is_some()) {
                if !self.payload(buf, cur, limits, inflate, ev)? {
                    return Ok(());
                }
                continue;
            }
            let unparsed = buf.get(cur.pos..).unwrap_or_default();
            let (h, offset) = match decode_header(unparsed)? {
                Parsing::Done { value, offset } => (value, offset),
                Parsing::NeedMore(_) => return Ok(()),
            };
            self.check_header(&h, limits, inflate.is_some())?;
            // The checks bound the length by a usize limit, so this is exact.
            let len = h.len as usize;
            if h.opcode.is_control() {
                let end = cur.pos + offset + len;
                let Some(payload) = buf.get_mut(cur.pos + offset..end) else {
                    // The control frame's payload has not all arrived.
                    return Ok(());
                };
                if let Some(key) = h.mask {
                    apply_mask(payload, key, 0);
                }
                cur.pos = end;
                self.control(h.opcode, payload, ev)?;
                if self.state == State::Closed {
                    return Ok(());
                }
                continue;
            }
            let msg = match (&mut self.msg, h.opcode) {
                (None, OpCode::Text | OpCode::Binary) => {
                    cur.base = cur.pos + offset;
                    let kind = if h.opcode == OpCode::Text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    };
                    self.msg.insert(Assembly::new(kind, h.rsv & RSV1 != 0))
                }
                (Some(m), OpCode::Continuation) => m,
                (None, _) => return Err(ProtocolError::UnexpectedContinuation),
                (Some(_), _) => return Err(ProtocolError::ExpectedContinuation),
            };
            msg.begin_frame(len, h.mask, h.fin, limits)?;
            cur.pos += offset;
        }
    }

    /// Takes in as much of the current data frame's payload as `buf` holds.
    /// Returns whether the frame is complete (so parsing can go on).
    fn payload<E: Events>(
        &mut self,
        buf: &mut [u8],
        cur: &mut Cursor,
        limits: &Limits,
        inflate: &mut Option<Inflate<'_>>,
        ev: &mut E,
    ) -> Result<bool, ProtocolError> {
        let Some(msg) = self.msg.as_mut() else {
            return Ok(true);
        };
        let Some(frame) = msg.frame.as_mut() else {
            return Ok(true);
        };
        let avail = frame.remaining.min(buf.len().saturating_sub(cur.pos));
        if avail == 0 && frame.remaining != 0 {
            return Ok(false);
        }
        let chunk = cur.pos..cur.pos + avail;
        if let Some((key, bytes)) = frame.mask.zip(buf.get_mut(chunk.clone())) {
            apply_mask(bytes, key, frame.offset);
        }
        // Squeeze out the headers between fragments: move this payload down
        // to follow what is assembled. Unfragmented payloads never move.
        let dest = cur.base + msg.len;
        if dest != cur.pos {
            buf.copy_within(chunk, dest);
        }
        msg.len += avail;
        frame.remaining -= avail;
        frame.offset += avail;
        cur.pos += avail;
        let assembled = buf.get(cur.base..cur.base + msg.len).unwrap_or_default();
        if msg.kind == MessageKind::Text && !msg.compressed {
            // Fail fast: check text as it arrives, not when the message ends.
            msg.utf8.advance(assembled)?;
        }
        if frame.remaining != 0 {
            return Ok(false);
        }
        let fin = frame.fin;
        msg.frame = None;
        if fin {
            // Nothing is delivered once our Close is sent, so nothing is
            // inflated either.
            if self.state == State::Open {
                if msg.compressed {
                    let z = inflate.as_mut().ok_or(ProtocolError::ReservedBits)?;
                    inflate_message(msg.kind, assembled, limits, z)?;
                    ev.message(msg.kind, z.out);
                } else {
                    if msg.kind == MessageKind::Text {
                        msg.utf8.finish(msg.len)?;
                    }
                    ev.message(msg.kind, assembled);
                }
            } else if msg.kind == MessageKind::Text && !msg.compressed {
                msg.utf8.finish(msg.len)?;
            }
            self.msg = None;
        }
        Ok(true)
    }

    /// The header rules that depend on the connection (§5.1, §5.2, §5.5),
    /// and on permessage-deflate if it was agreed (`deflate`).
    fn check_header(
        &self,
        h: &Header,
        limits: &Limits,
        deflate: bool,
    ) -> Result<(), ProtocolError> {
        // §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that
        // defines meanings for non-zero values". permessage-deflate defines
        // RSV1, on a message's first frame only (RFC 7692 §6).
        if h.rsv & !RSV1 != 0 || (h.rsv != 0 && !deflate) {
            return Err(ProtocolError::ReservedBits);
        }
        if h.rsv != 0 {
            match h.opcode {
                OpCode::Continuation => return Err(ProtocolError::CompressedContinuation),
                op if op.is_control() => return Err(ProtocolError::CompressedControl),
                _ => {}
            }
        }
        // §5.1: a server MUST close on an unmasked frame, a client on a masked one.
        match (self.role, h.mask) {
            (Role::Server, None) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, Some(_)) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            // §5.5: control frames are never fragmented and carry ≤ 125 bytes.
            if !h.fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if h.len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong);
            }
        } else if h.len > limits.max_frame as u64 {
            return Err(ProtocolError::FrameTooBig);
        }
        Ok(())
    }

    fn control<E: Events>(
        &mut self,
        op: OpCode,
        payload: &[u8],
        ev: &mut E,
    ) -> Result<(), ProtocolError> {
        match op {
            // §5.5.2: answer a ping with a pong carrying the same payload,
            // unless we already sent a close (§5.5.1: nothing after Close).
            OpCode::Ping if self.state == State::Open => {
                self.send_control(OpCode::Pong, payload, ev)
            }
            OpCode::Close => {
                let CloseFrame { code, .. } = close::parse_close(payload)?;
                if self.state == State::Open {
                    // §5.5.1: reply with a Close, echoing the status code.
                    match code {
                        Some(c) => self.send_close(c, "", ev),
                        None => self.send_control(OpCode::Close, &[], ev),
                    }
                }
                self.close_code
                    .get_or_insert(code.unwrap_or(close::NO_STATUS));
                self.state = State::Closed;
                // A message cut off by the Close is abandoned.
                self.msg = None;
            }
            _ => {}
        }
        Ok(())
    }

    /// §7.1.7 "Fail the WebSocket Connection": send a Close with the
    /// error's code if none was sent yet, and stop.
    #[cold]
    fn fail<E: Events>(&mut self, e: ProtocolError, ev: &mut E) {
        if self.state == State::Open {
            self.send_close(e.close_code(), e.as_str(), ev);
        }
        self.error = Some(e);
        self.close_code.get_or_insert(e.close_code());
        self.state = State::Closed;
        self.msg = None;
    }

    fn send_close<E: Events>(&mut self, code: u16, reason: &str, ev: &mut E) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let n = close::encode_close(code, reason, &mut payload);
        self.close_code.get_or_insert(code);
        self.send_control(OpCode::Close, payload.get(..n).unwrap_or_default(), ev);
    }

    fn send_control<E: Events>(&mut self, op: OpCode, payload: &[u8], ev: &mut E) {
        let payload = payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload);
        let mask = match self.role {
            Role::Server => None,
            Role::Client => Some(self.next_mask()),
        };
        let header = encode_header(true, 0, op, payload.len() as u64, mask);
        let header = header.as_slice();
        // Header and payload fit by construction (14 + 125 bytes).
        let mut out = [0u8; MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD];
        let len = header.len() + payload.len();
        if let Some((head, body)) = out.split_at_mut_checked(header.len()) {
            head.copy_from_slice(header);
            if let Some(body) = body.get_mut(..payload.len()) {
                body.copy_from_slice(payload);
                if let Some(key) = mask {
                    apply_mask(body, key, 0);
                }
            }
        }
        ev.send(out.get(..len).unwrap_or_default());
    }

    /// The next client masking key (xorshift32). §5.3 wants keys an
    /// intermediary cannot predict; a load generator's peers are its own.
    pub fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_seed = x;
        x.to_ne_bytes()
    }
}

/// Inflates a complete compressed message into `z.out`: its size counted
/// against the message limit while it grows, text checked as it comes out.
fn inflate_message(
    kind: MessageKind,
    payload: &[u8],
    limits: &Limits,
    z: &mut Inflate<'_>,
) -> Result<(), ProtocolError> {
    let mut utf8 = Utf8Validator::default();
    let text = kind == MessageKind::Text;
    z.inflater
        .inflate(payload, z.out, limits.max_message, z.reset, &mut |so_far| {
            if text {
                utf8.advance(so_far)
            } else {
                Ok(())
            }
        })?;
    if text {
        utf8.finish(z.out.len())?;
    }
    Ok(())
}

/// Positions within the buffer being fed.
struct Cursor {
    /// Where the message in progress starts.
    base: usize,
    /// The next unparsed byte.
    pos: usize,
}

/// Appends an unmasked data frame carrying a whole message: what a server
/// sends. Re-exported for the reactor's echo path.
pub fn write_message(out: &mut Vec<u8>, kind: MessageKind, payload: &[u8]) {
    frame::write_frame(out, message_opcode(kind), payload);
}

/// The header of an unmasked data frame carrying a whole message of `len`
/// bytes: for a caller that sends the payload from where it lies, without
/// copying it behind the header.
pub fn message_header(kind: MessageKind, len: usize) -> EncodedHeader {
    encode_header(true, 0, message_opcode(kind), len as u64, None)
}

fn message_opcode(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}

mod whole;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_deflate;
