//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally into
//! a bounded buffer.
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! last-chunk   = 1*("0") [ chunk-ext ] CRLF
//! ```
//!
//! Each chunk's size is checked against the body limit on its line, before
//! a byte of its data is buffered. Lines (sizes with their extensions, and
//! trailer fields, which are skipped) are bounded too, and end in CRLF
//! only: a bare LF is refused, as a proxy may have framed it differently.

use super::error::ParseError;

/// The longest chunk-size line (extensions included) or trailer line,
/// before its CRLF.
pub const MAX_LINE: usize = 1024;

/// Where the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dechunk {
    /// At the start of a chunk-size line.
    Size,
    /// In a chunk's data, `left` bytes to go.
    Data { left: u64 },
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// In the trailer section, `seen` bytes of it so far.
    Trailer { seen: usize },
}

/// What one step of decoding did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Progress {
    /// Took this many input bytes; the body is not complete.
    Took(usize),
    /// Took this many input bytes and the body is complete.
    Done(usize),
}

impl Dechunk {
    /// Decodes from `input`, appending chunk data to `body` (whose first
    /// `base` bytes are not the body's). `body` never grows past `base +
    /// max_body`. A partial line is left in the input, untaken.
    pub(super) fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        base: usize,
        max_body: usize,
        max_trailer: usize,
    ) -> Result<Progress, ParseError> {
        let mut at = 0;
        loop {
            let rest = input.get(at..).unwrap_or_default();
            match *self {
                Dechunk::Size => {
                    let Some((line, used)) = line(rest)? else {
                        return Ok(Progress::Took(at));
                    };
                    let size = chunk_size(line)?;
                    let decoded = body.len().saturating_sub(base) as u64;
                    if size > (max_body as u64).saturating_sub(decoded) {
                        return Err(ParseError::BodyTooLarge);
                    }
                    at += used;
                    *self = if size == 0 {
                        Dechunk::Trailer { seen: 0 }
                    } else {
                        Dechunk::Data { left: size }
                    };
                }
                Dechunk::Data { left } => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    if n == 0 {
                        return Ok(Progress::Took(at));
                    }
                    append(body, rest.get(..n).unwrap_or_default(), base + max_body);
                    at += n;
                    let left = left - n as u64;
                    *self = if left == 0 {
                        Dechunk::DataEnd
                    } else {
                        Dechunk::Data { left }
                    };
                }
                Dechunk::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        *self = Dechunk::Size;
                    }
                    [] | [b'\r'] => return Ok(Progress::Took(at)),
                    _ => {
                        return Err(ParseError::BadRequest("chunk data not followed by CRLF"));
                    }
                },
                Dechunk::Trailer { seen } => {
                    let Some((line, used)) = line(rest)? else {
                        return Ok(Progress::Took(at));
                    };
                    at += used;
                    if line.is_empty() {
                        return Ok(Progress::Done(at));
                    }
                    // Trailer fields are allowed and ignored: nothing in
                    // them matters to a publish.
                    let seen = seen + used;
                    if seen > max_trailer {
                        return Err(ParseError::BadRequest("trailer section too large"));
                    }
                    *self = Dechunk::Trailer { seen };
                }
            }
        }
    }
}

/// The first CRLF-terminated line of `input` and the bytes it takes with
/// its CRLF; `None` if it has not all arrived (and is not yet too long).
fn line(input: &[u8]) -> Result<Option<(&[u8], usize)>, ParseError> {
    let window = input.get(..MAX_LINE + 2).unwrap_or(input);
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => match window.get(..i) {
            Some([line @ .., b'\r']) => Ok(Some((line, i + 1))),
            _ => Err(ParseError::BadRequest("chunk line not ended by CRLF")),
        },
        None if window.len() > MAX_LINE + 1 => Err(ParseError::BadRequest("chunk line too long")),
        None => Ok(None),
    }
}

/// A chunk-size line's size: hex digits, then nothing or extensions
/// (`;name=value`, after optional spaces), which are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, ext) = line.split_at(digits);
    if hex.is_empty() {
        return Err(ParseError::BadRequest("malformed chunk size"));
    }
    let ext_ok = match super::head::trim(ext) {
        [] => ext.is_empty(),
        [b';', rest @ ..] => rest
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)),
        _ => false,
    };
    if !ext_ok {
        return Err(ParseError::BadRequest("malformed chunk size"));
    }
    hex.iter().try_fold(0u64, |n, &b| {
        let d = char::from(b).to_digit(16).unwrap_or(0);
        n.checked_mul(16)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(ParseError::BadRequest("chunk size out of range"))
    })
}

/// Appends `bytes`, growing the allocation (at most doubling) but never
/// past `cap` bytes of capacity when the contents fit in `cap`.
pub(super) fn append(v: &mut Vec<u8>, bytes: &[u8], cap: usize) {
    let need = v.len().saturating_add(bytes.len());
    if need > v.capacity() {
        let target = need.max(v.capacity().saturating_mul(2)).min(cap.max(need));
        v.reserve_exact(target - v.len());
    }
    v.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of the naive twin: the bytes before the first LF, which must
    /// follow a CR; `None` if incomplete.
    fn naive_line(rest: &[u8]) -> Option<Result<(&[u8], usize), ParseError>> {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) if i > MAX_LINE + 1 => Some(Err(ParseError::BadRequest("chunk line too long"))),
            Some(i) if i > 0 && rest[i - 1] == b'\r' => Some(Ok((&rest[..i - 1], i + 1))),
            Some(_) => Some(Err(ParseError::BadRequest("chunk line not ended by CRLF"))),
            None if rest.len() > MAX_LINE + 1 => {
                Some(Err(ParseError::BadRequest("chunk line too long")))
            }
            None => None,
        }
    }

    /// The naive twin: decodes a whole chunked body at once, or says why
    /// not; `None` if it is incomplete.
    fn naive(input: &[u8], max_body: usize) -> Option<Result<(Vec<u8>, usize), ParseError>> {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let (line, used) = match naive_line(&input[at..])? {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            let size = match chunk_size(line) {
                Ok(size) => size,
                Err(e) => return Some(Err(e)),
            };
            if size as u128 + body.len() as u128 > max_body as u128 {
                return Some(Err(ParseError::BodyTooLarge));
            }
            at += used;
            if size == 0 {
                break;
            }
            let size = size as usize;
            let data = input.get(at..at + size)?;
            body.extend_from_slice(data);
            at += size;
            match input.get(at..at + 2) {
                Some(b"\r\n") => at += 2,
                None if input.get(at..) == Some(b"\r") || input.len() == at => return None,
                _ => {
                    return Some(Err(ParseError::BadRequest(
                        "chunk data not followed by CRLF",
                    )))
                }
            }
        }
        // Trailers: lines until an empty one.
        loop {
            let (line, used) = match naive_line(&input[at..])? {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            at += used;
            if line.is_empty() {
                return Some(Ok((body, at)));
            }
        }
    }

    fn decode_in_pieces(
        input: &[u8],
        cuts: &[usize],
        max_body: usize,
    ) -> Option<Result<(Vec<u8>, usize), ParseError>> {
        let mut d = Dechunk::Size;
        let mut body = Vec::new();
        let mut taken = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            loop {
                match d.decode(&input[taken..cut.max(taken)], &mut body, 0, max_body, 4096) {
                    Ok(Progress::Done(n)) => return Some(Ok((body, taken + n))),
                    Ok(Progress::Took(n)) => {
                        taken += n;
                        if n == 0 {
                            break;
                        }
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        None
    }

    const CASES: [&[u8]; 8] = [
        b"5\r\nhello\r\n0\r\n\r\n",
        b"5;ext=1\r\nhello\r\n6 ; x\r\n world\r\n0\r\nTrailer: t\r\n\r\nNEXT",
        b"A\r\n0123456789\r\n000\r\n\r\n",
        b"5\r\nhello\r\n",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"x\r\n",
        b"10000000000000000\r\n",
    ];

    #[test]
    fn every_split_gives_what_the_naive_decoder_gives() {
        for input in CASES {
            let want = naive(input, 64);
            for cut in 0..=input.len() {
                assert_eq!(
                    decode_in_pieces(input, &[cut], 64),
                    want,
                    "{input:?} cut at {cut}"
                );
            }
            let every: Vec<usize> = (0..input.len()).collect();
            assert_eq!(
                decode_in_pieces(input, &every, 64),
                want,
                "{input:?} byte by byte"
            );
        }
    }

    #[test]
    fn refusals() {
        let refuse = |input: &[u8], max| decode_in_pieces(input, &[], max).unwrap().unwrap_err();
        assert_eq!(refuse(b"11\r\n", 16), ParseError::BodyTooLarge);
        assert_eq!(
            refuse(b"8\r\n12345678\r\n9\r\n", 16),
            ParseError::BodyTooLarge
        );
        assert_eq!(
            refuse(b"ffffffffffffffff\r\n", 16),
            ParseError::BodyTooLarge
        );
        assert_eq!(
            refuse(b"10000000000000000\r\n", 16),
            ParseError::BadRequest("chunk size out of range")
        );
        assert_eq!(
            refuse(b"\r\n", 16),
            ParseError::BadRequest("malformed chunk size")
        );
        assert_eq!(
            refuse(b"-1\r\n", 16),
            ParseError::BadRequest("malformed chunk size")
        );
        assert_eq!(
            refuse(b"1x\r\n", 16),
            ParseError::BadRequest("malformed chunk size")
        );
        assert_eq!(
            refuse(b"1;\x01\r\n", 16),
            ParseError::BadRequest("malformed chunk size")
        );
        let long = [b"1;".as_slice(), &[b'a'; MAX_LINE]].concat();
        assert_eq!(
            refuse(&long, 16),
            ParseError::BadRequest("chunk line too long")
        );
        let mut d = Dechunk::Size;
        let many_trailers = b"0\r\nA: b\r\nA: b\r\nA: b\r\n\r\n";
        assert_eq!(
            d.decode(many_trailers, &mut Vec::new(), 0, 16, 12),
            Err(ParseError::BadRequest("trailer section too large"))
        );
    }

    #[test]
    fn the_buffer_never_outgrows_the_limit() {
        let mut v = Vec::new();
        for _ in 0..100 {
            append(&mut v, &[1; 7], 100);
        }
        assert_eq!(v.len(), 700);
        let mut v = Vec::new();
        for _ in 0..14 {
            append(&mut v, &[1; 7], 100);
            assert!(v.capacity() <= 100, "{}", v.capacity());
        }
    }
}
