//! NDJSON batches: `POST /publish` with one JSON object a line,
//!
//! ```text
//! {"room": "/chat", "text": "hello"}
//! {"room": "/feed", "base64": "AAEC"}
//! ```
//!
//! All or nothing: every line is checked before anything is delivered, and
//! the first bad one refuses the request with its line number. Empty lines
//! (a trailing newline, CRLF line ends) are allowed; unknown fields are
//! not, so a typo (`"txt"`) is an error rather than an empty message.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;

use super::message::{shorten, Message, Refusal};
use crate::proto::MessageKind;

/// One line, its strings borrowed from the body unless they had escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    room: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Str<'a>>,
    #[serde(borrow, default)]
    base64: Option<Str<'a>>,
}

/// A string field that borrows when it can (a bare `Option<Cow<str>>`
/// always copies).
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// Parses a batch of at most `max` messages.
pub(super) fn parse(body: &[u8], max: usize) -> Result<Vec<Message<'_>>, Refusal> {
    let mut messages = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        if messages.len() == max {
            return Err(Refusal::new(
                413,
                format!("line {n}: more than {max} messages in one request"),
            ));
        }
        messages.push(message(line).map_err(|why| Refusal::new(400, format!("line {n}: {why}")))?);
    }
    Ok(messages)
}

/// One line's message, or what is wrong with it.
fn message(line: &[u8]) -> Result<Message<'_>, String> {
    let parsed: Line<'_> = serde_json::from_slice(line).map_err(|e| {
        // serde_json says where, as "at line 1 column C": the column is
        // useful, the line (always 1 here) is not.
        let text = e.to_string();
        match text.rsplit_once(" at line ") {
            Some((what, _)) => format!("{what} (column {})", e.column()),
            None => text,
        }
    })?;
    check_room(&parsed.room)?;
    let (kind, payload) = match (parsed.text, parsed.base64) {
        (Some(Str(text)), None) => (
            MessageKind::Text,
            match text {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            },
        ),
        (None, Some(Str(b64))) => (
            MessageKind::Binary,
            Cow::Owned(
                BASE64
                    .decode(b64.as_bytes())
                    .map_err(|e| format!("base64: {e}"))?,
            ),
        ),
        _ => return Err("give one of \"text\" or \"base64\"".into()),
    };
    Ok(Message {
        room: parsed.room,
        kind,
        payload,
    })
}

/// A room is what a client could name in its request path: it starts with
/// `/`, and has no query, fragment, space or control character.
fn check_room(room: &str) -> Result<(), String> {
    let bad = room
        .chars()
        .find(|&c| c.is_control() || c == ' ' || c == '?' || c == '#');
    match bad {
        _ if !room.starts_with('/') => Err(format!(
            "room \"{}\" does not start with /",
            shorten(room).escape_debug()
        )),
        Some(c) => Err(format!(
            "room \"{}\" has {:?}, which no request path has",
            shorten(room).escape_debug(),
            c
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &str) -> Refusal {
        parse(body.as_bytes(), 3).unwrap_err()
    }

    #[test]
    fn lines_become_messages_borrowed_where_they_can() {
        let body = "{\"room\": \"/a\", \"text\": \"hi\"}\r\n\n{\"text\": \"x\\ny\", \"room\": \"/b/c\"}\n{\"room\":\"/a\",\"base64\":\"AP8=\"}\n";
        let got = parse(body.as_bytes(), 3).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (&*got[0].room, got[0].kind, &*got[0].payload),
            ("/a", MessageKind::Text, &b"hi"[..])
        );
        assert!(
            matches!(got[0].payload, Cow::Borrowed(_)),
            "no escapes: borrowed"
        );
        assert!(matches!(got[0].room, Cow::Borrowed(_)));
        assert_eq!(&*got[1].payload, b"x\ny");
        assert_eq!(&*got[1].room, "/b/c");
        assert_eq!(
            (got[2].kind, &*got[2].payload),
            (MessageKind::Binary, &[0, 255][..])
        );
        assert_eq!(parse(b"", 3).unwrap(), []);
    }

    #[test]
    fn a_bad_line_is_named() {
        for (body, says) in [
            (
                "{\"room\":\"/a\",\"text\":\"x\"}\n{\"room\":\"/a\"}",
                "line 2: give one of",
            ),
            (
                "\n\n{\"room\":\"/a\",\"text\":\"x\",\"base64\":\"\"}",
                "line 3: give one of",
            ),
            (
                "{\"room\":\"/a\",\"txt\":\"x\"}",
                "line 1: unknown field `txt`",
            ),
            ("{\"text\":\"x\"}", "line 1: missing field `room`"),
            (
                "{\"room\":\"a\",\"text\":\"x\"}",
                "line 1: room \"a\" does not start with /",
            ),
            (
                "{\"room\":\"/a?b\",\"text\":\"x\"}",
                "line 1: room \"/a?b\" has '?'",
            ),
            (
                "{\"room\":\"/a b\",\"text\":\"x\"}",
                "line 1: room \"/a b\" has ' '",
            ),
            ("{\"room\":\"/a\",\"base64\":\"!!\"}", "line 1: base64: "),
            ("{\"room\":\"/a\",\"text\":\"\\ud800\"}", "line 1: "),
            (
                "{\"room\":\"/a\",\"text\":\"x\"} x",
                "line 1: trailing characters (column 26)",
            ),
            ("[1]", "line 1: invalid type"),
            (
                "{\"room\":\"/a\",\"text\":\"x\"}\n".repeat(4).as_str(),
                "line 4: more than 3 messages",
            ),
        ] {
            let r = refusal(body);
            assert!(r.message.starts_with(says), "{body:?}: {}", r.message);
            assert_eq!(r.status, if says.contains("more than") { 413 } else { 400 });
        }
    }

    #[test]
    fn invalid_utf8_in_a_line_is_refused() {
        let r = parse(b"{\"room\":\"/a\",\"text\":\"\xff\"}", 3).unwrap_err();
        assert!(r.message.starts_with("line 1: "), "{}", r.message);
    }
}
