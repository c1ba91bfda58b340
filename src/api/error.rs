//! Why a request cannot be read: the errors of the HTTP reader, below the
//! reader and its parts (head, chunked bodies) that return them.

/// Why a request cannot be read. The connection must be closed after the
/// answer: the rest of its input cannot be framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// 400: malformed syntax or framing, with what was wrong.
    BadRequest(&'static str),
    /// 413: a body over [`Limits::max_body`](super::Limits::max_body).
    BodyTooLarge,
    /// 431: a head over [`Limits::max_head`](super::Limits::max_head), or too many header lines.
    HeadTooLarge,
    /// 501: a transfer coding other than `chunked`.
    NotImplemented,
}

impl ParseError {
    /// The status code of the answer.
    pub fn status(self) -> u16 {
        match self {
            ParseError::BadRequest(_) => 400,
            ParseError::BodyTooLarge => 413,
            ParseError::HeadTooLarge => 431,
            ParseError::NotImplemented => 501,
        }
    }

    /// What the answer says.
    pub fn message(self) -> &'static str {
        match self {
            ParseError::BadRequest(why) => why,
            ParseError::BodyTooLarge => "body larger than the message limit (--max-message)",
            ParseError::HeadTooLarge => "request head too large",
            ParseError::NotImplemented => "unsupported Transfer-Encoding: only chunked",
        }
    }
}
