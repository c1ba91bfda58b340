//! Message assembly state and its limits.
//!
//! A message's payload is assembled contiguously in the read buffer: the
//! first frame's payload stays where it arrived and each continuation's
//! payload is moved down to follow it, so the frame headers and any control
//! frames in between fall out. An unfragmented message is never moved.

use super::error::ProtocolError;
use super::utf8::Utf8Validator;

/// What a complete message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text, already validated.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// Limits on what a peer may send. Checked at the frame header, before a
/// byte of the payload is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest message, counted across all its fragments.
    pub max_message: usize,
    /// The largest single frame.
    pub max_frame: usize,
    /// The most frames one message may be split into.
    pub max_fragments: u32,
}

impl Default for Limits {
    /// 16 MiB messages and frames, 131072 fragments a message. Fragments cost
    /// no memory here (their headers are squeezed out as they arrive), so the
    /// fragment cap bounds work, not memory; Autobahn 9.3.1 sends 65536.
    fn default() -> Self {
        Limits {
            max_message: 16 << 20,
            max_frame: 16 << 20,
            max_fragments: 1 << 17,
        }
    }
}

/// The data frame whose payload is being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DataFrame {
    /// The masking key (client frames only).
    pub mask: Option<[u8; 4]>,
    /// Payload bytes still to come.
    pub remaining: usize,
    /// Payload bytes already received: the mask phase of the next byte.
    pub offset: usize,
    /// FIN: the message ends with this frame.
    pub fin: bool,
}

/// A message in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Assembly {
    pub kind: MessageKind,
    /// The first frame had RSV1 set: the payload is compressed
    /// (permessage-deflate) and is inflated once it is complete.
    pub compressed: bool,
    /// Payload bytes assembled so far.
    pub len: usize,
    /// Frames received so far, the first included.
    pub fragments: u32,
    pub utf8: Utf8Validator,
    /// The frame being received, if its header has been read.
    pub frame: Option<DataFrame>,
}

impl Assembly {
    pub fn new(kind: MessageKind, compressed: bool) -> Assembly {
        Assembly {
            kind,
            compressed,
            len: 0,
            fragments: 0,
            utf8: Utf8Validator::default(),
            frame: None,
        }
    }

    /// Starts a frame of `len` payload bytes, checking it against the limits.
    pub fn begin_frame(
        &mut self,
        len: usize,
        mask: Option<[u8; 4]>,
        fin: bool,
        limits: &Limits,
    ) -> Result<(), ProtocolError> {
        self.fragments += 1;
        if self.fragments > limits.max_fragments {
            return Err(ProtocolError::TooManyFragments);
        }
        match self.len.checked_add(len) {
            Some(total) if total <= limits.max_message => {}
            _ => return Err(ProtocolError::MessageTooBig),
        }
        self.frame = Some(DataFrame {
            mask,
            remaining: len,
            offset: 0,
            fin,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        max_message: 100,
        max_frame: 100,
        max_fragments: 3,
    };

    #[test]
    fn message_limit_counts_across_fragments() {
        let mut a = Assembly::new(MessageKind::Binary, false);
        a.begin_frame(60, None, false, &SMALL).unwrap();
        a.len = 60;
        assert_eq!(a.begin_frame(40, None, true, &SMALL), Ok(()));
        assert_eq!(
            a.begin_frame(41, None, true, &SMALL),
            Err(ProtocolError::MessageTooBig)
        );
    }

    #[test]
    fn fragment_limit_is_inclusive() {
        let mut a = Assembly::new(MessageKind::Text, false);
        for _ in 0..3 {
            assert_eq!(a.begin_frame(0, None, false, &SMALL), Ok(()));
        }
        assert_eq!(
            a.begin_frame(0, None, false, &SMALL),
            Err(ProtocolError::TooManyFragments)
        );
    }

    #[test]
    fn huge_declared_length_does_not_overflow() {
        let mut a = Assembly::new(MessageKind::Binary, false);
        a.len = 10;
        assert_eq!(
            a.begin_frame(usize::MAX, None, true, &SMALL),
            Err(ProtocolError::MessageTooBig)
        );
    }
}
