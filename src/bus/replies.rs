//! What each reply means: the sans-IO half of [`super::RedisBus`]. A
//! reply is matched against the one awaited (in command order) or is a
//! `message` push; anything else is out of step and resets the connection.
//!
//! A push on a room's channel carries an envelope; one on its raw channel
//! (the prefix, `raw:`, the room) is a backend's message as it is. See
//! [`envelope`] for both.

use std::collections::HashSet;

use super::envelope::{self, Instance};
use super::link::{Expect, Expected};
use super::resp::{Frame, Value};
use super::{BusStats, Delivery, DropReason};

/// Channels per room: the envelope one and the raw one.
pub(super) const CHANNELS_PER_ROOM: u64 = 2;

/// Handles one reply on the publish connection: `+OK` to a login
/// command, `:n` to a PUBLISH.
pub(super) fn on_pub_reply(
    frame: Frame<'_>,
    expect: &mut Expected,
    stats: &mut BusStats,
) -> Result<(), String> {
    let expected = expect.front();
    match frame {
        Frame::Value(Value::Simple(b"OK")) if expect.pop(Expect::Ok) => Ok(()),
        Frame::Value(Value::Integer(_)) if expect.pop(Expect::Integer) => {
            stats.published += 1;
            Ok(())
        }
        _ => Err(unexpected(&frame, expected)),
    }
}

/// What handling a message push needs to know.
pub(super) struct Inbound<'a> {
    /// Rooms with local members.
    pub(super) rooms: &'a HashSet<Box<str>>,
    /// The channel prefix.
    pub(super) prefix: &'a [u8],
    /// This node's id.
    pub(super) node: &'a [u8],
    /// This process's instance token.
    pub(super) instance: &'a Instance,
    /// `--max-message`: a raw payload larger than this is dropped, as a
    /// client's message would be refused.
    pub(super) max_message: usize,
}

/// Handles one reply on the subscribe connection. A subscription's
/// confirmation returns the channel's name.
pub(super) fn on_sub_reply<'a>(
    frame: Frame<'a>,
    ctx: &Inbound<'_>,
    expect: &mut Expected,
    stats: &mut BusStats,
    deliver: &mut dyn FnMut(&Delivery<'_>),
) -> Result<Option<&'a [u8]>, String> {
    let expected = expect.front();
    let items = match frame {
        Frame::Value(Value::Simple(b"OK")) if expect.pop(Expect::Ok) => return Ok(None),
        Frame::Array(items) => items,
        _ => return Err(unexpected(&frame, expected)),
    };
    match *items.as_slice() {
        [Value::Bulk(b"message"), Value::Bulk(channel), Value::Bulk(data)] => {
            on_message(channel, data, ctx, stats, deliver);
            Ok(None)
        }
        [Value::Bulk(b"subscribe"), Value::Bulk(channel), Value::Integer(n)]
            if expect.pop(Expect::Subscribe) =>
        {
            stats.subscriptions = n.max(0) as u64 / CHANNELS_PER_ROOM;
            Ok(Some(channel))
        }
        [Value::Bulk(b"unsubscribe"), Value::Bulk(_) | Value::Nil, Value::Integer(n)]
            if expect.pop(Expect::Unsubscribe) =>
        {
            stats.subscriptions = n.max(0) as u64 / CHANNELS_PER_ROOM;
            Ok(None)
        }
        _ => Err(unexpected(&frame, expected)),
    }
}

/// Handles a `message` push: delivers it, skips our own, or counts why
/// not.
fn on_message(
    channel: &[u8],
    data: &[u8],
    ctx: &Inbound<'_>,
    stats: &mut BusStats,
    deliver: &mut dyn FnMut(&Delivery<'_>),
) {
    let Some(name) = channel.strip_prefix(ctx.prefix) else {
        return stats.count_drop(DropReason::BadEnvelope);
    };
    // Rooms start with '/', so a raw channel's `raw:` never names a room.
    let (raw, name) = match name.strip_prefix(envelope::RAW) {
        Some(room) => (true, room),
        None => (false, name),
    };
    let Ok(room) = std::str::from_utf8(name) else {
        return stats.count_drop(DropReason::BadEnvelope);
    };
    if !ctx.rooms.contains(room) {
        return stats.count_drop(DropReason::Unsubscribed);
    }
    if raw {
        if data.len() > ctx.max_message {
            return stats.count_drop(DropReason::TooLarge);
        }
        stats.received += 1;
        stats.raw += 1;
        return deliver(&Delivery {
            room,
            kind: envelope::raw_kind(data),
            payload: data,
            offset: None,
            sender: None,
        });
    }
    let env = match envelope::decode(data) {
        Err(_) => return stats.count_drop(DropReason::BadEnvelope),
        Ok(env) => env,
    };
    let mut sender = None;
    if env.node == ctx.node {
        if env.instance == *ctx.instance {
            // Our own, back from Redis: already delivered locally, unless
            // it was recorded in history, which orders every node's
            // delivery (see the recorder).
            if env.offset.is_none() {
                return;
            }
            sender = env.sender;
        } else {
            // The same id from another process is a clash: delivered, and
            // counted for the bus to warn about.
            stats.clash += 1;
        }
    }
    stats.received += 1;
    deliver(&Delivery {
        room,
        kind: env.kind,
        payload: env.payload,
        offset: env.offset,
        sender,
    });
}

/// Says what came and what was awaited, the reply cut short for the log.
fn unexpected(frame: &Frame<'_>, expected: Option<Expect>) -> String {
    // At most 80 bytes of it, escaped: a log line, not a dump.
    let show = |bytes: &[u8]| -> String {
        let shown = bytes.iter().take(80).flat_map(|b| b.escape_ascii());
        shown.map(char::from).collect()
    };
    if let Frame::Value(Value::Error(text)) = frame {
        return format!("Redis replied \"{}\"", show(text));
    }
    let mut bytes = Vec::new();
    frame.encode(&mut bytes);
    let awaited = match expected {
        Some(Expect::Ok) => "+OK",
        Some(Expect::Integer) => "a PUBLISH count",
        Some(Expect::Subscribe) => "a subscribe confirmation",
        Some(Expect::Unsubscribe) => "an unsubscribe confirmation",
        Some(Expect::Loaded) => "a script's SHA-1",
        Some(Expect::Script) => "a recorded PUBLISH count",
        Some(Expect::Read) => "a history read",
        None => "nothing",
    };
    format!(
        "unexpected reply \"{}\" while awaiting {awaited}",
        show(&bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::resp::{decode, Limits};
    use crate::proto::MessageKind;
    use crate::proto::Parsing;

    fn frame(bytes: &[u8]) -> Frame<'_> {
        match decode(bytes, &Limits { max_frame: 1 << 20 }) {
            Ok(Parsing::Done { value, .. }) => value,
            other => panic!("{other:?}"),
        }
    }

    fn push(channel: &str, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::bus::resp::write_command(&mut out, &[b"message", channel.as_bytes(), data]);
        out
    }

    const ME: Instance = *b"me-token";

    fn envelope(node: &[u8], kind: MessageKind, payload: &[u8]) -> Vec<u8> {
        envelope_from(node, b"other-tk", kind, payload)
    }

    fn envelope_from(
        node: &[u8],
        instance: &Instance,
        kind: MessageKind,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        envelope::write_header(&mut out, node, instance, kind);
        out.extend_from_slice(payload);
        out
    }

    /// What node `me` of prefix `p:` knows, with `rooms`.
    fn context(rooms: &HashSet<Box<str>>) -> Inbound<'_> {
        Inbound {
            rooms,
            prefix: b"p:",
            node: b"me",
            instance: &ME,
            max_message: 64,
        }
    }

    /// Feeds replies to a subscribe connection of node `me` with room
    /// `/a`; returns what it delivered, or the first fault.
    fn sub(
        replies: &[Vec<u8>],
        expect: &mut Expected,
        stats: &mut BusStats,
    ) -> Result<Vec<(String, MessageKind, Vec<u8>)>, String> {
        let rooms: HashSet<Box<str>> = ["/a".into()].into();
        let ctx = context(&rooms);
        let mut got = Vec::new();
        for r in replies {
            on_sub_reply(frame(r), &ctx, expect, stats, &mut |d| {
                got.push((d.room.to_string(), d.kind, d.payload.to_vec()))
            })?;
        }
        Ok(got)
    }

    #[test]
    fn recorded_messages_come_with_their_offset_and_our_own_with_its_sender() {
        let rooms: HashSet<Box<str>> = ["/a".into()].into();
        let ctx = context(&rooms);
        let recorded = |node: &[u8], instance: &Instance| {
            let mut data = Vec::new();
            envelope::write_recorded_header(&mut data, node, instance, MessageKind::Text, 77);
            data.extend_from_slice(b"\x031-2hi");
            push("p:/a", &data)
        };
        let (mut expect, mut stats) = (Expected::default(), BusStats::default());
        let mut got = Vec::new();
        for r in [recorded(b"me", &ME), recorded(b"other", b"other-tk")] {
            on_sub_reply(frame(&r), &ctx, &mut expect, &mut stats, &mut |d| {
                got.push((d.payload.to_vec(), d.offset, d.sender))
            })
            .unwrap();
        }
        let offset = Some(crate::history::Offset { ms: 1, seq: 2 });
        assert_eq!(
            got,
            [
                (b"hi".to_vec(), offset, Some(77)),
                (b"hi".to_vec(), offset, None)
            ]
        );
        // A subscription's confirmation names its channel.
        expect.push(Expect::Subscribe, 1);
        let mut confirm = Vec::new();
        crate::bus::resp::write_array_header(&mut confirm, 3);
        crate::bus::resp::write_bulk(&mut confirm, b"subscribe");
        crate::bus::resp::write_bulk(&mut confirm, b"p:/a");
        confirm.extend_from_slice(b":1\r\n");
        let channel = on_sub_reply(frame(&confirm), &ctx, &mut expect, &mut stats, &mut |_| {});
        assert_eq!(channel, Ok(Some(&b"p:/a"[..])));
    }

    #[test]
    fn messages_from_others_are_delivered_and_the_rest_counted() {
        let mut expect = Expected::default();
        let mut stats = BusStats::default();
        let got = sub(
            &[
                push("p:/a", &envelope(b"other", MessageKind::Text, b"hi")),
                push(
                    "p:/a",
                    &envelope_from(b"me", &ME, MessageKind::Text, b"mine"),
                ),
                push("p:/b", &envelope(b"other", MessageKind::Text, b"gone")),
                push("q:/a", &envelope(b"other", MessageKind::Text, b"not ours")),
                push("p:/a", b"\x09garbage"),
                push("p:/a", &envelope(b"other", MessageKind::Binary, b"\xff")),
            ],
            &mut expect,
            &mut stats,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("/a".into(), MessageKind::Text, b"hi".to_vec()),
                ("/a".into(), MessageKind::Binary, b"\xff".to_vec())
            ]
        );
        assert_eq!(stats.received, 2);
        assert_eq!(stats.dropped(DropReason::Unsubscribed), 1);
        assert_eq!(stats.dropped(DropReason::BadEnvelope), 2);
    }

    #[test]
    fn raw_messages_are_delivered_as_text_or_binary() {
        let mut expect = Expected::default();
        let mut stats = BusStats::default();
        let got = sub(
            &[
                push("p:raw:/a", b"hello"),
                push("p:raw:/a", b"\xff\xfe"),
                push("p:raw:/a", b""),
                push("p:raw:/b", b"no one here"),
                // An envelope on the raw channel is just bytes (UTF-8 here).
                push("p:raw:/a", &envelope(b"other", MessageKind::Text, b"x")),
                // Raw bytes on the envelope channel are not an envelope.
                push("p:/a", b"hello"),
                // Over --max-message (64 here): dropped.
                push("p:raw:/a", &[b'z'; 65]),
            ],
            &mut expect,
            &mut stats,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("/a".into(), MessageKind::Text, b"hello".to_vec()),
                ("/a".into(), MessageKind::Binary, b"\xff\xfe".to_vec()),
                ("/a".into(), MessageKind::Text, Vec::new()),
                (
                    "/a".into(),
                    MessageKind::Text,
                    envelope(b"other", MessageKind::Text, b"x")
                ),
            ]
        );
        assert_eq!((stats.received, stats.raw), (4, 4));
        assert_eq!(stats.dropped(DropReason::Unsubscribed), 1);
        assert_eq!(stats.dropped(DropReason::BadEnvelope), 1);
        assert_eq!(stats.dropped(DropReason::TooLarge), 1);
    }

    #[test]
    fn our_id_from_another_process_is_a_clash_delivered_and_counted() {
        let mut expect = Expected::default();
        let mut stats = BusStats::default();
        let got = sub(
            &[
                push(
                    "p:/a",
                    &envelope_from(b"me", &ME, MessageKind::Text, b"echo"),
                ),
                push(
                    "p:/a",
                    &envelope_from(b"me", b"twin-tkn", MessageKind::Text, b"twin"),
                ),
                push(
                    "p:/a",
                    &envelope_from(b"other", &ME, MessageKind::Text, b"odd"),
                ),
            ],
            &mut expect,
            &mut stats,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("/a".into(), MessageKind::Text, b"twin".to_vec()),
                ("/a".into(), MessageKind::Text, b"odd".to_vec())
            ]
        );
        assert_eq!((stats.received, stats.clash, stats.raw), (2, 1, 0));
    }

    #[test]
    fn confirmations_must_be_awaited_and_come_in_order() {
        let mut expect = Expected::default();
        expect.push(Expect::Ok, 1);
        expect.push(Expect::Subscribe, 2);
        expect.push(Expect::Unsubscribe, 1);
        let mut stats = BusStats::default();
        let replies = [
            b"+OK\r\n".to_vec(),
            // Redis counts channels: two a room.
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\np:/a\r\n:2\r\n".to_vec(),
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\np:/b\r\n:4\r\n".to_vec(),
            b"*3\r\n$11\r\nunsubscribe\r\n$4\r\np:/b\r\n:2\r\n".to_vec(),
        ];
        sub(&replies, &mut expect, &mut stats).unwrap();
        assert_eq!((stats.subscriptions, expect.front()), (1, None));

        for (reply, says) in [
            (
                &replies[0],
                "unexpected reply \"+OK\\r\\n\" while awaiting nothing",
            ),
            (&replies[1], "while awaiting nothing"),
            (
                &b"-NOAUTH Authentication required.\r\n".to_vec(),
                "Redis replied \"NOAUTH Auth",
            ),
            (&b":1\r\n".to_vec(), "unexpected reply"),
        ] {
            let err = sub(std::slice::from_ref(reply), &mut expect, &mut stats).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        expect.push(Expect::Ok, 1);
        let err = sub(&replies[1..2], &mut expect, &mut stats).unwrap_err();
        assert!(err.ends_with("while awaiting +OK"), "{err}");
    }

    #[test]
    fn publish_replies_count_acknowledgements() {
        let mut expect = Expected::default();
        expect.push(Expect::Ok, 1);
        expect.push(Expect::Integer, 2);
        let mut stats = BusStats::default();
        for r in [&b"+OK\r\n"[..], b":0\r\n", b":3\r\n"] {
            on_pub_reply(frame(r), &mut expect, &mut stats).unwrap();
        }
        assert_eq!(stats.published, 2);
        let err = on_pub_reply(frame(b":1\r\n"), &mut expect, &mut stats).unwrap_err();
        assert!(err.contains("awaiting nothing"), "{err}");
        expect.push(Expect::Integer, 1);
        let err = on_pub_reply(frame(b"-ERR x\r\n"), &mut expect, &mut stats).unwrap_err();
        assert_eq!(err, "Redis replied \"ERR x\"");
    }
}
