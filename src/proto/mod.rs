//! The sans-IO protocol core: byte slices in, decisions out. Nothing here
//! touches a socket, a clock or the reactor.

pub mod close;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod session;
pub mod utf8;

pub use error::ProtocolError;
pub use frame::{OpCode, Parsing};
pub use message::{Limits, MessageKind};
pub use session::{Events, Inflate, Role, Session, State};
