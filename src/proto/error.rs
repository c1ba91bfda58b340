//! Protocol errors: one small `Copy` enum, each variant mapped to the close
//! code RFC 6455 §7.4.1 asks for.

use std::fmt;

/// Why a WebSocket connection is being failed (RFC 6455 §7.1.7).
///
/// Every variant maps to exactly one close code through
/// [`ProtocolError::close_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolError {
    /// RSV1-3 set without a negotiated extension that defines them (§5.2).
    ReservedBits,
    /// Opcode 3-7 or 0xB-0xF (§5.2).
    ReservedOpcode,
    /// A client frame without a mask (§5.1).
    UnmaskedFrame,
    /// A server frame with a mask (§5.1).
    MaskedFrame,
    /// A 64-bit payload length with its most significant bit set (§5.2).
    LengthTopBit,
    /// A control frame with FIN clear (§5.5).
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlTooLong,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress (§5.4).
    ExpectedContinuation,
    /// A close frame whose payload is exactly one byte (§5.5.1).
    CloseTooShort,
    /// A close code that may not be sent on the wire (§7.4).
    InvalidCloseCode,
    /// A text message or close reason that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A message larger than the configured limit.
    MessageTooBig,
    /// A single frame larger than the configured limit.
    FrameTooBig,
    /// More fragments in one message than the configured limit.
    TooManyFragments,
    /// RSV1 (compressed) on a control frame (RFC 7692 §6).
    CompressedControl,
    /// RSV1 on a continuation frame: only a message's first frame says
    /// whether it is compressed (RFC 7692 §6).
    CompressedContinuation,
    /// A compressed message that does not inflate (RFC 7692 §6.2).
    InvalidCompressed,
}

impl ProtocolError {
    /// The close code to send when failing the connection for this reason.
    pub const fn close_code(self) -> u16 {
        match self {
            // §7.4.1: 1007, data within a message not consistent with its type.
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressed => 1007,
            // §7.4.1: 1009, a message too big to process.
            ProtocolError::MessageTooBig
            | ProtocolError::FrameTooBig
            | ProtocolError::TooManyFragments => 1009,
            // §7.4.1: 1002, a protocol error.
            _ => 1002,
        }
    }

    /// A short human-readable reason, also sent as the close frame's reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::ReservedOpcode => "reserved opcode",
            ProtocolError::UnmaskedFrame => "client frame not masked",
            ProtocolError::MaskedFrame => "server frame masked",
            ProtocolError::LengthTopBit => "64-bit length with top bit set",
            ProtocolError::FragmentedControl => "fragmented control frame",
            ProtocolError::ControlTooLong => "control frame over 125 bytes",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "new message inside a fragmented one",
            ProtocolError::CloseTooShort => "one-byte close payload",
            ProtocolError::InvalidCloseCode => "invalid close code",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::MessageTooBig => "message too big",
            ProtocolError::FrameTooBig => "frame too big",
            ProtocolError::TooManyFragments => "too many fragments",
            ProtocolError::CompressedControl => "compressed control frame",
            ProtocolError::CompressedContinuation => "RSV1 on a continuation frame",
            ProtocolError::InvalidCompressed => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAMING: [ProtocolError; 13] = [
        ProtocolError::ReservedBits,
        ProtocolError::ReservedOpcode,
        ProtocolError::UnmaskedFrame,
        ProtocolError::MaskedFrame,
        ProtocolError::LengthTopBit,
        ProtocolError::FragmentedControl,
        ProtocolError::ControlTooLong,
        ProtocolError::UnexpectedContinuation,
        ProtocolError::ExpectedContinuation,
        ProtocolError::CloseTooShort,
        ProtocolError::InvalidCloseCode,
        ProtocolError::CompressedControl,
        ProtocolError::CompressedContinuation,
    ];
    const SIZE: [ProtocolError; 3] = [
        ProtocolError::MessageTooBig,
        ProtocolError::FrameTooBig,
        ProtocolError::TooManyFragments,
    ];

    #[test]
    fn utf8_and_inflate_errors_close_with_1007() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
        assert_eq!(ProtocolError::InvalidCompressed.close_code(), 1007);
    }

    #[test]
    fn size_errors_close_with_1009() {
        for e in SIZE {
            assert_eq!(e.close_code(), 1009, "{e}");
        }
    }

    #[test]
    fn framing_errors_close_with_1002() {
        for e in FRAMING {
            assert_eq!(e.close_code(), 1002, "{e}");
        }
    }

    #[test]
    fn every_reason_fits_a_close_frame() {
        // A close payload is 2 bytes of code plus the reason, at most 125 bytes.
        for e in FRAMING
            .iter()
            .chain(&SIZE)
            .chain(&[ProtocolError::InvalidUtf8, ProtocolError::InvalidCompressed])
        {
            assert!(!e.as_str().is_empty() && e.as_str().len() <= 123, "{e:?}");
        }
    }
}
