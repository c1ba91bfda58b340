//! The publish API: a backend pushes messages into rooms over HTTP/1.1.
//!
//! - `POST /publish/ROOM`: the body is one message for room `/ROOM`, text
//!   if the Content-Type is `text/*` or `application/json` (and then it
//!   must be UTF-8), binary otherwise. Answer: `200
//!   {"room":"/ROOM","local_receivers":N}`.
//! - `POST /publish`, `Content-Type: application/x-ndjson`: one message a
//!   line, all or nothing ([`ndjson`]). Answer: `200 {"accepted":K}`.
//! - `Authorization: Bearer KEY`, a key from `--api-key FILE`
//!   ([`ApiKeys`]), or a token whose rights cover every room named
//!   ([`Grant`]). With neither configured, publishing is off: `403`.
//!
//! Sans-IO like [`crate::proto`] and [`crate::http`]: [`ApiConn`] turns a
//! connection's bytes into whole [`Request`]s (keep-alive, pipelining,
//! `Content-Length` or chunked bodies, bounded); [`decide`] turns a request
//! into a [`Decision`]; the `write_*` functions append answers to an output
//! buffer; [`ApiStats`] counts. The reactor moves the bytes, delivers the
//! messages, and keeps the time.
//!
//! # Driving it from the reactor
//!
//! A connection on the WebSocket port (or the metrics port) becomes an API
//! connection when its first request head, parsed by the handshake step as
//! `Head::Plain`, routes to the API ([`route`] is not [`Route::Other`]).
//! From then on, per connection, beside its input and output buffers:
//!
//! - an [`ApiConn`] (a state enum and an empty `Vec` between requests),
//! - the request deadline: set when [`ApiConn::in_request`] turns true,
//!   cleared when it turns false (an idle keep-alive connection falls under
//!   the idle timeout instead). At the deadline: [`write_error`] `408`,
//!   close.
//!
//! On each read, with `input` the unconsumed bytes (starting with the first
//! request's head on the first call: the handshake step consumes nothing):
//!
//! ```text
//! loop {
//!     match conn.feed(input, &limits) {
//!         Ok(Feed::Request { request, consumed }) => {
//!             match decide(&request, &access) {
//!                 Decision::One(m) => { n = fan out m (hub, bus); write_published(out, &m.room, n, ka) }
//!                 Decision::Many(ms) => { fan out each; write_accepted(out, ms.len(), ka) }
//!                 Decision::Refuse(r) => write_refusal(out, &r, ka),
//!                 Decision::NotPublish => http's answer, or write_error(out, 404, ..)
//!             }
//!             count the status (ApiStats::count_request, published += messages)
//!             drop `consumed` bytes; if !request.keep_alive: close after the answer
//!             else continue (a pipelined request may be whole already)
//!         }
//!         Ok(Feed::NeedMore { consumed, send_continue }) => {
//!             drop `consumed` bytes;
//!             once per request, when conn.head(..) is Some: admit(&head, &access),
//!                 a refusal is written with Connection: close (the body is never read);
//!             if send_continue (and admitted): write_continue(out); break
//!         }
//!         Err(e) => { write_parse_error(out, e); close after the answer; break }
//!     }
//! }
//! ```
//!
//! `limits` is `Limits { max_head: --max-header-bytes, max_body:
//! --max-message }`; `ka` is `request.keep_alive` (false while draining).
//! The input buffer needs room for `max_head + max_body` bytes
//! ([`ApiConn::request_len`] says how much the current request takes, to
//! grow it once); stop reading while answers are queued beyond a bound, so
//! a client that pipelines and never reads cannot grow the output. The
//! request borrows `input`, so the fan-out happens before the bytes are
//! dropped; a message's payload is a slice of the input unless it was
//! chunked, escaped or base64. `net::reactor::api` is that driver.

pub mod answer;
mod chunked;
pub mod conn;
mod error;
mod head;
pub mod keys;
mod message;
pub mod ndjson;
pub mod publish;
pub mod stats;

pub use answer::{
    write_accepted, write_continue, write_error, write_parse_error, write_published, write_refusal,
};
pub use chunked::MAX_LINE as MAX_CHUNK_LINE;
pub use conn::{ApiConn, Feed, Limits, ParseError, Request};
pub use keys::{ApiKeySlot, ApiKeys};
pub use publish::{
    admit, decide, route, Access, Decision, Grant, Message, Refusal, Route, TokenCheck, MAX_BATCH,
};
pub use stats::ApiStats;
