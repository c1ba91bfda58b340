//! A sans-IO codec for the part of the NATS client protocol a pub/sub
//! client meets (docs.nats.io, "Client Protocol"): commands out, server
//! operations in.
//!
//! [`decode`] reads one server operation from the start of a byte slice and
//! borrows from it: nothing is allocated. Incomplete input is not an error
//! but [`Parsing::NeedMore`], and consumes nothing. The server sends
//!
//! ```text
//! INFO {json}␍␊                                  its settings (at connect, and on cluster changes)
//! MSG <subject> <sid> [reply-to] <#bytes>␍␊<payload>␍␊   a message for a subscription
//! PING␍␊  PONG␍␊  +OK␍␊  -ERR '<text>'␍␊
//! ```
//!
//! Operation names are case-insensitive and arguments are separated by
//! spaces or tabs, as the server's own parser allows. Every control line is
//! bounded by [`MAX_LINE`] and a `MSG`'s length is checked at its line,
//! before a byte of payload is awaited: one over [`Limits::max_payload`]
//! is [`Op::Oversized`], whose bytes the caller skips as they arrive (a
//! backend's oversized publish is dropped, not a reason to reset). `HMSG`
//! (headers) is never sent to a client that did not ask for headers in its
//! `CONNECT`, and this one does not; it is an error like any unknown
//! operation.
//!
//! The encoder writes `CONNECT`, `PUB`, `SUB`, `UNSUB`, `PING` and `PONG`.

use std::io::Write as _;

use serde::Serialize;

use crate::proto::Parsing;

/// The longest control line accepted, CRLF excluded. `INFO` is the longest
/// the server sends: its `connect_urls` grow with the cluster.
pub const MAX_LINE: usize = 64 << 10;

/// What the decoder accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest `MSG` payload kept; a larger one is [`Op::Oversized`].
    pub max_payload: usize,
}

/// Why input is not what a NATS server sends. Any of them means the
/// connection is out of step and must be reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatsError {
    /// An operation name this client does not know (or `HMSG`).
    UnknownOp,
    /// A CR not followed by LF, an LF without CR, or a payload not followed
    /// by CRLF.
    BadLineEnd,
    /// A control line longer than [`MAX_LINE`].
    LineTooLong,
    /// A `MSG` with the wrong number of arguments, a malformed sid or
    /// length, or arguments after `PING`, `PONG` or `+OK`.
    BadArgs,
}

impl std::fmt::Display for NatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsError::UnknownOp => f.write_str("unknown operation"),
            NatsError::BadLineEnd => f.write_str("malformed line end"),
            NatsError::LineTooLong => write!(f, "control line longer than {MAX_LINE} bytes"),
            NatsError::BadArgs => f.write_str("malformed arguments"),
        }
    }
}

/// A `MSG`'s control line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHead<'a> {
    /// The subject it was published to.
    pub subject: &'a [u8],
    /// The subscription it is for.
    pub sid: u64,
    /// The reply subject, if the publisher gave one.
    pub reply: Option<&'a [u8]>,
}

/// One server operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `INFO`: the JSON object, unparsed (see [`super::info`]).
    Info(&'a [u8]),
    /// `MSG` with its payload.
    Msg(MsgHead<'a>, &'a [u8]),
    /// A `MSG` whose payload is over [`Limits::max_payload`], decoded up to
    /// its control line: the caller skips the `skip` bytes that follow
    /// (the payload and its CRLF) as they arrive.
    Oversized(MsgHead<'a>, usize),
    /// `PING`: the server wants a `PONG`.
    Ping,
    /// `PONG`: the answer to our oldest unanswered `PING`.
    Pong,
    /// `+OK` (only in verbose mode, which this client does not ask for).
    Ok,
    /// `-ERR`: the text, quotes removed. The server closes the connection
    /// after most of them.
    Err(&'a [u8]),
}

/// Decodes one server operation from the start of `buf`.
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsing<Op<'a>>, NatsError> {
    let Some(lf) = buf.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') else {
        // A CR anywhere but last can never end this line well.
        if buf.iter().rev().skip(1).any(|&b| b == b'\r') {
            return Err(NatsError::BadLineEnd);
        }
        if buf.len() > MAX_LINE + 1 {
            return Err(NatsError::LineTooLong);
        }
        return Ok(Parsing::NeedMore(1));
    };
    let line = match buf.get(..lf) {
        Some([line @ .., b'\r']) => line,
        _ => return Err(NatsError::BadLineEnd),
    };
    if line.contains(&b'\r') {
        return Err(NatsError::BadLineEnd);
    }
    if line.len() > MAX_LINE {
        return Err(NatsError::LineTooLong);
    }
    let after = lf + 1;
    let (name, rest) = match line.iter().position(|&b| is_space(b)) {
        Some(i) => (
            line.get(..i).unwrap_or_default(),
            line.get(i..).unwrap_or_default(),
        ),
        None => (line, &[][..]),
    };
    let rest = trim_start(rest);
    let bare = |op: Op<'a>| {
        if rest.iter().all(|&b| is_space(b)) {
            Ok(Parsing::Done {
                value: op,
                offset: after,
            })
        } else {
            Err(NatsError::BadArgs)
        }
    };
    let is = |op: &[u8]| name.eq_ignore_ascii_case(op);
    if is(b"MSG") {
        decode_msg(buf, rest, after, limits)
    } else if is(b"PING") {
        bare(Op::Ping)
    } else if is(b"PONG") {
        bare(Op::Pong)
    } else if is(b"+OK") {
        bare(Op::Ok)
    } else if is(b"INFO") {
        Ok(Parsing::Done {
            value: Op::Info(rest),
            offset: after,
        })
    } else if is(b"-ERR") {
        let text = trim_end(rest);
        let text = match text {
            [b'\'', inner @ .., b'\''] => inner,
            t => t,
        };
        Ok(Parsing::Done {
            value: Op::Err(text),
            offset: after,
        })
    } else {
        Err(NatsError::UnknownOp)
    }
}

/// `MSG <subject> <sid> [reply-to] <#bytes>`, then the payload and CRLF.
fn decode_msg<'a>(
    buf: &'a [u8],
    args: &'a [u8],
    after: usize,
    limits: &Limits,
) -> Result<Parsing<Op<'a>>, NatsError> {
    let mut parts = args.split(|&b| is_space(b)).filter(|p| !p.is_empty());
    let (subject, sid, reply, len) = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(s), Some(i), Some(n), None, None) => (s, i, None, n),
        (Some(s), Some(i), Some(r), Some(n), None) => (s, i, Some(r), n),
        _ => return Err(NatsError::BadArgs),
    };
    let sid = number(sid).ok_or(NatsError::BadArgs)?;
    let len = number(len)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(NatsError::BadArgs)?;
    let head = MsgHead {
        subject,
        sid,
        reply,
    };
    if len > limits.max_payload {
        return Ok(Parsing::Done {
            value: Op::Oversized(head, len.saturating_add(2)),
            offset: after,
        });
    }
    let end = after + len;
    let have = buf.len().saturating_sub(after);
    if have < len + 2 {
        // What is here of the tail must still be able to end well.
        if let Some(tail) = buf.get(end..) {
            if !b"\r\n".starts_with(tail) {
                return Err(NatsError::BadLineEnd);
            }
        }
        return Ok(Parsing::NeedMore(len + 2 - have));
    }
    if buf.get(end..end + 2) != Some(b"\r\n") {
        return Err(NatsError::BadLineEnd);
    }
    let payload = buf.get(after..end).unwrap_or_default();
    Ok(Parsing::Done {
        value: Op::Msg(head, payload),
        offset: end + 2,
    })
}

/// A decimal number as the server writes them: digits only, at most 19.
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_start(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|&b| !is_space(b)).unwrap_or(s.len());
    s.get(i..).unwrap_or_default()
}

fn trim_end(s: &[u8]) -> &[u8] {
    let i = s.iter().rposition(|&b| !is_space(b)).map_or(0, |i| i + 1);
    s.get(..i).unwrap_or_default()
}

/// The `CONNECT` options this client sends.
#[derive(Debug, Serialize)]
pub struct Connect<'a> {
    /// No `+OK` after each command.
    pub verbose: bool,
    /// No strict subject checking.
    pub pedantic: bool,
    /// This client does not speak TLS.
    pub tls_required: bool,
    /// Shown in the server's monitoring (`wsd-<node id>`).
    pub name: &'a str,
    /// "rust".
    pub lang: &'a str,
    /// wsd's version.
    pub version: &'a str,
    /// 1: the server may send `INFO` again as the cluster changes.
    pub protocol: u8,
    /// false: the server does not send our own publishes back.
    pub echo: bool,
    /// No headers (`HMSG`), ever.
    pub headers: bool,
    /// The user, with `pass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// The password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<&'a str>,
    /// A token, when the URL gives a user and no password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<&'a str>,
}

/// Writes `CONNECT {json}␍␊`.
pub fn write_connect(out: &mut Vec<u8>, connect: &Connect<'_>) {
    out.extend_from_slice(b"CONNECT ");
    // Serializing plain strings and booleans into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, connect);
    out.extend_from_slice(b"\r\n");
}

/// Writes `PUB <subject> <len>␍␊`: the caller appends the payload, then
/// [`write_crlf`].
pub fn write_pub_header(out: &mut Vec<u8>, subject: &[u8], len: usize) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    let _ = write!(out, " {len}\r\n");
}

/// The bytes [`write_pub_header`] adds to a subject of `subject` bytes for
/// a payload of `len` bytes, and the CRLF after the payload.
pub fn pub_overhead(subject: usize, len: usize) -> usize {
    4 + subject + 1 + decimal_len(len) + 4
}

fn decimal_len(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// Writes `SUB <subject> <sid>␍␊`.
pub fn write_sub(out: &mut Vec<u8>, subject: &[u8], sid: u64) {
    out.extend_from_slice(b"SUB ");
    out.extend_from_slice(subject);
    let _ = write!(out, " {sid}\r\n");
}

/// Writes `UNSUB <sid>␍␊`.
pub fn write_unsub(out: &mut Vec<u8>, sid: u64) {
    let _ = write!(out, "UNSUB {sid}\r\n");
}

/// Writes `PING␍␊`.
pub fn write_ping(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PING\r\n");
}

/// Writes `PONG␍␊`.
pub fn write_pong(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PONG\r\n");
}

/// Writes CRLF.
pub fn write_crlf(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
