//! The API phase: a connection whose first request routed to the publish
//! API ([`crate::api`]) stays an HTTP/1.1 connection, keep-alive and
//! pipelined, and each publish goes into its room's batch for the turn like
//! a client's message. Parsing and every decision are [`crate::api`]'s;
//! this file moves bytes, delivers, and keeps the deadlines.
//!
//! - A request is checked from its head ([`api::admit`]) before its body is
//!   buffered: a client that may not publish cannot make the server hold a
//!   body, and gets its refusal with `Connection: close`.
//! - Bodies up to `--max-message` stay in the connection's read buffer
//!   until whole; a larger announced body is a 413 from the head.
//! - A request must complete within `--handshake-timeout` of its first
//!   byte (408, then close); between requests the connection is idle and
//!   falls under `--idle-timeout`, if set (closed quietly). Deadlines are
//!   checked at most one timer period late.
//! - A client that pipelines and never reads its answers is paused at the
//!   output high watermark like any connection (`write`).
//! - A publish reaches the room's members here at the end of the turn,
//!   members on other reactors (`--threads`) and other nodes (`--redis`)
//!   exactly as a client's message does (`fanout`); the answer's
//!   `local_receivers` counts the room's members in this process, on
//!   every reactor (as last counted: a member joining or leaving on
//!   another reactor at that moment may or may not be in it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::peers::Peers;
use super::relay::{BusLink, REMOTE};
use super::upgrade::unix_now;
use super::{Server, BATCH_LIMIT};
use crate::api::{
    self, Access, ApiConn, ApiKeys, Decision, Feed, Grant, Limits, Message, TokenCheck,
};
use crate::auth::{self, KeySlot, Refusal};
use crate::config::Config;
use crate::hub::Hub;
use crate::id::ConnId;
use crate::net::cluster::Handoff;
use crate::net::conn::Phase;
use crate::net::timer::TimerQueue;
use crate::proto::session::write_message;
use crate::stats::Stats;

/// One API connection's state, beside its [`crate::net::conn::Connection`].
#[derive(Debug)]
struct ApiState {
    conn: ApiConn,
    /// The current request's head passed [`api::admit`].
    admitted: bool,
    /// A request is under way (else the connection is idle).
    busy: bool,
    /// When the current request began, or the connection went idle.
    since: Instant,
    /// A deadline entry for the connection is queued.
    armed: bool,
}

/// The API's part of a reactor: its connections' states, a copy of the
/// keys, and the deadlines.
pub(super) struct ApiPart {
    states: HashMap<usize, ApiState>,
    /// The keys as of the last reload seen, and its generation.
    keys: (u64, Arc<ApiKeys>),
    /// Request and idle checks, every `period`.
    timers: TimerQueue,
    /// Rooms whose batch passed [`BATCH_LIMIT`] in this read.
    full: Vec<u32>,
}

/// What serving a read did.
pub(super) struct Served {
    /// Input bytes to keep (an incomplete request), moved to the front.
    pub(super) keep: usize,
    /// The last answer closes the connection.
    pub(super) close: bool,
}

/// The reactor's parts a read of an API connection uses.
pub(super) struct Cx<'a> {
    pub(super) cfg: &'a Config,
    pub(super) out: &'a mut Vec<u8>,
    pub(super) hub: &'a mut Hub,
    pub(super) peers: &'a mut Peers,
    pub(super) link: &'a mut BusLink,
    pub(super) stats: &'a mut Stats,
    pub(super) now: Instant,
    pub(super) draining: bool,
}

impl ApiPart {
    pub(super) fn new(cfg: &Config) -> ApiPart {
        let period = match cfg.idle_timeout {
            Some(idle) => idle.min(cfg.handshake_timeout),
            None => cfg.handshake_timeout,
        };
        ApiPart {
            states: HashMap::new(),
            keys: cfg
                .api_keys
                .as_ref()
                .map_or_else(Default::default, |slot| slot.snapshot()),
            timers: TimerQueue::new(period),
            full: Vec::new(),
        }
    }

    /// The nearest deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Forgets a connection that is gone.
    pub(super) fn forget(&mut self, key: usize) {
        self.states.remove(&key);
    }

    /// Whether connection `key` is between requests.
    fn idle(&self, key: usize) -> bool {
        self.states.get(&key).is_none_or(|s| !s.busy)
    }

    /// Serves the input of API connection `id`: `data` is all of its
    /// unconsumed input. Answers go to `cx.out`, publishes into the rooms'
    /// batches.
    pub(super) fn serve(&mut self, id: ConnId, data: &mut [u8], cx: &mut Cx<'_>) -> Served {
        let limits = Limits {
            max_head: cx.cfg.max_header_bytes,
            max_body: cx.cfg.limits.max_message,
        };
        if let Some(slot) = &cx.cfg.api_keys {
            slot.current(&mut self.keys);
        }
        // A Bearer token that is not an API key may still publish where its
        // `write` covers the room, when access control has keys.
        let token_keys = cx.cfg.auth.keys.as_ref().map(KeySlot::keys);
        let policy = &cx.cfg.auth.policy;
        let unix = unix_now();
        let check = |token: &[u8], room: &str| {
            token_keys.as_deref().map_or(Grant::Invalid, |keys| {
                match auth::may_publish(token, room, keys, policy, unix) {
                    Ok(()) => Grant::Write,
                    Err(Refusal::Forbidden) => Grant::NoWrite,
                    Err(_) => Grant::Invalid,
                }
            })
        };
        let access = Access {
            keys: &self.keys.1,
            tokens: token_keys.is_some().then_some(&check as TokenCheck<'_>),
        };
        let now = cx.now;
        let state = self.states.entry(id.key).or_insert_with(|| ApiState {
            conn: ApiConn::new(),
            admitted: false,
            busy: false,
            since: now,
            armed: false,
        });
        let bus_on = cx.cfg.bus_on();
        let mut at = 0;
        let mut close = false;
        let mut answered = false;
        loop {
            let input = data.get(at..).unwrap_or_default();
            match state.conn.feed(input, &limits) {
                Ok(Feed::Request { request, consumed }) => {
                    let keep_alive = request.keep_alive && !cx.draining;
                    let status = match api::decide(&request, &access) {
                        Decision::One(m) => {
                            let n = deliver(&m, cx, bus_on, &mut self.full);
                            cx.stats.api.published += 1;
                            api::write_published(cx.out, &m.room, n, keep_alive)
                        }
                        Decision::Many(ms) => {
                            for m in &ms {
                                deliver(m, cx, bus_on, &mut self.full);
                            }
                            cx.stats.api.published += ms.len() as u64;
                            api::write_accepted(cx.out, ms.len(), keep_alive)
                        }
                        Decision::Refuse(r) => api::write_refusal(cx.out, &r, keep_alive),
                        Decision::NotPublish => api::write_error(
                            cx.out,
                            404,
                            "no such endpoint: POST /publish/ROOM",
                            keep_alive,
                        ),
                    };
                    cx.stats.api.count_request(status);
                    at += consumed;
                    state.admitted = false;
                    answered = true;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Ok(Feed::NeedMore {
                    consumed,
                    send_continue,
                }) => {
                    at += consumed;
                    if state.admitted || !state.conn.in_request() {
                        break;
                    }
                    let input = data.get(at..).unwrap_or_default();
                    let Some(head) = state.conn.head(input, &limits) else {
                        break;
                    };
                    // Refused from the head: the body is never read, so
                    // the connection cannot be framed any further.
                    if let Err(r) = api::admit(&head, &access) {
                        let status = api::write_refusal(cx.out, &r, false);
                        cx.stats.api.count_request(status);
                        close = true;
                        break;
                    }
                    state.admitted = true;
                    if send_continue {
                        api::write_continue(cx.out);
                    }
                    break;
                }
                Err(e) => {
                    cx.stats
                        .api
                        .count_request(api::write_parse_error(cx.out, e));
                    close = true;
                    break;
                }
            }
        }
        let busy = state.conn.in_request();
        if busy != state.busy || answered {
            state.busy = busy;
            state.since = now;
            if !state.armed {
                state.armed = true;
                self.timers.arm(now, id);
            }
        }
        let keep = data.len().saturating_sub(at);
        data.copy_within(at.., 0);
        Served { keep, close }
    }

    /// Rooms whose batch grew past [`BATCH_LIMIT`] during the last read.
    pub(super) fn take_full(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.full)
    }
}

/// Delivers `m` as a client's broadcast message travels: into its room's
/// batch here when the room has members on this reactor (fan-out then
/// hands it to the other reactors and the bus), else straight to the
/// reactors with members and the bus. Returns the room's members in this
/// process.
fn deliver(m: &Message<'_>, cx: &mut Cx<'_>, bus_on: bool, full: &mut Vec<u32>) -> usize {
    let payload = &m.payload[..];
    if let Some(id) = cx.hub.find(&m.room) {
        if let Some(batch) = cx.hub.batch(id) {
            let start = batch.bytes.len();
            write_message(&mut batch.bytes, m.kind, payload);
            let end = batch.bytes.len();
            // Sent by no connection: --exclude-sender skips nobody.
            batch.frames.push((REMOTE, start..end));
            if bus_on {
                batch.publish.push((m.kind, end - payload.len()..end));
            }
        }
        if cx.hub.batched(id) >= BATCH_LIMIT && !full.contains(&id) {
            full.push(id);
        }
        // With several reactors, the room's members on all of them.
        return cx
            .hub
            .share(id)
            .map_or_else(|| cx.hub.members(id).len(), |s| s.members());
    }
    // No member here: the room's history still records it (--history).
    cx.hub
        .record_alone(&m.room, m.kind, payload, cx.cfg.memory_history());
    let me = cx.peers.me;
    let share = if cx.peers.several() {
        cx.peers.cluster.room(&m.room)
    } else {
        None
    };
    let others = share.as_ref().map_or(0, |s| s.others(me));
    // The first reactor owns the bus: it publishes there itself, and the
    // others hand it the message to publish.
    let via_first = bus_on && me != 0;
    if bus_on && me == 0 {
        cx.link
            .publish(&m.room, payload, &[(m.kind, 0..payload.len())]);
    }
    let receivers = share.as_ref().map_or(0, |s| s.members());
    let to = others | u64::from(via_first);
    if to == 0 {
        return receivers;
    }
    let mut bytes = Vec::with_capacity(payload.len() + 14);
    write_message(&mut bytes, m.kind, payload);
    let at = bytes.len() - payload.len()..bytes.len();
    let bytes = Arc::new(bytes);
    let room: Arc<str> = share.map_or_else(|| Arc::from(&*m.room), |s| s.name().clone());
    for r in cx.peers.each(to) {
        let handoff = Handoff {
            room: room.clone(),
            bytes: bytes.clone(),
            messages: 1,
            publish: if r == 0 && bus_on {
                vec![(m.kind, at.clone())]
            } else {
                Vec::new()
            },
        };
        cx.peers.hand_off(r, handoff);
    }
    receivers
}

impl Server {
    /// Fans out the rooms an API read filled past [`BATCH_LIMIT`].
    pub(super) fn api_fan_out(&mut self) {
        if self.api.full.is_empty() {
            return;
        }
        for room in self.api.take_full() {
            self.fan_out_room(room);
        }
    }

    /// Answers 408 to API connections whose request ran past
    /// `--handshake-timeout`, and closes those idle past `--idle-timeout`.
    pub(super) fn expire_api(&mut self) {
        while let Some(id) = self.api.timers.expired(self.clock.now) {
            let api_phase = self
                .conns
                .get(id.key)
                .is_some_and(|c| c.gen == id.gen && c.phase == Phase::Api);
            let Some(state) = self.api.states.get_mut(&id.key).filter(|_| api_phase) else {
                continue;
            };
            state.armed = false;
            let limit = if state.busy {
                Some(self.cfg.handshake_timeout)
            } else {
                self.cfg.idle_timeout
            };
            let Some(limit) = limit else {
                continue;
            };
            if state.since + limit > self.clock.now {
                state.armed = true;
                self.api.timers.arm(self.clock.now, id);
                continue;
            }
            if state.busy {
                notice!(self, "conn {}: API request timeout (408)", id.key);
                let status = api::write_error(&mut self.io.out, 408, "request timeout", false);
                self.report.stats.api.count_request(status);
            }
            self.enter_closing(id);
            self.flush(id.key);
        }
        let (conns, states) = (&self.conns, &self.api.states);
        self.api.timers.compact(|id| {
            conns.get(id.key).is_some_and(|c| c.gen == id.gen) && states.contains_key(&id.key)
        });
    }

    /// On a graceful drain: closes the API connections between requests
    /// (one under way is answered with `Connection: close`).
    pub(super) fn drain_api(&mut self, key: usize) {
        if self.api.idle(key) {
            if let Some(conn) = self.conns.get(key) {
                let id = conn.id(key);
                self.enter_closing(id);
                self.flush(key);
            }
        }
    }
}
