//! wsd: a WebSocket (RFC 6455) echo and broadcast server. Each reactor is
//! one thread with its own mio `Poll` and slab of connections; a process
//! runs one or several (`--threads`), whose broadcast rooms span them, and
//! rooms span processes and machines through a bus (Redis pub/sub).
//!
//! # Layout
//!
//! From the bottom up; each layer imports only those below it.
//!
//! - [`proto`]: the sans-IO protocol core. The handshake parser, the frame
//!   codec, in-place unmasking, incremental UTF-8 validation, message
//!   assembly, permessage-deflate and the closing handshake. It sees byte
//!   slices and returns decisions; it never does I/O. `wsload` uses it for
//!   the client side.
//! - [`id`]: identities shared by the layers above: a connection's id that
//!   survives slab key reuse, and a room's share of the reactors.
//! - [`auth`]: access control, sans-IO but for reading the `--auth-key` files
//!   (into a slot the reactors share and SIGHUP swaps). The token of an
//!   upgrade request verified to per-room rights or a refusal (401/403),
//!   and the rate limits: a token bucket per connection, a count per client
//!   address. Below [`stats`], which names its refusals and limits.
//! - [`stats`]: what the server counts ([`Stats`], each counter's metric
//!   name listed once) and the Prometheus text format.
//! - [`units`]: sizes and durations as the flags write them.
//! - [`tls`]: the server's certificate files, loaded and checked into a
//!   rustls config that every reactor shares and SIGHUP swaps; file I/O on
//!   the caller's thread, no sockets.
//! - [`hub`]: broadcast rooms on one reactor. A turn's messages for a room
//!   are encoded once into shared bytes that every member's output queue
//!   references.
//! - [`history`]: per-room history (`--history`), sans-IO: each message's
//!   frame kept once with its offset, bounded per room, by age and in
//!   total; rewind and resume answers, and the `wsd.offsets` framing.
//! - [`http`]: the plain HTTP answers on the WebSocket port (`/healthz`,
//!   `/metrics`, the page at `/`), sans-IO like [`proto`]: it renders a
//!   snapshot it is handed.
//! - [`bus`]: rooms across processes and machines. The [`bus::Bus`]
//!   interface a reactor drives, and Redis pub/sub behind it: two
//!   non-blocking connections in the reactor's `Poll`, a sans-IO RESP codec,
//!   and a compact envelope (node id, instance, kind, payload) per message;
//!   a backend's raw publishes are taken on a channel beside it.
//! - [`api`]: the publish API, HTTP/1.1 for backends (keep-alive,
//!   pipelining, bounded bodies) and what a request may publish, sans-IO.
//! - [`config`]: the server's settings and their defaults.
//! - [`net`]: the reactors. Sockets, the `Poll`, the connection slab, the
//!   read and write paths, timers; TLS sessions (`net::transport`, rustls)
//!   between the socket and the paths, which see plaintext either way.
//!   `net::reactor` is one reactor, its state in parts by job (listeners,
//!   timers, the other reactors, the bus link, the counters);
//!   `net::cluster` is what the reactors of a process share (room
//!   directory, mailboxes, the connection count), and `net::process` starts
//!   them. It never parses bytes itself: it hands them to [`proto`].
//!
//! # Panics
//!
//! A reactor is one thread serving thousands of clients, so a panic is an
//! outage for all of them. The crate is panic-free by construction:
//! outside tests it may not `unwrap`, `expect`, `panic!`, or index or
//! slice unchecked (the lints below deny it), so a slice is taken with `get` and a missing
//! one means "not yet" or "nothing", never a crash. Peer-controlled lengths
//! are checked against limits, with checked arithmetic, before they are
//! used for allocation or indexing. Tests may panic: that is how they fail.

#![deny(missing_docs)]
// The one exception, with its reasons: `net::sys`.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod api;
pub mod auth;
pub mod bus;
pub mod config;
pub mod history;
pub mod http;
pub mod hub;
pub mod id;
pub mod net;
pub mod proto;
pub mod stats;
pub mod tls;
pub mod units;

pub use config::{Config, DeflateConfig, Mode, SlowConsumerPolicy};
pub use net::reactor::{Server, ShutdownHandle, Stats};
