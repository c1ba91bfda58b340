//! What a `MSG` means: the sans-IO half of [`super::NatsBus`]'s input. A
//! message finds its room by its subscription id (even: the envelope
//! subject, odd: the raw one), and is delivered, skipped as our own, or
//! dropped and counted.

use std::collections::{HashMap, HashSet};

use super::codec::MsgHead;
use crate::bus::envelope::{self, Instance};
use crate::bus::{BusStats, DropReason};
use crate::proto::MessageKind;

/// What handling a `MSG` needs to know.
pub(super) struct Inbound<'a> {
    /// Envelope sid to room.
    pub(super) sids: &'a HashMap<u64, Box<str>>,
    /// Rooms with local members.
    pub(super) rooms: &'a HashSet<Box<str>>,
    /// This node's id.
    pub(super) node: &'a [u8],
    /// This process's instance token.
    pub(super) instance: &'a Instance,
    /// `--max-message`: a larger raw payload is dropped.
    pub(super) max_message: usize,
}

/// Delivers a `MSG` to its room, skips our own, or counts why not.
pub(super) fn on_message(
    ctx: &Inbound<'_>,
    stats: &mut BusStats,
    head: MsgHead<'_>,
    data: &[u8],
    deliver: &mut dyn FnMut(&str, MessageKind, &[u8]),
) {
    let Some(room) = ctx.sids.get(&(head.sid & !1)) else {
        return stats.count_drop(DropReason::Unsubscribed);
    };
    if !ctx.rooms.contains(room) {
        return stats.count_drop(DropReason::Unsubscribed);
    }
    if head.sid & 1 == 1 {
        if data.len() > ctx.max_message {
            return stats.count_drop(DropReason::TooLarge);
        }
        stats.received += 1;
        stats.raw += 1;
        return deliver(room, envelope::raw_kind(data), data);
    }
    match envelope::decode(data) {
        Err(_) => stats.count_drop(DropReason::BadEnvelope),
        Ok(env) if env.node == ctx.node => {
            // The server does not echo our own (`echo: false`): the same
            // id is another process, a clash, delivered and counted for
            // the warning. Our own token is skipped all the same, should a
            // server echo.
            if env.instance != *ctx.instance {
                stats.clash += 1;
                stats.received += 1;
                deliver(room, env.kind, env.payload);
            }
        }
        Ok(env) => {
            stats.received += 1;
            deliver(room, env.kind, env.payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Instance = *b"me-token";

    fn envelope(node: &[u8], instance: &Instance, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        envelope::write_header(&mut out, node, instance, MessageKind::Text);
        out.extend_from_slice(payload);
        out
    }

    /// Feeds `(sid, data)` messages to node `me` with room `/r` on sids 2
    /// and 3: what was delivered, and the counters.
    fn feed(msgs: &[(u64, Vec<u8>)]) -> (Vec<(String, MessageKind, Vec<u8>)>, BusStats) {
        let sids = HashMap::from([(2, Box::<str>::from("/r")), (4, "/gone".into())]);
        let rooms = HashSet::from([Box::<str>::from("/r")]);
        let ctx = Inbound {
            sids: &sids,
            rooms: &rooms,
            node: b"me",
            instance: &ME,
            max_message: 8,
        };
        let mut stats = BusStats::default();
        let mut got = Vec::new();
        for (sid, data) in msgs {
            let head = MsgHead {
                subject: b"ignored",
                sid: *sid,
                reply: None,
            };
            on_message(&ctx, &mut stats, head, data, &mut |room, kind, payload| {
                got.push((room.to_string(), kind, payload.to_vec()))
            });
        }
        (got, stats)
    }

    #[test]
    fn envelopes_and_raw_messages_reach_their_room() {
        let (got, stats) = feed(&[
            (2, envelope(b"other", b"other-tk", b"hi")),
            (3, b"raw text".to_vec()),
            (3, vec![0xff]),
        ]);
        assert_eq!(
            got,
            [
                ("/r".into(), MessageKind::Text, b"hi".to_vec()),
                ("/r".into(), MessageKind::Text, b"raw text".to_vec()),
                ("/r".into(), MessageKind::Binary, vec![0xff]),
            ]
        );
        assert_eq!(
            (stats.received, stats.raw, stats.dropped_total()),
            (3, 2, 0)
        );
    }

    #[test]
    fn our_own_is_skipped_and_a_namesake_is_a_clash() {
        let (got, stats) = feed(&[
            (2, envelope(b"me", &ME, b"echo")),
            (2, envelope(b"me", b"other-tk", b"twin")),
        ]);
        assert_eq!(got, [("/r".into(), MessageKind::Text, b"twin".to_vec())]);
        assert_eq!((stats.received, stats.clash), (1, 1));
    }

    #[test]
    fn every_refusal_is_counted_by_its_reason() {
        let (got, stats) = feed(&[
            (2, b"not an envelope".to_vec()),
            (3, b"raw over eight".to_vec()),
            (4, envelope(b"other", b"other-tk", b"left")),
            (5, b"left".to_vec()),
            (8, b"never".to_vec()),
        ]);
        assert!(got.is_empty());
        assert_eq!(stats.dropped(DropReason::BadEnvelope), 1);
        assert_eq!(stats.dropped(DropReason::TooLarge), 1);
        assert_eq!(stats.dropped(DropReason::Unsubscribed), 3);
    }
}
