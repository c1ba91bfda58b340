//! Close frame rules (RFC 6455 §5.5.1, §7.4).

use super::error::ProtocolError;

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The endpoint is going away (server shutdown, browser navigation).
pub const GOING_AWAY: u16 = 1001;
/// Policy violation: the generic "you broke a rule" code, used for slow consumers.
pub const POLICY: u16 = 1008;
/// Reserved for reporting "no status code was present"; never on the wire.
pub const NO_STATUS: u16 = 1005;
/// Reserved for reporting "closed without a close frame"; never on the wire.
pub const ABNORMAL: u16 = 1006;

/// Whether a peer may send `code` in a close frame (§7.4.1, §7.4.2).
///
/// Allowed: the defined codes 1000-1003 and 1007-1011, the IANA-registered
/// 1012-1014, and 3000-4999 (libraries, frameworks, applications). Never
/// allowed: below 1000, 1004 (reserved), 1005, 1006 and 1015 (local use
/// only), anything else in 1016-2999 (unassigned), and 5000 and up.
pub const fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close frame's payload, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code, or `None` for an empty payload.
    pub code: Option<u16>,
    /// The UTF-8 reason (possibly empty).
    pub reason: &'a str,
}

/// Parses and validates a close frame's payload.
pub fn parse_close(payload: &[u8]) -> Result<CloseFrame<'_>, ProtocolError> {
    match payload {
        [] => Ok(CloseFrame {
            code: None,
            reason: "",
        }),
        // §5.5.1: if there is a body, its first two bytes are the code.
        [_] => Err(ProtocolError::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_code(code) {
                return Err(ProtocolError::InvalidCloseCode);
            }
            // §5.5.1: the reason "is not guaranteed to be human readable" but
            // is UTF-8; invalid UTF-8 fails with 1007 (§8.1).
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(CloseFrame {
                code: Some(code),
                reason,
            })
        }
    }
}

/// Writes a close payload (code and reason, the reason cut at a character
/// boundary to fit a control frame) into `out`, returning its length.
pub fn encode_close(code: u16, reason: &str, out: &mut [u8; 125]) -> usize {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = reason.as_bytes().get(..cut).unwrap_or_default();
    let (head, rest) = out.split_at_mut(2);
    head.copy_from_slice(&code.to_be_bytes());
    if let Some(dst) = rest.get_mut(..reason.len()) {
        dst.copy_from_slice(reason);
    }
    2 + reason.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defined_and_application_codes_are_valid() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(is_valid_code(code), "{code}");
        }
    }

    #[test]
    fn reserved_local_and_unassigned_codes_are_invalid() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_code(code), "{code}");
        }
    }

    #[test]
    fn empty_payload_has_no_code() {
        assert_eq!(
            parse_close(&[]),
            Ok(CloseFrame {
                code: None,
                reason: ""
            })
        );
    }

    #[test]
    fn one_byte_payload_is_a_protocol_error() {
        assert_eq!(parse_close(&[0x03]), Err(ProtocolError::CloseTooShort));
    }

    #[test]
    fn code_and_reason_are_parsed() {
        assert_eq!(
            parse_close(b"\x03\xe8bye"),
            Ok(CloseFrame {
                code: Some(1000),
                reason: "bye"
            })
        );
    }

    #[test]
    fn invalid_code_is_a_protocol_error() {
        assert_eq!(
            parse_close(&[0x03, 0xed]),
            Err(ProtocolError::InvalidCloseCode)
        );
    }

    #[test]
    fn close_with_invalid_utf8_reason_is_1007() {
        let err = parse_close(b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")
            .unwrap_err();
        assert_eq!(err.close_code(), 1007);
    }

    #[test]
    fn long_reason_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let mut out = [0u8; 125];
        let n = encode_close(1000, &reason, &mut out);
        assert!(n <= 125);
        assert_eq!(parse_close(&out[..n]).unwrap().reason.len(), 122);
    }
}
