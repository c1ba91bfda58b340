//! The bus envelope (`wsd::bus::envelope`), on arbitrary bytes.
//!
//! Properties, for every input:
//! - `decode` never panics; what it accepts has a node id of 1 to 64
//!   bytes, a text payload that is UTF-8, and encodes back (`write_header`
//!   with its instance token, and the payload; for a recorded message,
//!   `write_recorded_header` with its sender, the offset and the payload)
//!   to exactly the input;
//! - read as a message to send (byte 0: node id length, byte 1: kind,
//!   bytes 2..10: the instance token, the rest split into node id and
//!   payload), encoding then decoding gives back the same node id, token,
//!   kind and payload;
//! - `raw_kind` calls text exactly what is UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsd::bus::envelope::{
    decode, header_len, raw_kind, write_header, write_recorded_header, Envelope, Instance,
    MAX_NODE_ID,
};
use wsd::proto::MessageKind;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = decode(data) {
        assert!((1..=MAX_NODE_ID).contains(&env.node.len()));
        if env.kind == MessageKind::Text {
            assert!(std::str::from_utf8(env.payload).is_ok());
        }
        let mut again = Vec::new();
        match (env.offset, env.sender) {
            (Some(offset), Some(sender)) => {
                write_recorded_header(&mut again, env.node, &env.instance, env.kind, sender);
                let text = offset.to_string();
                again.push(text.len() as u8);
                again.extend_from_slice(text.as_bytes());
            }
            (None, None) => write_header(&mut again, env.node, &env.instance, env.kind),
            other => panic!("an offset without a sender or the reverse: {other:?}"),
        }
        again.extend_from_slice(env.payload);
        assert_eq!(again, data);
    }
    let utf8 = std::str::from_utf8(data).is_ok();
    assert_eq!(raw_kind(data) == MessageKind::Text, utf8);

    let Some(([len, kind, i0, i1, i2, i3, i4, i5, i6, i7], rest)) = data.split_first_chunk() else {
        return;
    };
    let instance: Instance = [*i0, *i1, *i2, *i3, *i4, *i5, *i6, *i7];
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
    write_header(&mut bytes, node, &instance, kind);
    assert_eq!(bytes.len(), header_len(node.len()));
    bytes.extend_from_slice(payload);
    let text_ok = kind == MessageKind::Binary || std::str::from_utf8(payload).is_ok();
    match decode(&bytes) {
        Ok(env) => assert_eq!(
            env,
            Envelope {
                node,
                instance,
                kind,
                payload,
                offset: None,
                sender: None,
            }
        ),
        Err(e) => assert!(!text_ok, "{e:?} for a valid envelope"),
    }
});
