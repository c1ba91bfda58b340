//! The connection's input (the server's operations: messages, PING,
//! INFO, -ERR) and the subscription changes sent at each flush.

use log::{debug, warn};

use super::super::codec::{self, Op};
use super::super::inbound::{on_message, Inbound};
use super::{show, write_subject, NatsBus, MAX_SUBJECT};
use crate::bus::DropReason;
use crate::proto::{MessageKind, Parsing};

impl NatsBus {
    /// Handles what the connection has buffered, lending message payloads
    /// to `deliver`, until more input is needed or a fault (which marks
    /// the connection broken for the next flush to reset).
    pub(super) fn handle_ops(&mut self, deliver: &mut dyn FnMut(&str, MessageKind, &[u8])) {
        loop {
            if self.link.skipping() {
                return;
            }
            let NatsBus {
                link,
                stats,
                sids,
                rooms,
                cfg,
                instance,
                max_message,
                limits,
                ..
            } = self;
            let fault = match codec::decode(link.inbuf.filled(), limits) {
                Ok(Parsing::NeedMore(_)) => return,
                Err(e) => format!("bad input from the server: {e}"),
                Ok(Parsing::Done { value, offset }) => match value {
                    Op::Msg(head, payload) => {
                        let ctx = Inbound {
                            sids,
                            rooms,
                            node: cfg.node_id.as_bytes(),
                            instance,
                            max_message: *max_message,
                        };
                        on_message(&ctx, stats, head, payload, deliver);
                        link.inbuf.consume(offset);
                        continue;
                    }
                    Op::Oversized(_, skip) => {
                        // A backend's publish over --max-message: dropped,
                        // and the connection stays.
                        self.stats.count_drop(DropReason::TooLarge);
                        self.link.skip_after(offset, skip);
                        continue;
                    }
                    Op::Ping => {
                        codec::write_pong(self.link.out());
                        self.link.inbuf.consume(offset);
                        continue;
                    }
                    Op::Ok => {
                        self.link.inbuf.consume(offset);
                        continue;
                    }
                    Op::Info(json) => {
                        let json = json.to_vec();
                        self.link.inbuf.consume(offset);
                        match self.on_info(&json) {
                            Ok(()) => continue,
                            Err(why) => why,
                        }
                    }
                    Op::Pong => {
                        self.link.inbuf.consume(offset);
                        match self.on_pong() {
                            Ok(()) => continue,
                            Err(why) => why.to_string(),
                        }
                    }
                    Op::Err(text) => {
                        let text = show(text);
                        self.link.inbuf.consume(offset);
                        // The server keeps the connection after refusing
                        // one subject to this user.
                        if text.starts_with("Permissions Violation") {
                            if !self.denied_warned {
                                warn!("nats bus: the server refuses: {text}");
                                self.denied_warned = true;
                            }
                            continue;
                        }
                        format!("the server said -ERR '{text}'")
                    }
                },
            };
            self.link.broken = Some(fault);
            self.link.inbuf.consume(usize::MAX);
            return;
        }
    }

    /// Sends the subscription changes since the last flush.
    pub(super) fn send_subscriptions(&mut self) {
        for room in std::mem::take(&mut self.dirty) {
            let want = self.rooms.contains(&room);
            if want && !self.told.contains_key(&room) {
                let sid = self.next_sid;
                for (raw, id) in [(false, sid), (true, sid + 1)] {
                    write_subject(&mut self.subject, &self.cfg.prefix, raw, &room);
                    if self.subject.len() > MAX_SUBJECT {
                        debug!("nats bus: a room's name is too long for a subject: not subscribed");
                        break;
                    }
                    codec::write_sub(self.link.out(), &self.subject, id);
                }
                if self.subject.len() > MAX_SUBJECT {
                    continue;
                }
                self.next_sid += 2;
                self.sids.insert(sid, room.clone());
                self.told.insert(room, sid);
                self.subs_changed = true;
            } else if !want {
                if let Some(sid) = self.told.remove(&room) {
                    self.sids.remove(&sid);
                    let out = self.link.out();
                    codec::write_unsub(out, sid);
                    codec::write_unsub(out, sid + 1);
                    self.subs_changed = true;
                }
            }
        }
    }
}
