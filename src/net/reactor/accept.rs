//! Accepting: every listener until it would block, the connection limit
//! (503 through the ordinary closing path), and a pause after accept errors
//! such as EMFILE, which a freed descriptor ends early.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::warn;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use super::{listener_token, Server, MAX_LISTENERS};
use crate::config::Config;
use crate::net::conn::Connection;
use crate::net::listener;
use crate::net::transport::Tls;
use crate::proto::handshake;

/// How long accepting pauses after an error such as EMFILE, when retrying at
/// once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections beyond `max_connections` that may be held while they are
/// refused with a 503 (answer, shutdown, drain); beyond that they are dropped.
pub(super) const REFUSAL_HEADROOM: usize = 256;

/// The reactor's listening sockets and what accepting keeps.
pub(super) struct Doors {
    pub(super) listeners: Vec<TcpListener>,
    /// The WebSocket listeners' addresses, then the metrics listeners'.
    pub(super) addrs: Vec<SocketAddr>,
    /// The first of `addrs` (there is always one).
    pub(super) primary: SocketAddr,
    /// Accepting is paused until then, after an error such as EMFILE.
    pub(super) paused_until: Option<Instant>,
    /// The generation the next connection gets.
    pub(super) next_gen: u32,
}

impl Doors {
    /// Binds `cfg`'s WebSocket and metrics addresses, each registered in
    /// `registry` under its listener token.
    pub(super) fn bind(cfg: &Config, registry: &Registry) -> io::Result<Doors> {
        let all = cfg.listen.len() + cfg.metrics_listen.len();
        if cfg.listen.is_empty() || all > MAX_LISTENERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("between 1 and {MAX_LISTENERS} listen addresses"),
            ));
        }
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for (i, addr) in cfg.listen.iter().chain(&cfg.metrics_listen).enumerate() {
            let mut l = listener::bind(*addr, cfg.backlog, cfg.reuse_port, cfg.tcp_keepalive)?;
            registry.register(&mut l, listener_token(i), Interest::READABLE)?;
            addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let primary = *addrs
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listen address"))?;
        Ok(Doors {
            listeners,
            addrs,
            primary,
            paused_until: None,
            next_gen: 0,
        })
    }
}

impl Server {
    /// Accepts again once an accept pause (EMFILE and the like) is over.
    pub(super) fn resume_accepts(&mut self) {
        if self.doors.paused_until.is_some_and(|t| t <= self.clock.now) {
            self.doors.paused_until = None;
            for i in 0..self.doors.listeners.len() {
                self.accept(i);
            }
        }
    }

    pub(super) fn accept(&mut self, listener: usize) {
        if self.doors.paused_until.is_some() {
            return;
        }
        loop {
            let Some(l) = self.doors.listeners.get(listener) else {
                return;
            };
            let (mut stream, peer) = match l.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The peer gave up while queued: nothing to do for it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: retrying now would
                    // spin. Back off; queued connections wait in the backlog
                    // and a closing connection ends the pause early.
                    if self.report.stats.accept_errors == 0
                        || self.report.stats.accept_errors.is_power_of_two()
                    {
                        warn!("accept failed ({e}); pausing accepts for {ACCEPT_BACKOFF:?} [{} so far]", self.report.stats.accept_errors + 1);
                    }
                    self.report.stats.accept_errors += 1;
                    self.doors.paused_until = Some(self.clock.now + ACCEPT_BACKOFF);
                    return;
                }
            };
            // Counted at once, so that reactors accepting at the same time
            // cannot overshoot the process-wide limit; a refused connection
            // stops counting as it starts closing, and connections on their
            // way out do not hold a slot.
            let full = self.peers.cluster.activate() >= self.cfg.max_connections;
            let metrics_only = listener >= self.cfg.listen.len();
            let tls_slot = self.cfg.tls.as_ref().filter(|_| !metrics_only);
            if full {
                self.report.stats.refused_max_connections += 1;
                notice!(
                    self,
                    "{peer}: refused 503, {} connections held",
                    self.conns.len()
                );
                if self.conns.len() >= self.cfg.max_connections + REFUSAL_HEADROOM {
                    // No room even to refuse politely: best effort, then
                    // drop (under TLS, nothing can be said before a handshake).
                    if tls_slot.is_none() {
                        let mut answer = std::mem::take(&mut self.io.out);
                        write_503(&mut answer);
                        let _ = io::Write::write(&mut stream, &answer);
                        answer.clear();
                        self.io.out = answer;
                    }
                    self.peers.cluster.deactivate();
                    continue;
                }
            }
            // New handshakes get the certificate current at their accept.
            let tls = match tls_slot.map(|slot| Tls::new(slot.config())).transpose() {
                Ok(tls) => tls,
                Err(e) => {
                    warn!("{peer}: cannot start TLS: {e}");
                    self.peers.cluster.deactivate();
                    continue;
                }
            };
            // Replies are written whole per turn; Nagle would only add delay.
            let _ = stream.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, Token(key), Interest::READABLE)
            {
                warn!("{peer}: register failed: {e}");
                self.peers.cluster.deactivate();
                continue;
            }
            self.doors.next_gen = self.doors.next_gen.wrapping_add(1);
            let mut conn = Connection::new(stream, self.doors.next_gen);
            conn.metrics_only = metrics_only;
            conn.tls = tls;
            let conn = entry.insert(conn);
            let id = conn.id(key);
            if full {
                // Refuse through the ordinary closing path: answer, shut
                // down, drain the request we never read. Closing with it
                // unread would reset the connection and could destroy the
                // answer on its way.
                write_503(&mut self.io.out);
                self.enter_closing(id);
                self.flush(key);
            } else {
                self.report.stats.accepted += 1;
                self.timers.handshake.arm(self.clock.now, id);
            }
        }
    }
}

/// The answer to a client over the connection limit.
pub(super) fn write_503(out: &mut Vec<u8>) {
    handshake::write_response(
        out,
        503,
        "Service Unavailable",
        "Retry-After: 1\r\n",
        "too many connections",
    );
}
