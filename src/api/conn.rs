//! One API connection's HTTP/1.1 request reader: fed bytes, it yields whole
//! requests, one after another on a keep-alive connection, pipelined or
//! not. Sans-IO: it never reads or writes a socket.
//!
//! ```text
//!             head complete, no body or body here
//!        ┌─────────────────────────────────────────────┐ (Request)
//!        │                                             │
//!        ▼     head complete, Content-Length: n        │
//!   ┌──► Head ────────────────────────────────► Body ──┘ (all n bytes here)
//!   │    │                                             ▲
//!   │    │ head complete, chunked                      │
//!   │    └────────────────────────────────► Chunked ───┘ (last chunk, trailers)
//!   │
//!   └─ every state ── a refusal (400, 413, 431, 501) ──► Failed (for good)
//! ```
//!
//! # The feed contract
//!
//! The caller keeps the connection's unconsumed input in one buffer and
//! calls [`ApiConn::feed`] with all of it whenever more arrives:
//!
//! - [`Feed::Request`]: a whole request, borrowed from the input (and, for
//!   a chunked body, from the connection's own buffer). `consumed` bytes of
//!   the input were its own: the caller answers, drops them, and feeds the
//!   rest at once, since a pipelined request may be whole already.
//! - [`Feed::NeedMore`]: the caller drops the first `consumed` bytes (only
//!   a chunked body is taken before it is whole: its decoded data moves to
//!   the connection's buffer; otherwise `consumed` is 0), keeps the rest,
//!   and feeds again when more has arrived. If `send_continue`, the client
//!   waits for `100 Continue` before sending its body
//!   ([`super::write_continue`]).
//! - `Err`: the request cannot be read; the caller answers it
//!   ([`super::write_parse_error`]) and closes: what follows cannot be
//!   framed.
//!
//! Work per call is proportional to the new bytes: the head's end is
//! searched from where the last call stopped, a body's length is compared,
//! and chunks are decoded once. A head is parsed when it is complete, and
//! once more when a body that came later completes it (the fields are
//! borrowed, not stored). The caller's buffer never needs more than
//! `max_head + max_body` bytes for a request (or a chunk line's bound,
//! [`super::MAX_CHUNK_LINE`], in a chunked body), nor the connection's own
//! more than `max_head + max_body`.

use super::chunked::{self, Dechunk, Progress};
pub use super::error::ParseError;
use super::head::{self, Framing, Head};
use crate::proto::handshake;

/// The bounds of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest request head (request line and headers), and of a
    /// chunked body's trailer section: more is a 431.
    pub max_head: usize,
    /// The largest body (`--max-message`): more is a 413, known from the
    /// head (or the chunk size line), before the body is read.
    pub max_body: usize,
}

/// A whole request. Strings and the body borrow the input or the
/// connection's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The request target as sent, e.g. `/publish/chat?x=1`.
    pub target: &'a str,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// The `Content-Type` value, trimmed.
    pub content_type: Option<&'a [u8]>,
    /// The `Authorization` value, trimmed.
    pub authorization: Option<&'a [u8]>,
    /// The `Content-Length`, if the body was framed by one.
    pub content_length: Option<u64>,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// Whether the connection stays open after the answer: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// The body: a slice of the input (Content-Length) or the decoded
    /// chunks.
    pub body: &'a [u8],
}

/// What a call of [`ApiConn::feed`] found; see the module doc.
#[derive(Debug, PartialEq, Eq)]
pub enum Feed<'a> {
    /// A whole request, the first `consumed` bytes of the input.
    Request {
        /// The request.
        request: Request<'a>,
        /// Input bytes it took: the next request starts after them.
        consumed: usize,
    },
    /// The request is incomplete.
    NeedMore {
        /// Input bytes taken (a chunked body's); drop them.
        consumed: usize,
        /// Answer `100 Continue` now: the client waits for it.
        send_continue: bool,
    },
}

/// Where the connection is; see the module's diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a head; the first `scanned` input bytes hold no end of
    /// one.
    Head { scanned: usize },
    /// The head (`head_len` bytes at the start of the input) announced
    /// `body_len` bytes of body.
    Body { head_len: usize, body_len: usize },
    /// A chunked body: the head (`head_len` bytes) and the chunks decoded
    /// so far are in the connection's buffer.
    Chunked { head_len: usize, dechunk: Dechunk },
    /// Refused: every call returns the refusal.
    Failed(ParseError),
}

/// A chunked request's buffer of more than this is freed, not kept, once
/// the request is answered.
const KEEP: usize = 64 << 10;

/// One connection's request reader. See the module doc.
#[derive(Debug)]
pub struct ApiConn {
    state: State,
    /// A chunked request: its head, then its decoded body. Empty between
    /// requests.
    own: Vec<u8>,
}

impl Default for ApiConn {
    fn default() -> ApiConn {
        ApiConn::new()
    }
}

impl ApiConn {
    /// A connection waiting for its first request.
    pub fn new() -> ApiConn {
        ApiConn {
            state: State::Head { scanned: 0 },
            own: Vec::new(),
        }
    }

    /// Whether a request has begun and not completed: the request timeout
    /// applies, and an end of stream now cuts a request short. Between
    /// requests a keep-alive connection is idle.
    pub fn in_request(&self) -> bool {
        self.state != State::Head { scanned: 0 }
    }

    /// How many input bytes the current request takes in all, once its
    /// head announced a `Content-Length` (so the caller can make room for
    /// it in one go); `None` otherwise.
    pub fn request_len(&self) -> Option<usize> {
        match self.state {
            State::Body { head_len, body_len } => Some(head_len + body_len),
            _ => None,
        }
    }

    /// The current request's head, once it is read and while its body is
    /// not (its `body` is empty): what [`super::admit`] checks before the
    /// body is buffered. `buf` is the input as last fed.
    pub fn head<'a>(&'a self, buf: &'a [u8], limits: &Limits) -> Option<Request<'a>> {
        let (bytes, head_len) = match self.state {
            State::Body { head_len, .. } => (buf, head_len),
            State::Chunked { head_len, .. } => (&self.own[..], head_len),
            State::Head { .. } | State::Failed(_) => return None,
        };
        let head = reparse(bytes, head_len, limits).ok()?;
        Some(request(&head, &[]))
    }

    /// Bytes the connection holds on its own (a chunked body in progress).
    pub fn memory(&self) -> usize {
        self.own.capacity()
    }

    /// Reads from `buf`, the connection's unconsumed input. See the module
    /// doc for what the caller does with each answer.
    pub fn feed<'a>(&'a mut self, buf: &'a [u8], limits: &Limits) -> Result<Feed<'a>, ParseError> {
        let parsed = match self.read_head(buf, limits) {
            Ok(parsed) => parsed,
            Err(e) => return Err(self.fail(e)),
        };
        self.finish(buf, parsed, limits)
    }

    /// Refuses the request for good.
    fn fail(&mut self, e: ParseError) -> ParseError {
        self.state = State::Failed(e);
        self.own = Vec::new();
        e
    }

    /// In the Head state, looks for a whole head and moves on to the body
    /// once there is one. Returns what this call parsed, if anything.
    fn read_head(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
        let none = Parsed {
            taken: 0,
            expect_continue: false,
        };
        let State::Head { scanned } = self.state else {
            return Ok(none);
        };
        let max_head = limits.max_head;
        if !self.own.is_empty() {
            // The last request's chunks, answered by now.
            self.own.clear();
            if self.own.capacity() > KEEP {
                self.own = Vec::new();
            }
        }
        // Every verdict on a head is taken on the bytes a head may fill, so
        // that it does not depend on how the input was cut into reads.
        let window = buf.get(..max_head).unwrap_or(buf);
        // Refuses at once what can never become a request line.
        if handshake::check_request_line(window).is_err() {
            return Err(ParseError::BadRequest("not an HTTP request"));
        }
        if !head_end(window, scanned) {
            if window.len() >= max_head {
                // Malformed, or too large.
                head::parse(window, max_head)?;
                return Err(ParseError::HeadTooLarge);
            }
            self.state = State::Head {
                scanned: window.len(),
            };
            return Ok(none);
        }
        let Some(head) = head::parse(window, max_head)? else {
            self.state = State::Head {
                scanned: window.len(),
            };
            return Ok(none);
        };
        let mut taken = 0;
        self.state = match head.framing {
            Framing::None => State::Body {
                head_len: head.len,
                body_len: 0,
            },
            Framing::Length(n) => match usize::try_from(n) {
                Ok(n) if n <= limits.max_body => State::Body {
                    head_len: head.len,
                    body_len: n,
                },
                _ => return Err(ParseError::BodyTooLarge),
            },
            Framing::Chunked => {
                // The head moves to the connection's buffer, so that the
                // input can be dropped as the chunks are decoded.
                chunked::append(
                    &mut self.own,
                    buf.get(..head.len).unwrap_or_default(),
                    max_head + limits.max_body,
                );
                taken = head.len;
                State::Chunked {
                    head_len: head.len,
                    dechunk: Dechunk::Size,
                }
            }
        };
        Ok(Parsed {
            taken,
            expect_continue: head.expect_continue,
        })
    }

    /// Completes the call once the head is read: checks whether a body is
    /// whole, decodes chunks, and hands out the request.
    fn finish<'a>(
        &'a mut self,
        buf: &'a [u8],
        parsed: Parsed,
        limits: &Limits,
    ) -> Result<Feed<'a>, ParseError> {
        let need_more = |consumed| Feed::NeedMore {
            consumed,
            send_continue: parsed.expect_continue,
        };
        match self.state {
            State::Failed(e) => Err(e),
            State::Head { .. } => Ok(need_more(0)),
            State::Body { head_len, body_len } => {
                let end = head_len + body_len;
                let Some(body) = buf.get(head_len..end) else {
                    return Ok(need_more(0));
                };
                self.state = State::Head { scanned: 0 };
                let head = reparse(buf, head_len, limits)?;
                Ok(Feed::Request {
                    request: request(&head, body),
                    consumed: end,
                })
            }
            State::Chunked {
                head_len,
                mut dechunk,
            } => {
                let from = parsed.taken;
                let input = buf.get(from..).unwrap_or_default();
                let max_trailer = limits.max_head;
                let progress =
                    dechunk.decode(input, &mut self.own, head_len, limits.max_body, max_trailer);
                match progress {
                    Err(e) => Err(self.fail(e)),
                    Ok(Progress::Took(n)) => {
                        self.state = State::Chunked { head_len, dechunk };
                        Ok(need_more(from + n))
                    }
                    Ok(Progress::Done(n)) => {
                        self.state = State::Head { scanned: 0 };
                        let this: &'a ApiConn = self;
                        let head = reparse(&this.own, head_len, limits)?;
                        let body = this.own.get(head_len..).unwrap_or_default();
                        Ok(Feed::Request {
                            request: request(&head, body),
                            consumed: from + n,
                        })
                    }
                }
            }
        }
    }
}

/// What one call's head reading did.
#[derive(Clone, Copy, Debug)]
struct Parsed {
    /// Input bytes taken (a chunked request's head).
    taken: usize,
    /// A head parsed in this call asked for `100 Continue`.
    expect_continue: bool,
}

/// Parses again a head parsed before (its fields are not stored).
fn reparse<'a>(bytes: &'a [u8], head_len: usize, limits: &Limits) -> Result<Head<'a>, ParseError> {
    match head::parse(bytes.get(..head_len).unwrap_or_default(), limits.max_head) {
        Ok(Some(head)) => Ok(head),
        // The caller changed the bytes it had fed.
        _ => Err(ParseError::BadRequest("input changed under the parser")),
    }
}

/// The request of a head and its body.
fn request<'a>(head: &Head<'a>, body: &'a [u8]) -> Request<'a> {
    Request {
        method: head.method,
        target: head.target,
        version: head.version,
        content_type: head.content_type,
        authorization: head.authorization,
        content_length: match head.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        },
        chunked: head.framing == Framing::Chunked,
        keep_alive: head.keep_alive,
        body,
    }
}

/// Whether `buf` holds the blank line that ends a head, searching from
/// `scanned` (less the bytes a line end may straddle): `\n\n` or `\n\r\n`
/// after the request line has begun. Empty lines before a request (RFC 9112
/// §2.2) do not count: the head is parsed only once its end is there, so
/// that a malformed one is refused the same however the input was cut.
fn head_end(buf: &[u8], scanned: usize) -> bool {
    let Some(start) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else {
        return false;
    };
    let from = scanned.saturating_sub(2).max(start);
    let rest = buf.get(from..).unwrap_or_default();
    rest.windows(2).enumerate().any(|(i, w)| match w {
        [b'\n', b'\n'] => true,
        [b'\n', b'\r'] => rest.get(i + 2) == Some(&b'\n'),
        _ => false,
    })
}

#[cfg(test)]
mod tests;
