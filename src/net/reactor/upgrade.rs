//! The handshake phase: the upgrade request answered 101 (or an HTTP error),
//! plain HTTP requests handed to [`crate::http`], and the handshake timeout.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use slab::Slab;

use super::compress::{self, Incoming};
use super::sink::Sink;
use super::Server;
use crate::auth::{self, KeySlot, Limited, Refusal, RoomRights};
use crate::bus::BusStats;
use crate::config::{Config, Mode};
use crate::history::{query, remote, unix_ms, wire, Ask, OFFSETS_PROTOCOL};
use crate::id::ConnId;
use crate::net::cluster::Cluster;
use crate::net::conn::{Connection, Phase};
use crate::net::guard::Guard;
use crate::proto::handshake::{self, HandshakeError, Head};
use crate::proto::Parsing;
use crate::stats::HandshakeFailure;
use crate::tls::ReloadResult;
use crate::{api, http};

impl Server {
    /// Answers 408 to connections whose request did not come in time.
    pub(super) fn expire_handshakes(&mut self) {
        while let Some(id) = self.timers.handshake.expired(self.clock.now) {
            if handshaking(&self.conns, id) {
                self.handshake_timeout(id.key);
            }
        }
        let conns = &self.conns;
        self.timers.handshake.compact(|id| handshaking(conns, id));
    }

    fn handshake_timeout(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let id = conn.id(key);
        if conn.tls.as_ref().is_some_and(|t| t.handshaking()) {
            // No 408: nothing can be said before the TLS handshake is over.
            notice!(self, "conn {key}: TLS handshake timeout");
            self.report
                .stats
                .count_tls_failure(HandshakeFailure::Timeout);
        } else {
            notice!(self, "conn {key}: handshake timeout (408)");
            *self.report.stats.handshake_failures.entry(408).or_default() += 1;
            handshake::write_response(
                &mut self.io.out,
                408,
                "Request Timeout",
                "",
                "handshake timeout",
            );
        }
        self.enter_closing(id);
        self.flush(key);
    }
}

/// What became of input while waiting for the request.
pub(super) enum Handshake {
    /// Incomplete: keep this many bytes.
    Keep(usize),
    /// Upgraded; keep this many bytes of frames that followed the request.
    Upgraded(Upgraded),
    /// A plain HTTP request was answered: close once it is sent.
    Answered,
    /// A request for the publish API: the connection turns into an API
    /// one, its input (this request first) not consumed.
    Api,
    /// Access control refused the upgrade: answer, then close.
    Denied(Denied),
}

/// An upgrade that was answered 101.
pub(super) struct Upgraded {
    /// Bytes of frames that followed the request, to keep.
    pub(super) keep: usize,
    /// The first member of its room on this reactor, which the caller
    /// tells the process's directory or the bus.
    pub(super) new_room: bool,
    /// Seconds until the token expires, if it does: the connection is
    /// closed then.
    pub(super) expires_in: Option<u64>,
}

/// Why access control refused an upgrade.
#[derive(Clone, Copy, Debug)]
pub(super) enum Denied {
    /// No token, or a bad one (401), or one without `read` (403).
    Auth(Refusal),
    /// `--max-connections-per-ip` reached (429).
    PerIp,
}

impl Denied {
    /// The HTTP status.
    pub(super) fn status(self) -> u16 {
        match self {
            Denied::Auth(r) => r.status(),
            Denied::PerIp => 429,
        }
    }

    /// The metric label: the refusal's reason, or the limit.
    pub(super) fn label(self) -> &'static str {
        match self {
            Denied::Auth(r) => r.label(),
            Denied::PerIp => Limited::ConnectionsPerIp.label(),
        }
    }

    /// Appends the answer, before any WebSocket byte: the challenge
    /// (RFC 6750 §3) with a 401 or 403.
    pub(super) fn write(self, out: &mut Vec<u8>) {
        match self {
            Denied::Auth(r) => {
                let reason = if r.status() == 403 {
                    "Forbidden"
                } else {
                    "Unauthorized"
                };
                let challenge = format!("WWW-Authenticate: {}\r\n", r.www_authenticate());
                handshake::write_response(out, r.status(), reason, &challenge, r.reason());
            }
            Denied::PerIp => handshake::write_response(
                out,
                429,
                "Too Many Requests",
                "Retry-After: 1\r\n",
                "too many connections from this address",
            ),
        }
    }
}

/// The Unix time in whole seconds, for token expiry.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the handshake phase sees of the server, besides counters and rooms.
pub(super) struct HttpContext<'a> {
    pub(super) held: usize,
    pub(super) started: Instant,
    pub(super) now: Instant,
    pub(super) draining: bool,
    /// `now` in reactor milliseconds, for rate buckets.
    pub(super) now_ms: u64,
    /// The process's reactors, and which one this is.
    pub(super) cluster: &'a Cluster,
    pub(super) me: usize,
    /// The bus's counters, on the reactor that has it.
    pub(super) bus: Option<&'a BusStats>,
}

/// Handles input while waiting for the request. An upgrade is checked
/// (origin), answered 101 (with the first offered subprotocol we speak),
/// and the rest of the input fed to the session at once: a client may send
/// frames right behind its request. A plain request goes to [`http`].
pub(super) fn handshake(
    conn: &mut Connection,
    key: usize,
    data: &mut [u8],
    cfg: &Config,
    ctx: &HttpContext<'_>,
    sink: &mut Sink<'_>,
    z: &mut Incoming<'_>,
) -> Result<Handshake, HandshakeError> {
    handshake::check_request_line(data)?;
    if !handshake::has_head_end(data) {
        if data.len() < cfg.max_header_bytes {
            return Ok(Handshake::Keep(data.len()));
        }
        return Err(HandshakeError::TooLarge);
    }
    let (req, offset) = match handshake::parse_request(data, cfg.max_header_bytes)? {
        Parsing::NeedMore(_) => return Ok(Handshake::Keep(data.len())),
        Parsing::Done {
            value: Head::Plain { method, path },
            ..
        } => {
            // The publish API, on the WebSocket and the metrics ports.
            if api::route(path) != api::Route::Other {
                return Ok(Handshake::Api);
            }
            let route = http::route(path);
            let elsewhere = if conn.metrics_only {
                !matches!(route, "/metrics" | "/healthz")
            } else {
                // With a metrics address, metrics are served there only, so
                // that with several processes on one port a scrape never
                // lands on another process.
                !cfg.metrics_listen.is_empty() && route == "/metrics"
            };
            if elsewhere {
                let status = http::not_found(sink.out, method);
                *sink.stats.http_responses.entry(status).or_default() += 1;
                return Ok(Handshake::Answered);
            }
            compress::report(z.neg, sink.stats);
            // With several reactors, the answer covers the process: this
            // reactor's counters now, the others' as last published.
            let mut process = None;
            let mut held = ctx.held;
            let mut rooms = sink.hub.rooms();
            if ctx.cluster.reactors() > 1 {
                let mut stats = sink.stats.clone();
                held += ctx.cluster.add_others(ctx.me, &mut stats);
                rooms = ctx.cluster.rooms();
                process = Some(stats);
            }
            let reactors = ctx.cluster.connections_by_reactor(ctx.me, ctx.held);
            // The bus is on the first reactor; the others answer from its
            // last published counters.
            let bus = ctx.bus.cloned().or_else(|| ctx.cluster.bus_stats());
            let mut bus_metrics = String::new();
            if let Some(bus) = &bus {
                // Writing to a String cannot fail.
                let _ = bus.write_metrics(&mut bus_metrics);
            }
            // With --history, its series from the first scrape on, at 0.
            sink.hub.expire_history(unix_ms());
            if let Some(history) = sink.hub.history(cfg.memory_history()) {
                let _ = history.write_metrics(&mut bus_metrics);
            } else if cfg.redis_history() {
                let _ = remote::write_metrics(sink.hub.recall_stats(), &mut bus_metrics);
            }
            let snap = http::Snapshot {
                stats: process.as_ref().unwrap_or(sink.stats),
                open_connections: held,
                rooms,
                mode: match cfg.mode {
                    Mode::Echo => "echo",
                    Mode::Broadcast => "broadcast",
                },
                uptime: ctx.now.duration_since(ctx.started),
                draining: ctx.draining,
                instance: &cfg.instance,
                tls_reloads: cfg.tls.as_ref().map_or([0, 0], |slot| {
                    [
                        slot.reloads(ReloadResult::Ok),
                        slot.reloads(ReloadResult::Error),
                    ]
                }),
                auth_reloads: cfg.auth.keys.as_ref().map_or([0, 0], KeySlot::reloads),
                reactors: &reactors,
                handoff_drops: ctx.cluster.handoff_drops(),
                extra: &bus_metrics,
                bus_up: bus.map(|b| b.up),
            };
            let status = http::respond(sink.out, method, path, &snap);
            *sink.stats.http_responses.entry(status).or_default() += 1;
            return Ok(Handshake::Answered);
        }
        Parsing::Done {
            value: Head::Upgrade(req),
            offset,
        } => (req, offset),
    };
    if conn.metrics_only {
        return Err(HandshakeError::BadRequest(
            "this is the metrics address: WebSocket is served on the --listen one",
        ));
    }
    if ctx.draining {
        return Err(HandshakeError::Unavailable);
    }
    if !req.origin_allowed(&cfg.allowed_origins) {
        return Err(HandshakeError::Forbidden);
    }
    // Access control, once per upgrade: the keys as of now, the token, the
    // room (the path without the query, so never the token).
    let (rights, now) = if cfg.auth.enabled() {
        let keys = cfg
            .auth
            .keys
            .as_ref()
            .map(KeySlot::keys)
            .unwrap_or_default();
        let now = unix_now();
        match auth::authorize(req.path, req.authorization, &keys, &cfg.auth.policy, now) {
            Ok(admitted) => (admitted.rights, now),
            Err(refusal) => return Ok(Handshake::Denied(Denied::Auth(refusal))),
        }
    } else {
        (RoomRights::UNRESTRICTED, 0)
    };
    let protocol = req.negotiate_protocol(&cfg.protocols, cfg.require_protocol)?;
    // History (`--history`): what the client asks of its room's past, and
    // whether it learns offsets. Without --history, rewind joins live.
    let framed = cfg.history.is_some() && protocol == Some(OFFSETS_PROTOCOL);
    let ask = match cfg.history {
        Some(_) if cfg.mode == Mode::Broadcast => {
            query::parse(req.path).map_err(HandshakeError::BadRequest)?
        }
        _ => Ask::Live,
    };
    if matches!(ask, Ask::Since { .. }) && !framed {
        return Err(HandshakeError::BadRequest(
            "since needs the wsd.offsets subprotocol (Sec-WebSocket-Protocol)",
        ));
    }
    // Counted last, when nothing else can refuse it: released when the
    // connection leaves the slab, exactly once.
    let client = match cfg.auth.connections_per_ip {
        0 => None,
        max => match conn.stream.peer_addr() {
            Ok(peer) if !ctx.cluster.acquire_ip(max, peer.ip()) => {
                return Ok(Handshake::Denied(Denied::PerIp));
            }
            Ok(peer) => Some(peer.ip()),
            Err(_) => None,
        },
    };
    sink.guard = Guard::new(
        rights.write,
        cfg.auth.message_rate,
        cfg.auth.bytes_rate,
        client,
        ctx.now_ms,
    );
    // permessage-deflate, if the server has it and the client offers it.
    let agreed = z.neg.negotiate(&req, &mut sink.stats.deflate);
    let extensions = agreed.as_ref().map(|(.., answer)| answer.as_str());
    handshake::write_accept_with(sink.out, req.key, protocol, extensions);
    if let Some((terms, context, (inflater, deflater), _)) = agreed {
        conn.deflate = Some(terms);
        conn.zcontext = context;
        sink.deflate = Some(terms);
        *z.inflater = inflater;
        *sink.own = deflater;
    }
    sink.stats.handshakes += 1;
    conn.phase = Phase::Open;
    let mut new_room = false;
    if cfg.mode == Mode::Broadcast {
        // The path names the room; the query string (a token) does not.
        let room = auth::room_of(req.path);
        let joined = sink.hub.join(room, key, framed);
        new_room = joined.new_room;
        conn.seat = Some(joined.seat);
        sink.room = Some(joined.seat.room);
        if !cfg.redis_history() {
            replay(sink, cfg, room, ask, framed);
        } else if ask != Ask::Live || framed {
            // Its history is read from the bus at the end of the turn.
            sink.hub.hold(joined.seat, conn.id(key), ask, framed);
        }
    }
    let frames = data.get_mut(offset..).unwrap_or_default();
    let (keep, inflated) = compress::feed(
        &mut conn.session,
        conn.deflate,
        z.inflater.as_mut(),
        frames,
        &cfg.limits,
        z.rx,
        sink,
    );
    sink.stats.deflate.messages_inflated += inflated;
    data.copy_within(offset..offset + keep, 0);
    Ok(Handshake::Upgraded(Upgraded {
        keep,
        new_room,
        expires_in: rights.seconds_left(now),
    }))
}

/// Sends a joining client what it asked of its room's history, right
/// behind the 101 and before any live message (which fan-out queues at the
/// end of the turn: this turn's messages are not in the history yet, so
/// there is no gap and no duplicate). A `wsd.offsets` client gets the
/// status message first, then each message with its offset.
fn replay(sink: &mut Sink<'_>, cfg: &Config, room: &str, ask: Ask, framed: bool) {
    let now = unix_ms();
    sink.hub.expire_history(now);
    let Some(history) = sink.hub.history(cfg.memory_history()) else {
        return;
    };
    let mut past = Vec::new();
    let mut sent = 0u64;
    let r = history.join(room, ask, now, &mut |e| {
        sent += 1;
        if framed {
            wire::write_framed(&mut past, e.kind, e.offset, e.payload());
        } else {
            past.extend_from_slice(&e.frame);
        }
    });
    if framed {
        wire::write_status(sink.out, &r);
    }
    sink.out.extend_from_slice(&past);
    sink.stats.messages_out += sent;
}

/// Whether a handshake deadline for `id` still matters: the connection is
/// the same one and has not finished its upgrade.
fn handshaking(conns: &Slab<Connection>, id: ConnId) -> bool {
    conns
        .get(id.key)
        .is_some_and(|c| c.gen == id.gen && c.phase == Phase::Handshake)
}
