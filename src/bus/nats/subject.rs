//! Room paths as NATS subjects, reversibly.
//!
//! A NATS subject is tokens separated by `.`; a token may not be empty, `*`
//! and `>` are wildcards, and whitespace ends the subject. A room path may
//! hold any of these, so a room is written as one token in which every byte
//! but `A-Z a-z 0-9 / _ ~ -` is `%` and two upper-case hex digits (`%`
//! itself included, so decoding is exact):
//!
//! ```text
//! room                 envelope subject (prefix wsd.)   raw subject
//! /chat                wsd./chat                        wsd.raw./chat
//! /a.b c               wsd./a%2Eb%20c                   wsd.raw./a%2Eb%20c
//! /                    wsd./                            wsd.raw./
//! ```
//!
//! The envelope subject is the prefix and the encoded room; the raw one
//! (for a backend's plain messages, see [`super::super::envelope`]) has
//! `raw.` between them. The encoded room never holds a `.`, so the two
//! never meet: `wsd.raw./chat` has one token more than any envelope
//! subject. Only one encoding decodes to a given room ([`decode_room`]
//! refuses the others), so a subject names one room and a room one subject.

/// What comes between the prefix and the room in a raw subject.
pub const RAW: &[u8] = b"raw.";

/// Whether `b` stands for itself in an encoded room.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'~' | b'-')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends the encoded `room`.
pub fn encode_room(out: &mut Vec<u8>, room: &str) {
    for &b in room.as_bytes() {
        if is_plain(b) {
            out.push(b);
        } else {
            let hex = |v: u8| HEX.get(usize::from(v)).copied().unwrap_or(b'0');
            out.extend_from_slice(&[b'%', hex(b >> 4), hex(b & 0xf)]);
        }
    }
}

/// The length of the encoded `room`, without encoding it.
pub fn encoded_len(room: &str) -> usize {
    room.bytes().map(|b| if is_plain(b) { 1 } else { 3 }).sum()
}

/// The room an encoded token names, or `None` if it is not the one
/// encoding [`encode_room`] writes (a stray byte, lower-case hex, an
/// escaped plain byte, or not UTF-8 once decoded).
pub fn decode_room(token: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(token.len());
    let mut bytes = token.iter();
    while let Some(&b) = bytes.next() {
        if is_plain(b) {
            out.push(b);
            continue;
        }
        if b != b'%' {
            return None;
        }
        let digit = |d: Option<&u8>| {
            d.and_then(|d| HEX.iter().position(|h| h == d))
                .and_then(|v| u8::try_from(v).ok())
        };
        let v = digit(bytes.next())? << 4 | digit(bytes.next())?;
        if is_plain(v) {
            return None;
        }
        out.push(v);
    }
    String::from_utf8(out).ok()
}

/// Checks a subject prefix: printable ASCII without spaces, `*` or `>`,
/// tokens not empty, ending in `.` (`wsd.`, `prod.wsd.`); or empty.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let err = |why: &str| Err(format!("--nats-prefix {prefix:?}: {why}"));
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.bytes().all(|b| b.is_ascii_graphic()) || prefix.contains(['*', '>']) {
        return err("printable ASCII only, without spaces, '*' or '>'");
    }
    let Some(tokens) = prefix.strip_suffix('.') else {
        return err("it must end in '.' (wsd.)");
    };
    if tokens.split('.').any(str::is_empty) {
        return err("a subject token may not be empty ('..' or a leading '.')");
    }
    if prefix.len() > 256 {
        return err("at most 256 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(room: &str) -> String {
        let mut out = Vec::new();
        encode_room(&mut out, room);
        assert_eq!(out.len(), encoded_len(room));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rooms_become_one_token_of_safe_bytes() {
        assert_eq!(encode("/chat"), "/chat");
        assert_eq!(encode("/a.b c"), "/a%2Eb%20c");
        assert_eq!(encode("/*/>"), "/%2A/%3E");
        assert_eq!(encode("/50%"), "/50%25");
        assert_eq!(encode("/é"), "/%C3%A9");
        assert_eq!(encode("/t\tab\r\n"), "/t%09ab%0D%0A");
    }

    #[test]
    fn every_room_comes_back_and_other_spellings_are_refused() {
        for room in ["/chat", "/a.b c", "/*/>", "/50%", "/é", "", "/%41", "~-_"] {
            assert_eq!(decode_room(encode(room).as_bytes()).as_deref(), Some(room));
        }
        for bad in [
            &b"/a.b"[..],
            b"/a b",
            b"/%2e",
            b"/%41",
            b"/%4",
            b"/%",
            b"/%zz",
            b"/%FF",
            b"/*",
        ] {
            assert_eq!(decode_room(bad), None, "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=127).collect();
        let room = String::from_utf8(all).unwrap();
        let enc = encode(&room);
        assert!(!enc.contains(['.', ' ', '*', '>', '\t']), "{enc}");
        assert_eq!(decode_room(enc.as_bytes()).as_deref(), Some(room.as_str()));
    }

    #[test]
    fn prefixes_are_subject_tokens_ending_in_a_dot() {
        for ok in ["", "wsd.", "prod.wsd.", "a-b_c."] {
            check_prefix(ok).unwrap();
        }
        for (bad, says) in [
            ("wsd", "end in '.'"),
            ("wsd:", "end in '.'"),
            (".wsd.", "empty"),
            ("a..b.", "empty"),
            ("w sd.", "printable"),
            ("*.", "'*'"),
            ("a.>.", "'*'"),
        ] {
            let e = check_prefix(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
