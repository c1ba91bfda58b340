//! `--deflate`: permessage-deflate (RFC 7692) from the client's side.
//!
//! wsload offers `permessage-deflate; client_max_window_bits` and checks the
//! server's answer strictly ([`parse_answer`]): an answer wsload did not
//! offer, an unknown or repeated parameter, or a bad value fails the
//! connection (§7: "the client MUST _Fail the WebSocket Connection_").
//!
//! Outgoing messages are compressed here with our own flate2 compressor
//! ([`Compressor`]), so what the server inflates was not made by its own
//! code. Frames are sealed on their way out ([`seal`]): the workloads write
//! plain masked frames as without `--deflate`, and every whole data frame
//! queued since the last flush is unmasked, compressed, and written again
//! with RSV1 set and the same masking key. Incoming compressed messages are
//! inflated by the frame session (`wsd::proto::Session::feed_with`, which
//! owns the RSV1 rules), bounded by the run's message limit: inflating
//! stops past it and the connection fails, whatever the frame claimed.

use std::fmt;

use flate2::{Compress, Compression, FlushCompress};
use wsd::proto::deflate::Inflater;
use wsd::proto::frame::{decode_header, encode_header, OpCode, Parsing, MAX_HEADER_LEN, RSV1};
use wsd::proto::mask::apply_mask;

use crate::stats::Wire;

/// The extension offered in every upgrade request under `--deflate`.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// §7.2.1: the bytes a sync flush ends with, removed before sending.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The compression level: zlib's fastest, so wsload's own CPU stays small
/// next to the server's (wsd compresses at level 1 too).
const LEVEL: u32 = 1;

/// What the server agreed to (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Agreement {
    /// Every server message starts from an empty window.
    pub server_no_context_takeover: bool,
    /// Every message we send must start from an empty window.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most this window (8 to 15).
    pub server_max_window_bits: Option<u8>,
    /// We must compress with at most this window (8 to 15).
    pub client_max_window_bits: Option<u8>,
}

/// Why a server's `Sec-WebSocket-Extensions` answer is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// An extension other than permessage-deflate (none other was offered).
    NotOffered(String),
    /// permessage-deflate twice.
    Twice,
    /// A parameter RFC 7692 does not define.
    UnknownParam(String),
    /// A parameter given twice (§7.1: the client must fail).
    Duplicate(&'static str),
    /// A parameter that takes no value given one, or one that needs a
    /// value given none.
    Value(&'static str),
    /// A window size that is not a decimal 8 to 15 without leading zeros.
    BadBits(&'static str),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::NotOffered(e) => write!(f, "the server agreed to '{e}', never offered"),
            AnswerError::Twice => f.write_str("the server agreed to permessage-deflate twice"),
            AnswerError::UnknownParam(p) => write!(f, "unknown permessage-deflate parameter '{p}'"),
            AnswerError::Duplicate(p) => write!(f, "permessage-deflate parameter {p} repeated"),
            AnswerError::Value(p) => {
                write!(f, "permessage-deflate parameter {p}: wrong value presence")
            }
            AnswerError::BadBits(p) => write!(f, "permessage-deflate parameter {p}: not 8 to 15"),
        }
    }
}

/// Cuts what a server sent to a printable length for error details.
fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}

/// A window-bits value: 8 to 15, decimal, no leading zero, possibly a
/// quoted string (§7.1: a quoted value is unquoted before it is checked).
fn window_bits(name: &'static str, value: Option<&str>) -> Result<u8, AnswerError> {
    let v = value.ok_or(AnswerError::Value(name))?;
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    match v.as_bytes() {
        [d @ b'8'..=b'9'] => Ok(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + d - b'0'),
        _ => Err(AnswerError::BadBits(name)),
    }
}

/// Parses the server's `Sec-WebSocket-Extensions` answer (every such line
/// of the response, joined with commas) to our [`OFFER`]. `Ok(None)`: the
/// server declined (no extension at all).
pub fn parse_answer(value: &str) -> Result<Option<Agreement>, AnswerError> {
    let mut agreed = None;
    // No value of a valid answer holds a comma or semicolon: splitting on
    // them first is exact for valid answers, and invalid ones fail anyway.
    for ext in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut params = ext.split(';').map(str::trim);
        let name = params.next().unwrap_or_default();
        if name != "permessage-deflate" {
            return Err(AnswerError::NotOffered(shown(name)));
        }
        if agreed.is_some() {
            return Err(AnswerError::Twice);
        }
        let mut a = Agreement::default();
        let mut seen = [false; 4];
        for p in params {
            let (key, v) = match p.split_once('=') {
                Some((k, v)) => (k.trim_end(), Some(v.trim_start())),
                None => (p, None),
            };
            let (i, name): (usize, &'static str) = match key {
                "server_no_context_takeover" => (0, "server_no_context_takeover"),
                "client_no_context_takeover" => (1, "client_no_context_takeover"),
                "server_max_window_bits" => (2, "server_max_window_bits"),
                "client_max_window_bits" => (3, "client_max_window_bits"),
                _ => return Err(AnswerError::UnknownParam(shown(key))),
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(AnswerError::Duplicate(name));
            }
            match i {
                0 | 1 if v.is_some() => return Err(AnswerError::Value(name)),
                0 => a.server_no_context_takeover = true,
                1 => a.client_no_context_takeover = true,
                2 => a.server_max_window_bits = Some(window_bits(name, v)?),
                _ => a.client_max_window_bits = Some(window_bits(name, v)?),
            }
        }
        agreed = Some(a);
    }
    Ok(agreed)
}

/// A message compressor: flate2 (zlib-rs), raw DEFLATE.
pub struct Compressor {
    z: Compress,
    /// Start every message from an empty window.
    reset: bool,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("reset", &self.reset)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor whose matches stay within a `window_bits` window. zlib
    /// builds no raw 8-bit compressor: 9 bits it is, whose matches reach at
    /// most 2^9 - 262 bytes back and so fit an 8-bit window too.
    pub fn new(window_bits: u8, reset: bool) -> Compressor {
        let bits = window_bits.clamp(9, 15);
        Compressor {
            z: Compress::new_with_window_bits(Compression::new(LEVEL), false, bits),
            reset,
        }
    }

    /// Appends `msg` compressed as one message's payload (§7.2.1: a sync
    /// flush, its trailing `00 00 ff ff` removed) to `out`. `false` if the
    /// backend failed (`out` as it was).
    pub fn compress(&mut self, msg: &[u8], out: &mut Vec<u8>) -> bool {
        if self.reset {
            self.z.reset();
        }
        let start = out.len();
        let mut input = msg;
        loop {
            // Incompressible input grows by a few bytes per stored block.
            out.reserve(input.len() + input.len() / 1024 + 64);
            let before = self.z.total_in();
            if self
                .z
                .compress_vec(input, out, FlushCompress::Sync)
                .is_err()
            {
                out.truncate(start);
                self.z.reset();
                return false;
            }
            let used = usize::try_from(self.z.total_in() - before).unwrap_or(usize::MAX);
            input = input.get(used..).unwrap_or_default();
            // Done once the input is used and the flush left room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.len() - start >= TAIL.len() && out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // §7.2.3.6: an empty message is one 0x00 byte.
            out.push(0x00);
        }
        true
    }
}

/// One connection's permessage-deflate state.
#[derive(Debug)]
pub struct Deflate {
    /// The terms.
    pub agreement: Agreement,
    /// Made on the first message sent: broadcast subscribers never send.
    compressor: Option<Compressor>,
    /// Inflates the server's messages (its window is allocated on first use).
    pub inflater: Inflater,
    /// Where a message is inflated to.
    pub inflated: Vec<u8>,
    /// A frame's payload, unmasked, while it is compressed.
    plain: Vec<u8>,
    /// Sealed frames, before they replace the plain ones.
    sealed: Vec<u8>,
}

impl Deflate {
    /// The state for a connection that agreed to `agreement`.
    pub fn new(agreement: Agreement) -> Deflate {
        Deflate {
            agreement,
            compressor: None,
            inflater: Inflater::new(agreement.server_max_window_bits.unwrap_or(15)),
            inflated: Vec::new(),
            plain: Vec::new(),
            sealed: Vec::new(),
        }
    }
}

/// Appends to `sealed` a frame with RSV1 set carrying `payload` (masked
/// with `key`) compressed, masked with the same key; `false` (`sealed` as
/// it was) if the backend failed. `plain` is scratch.
fn seal_frame(
    z: &mut Compressor,
    plain: &mut Vec<u8>,
    sealed: &mut Vec<u8>,
    (op, key): (OpCode, [u8; 4]),
    payload: &[u8],
) -> bool {
    plain.clear();
    plain.extend_from_slice(payload);
    apply_mask(plain, key, 0);
    let mark = sealed.len();
    // Compress after room for the longest header, then move it down.
    sealed.resize(mark + MAX_HEADER_LEN, 0);
    if !z.compress(plain, sealed) {
        sealed.truncate(mark);
        return false;
    }
    let len = sealed.len() - mark - MAX_HEADER_LEN;
    let header = encode_header(true, RSV1, op, len as u64, Some(key));
    let h = header.as_slice();
    sealed.copy_within(mark + MAX_HEADER_LEN.., mark + h.len());
    sealed.truncate(mark + h.len() + len);
    if let Some(dst) = sealed.get_mut(mark..mark + h.len()) {
        dst.copy_from_slice(h);
    }
    if let Some(p) = sealed.get_mut(mark + h.len()..) {
        apply_mask(p, key, 0);
    }
    true
}

/// Walks the whole frames queued in `out` from `from` (masked client
/// frames: wsload's own), counts their message bytes in `wire`, and with
/// `deflate` replaces each whole data message by its compressed frame.
/// Control frames, fragments and a trailing partial frame (a churn abort
/// mid-frame) go as they are. Returns where the next call starts.
pub fn seal(
    out: &mut Vec<u8>,
    from: usize,
    mut deflate: Option<&mut Deflate>,
    wire: &mut Wire,
) -> usize {
    let mut pos = from;
    if let Some(d) = deflate.as_deref_mut() {
        d.sealed.clear();
    }
    while let Some(rest) = out.get(pos..).filter(|r| !r.is_empty()) {
        let Ok(Parsing::Done { value: h, offset }) = decode_header(rest) else {
            break;
        };
        let Some(end) = usize::try_from(h.len)
            .ok()
            .and_then(|l| l.checked_add(pos + offset))
            .filter(|&end| end <= out.len())
        else {
            break;
        };
        let message = matches!(h.opcode, OpCode::Text | OpCode::Binary) && h.fin;
        if message {
            wire.msg_out += h.len;
        }
        if let Some(d) = deflate.as_deref_mut() {
            let frame = out.get(pos..end).unwrap_or_default();
            let payload = frame.get(offset..).unwrap_or_default();
            let sealed = match h.mask {
                Some(key) if message && h.rsv == 0 => {
                    let a = d.agreement;
                    let z = d.compressor.get_or_insert_with(|| {
                        Compressor::new(
                            a.client_max_window_bits.unwrap_or(15),
                            a.client_no_context_takeover,
                        )
                    });
                    seal_frame(z, &mut d.plain, &mut d.sealed, (h.opcode, key), payload)
                }
                _ => false,
            };
            // A control frame, or a failed backend: the frame goes as it
            // was (an uncompressed message is always allowed).
            if !sealed {
                d.sealed.extend_from_slice(frame);
            }
        }
        pos = end;
    }
    match deflate {
        Some(d) if pos > from => {
            let n = d.sealed.len();
            out.splice(from..pos, d.sealed.iter().copied());
            from + n
        }
        _ => pos,
    }
}

#[cfg(test)]
mod tests;
