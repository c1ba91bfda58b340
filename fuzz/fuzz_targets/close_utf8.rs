//! The close-frame checks (`parse_close`) and the incremental UTF-8
//! validator (`Utf8Validator`).
//!
//! Input layout: byte 0's low nibble is a count `k`; the next `k` bytes are
//! the lengths of the validator's growing prefixes (each step adds that many
//! bytes); the rest is the payload.
//!
//! Properties:
//! - `parse_close(payload)` equals a reference written from RFC 6455 §5.5.1
//!   and §7.4: empty ⇒ no code; one byte ⇒ `CloseTooShort`; a code outside
//!   1000-1003, 1007-1014, 3000-4999 ⇒ `InvalidCloseCode`; a reason that is
//!   not UTF-8 ⇒ `InvalidUtf8`; otherwise the code and reason;
//! - a validator advanced over growing prefixes (the fuzzer's steps, and
//!   separately one byte at a time up to 512 bytes) fails exactly at the first prefix that no
//!   bytes can complete to valid UTF-8 (`from_utf8(prefix)` has
//!   `error_len() == Some(_)`), never earlier; and `finish` on the whole
//!   agrees with `std::str::from_utf8`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::proto::close::{parse_close, CloseFrame};
use wsd::proto::utf8::Utf8Validator;
use wsd::proto::ProtocolError;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(first & 0x0F).min(rest.len());
    let (steps, payload) = rest.split_at(k);

    assert_eq!(parse_close(payload), reference_close(payload), "{payload:02x?}");

    let mut points = Vec::new();
    let mut at = 0;
    for &s in steps {
        at = (at + usize::from(s)).min(payload.len());
        points.push(at);
    }
    points.push(payload.len());
    check_utf8(payload, &points);
    // One byte at a time (quadratic in the reference: short payloads only).
    if payload.len() <= 512 {
        let every: Vec<usize> = (0..=payload.len()).collect();
        check_utf8(payload, &every);
    }
});

fn reference_close(p: &[u8]) -> Result<CloseFrame<'_>, ProtocolError> {
    if p.is_empty() {
        return Ok(CloseFrame { code: None, reason: "" });
    }
    if p.len() == 1 {
        return Err(ProtocolError::CloseTooShort);
    }
    let code = u16::from(p[0]) * 256 + u16::from(p[1]);
    let defined = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014];
    if !(defined.contains(&code) || (3000..5000).contains(&code)) {
        return Err(ProtocolError::InvalidCloseCode);
    }
    match std::str::from_utf8(&p[2..]) {
        Ok(reason) => Ok(CloseFrame { code: Some(code), reason }),
        Err(_) => Err(ProtocolError::InvalidUtf8),
    }
}

/// Advances a validator over `bytes[..p]` for each `p` in `points` (growing,
/// ending with the whole), then finishes it.
fn check_utf8(bytes: &[u8], points: &[usize]) {
    let mut v = Utf8Validator::default();
    for &p in points {
        let prefix = &bytes[..p];
        // A prefix some bytes could complete: from_utf8 fails only for
        // running out of input.
        let completable = match std::str::from_utf8(prefix) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        match v.advance(prefix) {
            Ok(()) => assert!(completable, "missed the error in {prefix:02x?}"),
            Err(e) => {
                assert_eq!(e, ProtocolError::InvalidUtf8);
                assert!(!completable, "failed a valid prefix {prefix:02x?}");
                // The validator is done; so is the check.
                return;
            }
        }
    }
    let whole = std::str::from_utf8(bytes).is_ok();
    assert_eq!(v.finish(bytes.len()).is_ok(), whole, "finish on {bytes:02x?}");
}
