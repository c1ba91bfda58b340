//! `conns`: connections that only open, idle, and close.

use wsd::proto::MessageKind;

use crate::client::Conn;
use crate::worker::{Cx, Workload};

/// Sends nothing; any message the server sends is counted and ignored.
#[derive(Debug, Default)]
pub struct Idle;

impl Workload for Idle {
    fn on_start(&mut self, _: &mut [Option<Conn>], _: &mut Cx) {}

    fn on_message(
        &mut self,
        _: usize,
        _: MessageKind,
        payload: &[u8],
        _: &mut Vec<u8>,
        cx: &mut Cx,
    ) {
        cx.received(payload.len(), None);
    }

    fn on_tick(&mut self, _: &mut [Option<Conn>], _: &mut Cx) -> Option<u64> {
        None
    }

    fn on_lost(&mut self, _: usize, _: &mut Cx) {}

    fn drained(&self) -> bool {
        true
    }

    fn finish(&mut self, _: &mut Cx) {}
}
