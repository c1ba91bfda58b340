//! The NATS engine of the bus: [`NatsBus`], NATS core pub/sub on one
//! connection in the reactor's `Poll`, spoken through a sans-IO codec
//! ([`codec`]).
//!
//! # Layout
//!
//! - [`codec`]: the client protocol's operations, bytes in and out, no I/O;
//! - [`info`]: what the server's `INFO` tells a client;
//! - `inbound`: what a `MSG` means: deliver, skip, or count a drop;
//! - [`subject`]: room paths as subjects, reversibly;
//! - [`url`](NatsUrl): `--nats` and the engine's settings;
//! - `bus`: the engine: login, subscriptions, publishes, acknowledgement by
//!   `PING`/`PONG`, failover.

mod bus;
pub mod codec;
mod inbound;
pub mod info;
pub mod subject;
mod url;

pub use bus::NatsBus;
pub use url::{Credentials, NatsConfig, NatsUrl};
