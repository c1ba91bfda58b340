//! A sans-IO codec for the part of RESP2 (the Redis protocol) a pub/sub
//! client meets: commands out, replies and pushes in.
//!
//! [`decode`] reads one reply from the start of a byte slice and borrows
//! from it: bulk strings come back as slices of the input, nothing is
//! allocated. Incomplete input is not an error but
//! [`Parsing::NeedMore`](crate::proto::Parsing), and consumes nothing. It
//! accepts the five RESP2 types (`+` simple string, `-` error, `:` integer,
//! `$` bulk string, `*` array) with two restrictions a pub/sub client can
//! afford and a hostile peer cannot exploit:
//!
//! - arrays hold at most [`MAX_ITEMS`] elements and do not nest (pub/sub
//!   pushes are flat arrays of three or four), so decoding never recurses
//!   and never allocates for a claimed element count;
//! - every length is checked against [`Limits`] at its header, before a
//!   byte of what it announces is awaited, so a peer that claims a 1 GiB
//!   bulk string is never buffered: as the last element of a reply (a
//!   pub/sub message's payload) it is [`Frame::Oversized`], whose bytes
//!   the caller skips as they arrive; anywhere else it is an error.
//!
//! Numbers are read in canonical form only (no sign on zero, no leading
//! zeros, no `+`), which is what Redis sends; so a decoded reply encodes
//! back ([`Frame::encode`]) to exactly the bytes it came from.
//!
//! The encoder writes commands as arrays of bulk strings, the only form a
//! client sends.

use std::io::Write as _;

use crate::proto::Parsing;

/// The most elements an array may have. Pub/sub pushes have three
/// (`message`, `subscribe`, `unsubscribe`) or four (`pmessage`).
pub const MAX_ITEMS: usize = 8;

/// How long a line (a simple string, an error, a number) may be before its
/// CRLF. Redis's own error messages stay far below.
pub const MAX_LINE: usize = 4096;

/// What the decoder accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest whole reply, in bytes of input: an array's elements and
    /// their framing together. Checked at each bulk string's header.
    pub max_frame: usize,
}

/// Why input is not a reply this codec accepts. Any of them means the
/// connection is out of step and must be reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// The first byte is not one of `+ - : $ *`.
    BadType(u8),
    /// A CR not followed by LF, or an LF without CR, or a bulk string not
    /// followed by CRLF.
    BadLineEnd,
    /// A line longer than [`MAX_LINE`].
    LineTooLong,
    /// A number that is empty, not canonical, or out of range.
    BadNumber,
    /// A length below -1.
    BadLength,
    /// A bulk string that would take the reply past `max_frame`, other
    /// than a reply's last element (that one is [`Frame::Oversized`]).
    TooLarge,
    /// An array with more than [`MAX_ITEMS`] elements.
    TooManyItems,
    /// An array inside an array.
    Nested,
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RespError::BadType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            RespError::BadLineEnd => f.write_str("malformed line end"),
            RespError::LineTooLong => write!(f, "line longer than {MAX_LINE} bytes"),
            RespError::BadNumber => f.write_str("malformed number"),
            RespError::BadLength => f.write_str("negative length"),
            RespError::TooLarge => f.write_str("reply larger than the limit"),
            RespError::TooManyItems => write!(f, "array of more than {MAX_ITEMS} elements"),
            RespError::Nested => f.write_str("nested array"),
        }
    }
}

/// One value: everything but an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// `+OK`: the text, without `+` and CRLF.
    Simple(&'a [u8]),
    /// `-ERR ...`: the message, without `-` and CRLF.
    Error(&'a [u8]),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nabc`: the bytes.
    Bulk(&'a [u8]),
    /// `$-1`: the null bulk string.
    Nil,
}

/// One reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A single value.
    Value(Value<'a>),
    /// A flat array of up to [`MAX_ITEMS`] values.
    Array(Items<'a>),
    /// `*-1`: the null array.
    NilArray,
    /// A reply whose last bulk string is over the limit, decoded up to
    /// that string's header: the caller skips its [`Oversized::skip`]
    /// bytes as they arrive (a backend's `PUBLISH` larger than
    /// `--max-message` is dropped, not a reason to reset the connection).
    Oversized(Oversized<'a>),
}

/// The part of a reply before its oversized last bulk string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oversized<'a> {
    /// The array's elements before the big one; `None` when the bulk
    /// string is the whole reply.
    pub before: Option<Items<'a>>,
    /// The bulk string's announced length.
    pub len: usize,
}

impl Oversized<'_> {
    /// Bytes after the decoded part that belong to the reply: the bulk
    /// string and its CRLF.
    pub fn skip(&self) -> usize {
        self.len.saturating_add(2)
    }
}

/// An array's elements, held inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Items<'a> {
    len: usize,
    items: [Value<'a>; MAX_ITEMS],
}

impl<'a> Items<'a> {
    /// The elements, in order.
    pub fn as_slice(&self) -> &[Value<'a>] {
        self.items.get(..self.len).unwrap_or_default()
    }
}

impl Frame<'_> {
    /// Writes the frame as RESP: the exact bytes [`decode`] took it from.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Value(v) => encode_value(out, v),
            Frame::Array(items) => {
                write_array_header(out, items.as_slice().len());
                for v in items.as_slice() {
                    encode_value(out, v);
                }
            }
            Frame::NilArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Oversized(o) => {
                if let Some(items) = &o.before {
                    write_array_header(out, items.as_slice().len() + 1);
                    for v in items.as_slice() {
                        encode_value(out, v);
                    }
                }
                write_bulk_header(out, o.len);
            }
        }
    }
}

fn encode_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Simple(s) => line(out, b'+', s),
        Value::Error(s) => line(out, b'-', s),
        Value::Integer(n) => {
            let _ = write!(out, ":{n}\r\n");
        }
        Value::Bulk(b) => write_bulk(out, b),
        Value::Nil => out.extend_from_slice(b"$-1\r\n"),
    }
}

fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Writes `*n\r\n`, the header of a command of `n` arguments.
pub fn write_array_header(out: &mut Vec<u8>, n: usize) {
    let _ = write!(out, "*{n}\r\n");
}

/// Writes `$len\r\n`, the header of a bulk string of `len` bytes; the
/// bytes and [`write_crlf`] must follow.
pub fn write_bulk_header(out: &mut Vec<u8>, len: usize) {
    let _ = write!(out, "${len}\r\n");
}

/// Writes the CRLF that ends a bulk string.
pub fn write_crlf(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// Writes one bulk string.
pub fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    write_bulk_header(out, bytes.len());
    out.extend_from_slice(bytes);
    write_crlf(out);
}

/// Writes a command: an array of bulk strings.
pub fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    write_array_header(out, args.len());
    for a in args {
        write_bulk(out, a);
    }
}

/// The bytes of a bulk string's framing at most: `$`, 20 digits, 2 CRLFs.
pub const BULK_OVERHEAD: usize = 25;

/// Decodes one reply from the start of `buf`.
///
/// Returns `Done { value, offset }` with the reply borrowed from
/// `buf[..offset]`, `NeedMore(n)` when `buf` is a strict prefix of a reply
/// that needs at least `n` more bytes, or an error as soon as the bytes
/// present cannot start an acceptable reply. For any input, each of its
/// prefixes decodes to `NeedMore` or to the same result as the whole.
///
/// Naive equivalent: read the type byte, then a line or a length and that
/// many bytes, recursing into array elements (see the test module's
/// `reference`).
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsing<Frame<'a>>, RespError> {
    let Some(&first) = buf.first() else {
        return Ok(Parsing::NeedMore(1));
    };
    if first != b'*' {
        return Ok(match value(buf, 0, limits)? {
            ValueStep::Step(Step::Done(v, offset)) => Parsing::Done {
                value: Frame::Value(v),
                offset,
            },
            ValueStep::Step(Step::NeedMore(n)) => Parsing::NeedMore(n),
            ValueStep::Oversized { len, header_end } => Parsing::Done {
                value: Frame::Oversized(Oversized { before: None, len }),
                offset: header_end,
            },
        });
    }
    let (text, mut pos) = match read_line(buf, 1)? {
        Step::Done(text, next) => (text, next),
        Step::NeedMore(n) => return Ok(Parsing::NeedMore(n)),
    };
    let n = parse_number(text)?;
    if n == -1 {
        return Ok(Parsing::Done {
            value: Frame::NilArray,
            offset: pos,
        });
    }
    let n = usize::try_from(n).map_err(|_| RespError::BadLength)?;
    if n > MAX_ITEMS {
        return Err(RespError::TooManyItems);
    }
    let mut items = Items {
        len: n,
        items: [Value::Nil; MAX_ITEMS],
    };
    for i in 0..n {
        if buf.get(pos) == Some(&b'*') {
            return Err(RespError::Nested);
        }
        match value(buf, pos, limits)? {
            ValueStep::Step(Step::Done(v, next)) => {
                if let Some(slot) = items.items.get_mut(i) {
                    *slot = v;
                }
                pos = next;
            }
            ValueStep::Step(Step::NeedMore(more)) => return Ok(Parsing::NeedMore(more)),
            // Only the last element can be skipped: what would follow it
            // could not be read without it.
            ValueStep::Oversized { len, header_end } if i + 1 == n => {
                items.len = i;
                return Ok(Parsing::Done {
                    value: Frame::Oversized(Oversized {
                        before: Some(items),
                        len,
                    }),
                    offset: header_end,
                });
            }
            ValueStep::Oversized { .. } => return Err(RespError::TooLarge),
        }
    }
    Ok(Parsing::Done {
        value: Frame::Array(items),
        offset: pos,
    })
}

/// A step of decoding: a result and where the input after it starts, or
/// how many more bytes are needed at least.
enum Step<T> {
    Done(T, usize),
    NeedMore(usize),
}

/// A step of decoding a value: a [`Step`], or a bulk string of `len`
/// bytes over the limit whose header ends at `header_end`.
enum ValueStep<'a> {
    Step(Step<Value<'a>>),
    Oversized { len: usize, header_end: usize },
}

/// Decodes one non-array value starting at `buf[at]`.
fn value<'a>(buf: &'a [u8], at: usize, limits: &Limits) -> Result<ValueStep<'a>, RespError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(ValueStep::Step(Step::NeedMore(1)));
    };
    // Garbage fails at its first byte, not after a line of it.
    if !matches!(kind, b'+' | b'-' | b':' | b'$') {
        return Err(RespError::BadType(kind));
    }
    let (text, next) = match read_line(buf, at + 1)? {
        Step::Done(text, next) => (text, next),
        Step::NeedMore(n) => return Ok(ValueStep::Step(Step::NeedMore(n))),
    };
    let v = match kind {
        b'+' => Value::Simple(text),
        b':' => Value::Integer(parse_number(text)?),
        b'$' => {
            let len = parse_number(text)?;
            if len == -1 {
                return Ok(ValueStep::Step(Step::Done(Value::Nil, next)));
            }
            let len = usize::try_from(len).map_err(|_| RespError::BadLength)?;
            // The limit, before anything is awaited: `end` is where the
            // bulk string's CRLF ends.
            let end = len
                .checked_add(next + 2)
                .filter(|&end| end <= limits.max_frame);
            let Some(end) = end else {
                return Ok(ValueStep::Oversized {
                    len,
                    header_end: next,
                });
            };
            if buf.len() < end {
                return Ok(ValueStep::Step(Step::NeedMore(end - buf.len())));
            }
            let bytes = buf.get(next..end - 2).unwrap_or_default();
            if buf.get(end - 2..end) != Some(b"\r\n") {
                return Err(RespError::BadLineEnd);
            }
            return Ok(ValueStep::Step(Step::Done(Value::Bulk(bytes), end)));
        }
        // `-`, the only type byte left.
        _ => Value::Error(text),
    };
    Ok(ValueStep::Step(Step::Done(v, next)))
}

/// Reads the line starting at `buf[at]` up to CRLF. Returns its text and
/// where the next line starts.
fn read_line(buf: &[u8], at: usize) -> Result<Step<&[u8]>, RespError> {
    let rest = buf.get(at..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == b'\r' || b == b'\n');
    let Some(len) = end else {
        if rest.len() > MAX_LINE {
            return Err(RespError::LineTooLong);
        }
        return Ok(Step::NeedMore(1));
    };
    if len > MAX_LINE {
        return Err(RespError::LineTooLong);
    }
    // A line may not hold a bare CR or LF: the first of them must be CRLF.
    match (rest.get(len), rest.get(len + 1)) {
        (Some(b'\r'), Some(b'\n')) => {}
        (Some(b'\r'), None) => return Ok(Step::NeedMore(1)),
        _ => return Err(RespError::BadLineEnd),
    }
    Ok(Step::Done(
        rest.get(..len).unwrap_or_default(),
        at + len + 2,
    ))
}

/// Parses a canonical decimal `i64`: `0`, or an optional `-` and digits
/// without a leading zero.
fn parse_number(text: &[u8]) -> Result<i64, RespError> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let canonical = match digits {
        [] => false,
        [b'0'] => !negative,
        [first, ..] => *first != b'0',
    };
    if !canonical || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadNumber);
    }
    // Accumulated negatively, so i64::MIN fits.
    let mut n: i64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_sub(i64::from(d - b'0')))
            .ok_or(RespError::BadNumber)?;
    }
    if negative {
        Ok(n)
    } else {
        n.checked_neg().ok_or(RespError::BadNumber)
    }
}

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
