//! Reading the two connections: the publish connection's replies (and,
//! with history, the scripts' answers), and the subscribe connection's
//! pushes, lent to the reactor as they are decoded.

use mio::Registry;

use super::super::envelope;
use super::super::link::{ReadEnd, State};
use super::super::replies::{on_pub_reply, on_sub_reply, Inbound};
use super::super::resp::{self, Frame};
use super::super::{Delivery, DropReason};
use super::{logging_in, RedisBus, Which, READ_ROUNDS};
use crate::proto::Parsing;

impl RedisBus {
    /// Reads the subscribe connection. Replies are handled in
    /// `take_inbound`, where their payloads can be lent out.
    pub(super) fn read_sub(&mut self) {
        match self.sub.read() {
            ReadEnd::Drained | ReadEnd::More => {}
            // What came before the end is still delivered; the next flush
            // resets the connection.
            ReadEnd::Eof => self.sub.broken = Some("closed by Redis".into()),
            ReadEnd::Error(e) => self.sub.broken = Some(format!("read: {e}")),
        }
    }

    /// Reads the publish connection and handles its replies, until the
    /// socket would block.
    pub(super) fn read_pub(&mut self, registry: &Registry) {
        loop {
            let read = self.publ.read();
            if let Err(why) = self.handle_pub_replies() {
                return self.fail(registry, Which::Pub, &why);
            }
            match read {
                ReadEnd::Drained => return,
                // Replies were consumed above: there is room again.
                ReadEnd::More => {}
                ReadEnd::Eof => return self.fail(registry, Which::Pub, "closed by Redis"),
                ReadEnd::Error(e) => return self.fail(registry, Which::Pub, &format!("read: {e}")),
            }
        }
    }

    fn handle_pub_replies(&mut self) -> Result<(), String> {
        loop {
            let link = &mut self.publ;
            if link.skipping() {
                return Ok(());
            }
            let (frame, offset) = match resp::decode(link.inbuf.filled(), &self.pub_limits) {
                Ok(Parsing::Done { value, offset }) => (value, offset),
                Ok(Parsing::NeedMore(_)) => return Ok(()),
                Err(e) => return Err(format!("bad reply: {e}")),
            };
            let history = self
                .recorder
                .as_mut()
                .and_then(|r| r.on_reply(&frame, &mut link.expect, &mut self.stats));
            match history {
                Some(done) => done?,
                None => on_pub_reply(frame, &mut link.expect, &mut self.stats)?,
            }
            match frame {
                // A history read too large to keep: skipped as it comes.
                Frame::Oversized(big) => link.skip_after(offset, big.skip()),
                _ => link.inbuf.consume(offset),
            }
            if link.state == State::Greeting && !logging_in(link.expect.front()) {
                self.on_ready(Which::Pub);
            }
        }
    }

    /// Handles the replies buffered on the subscribe connection, lending
    /// message payloads to `deliver`. A fault marks the connection broken.
    fn handle_sub_replies(&mut self, deliver: &mut dyn FnMut(&Delivery<'_>)) {
        while self.sub_replies(deliver) {
            self.on_ready(Which::Sub);
        }
    }

    /// Handles buffered replies until more input is needed (false), or
    /// until the login completes (true: the caller marks the connection
    /// Ready and calls again).
    fn sub_replies(&mut self, deliver: &mut dyn FnMut(&Delivery<'_>)) -> bool {
        let RedisBus {
            sub,
            publ,
            recorder,
            stats,
            rooms,
            cfg,
            sub_limits,
            instance,
            max_message,
            ..
        } = self;
        let ctx = Inbound {
            rooms,
            prefix: cfg.prefix.as_bytes(),
            node: cfg.node_id.as_bytes(),
            instance,
            max_message: *max_message,
        };
        loop {
            if sub.skipping() {
                return false;
            }
            let fault = match resp::decode(sub.inbuf.filled(), sub_limits) {
                Ok(Parsing::Done {
                    value: Frame::Oversized(big),
                    offset,
                }) => {
                    // A backend's PUBLISH over the limit: dropped, and the
                    // connection stays (no room loses messages).
                    let skip = big.skip();
                    stats.count_drop(DropReason::TooLarge);
                    sub.skip_after(offset, skip);
                    continue;
                }
                Ok(Parsing::Done { value, offset }) => {
                    match on_sub_reply(value, &ctx, &mut sub.expect, stats, deliver) {
                        Ok(confirmed) => {
                            // A room's subscription (not its raw channel's)
                            // lets what waited for it go.
                            let room = confirmed
                                .and_then(|c| c.strip_prefix(ctx.prefix))
                                .filter(|r| !r.starts_with(envelope::RAW))
                                .and_then(|r| std::str::from_utf8(r).ok());
                            if let (Some(room), Some(recorder)) = (room, recorder.as_mut()) {
                                recorder.confirm(room, publ);
                            }
                            sub.inbuf.consume(offset);
                            if sub.state == State::Greeting && !logging_in(sub.expect.front()) {
                                return true;
                            }
                            continue;
                        }
                        Err(why) => why,
                    }
                }
                Ok(Parsing::NeedMore(_)) => return false,
                Err(e) => format!("bad reply: {e}"),
            };
            // Out of step: nothing after the fault can be trusted.
            sub.broken = Some(fault);
            sub.inbuf.consume(usize::MAX);
            return false;
        }
    }

    /// Handles what the subscribe connection has buffered, and reads more
    /// while the socket has more, up to [`READ_ROUNDS`].
    pub(super) fn read_inbound(&mut self, deliver: &mut dyn FnMut(&Delivery<'_>)) {
        for _ in 0..READ_ROUNDS {
            self.handle_sub_replies(deliver);
            if !self.sub.read_pending || self.sub.broken.is_some() {
                return;
            }
            self.read_sub();
        }
        self.handle_sub_replies(deliver);
    }
}
