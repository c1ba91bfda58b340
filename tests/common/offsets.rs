//! A `wsd.offsets` client's side of history (`--history`): joining with
//! the subprotocol, the status message, and `OFFSET:payload` messages.

use std::net::SocketAddr;

use super::Client;

/// A member that speaks `wsd.offsets`, joined on `path` (with its query).
pub fn framed(addr: SocketAddr, path: &str) -> Client {
    let (c, resp) = Client::try_upgrade(addr, path, "Sec-WebSocket-Protocol: wsd.offsets\r\n");
    assert_eq!(resp.status, 101, "{resp:?}");
    assert_eq!(resp.header("sec-websocket-protocol"), Some("wsd.offsets"));
    c
}

/// The status message a `wsd.offsets` client gets first.
pub fn status(c: &mut Client) -> serde_json::Value {
    let text = c.recv_text();
    let json = text.strip_prefix('!').expect("a status message first");
    serde_json::from_str(json).unwrap()
}

/// A framed message: its offset (empty for one not recorded) and its text.
pub fn offset_and_text(c: &mut Client) -> (String, String) {
    let text = c.recv_text();
    let (offset, rest) = text.split_once(':').expect("OFFSET:payload");
    assert!(
        offset.bytes().all(|b| b.is_ascii_digit() || b == b'-'),
        "{text}"
    );
    (offset.to_string(), rest.to_string())
}
