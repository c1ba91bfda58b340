//! The session's fast path: whole, unfragmented, masked data frames.

use super::Events;
use crate::proto::error::ProtocolError;
use crate::proto::mask::apply_mask;
use crate::proto::message::{Limits, MessageKind};

/// The common case first: whole, unfragmented, masked text and binary
/// frames, each unmasked and handed out where it lies with no assembly.
/// Returns where the first frame it leaves to the general parser starts
/// (anything else: a control frame, a fragment, a frame not all here, RSV
/// bits, an unmasked frame, a length over a limit), or the error of a text
/// frame that is not UTF-8 (its bytes are unmasked already).
///
/// The input is walked by splitting off each part of a frame (header,
/// extended length, key, payload), so each length is checked once and no
/// index is computed twice. Inlined into the read path: most reads are
/// one small frame, and a call costs what parsing it does.
#[inline(always)]
pub(super) fn whole_frames<E: Events>(
    buf: &mut [u8],
    limits: &Limits,
    ev: &mut E,
) -> Result<usize, ProtocolError> {
    if limits.max_fragments == 0 {
        // No message may arrive at all: the general parser says why.
        return Ok(0);
    }
    let total = buf.len();
    // The longest frame payload taken here: a longer one goes to the
    // general parser, which rejects it.
    let max = limits.max_frame.min(limits.max_message) as u64;
    let mut rest = buf;
    loop {
        // Where this frame starts, counted from the end.
        let left = rest.len();
        let [b0, b1, tail @ ..] = std::mem::take(&mut rest) else {
            return Ok(total - left);
        };
        // FIN, no RSV bit, text or binary; masked.
        let kind = match *b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return Ok(total - left),
        };
        if *b1 & 0x80 == 0 {
            return Ok(total - left);
        }
        let (len, tail) = match *b1 & 0x7f {
            126 => match tail.split_first_chunk_mut::<2>() {
                Some((l, t)) => (u64::from(u16::from_be_bytes(*l)), t),
                None => return Ok(total - left),
            },
            127 => match tail.split_first_chunk_mut::<8>() {
                Some((l, t)) => (u64::from_be_bytes(*l), t),
                None => return Ok(total - left),
            },
            n => (u64::from(n), tail),
        };
        if len > max {
            return Ok(total - left);
        }
        let Some((key, tail)) = tail.split_first_chunk_mut::<4>() else {
            return Ok(total - left);
        };
        // `len` is bounded by the limits just checked, so the cast is exact.
        let Some((payload, next)) = tail.split_at_mut_checked(len as usize) else {
            return Ok(total - left);
        };
        apply_mask(payload, *key, 0);
        if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        ev.message(kind, payload);
        rest = next;
    }
}
