//! permessage-deflate (RFC 7692): whole messages compressed and inflated,
//! and the negotiation that turns it on ([`negotiate`]).
//!
//! A message is compressed as raw DEFLATE ending in a sync flush, whose last
//! four bytes (`00 00 ff ff`) are removed (§7.2.1); the receiver appends them
//! again before inflating (§7.2.2). With "no context takeover" every message
//! starts from an empty window, so one [`Deflater`] and one [`Inflater`],
//! reset per message, serve every connection; with context takeover each
//! connection keeps its own between messages.
//!
//! Inflating is bounded: output is counted against a limit while it is
//! produced and the buffer never grows past the limit, so a small message
//! that would inflate to gigabytes fails after at most the limit.
//!
//! The backend is zlib-rs through flate2. Like zlib, it cannot build a raw
//! DEFLATE compressor with an 8-bit window, and flate2 takes window sizes
//! 9 to 15 only. Neither matters: an inflater with a wider window than the
//! sender's reads its stream unchanged, and zlib's compressor never emits a
//! match farther back than the window size less 262 bytes, so a 9-bit
//! compressor's matches reach at most 250 bytes back and its stream is
//! valid for a peer that agreed on 8 bits (checked in the tests).

pub mod negotiate;

pub use negotiate::{negotiate, Agreement, Policy};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::error::ProtocolError;
use super::frame::{encode_header, OpCode, MAX_HEADER_LEN, RSV1};
use super::message::MessageKind;

/// §7.2.1: the bytes a sync flush ends with; removed by the sender,
/// appended by the receiver.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The narrowest window the backend builds (see the module doc).
pub const BACKEND_MIN_WINDOW_BITS: u8 = 9;

/// The compression level: zlib-rs's level 1, its fast "quick" strategy.
/// On 1 KiB JSON-like text it compresses about as well as level 6 at a
/// fraction of the time (see `benches/deflate.rs`).
pub const LEVEL: u32 = 1;

/// How much inflate output grows at least per step.
const INFLATE_STEP: usize = 4 << 10;

/// The backend's window for a negotiated one.
fn backend_bits(bits: u8) -> u8 {
    bits.clamp(BACKEND_MIN_WINDOW_BITS, negotiate::MAX_WINDOW_BITS)
}

/// A message compressor.
pub struct Deflater {
    z: Compress,
    window_bits: u8,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor whose matches stay within a `window_bits` window (8 to
    /// 15; 8 compresses with 9, whose matches fit 8: see the module doc).
    pub fn new(window_bits: u8) -> Deflater {
        let bits = backend_bits(window_bits);
        Deflater {
            z: Compress::new_with_window_bits(Compression::new(LEVEL), false, bits),
            window_bits: bits,
        }
    }

    /// The window the backend compresses with (9 to 15).
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// The memory a compressor with this window holds, in bytes: zlib-rs
    /// allocates a doubled window, a chain of 2-byte positions per window
    /// byte, a 64K-entry hash head, and 112 KiB of symbol and output buffers
    /// (memory level 8; flate2 does not offer another), plus its state. So
    /// the window bounds little of it: about 380 KiB at 15 bits, 250 KiB
    /// at 9 (resident when idle, measured: about 310 KiB at 15 bits and
    /// 190 KiB at 10).
    pub fn memory(window_bits: u8) -> usize {
        let w = 1usize << backend_bits(window_bits);
        2 * w + 2 * w + (128 << 10) + (112 << 10) + (6 << 10)
    }

    /// Appends `msg` compressed as one message's payload (§7.2.1) to `out`.
    /// With `reset` the message starts from an empty window (no context
    /// takeover); without, it may refer to earlier messages. Returns `false`
    /// (with `out` as it was) if the backend failed, which it does only on
    /// a broken state: the caller then sends the message uncompressed.
    pub fn compress(&mut self, msg: &[u8], out: &mut Vec<u8>, reset: bool) -> bool {
        if reset {
            self.z.reset();
        }
        let start = out.len();
        let mut input = msg;
        loop {
            // Room for what is left: incompressible input grows by ~5 bytes
            // per 16 KiB stored block, and the flush adds a few more.
            let want = input.len() + input.len() / 1024 + 64;
            if out.capacity() - out.len() < want.min(64 << 10) {
                out.reserve(want.min(256 << 10));
            }
            let before = self.z.total_in();
            let res = self.z.compress_vec(input, out, FlushCompress::Sync);
            let used = usize::try_from(self.z.total_in() - before).unwrap_or(usize::MAX);
            if res.is_err() {
                out.truncate(start);
                self.z.reset();
                return false;
            }
            input = input.get(used..).unwrap_or_default();
            // The flush is complete when the input is used up and the
            // backend stopped with output room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) && out.len() - start >= TAIL.len() {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // A sync flush with nothing new since the last one writes
            // nothing at all, and an empty payload plus the tail is a cut
            // stored block. §7.2.3.6: an empty message is one 0x00 byte,
            // an empty stored block once the tail is appended. The stream
            // is byte-aligned after the last flush, so it fits anywhere.
            out.push(0x00);
        }
        true
    }
}

/// Appends a whole unmasked frame carrying `msg` compressed by `z`, RSV1 set
/// (RFC 7692 §6.1): how a server sends a compressed message. With `reset`
/// the message does not refer to earlier ones. If the backend fails the
/// message goes uncompressed instead, RSV1 clear; so it does, with
/// `reset`, when compressing did not make it shorter (random bytes grow
/// by about 5%): RSV1 is per message, and with the compressor reset for
/// every message nothing later depends on this one. Without `reset` the
/// peer's window must see it, so it goes compressed whatever its size.
/// Returns the compressed payload's length, or `None` if it went
/// uncompressed.
pub fn write_compressed_message(
    out: &mut Vec<u8>,
    kind: MessageKind,
    msg: &[u8],
    z: &mut Deflater,
    reset: bool,
) -> Option<usize> {
    let op = match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    };
    // Compress after room for the longest header, then move the payload
    // down to follow the real one: one pass over the compressed bytes.
    let start = out.len();
    out.resize(start + MAX_HEADER_LEN, 0);
    let body = out.len();
    if !z.compress(msg, out, reset) {
        out.truncate(start);
        super::frame::write_frame(out, op, msg);
        return None;
    }
    let len = out.len() - body;
    if reset && len >= msg.len() {
        out.truncate(start);
        super::frame::write_frame(out, op, msg);
        return None;
    }
    let header = encode_header(true, RSV1, op, len as u64, None);
    let header = header.as_slice();
    out.copy_within(body.., start + header.len());
    out.truncate(start + header.len() + len);
    if let Some(dst) = out.get_mut(start..start + header.len()) {
        dst.copy_from_slice(header);
    }
    Some(len)
}

/// A message decompressor.
pub struct Inflater {
    z: Decompress,
    window_bits: u8,
    /// Messages inflated so far.
    messages: u64,
    /// The last message ended the DEFLATE stream (a block with BFINAL set):
    /// the next one starts a new stream.
    ended: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// An inflater for a peer that compresses with at most `window_bits`
    /// (8 to 15; a window is never too wide to inflate with).
    pub fn new(window_bits: u8) -> Inflater {
        let bits = backend_bits(window_bits);
        Inflater {
            z: Decompress::new_with_window_bits(false, bits),
            window_bits: bits,
            messages: 0,
            ended: false,
        }
    }

    /// How many messages this inflater has inflated.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// The memory an inflater with this window holds once used, in bytes:
    /// its window (allocated on first use) and zlib-rs's state with its
    /// decoding tables (about 19 KiB, measured).
    pub fn memory(window_bits: u8) -> usize {
        (1usize << backend_bits(window_bits)) + (20 << 10)
    }

    /// Inflates one message's payload (all its frames' payloads, in order)
    /// into `out`, which it clears first.
    ///
    /// Output is counted while it is produced: past `max` bytes it stops
    /// with [`ProtocolError::MessageTooBig`], having grown `out` to at most
    /// `max + 1` bytes. `check` sees the output so far each time it grows
    /// (for incremental UTF-8 validation) and may stop it with an error.
    /// With `reset` the message starts from an empty window (the peer agreed
    /// to no context takeover). Data that is not valid DEFLATE
    /// is [`ProtocolError::InvalidCompressed`]; bytes after a final block
    /// are ignored.
    pub fn inflate(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        max: usize,
        reset: bool,
        check: &mut dyn FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        if reset || self.ended {
            self.z.reset(false);
            self.ended = false;
        }
        out.clear();
        let bound = max.saturating_add(1);
        for piece in [payload, &TAIL[..]] {
            let mut input = piece;
            loop {
                if out.len() == out.capacity() {
                    let step = out.capacity().max(INFLATE_STEP).min(bound - out.len());
                    if step == 0 {
                        return Err(ProtocolError::MessageTooBig);
                    }
                    out.reserve_exact(step);
                }
                let (in0, out0) = (self.z.total_in(), out.len());
                let status = self
                    .z
                    .decompress_vec(input, out, FlushDecompress::Sync)
                    .map_err(|_| self.fail())?;
                let used = usize::try_from(self.z.total_in() - in0).unwrap_or(usize::MAX);
                input = input.get(used..).unwrap_or_default();
                if out.len() > max {
                    return Err(self.fail_with(ProtocolError::MessageTooBig));
                }
                if out.len() > out0 {
                    check(out).map_err(|e| self.fail_with(e))?;
                }
                if status == Status::StreamEnd {
                    self.messages += 1;
                    // §7.2.3.4: a sender may end a message with a final
                    // block. Inflating stops there (what follows, like the
                    // padding in the RFC's example, is not DEFLATE data),
                    // and the next message starts a new stream.
                    self.ended = true;
                    return Ok(());
                }
                let room = out.len() < out.capacity();
                if input.is_empty() && room {
                    break;
                }
                if used == 0 && out.len() == out0 && room {
                    // No progress with input and room: a stream that
                    // cannot go on.
                    return Err(self.fail());
                }
            }
        }
        self.messages += 1;
        Ok(())
    }

    /// After an error the stream is unusable: start over next time.
    fn fail(&mut self) -> ProtocolError {
        self.fail_with(ProtocolError::InvalidCompressed)
    }

    fn fail_with(&mut self, e: ProtocolError) -> ProtocolError {
        self.ended = true;
        e
    }
}

#[cfg(test)]
mod tests;
