//! What one connection keeps of permessage-deflate: the terms it agreed
//! to and, with context takeover, its own compressor and inflater. The
//! reactor's compression job (`reactor::compress`) makes and uses them;
//! the connection only holds them.

use std::cell::Cell;
use std::rc::Rc;

use crate::proto::deflate::{Deflater, Inflater};

/// What a connection agreed to: three bytes, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    /// The window the server compresses with.
    pub(crate) server_bits: u8,
    /// The server starts each message from an empty window.
    pub(crate) server_reset: bool,
    /// The client starts each message from an empty window.
    pub(crate) client_reset: bool,
}

/// The compression context one connection keeps between messages (context
/// takeover only). Its memory is counted in the reactor's total while it
/// lives.
pub struct Context {
    inflater: Option<Inflater>,
    deflater: Option<Deflater>,
    bytes: usize,
    held: Rc<Cell<usize>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.held.set(self.held.get().saturating_sub(self.bytes));
    }
}

impl Context {
    /// A context of `bytes`, counted in `held` while it lives.
    pub(crate) fn new(bytes: usize, held: Rc<Cell<usize>>) -> Context {
        Context {
            inflater: None,
            deflater: None,
            bytes,
            held,
        }
    }
}

impl Context {
    /// The inflater and the compressor, borrowed where they lie (an open
    /// connection's frames; the handshake uses [`lend`]).
    pub fn parts(&mut self) -> (Option<&mut Inflater>, &mut Option<Deflater>) {
        (self.inflater.as_mut(), &mut self.deflater)
    }
}

/// A connection's compressor and inflater, out of its [`Context`] while
/// its input is processed (see [`lend`]).
pub type Parts = (Option<Inflater>, Option<Deflater>);

/// Takes a connection's compressor and inflater out of its context for the
/// time its input is processed; [`give_back`] returns them.
#[inline]
pub fn lend(ctx: &mut Option<Box<Context>>) -> Parts {
    match ctx.as_deref_mut() {
        Some(c) => (c.inflater.take(), c.deflater.take()),
        None => (None, None),
    }
}

/// Puts what [`lend`] took (or a fresh agreement made) back.
#[inline]
pub fn give_back(ctx: &mut Option<Box<Context>>, (inflater, deflater): Parts) {
    if let Some(c) = ctx.as_deref_mut() {
        c.inflater = inflater;
        c.deflater = deflater;
    }
}
