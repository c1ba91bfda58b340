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
#[inline]
pub(super) fn whole_frames<E: Events>(
    buf: &mut [u8],
    limits: &Limits,
    ev: &mut E,
) -> Result<usize, ProtocolError> {
    let mut pos = 0;
    while let Some(&[b0, b1]) = buf.get(pos..pos + 2) {
        // FIN, no RSV bit, text or binary; masked.
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => break,
        };
        if b1 & 0x80 == 0 {
            break;
        }
        let (len, at) = match b1 & 0x7f {
            126 => match buf.get(pos + 2..pos + 4) {
                Some(&[h, l]) => (u64::from(u16::from_be_bytes([h, l])), pos + 4),
                _ => break,
            },
            127 => match buf
                .get(pos + 2..pos + 10)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
            {
                Some(b) => (u64::from_be_bytes(b), pos + 10),
                None => break,
            },
            n => (u64::from(n), pos + 2),
        };
        if len > limits.max_frame as u64
            || len > limits.max_message as u64
            || limits.max_fragments == 0
        {
            break;
        }
        // Bounded by the limits just checked, so exact.
        let len = len as usize;
        let Some(&[k0, k1, k2, k3]) = buf.get(at..at + 4) else {
            break;
        };
        let Some(payload) = buf.get_mut(at + 4..at + 4 + len) else {
            break;
        };
        apply_mask(payload, [k0, k1, k2, k3], 0);
        if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        ev.message(kind, payload);
        pos = at + 4 + len;
    }
    Ok(pos)
}
