//! The reactor side: sockets, buffers, the mio `Poll`, the connection slab
//! and timers. It moves bytes; [`crate::proto`] decides what they mean.

pub mod buffer;
pub mod cluster;
pub mod conn;
pub mod guard;
pub mod listener;
pub mod process;
pub mod reactor;
pub mod sys;
pub mod throttle;
pub mod timer;
pub mod transport;
pub mod zcontext;
