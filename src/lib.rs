//! wsd: a WebSocket (RFC 6455) echo and broadcast server on one
//! single-threaded mio reactor.
//!
//! # Layout
//!
//! - [`proto`]: the sans-IO protocol core. The handshake parser, the frame
//!   codec, in-place unmasking, incremental UTF-8 validation, message
//!   assembly and the closing handshake. It sees byte slices and returns
//!   decisions; it never does I/O. `wsload` uses it for the client side.
//! - [`net`]: the reactor. Sockets, the mio `Poll`, a slab of connections
//!   each with its own lazily allocated buffers, timers, and the write path.
//!   It never parses bytes itself: it hands them to [`proto`]. TLS
//!   (`net::transport`, with rustls) sits between the socket and the read
//!   and write paths, which see plaintext either way; `net::tls` loads and
//!   reloads the certificate.
//! - [`hub`]: broadcast rooms. A turn's messages for a room are encoded
//!   once into shared bytes that every member's output queue references.
//! - [`bus`]: rooms across processes and machines. The [`bus::Bus`]
//!   interface the reactor drives, and Redis pub/sub behind it: two
//!   non-blocking connections in the reactor's `Poll`, a sans-IO RESP codec,
//!   and a compact envelope (node id, kind, payload) per message.
//! - [`http`]: the plain HTTP answers on the WebSocket port (`/healthz`,
//!   `/metrics`, the page at `/`), sans-IO like [`proto`].
//! - [`config`]: the server's settings and their defaults.
//! - [`auth`]: access control, sans-IO. `--auth-key` files, the token of an
//!   upgrade request verified to per-room rights or a refusal (401/403),
//!   and the rate limits: a token bucket per connection, a count per client
//!   address.
//!
//! # Panics
//!
//! The server is one thread serving every client, so a panic is an outage
//! for all of them. The crate is panic-free by construction: outside tests
//! it may not `unwrap`, `expect`, `panic!`, or index or slice unchecked
//! (the lints below deny it), so a slice is taken with `get` and a missing
//! one means "not yet" or "nothing", never a crash. Peer-controlled lengths
//! are checked against limits, with checked arithmetic, before they are
//! used for allocation or indexing. Tests may panic: that is how they fail.

#![deny(missing_docs)]
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

pub mod auth;
pub mod bus;
pub mod config;
pub mod http;
pub mod hub;
pub mod net;
pub mod proto;
pub mod units;

pub use config::{Config, DeflateConfig, Mode, SlowConsumerPolicy};
pub use net::reactor::{Server, ShutdownHandle, Stats};
