//! The bus envelope (`wsd::bus::envelope`), on arbitrary bytes.
//!
//! Properties, for every input:
//! - `decode` never panics; what it accepts has a node id of 1 to 64
//!   bytes, a text payload that is UTF-8, and encodes back (`write_header`
//!   and the payload) to exactly the input;
//! - read as a message to send (byte 0: node id length, byte 1: kind, the
//!   rest split into node id and payload), encoding then decoding gives back
//!   the same node id, kind and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::bus::envelope::{decode, header_len, write_header, Envelope, MAX_NODE_ID};
use wsd::proto::MessageKind;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = decode(data) {
        assert!((1..=MAX_NODE_ID).contains(&env.node.len()));
        if env.kind == MessageKind::Text {
            assert!(std::str::from_utf8(env.payload).is_ok());
        }
        let mut again = Vec::new();
        write_header(&mut again, env.node, env.kind);
        again.extend_from_slice(env.payload);
        assert_eq!(again, data);
    }

    let [len, kind, rest @ ..] = data else {
        return;
    };
    let len = (usize::from(*len) % MAX_NODE_ID + 1).min(rest.len());
    let (node, payload) = rest.split_at(len);
    if node.is_empty() {
        return;
    }
    let kind = if kind % 2 == 0 {
        MessageKind::Binary
    } else {
        MessageKind::Text
    };
    let mut bytes = Vec::new();
    write_header(&mut bytes, node, kind);
    assert_eq!(bytes.len(), header_len(node.len()));
    bytes.extend_from_slice(payload);
    let text_ok = kind == MessageKind::Binary || std::str::from_utf8(payload).is_ok();
    match decode(&bytes) {
        Ok(env) => assert_eq!(env, Envelope { node, kind, payload }),
        Err(e) => assert!(!text_ok, "{e:?} for a valid envelope"),
    }
});
