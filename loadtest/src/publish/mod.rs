//! `broadcast --publish-url`: the publishers send through a server's HTTP
//! publish API, `POST /publish/ROOM` over keep-alive HTTP/1.1 connections,
//! while the subscribers listen over WebSocket as usual.
//!
//! The room is the path of the (first) WebSocket URL: subscribers of
//! `ws://host:9001/chat` are published to with `POST /publish/chat`. Each
//! publisher has one request in flight at most (no pipelining): the rate
//! schedule passes over a publisher whose answer has not come, so a slow
//! API shows in the fan-out latency, which runs from the message's
//! intended send time as for WebSocket publishers.
//!
//! [`Api`] is the request every publish sends (a fixed head: the payload
//! size does not change); [`answer`] reads the answers. `--api-key FILE`
//! goes in `Authorization: Bearer KEY` and is never printed: [`Api`]'s
//! Debug form hides the head that carries it.

pub mod answer;
pub mod report;

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use crate::auth::{parse_token, Secret};
use crate::stamp::Encoding;
use crate::target::{parse_http, Target};

/// The head of every publish request, ready to send before the body.
#[derive(Clone)]
pub struct Api {
    head: Vec<u8>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Api(<head with the key redacted>)")
    }
}

impl Api {
    /// Requests to `api` for the room of the WebSocket path `ws_path`,
    /// with `key` if given, bodies of `size` bytes of `enc`.
    pub fn new(
        api: &Target,
        ws_path: &str,
        key: Option<&Secret>,
        enc: Encoding,
        size: usize,
    ) -> Api {
        let mut head = Vec::with_capacity(256);
        // Writing to a Vec cannot fail.
        let _ = write!(
            head,
            "POST {} HTTP/1.1\r\nHost: {}\r\n",
            publish_path(ws_path),
            api.host
        );
        if let Some(k) = key {
            let _ = write!(head, "Authorization: Bearer {}\r\n", k.expose());
        }
        // What the server takes as text or binary: what subscribers expect.
        let kind = match enc {
            Encoding::Text => "text/plain; charset=utf-8",
            Encoding::Binary => "application/octet-stream",
        };
        let _ = write!(
            head,
            "Content-Type: {kind}\r\nContent-Length: {size}\r\n\r\n"
        );
        Api { head }
    }

    /// The request head (it carries the key: never print it).
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

/// `POST` target for the room of a WebSocket URL's path: `/chat?x=1` →
/// `/publish/chat`.
pub fn publish_path(ws_path: &str) -> String {
    let room = ws_path.split(['?', '#']).next().unwrap_or_default();
    let room = room.strip_prefix('/').unwrap_or(room);
    format!("/publish/{room}")
}

/// Parses `--publish-url`: `http://host:port` or `https://...`, with no
/// path (the API's paths are its own).
pub fn parse_publish_url(url: &str) -> Result<Target, String> {
    let t = parse_http(url)?;
    if t.path != "/" {
        return Err(format!(
            "'{url}': give the server alone (http://host:port): requests go to /publish/ROOM, ROOM being the WebSocket URL's path"
        ));
    }
    Ok(t)
}

/// Reads `--api-key FILE`: the file's bytes, trimmed, visible ASCII. No
/// error repeats the key.
pub fn parse_api_key(path: &str) -> Result<Secret, String> {
    let bytes = std::fs::read(Path::new(path)).map_err(|e| format!("cannot read '{path}': {e}"))?;
    let text = std::str::from_utf8(bytes.trim_ascii())
        .map_err(|_| format!("'{path}': the key is not ASCII"))?;
    parse_token(text).map_err(|e| format!("'{path}': {}", e.replace("token", "key")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_target() -> Target {
        parse_publish_url("http://127.0.0.1:9001").expect("valid")
    }

    #[test]
    fn the_room_is_the_websocket_path() {
        assert_eq!(publish_path("/chat"), "/publish/chat");
        assert_eq!(publish_path("/chat/eu?x=1"), "/publish/chat/eu");
        assert_eq!(publish_path("/"), "/publish/");
    }

    #[test]
    fn the_head_carries_host_key_type_and_length() {
        let key = parse_token("s3cret").expect("token");
        let api = Api::new(&api_target(), "/chat", Some(&key), Encoding::Text, 64);
        assert_eq!(
            std::str::from_utf8(api.head()).expect("ASCII"),
            "POST /publish/chat HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nAuthorization: Bearer s3cret\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 64\r\n\r\n"
        );
        assert!(!format!("{api:?}").contains("s3cret"));
        let api = Api::new(&api_target(), "/", None, Encoding::Binary, 0);
        let head = String::from_utf8_lossy(api.head()).into_owned();
        assert!(head.contains("application/octet-stream"), "{head}");
        assert!(!head.contains("Authorization"), "{head}");
    }

    #[test]
    fn publish_urls_name_a_server_only() {
        assert!(parse_publish_url("http://127.0.0.1:1/").is_ok());
        assert!(parse_publish_url("https://localhost:1").is_ok());
        assert!(parse_publish_url("http://127.0.0.1:1/publish").is_err());
        assert!(parse_publish_url("ws://127.0.0.1:1").is_err());
    }

    #[test]
    fn keys_are_trimmed_and_never_repeated_in_errors() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("wsload-key-{}", std::process::id()));
        std::fs::write(&path, b"  k3y-value\n\n").expect("write");
        let p = path.to_str().expect("utf-8 path");
        assert_eq!(parse_api_key(p).expect("key").expose(), "k3y-value");
        std::fs::write(&path, b"bad key\n").expect("write");
        let e = parse_api_key(p).expect_err("a space");
        assert!(!e.contains("bad key"), "{e}");
        std::fs::write(&path, b"\n").expect("write");
        assert!(parse_api_key(p).is_err());
        let _ = std::fs::remove_file(&path);
        assert!(parse_api_key("/nonexistent/wsload/key").is_err());
    }
}
