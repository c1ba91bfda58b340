//! permessage-deflate on the reactor side: the negotiation at the upgrade,
//! the reactor's shared compressors and inflater, the context a connection
//! keeps between messages (context takeover only) and what it costs, and
//! compressed frames for echo and broadcast.
//!
//! # Memory
//!
//! Without context takeover (the default) a message stands alone: one
//! inflater and one compressor per window size, reset per message, serve
//! every connection, and a connection holds only its agreed [`Terms`]
//! (a few bytes in the connection, no allocation). With
//! `--deflate-context-takeover` a connection keeps a [`Context`]: an
//! inflater (if the client keeps its context) and, in echo mode, a
//! compressor, sized by the agreed windows. Their total is counted in
//! `wsd_deflate_context_bytes`, and once it would pass `--deflate-memory`
//! new connections get the no-takeover terms (with `--threads N`, each
//! reactor keeps to its Nth of the limit).
//!
//! # Broadcast
//!
//! A broadcast frame is compressed once per room and turn, not per
//! receiver, so the server's side never keeps context in broadcast mode
//! (every answer says `server_no_context_takeover`, which is the server's
//! choice): each message is compressed from an empty window with the
//! narrowest window any receiver in the room agreed to, and every receiver
//! that agreed on permessage-deflate gets the same bytes.

use std::cell::Cell;
use std::ops::Range;
use std::rc::Rc;

use super::Server;
use crate::config::{Config, Mode};
use crate::id::ConnId;
use crate::net::buffer::Frames;
use crate::net::conn::Connection;
pub(crate) use crate::net::zcontext::{give_back, lend, Context, Parts, Terms};
use crate::proto::deflate::{self, Agreement, Deflater, Inflater, Policy};
use crate::proto::frame::{decode_header, OpCode};
use crate::proto::handshake::Request;
use crate::proto::session::write_message;
use crate::proto::{Events, Inflate, Limits, MessageKind, Parsing, Session};
use crate::stats::{DeflateStats, Stats};

/// Inflate output kept between messages at most; a larger buffer is freed.
const KEEP_INFLATED: usize = 1 << 20;

/// The reactor's compression state.
pub(super) struct Zlib {
    /// The upgrade's side.
    pub(super) neg: Negotiator,
    /// Messages out.
    pub(super) tx: Tx,
    /// Messages in.
    pub(super) rx: Rx,
}

/// What negotiation needs: the settings and the context memory account.
pub(super) struct Negotiator {
    /// `--deflate` is on.
    on: bool,
    policy: Policy,
    /// This reactor's share of `--deflate-memory`.
    memory_limit: usize,
    /// Bytes of every connection's [`Context`], now.
    held: Rc<Cell<usize>>,
}

/// The shared compressors.
pub(super) struct Tx {
    min_size: usize,
    /// One per window size in use (9 to 15 bits), made on first need.
    deflaters: [Option<Box<Deflater>>; 7],
}

/// The shared inflater and the buffer messages are inflated into.
pub(super) struct Rx {
    inflater: Option<Box<Inflater>>,
    inflated: Vec<u8>,
}

/// What the read path lends the upgrade: negotiation, the inflating side,
/// and the place for the connection's own inflater if it gets one.
pub(super) struct Incoming<'a> {
    pub(super) neg: &'a mut Negotiator,
    pub(super) rx: &'a mut Rx,
    pub(super) inflater: &'a mut Option<Inflater>,
}

impl Zlib {
    /// The state of one of `reactors` reactors: each keeps to its share of
    /// the context memory limit.
    pub(super) fn new(cfg: &Config, reactors: usize) -> Zlib {
        let policy = cfg.deflate.map_or_else(Policy::default, |d| Policy {
            // A broadcast is compressed once for all receivers: no server
            // context in broadcast mode.
            server_takeover: d.context_takeover && cfg.mode == Mode::Echo,
            client_takeover: d.context_takeover,
            max_window_bits: d.window_bits,
        });
        Zlib {
            neg: Negotiator {
                on: cfg.deflate.is_some(),
                policy,
                memory_limit: cfg.deflate.map_or(0, |d| d.memory_limit / reactors.max(1)),
                held: Rc::new(Cell::new(0)),
            },
            tx: Tx {
                min_size: cfg.deflate.map_or(usize::MAX, |d| d.min_size),
                deflaters: Default::default(),
            },
            rx: Rx {
                inflater: None,
                inflated: Vec::new(),
            },
        }
    }
}

impl Negotiator {
    /// Bytes of context connections keep now.
    pub(super) fn context_bytes(&self) -> u64 {
        self.held.get() as u64
    }

    /// Answers the request's permessage-deflate offers, if the server has
    /// it on: the connection's terms and context account, its compressor
    /// and inflater (context takeover only), and the value of the answer's
    /// `Sec-WebSocket-Extensions` header.
    pub(super) fn negotiate(
        &mut self,
        req: &Request<'_>,
        stats: &mut DeflateStats,
    ) -> Option<(Terms, Option<Box<Context>>, Parts, String)> {
        if !self.on {
            return None;
        }
        let offers = req.extension_headers();
        let mut agreed = deflate::negotiate(offers.iter().copied(), &self.policy)?;
        let mut cost = context_cost(&agreed);
        if cost > 0 && self.held.get().saturating_add(cost) > self.memory_limit {
            // Over the memory limit: this one gets the no-takeover terms.
            let policy = Policy {
                server_takeover: false,
                client_takeover: false,
                ..self.policy
            };
            agreed = deflate::negotiate(offers.iter().copied(), &policy)?;
            cost = 0;
            stats.takeover_refused += 1;
        }
        stats.negotiated += 1;
        let terms = Terms {
            server_bits: agreed.server_window_bits(),
            server_reset: agreed.server_no_context_takeover,
            client_reset: agreed.client_no_context_takeover,
        };
        let mut parts: Parts = (None, None);
        let context = (cost > 0).then(|| {
            self.held.set(self.held.get() + cost);
            parts = (
                (!terms.client_reset).then(|| Inflater::new(agreed.client_window_bits())),
                (!terms.server_reset).then(|| Deflater::new(terms.server_bits)),
            );
            Box::new(Context::new(cost, self.held.clone()))
        });
        let mut answer = String::with_capacity(96);
        agreed.write(&mut answer);
        Some((terms, context, parts, answer))
    }
}

/// The memory the context for `a` holds.
fn context_cost(a: &Agreement) -> usize {
    let inflater = if a.client_no_context_takeover {
        0
    } else {
        Inflater::memory(a.client_window_bits())
    };
    let deflater = if a.server_no_context_takeover {
        0
    } else {
        Deflater::memory(a.server_window_bits())
    };
    inflater + deflater
}

impl Tx {
    /// The shared compressor for `bits`, made on first use.
    fn shared(&mut self, bits: u8) -> Option<&mut Deflater> {
        let i = usize::from(bits.clamp(deflate::BACKEND_MIN_WINDOW_BITS, 15) - 9);
        let slot = self.deflaters.get_mut(i)?;
        Some(slot.get_or_insert_with(|| Box::new(Deflater::new(bits))))
    }

    /// Appends `payload` as one frame: compressed if the connection agreed
    /// on permessage-deflate (`terms`) and it is long enough, with the
    /// connection's own compressor (`own`, context takeover) or a shared
    /// one reset for it.
    pub(super) fn write(
        &mut self,
        out: &mut Vec<u8>,
        kind: MessageKind,
        payload: &[u8],
        terms: Option<Terms>,
        own: Option<&mut Deflater>,
        stats: &mut DeflateStats,
    ) {
        let Some(t) = terms.filter(|_| payload.len() >= self.min_size) else {
            return write_message(out, kind, payload);
        };
        let (z, reset) = match own {
            Some(z) => (Some(z), false),
            None if t.server_reset => (self.shared(t.server_bits), true),
            // The peer keeps our context, which only our own compressor
            // may add to; without it, plain is the one safe choice.
            None => (None, false),
        };
        let Some(z) = z else {
            return write_message(out, kind, payload);
        };
        match deflate::write_compressed_message(out, kind, payload, z, reset) {
            Some(n) => count(stats, payload.len(), n),
            None => stats.messages_plain += 1,
        }
    }

    /// The compressed twin of a batch of whole unmasked frames: each
    /// message compressed once, from an empty window of `bits`, or copied
    /// as it is if short; and `senders` (each frame's sender and range)
    /// carried over to the twin's ranges.
    pub(super) fn pack(
        &mut self,
        bytes: &[u8],
        senders: &[(ConnId, Range<usize>)],
        bits: u8,
        stats: &mut DeflateStats,
    ) -> (Vec<u8>, Vec<(ConnId, Range<usize>)>) {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 64);
        // Each frame's start in `bytes` and its range in `out`.
        let mut moved: Vec<(usize, Range<usize>)> = Vec::new();
        let mut at = 0;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            let Ok(Parsing::Done { value: h, offset }) = decode_header(rest) else {
                break;
            };
            let len = usize::try_from(h.len).unwrap_or(usize::MAX);
            let Some(frame) = rest.get(..offset.saturating_add(len)) else {
                break;
            };
            let start = out.len();
            let compressed = frame
                .get(offset..)
                .filter(|p| h.rsv == 0 && h.fin && p.len() >= self.min_size)
                .and_then(|p| kind_of(h.opcode).map(|k| (k, p)))
                .and_then(|(kind, payload)| {
                    let z = self.shared(bits)?;
                    let n = deflate::write_compressed_message(&mut out, kind, payload, z, true)?;
                    count(stats, payload.len(), n);
                    Some(())
                });
            if compressed.is_none() {
                if out.len() > start {
                    stats.messages_plain += 1;
                }
                out.truncate(start);
                out.extend_from_slice(frame);
            }
            if !senders.is_empty() {
                moved.push((at, start..out.len()));
            }
            at += frame.len();
        }
        let senders = senders
            .iter()
            .filter_map(|(sender, range)| {
                let i = moved.binary_search_by_key(&range.start, |m| m.0).ok()?;
                Some((*sender, moved.get(i)?.1.clone()))
            })
            .collect();
        (out, senders)
    }
}

fn kind_of(op: OpCode) -> Option<MessageKind> {
    match op {
        OpCode::Text => Some(MessageKind::Text),
        OpCode::Binary => Some(MessageKind::Binary),
        _ => None,
    }
}

fn count(stats: &mut DeflateStats, before: usize, after: usize) {
    stats.messages_compressed += 1;
    stats.bytes_before += before as u64;
    stats.bytes_after += after as u64;
}

/// A batch's compressed twin: its bytes, and each frame's sender and range.
pub(super) type Packed = (Frames, Vec<(ConnId, Range<usize>)>);

impl Server {
    /// The compressed twin of a batch for `room`'s members on this
    /// reactor, if any of them agreed on permessage-deflate: each message
    /// compressed once for all of them, with the narrowest window any of
    /// them compresses with.
    pub(super) fn pack_room(
        &mut self,
        room: u32,
        frames: &Frames,
        senders: &[(ConnId, Range<usize>)],
    ) -> Option<Packed> {
        self.cfg.deflate?;
        let conns = &self.conns;
        let bits = self
            .hub
            .members(room)
            .iter()
            .filter_map(|&key| conns.get(key)?.deflate.map(|t| t.server_bits))
            .min()?;
        let (bytes, senders) = self.zlib.tx.pack(
            frames.bytes(),
            senders,
            bits,
            &mut self.report.stats.deflate,
        );
        Some((Frames::Local(Rc::new(bytes)), senders))
    }
}

/// The batch a member gets: the compressed twin if it agreed on
/// permessage-deflate and there is one, else the plain batch.
pub(super) fn pick<'a>(
    conn: Option<&Connection>,
    plain: (&'a Frames, &'a [(ConnId, Range<usize>)]),
    packed: Option<&'a Packed>,
) -> (&'a Frames, &'a [(ConnId, Range<usize>)]) {
    match packed {
        Some((frames, senders)) if conn.is_some_and(|c| c.deflate.is_some()) => {
            (frames, senders.as_slice())
        }
        _ => plain,
    }
}

/// Feeds `data` to a session, with the inflater the connection's `terms`
/// call for: its own (`own`, the client keeps context) or the shared one.
/// Returns the bytes to keep and how many compressed messages came in.
#[inline]
pub(super) fn feed<E: Events>(
    session: &mut Session,
    terms: Option<Terms>,
    own: Option<&mut Inflater>,
    data: &mut [u8],
    limits: &Limits,
    rx: &mut Rx,
    ev: &mut E,
) -> (usize, u64) {
    let Some(terms) = terms else {
        return (session.feed(data, limits, ev), 0);
    };
    let (inflater, reset) = match own {
        Some(z) => (z, false),
        None => (
            &mut **rx
                .inflater
                .get_or_insert_with(|| Box::new(Inflater::new(15))),
            true,
        ),
    };
    let before = inflater.messages();
    let inflate = Inflate {
        inflater: &mut *inflater,
        reset: reset || terms.client_reset,
        out: &mut rx.inflated,
    };
    let keep = session.feed_with(data, limits, Some(inflate), ev);
    if rx.inflated.capacity() > KEEP_INFLATED {
        rx.inflated = Vec::new();
    }
    (keep, inflater.messages() - before)
}

/// Copies the context gauge into the counters (before they are shown).
pub(super) fn report(neg: &Negotiator, stats: &mut Stats) {
    stats.deflate.context_bytes = neg.context_bytes();
}
