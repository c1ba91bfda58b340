//! What a publish request delivers, and how one is refused: shared by the
//! single-message route and the NDJSON batches.

use std::borrow::Cow;

use crate::proto::MessageKind;

/// One message to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The room, e.g. `/chat/eu`.
    pub room: Cow<'a, str>,
    /// Text (valid UTF-8) or binary.
    pub kind: MessageKind,
    /// The payload: borrowed from the request when it could be.
    pub payload: Cow<'a, [u8]>,
}

/// A refusal of a whole request: the connection may stay open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status code.
    pub status: u16,
    /// What the answer says.
    pub message: Cow<'static, str>,
}

impl Refusal {
    /// A refusal with `status` saying `message`.
    pub fn new(status: u16, message: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// A room name for an answer, cut to 200 bytes.
pub(super) fn shorten(room: &str) -> String {
    let mut end = room.len().min(200);
    while !room.is_char_boundary(end) {
        end -= 1;
    }
    room.get(..end).unwrap_or_default().to_owned()
}
