//! The reactor's side of the bus (`--redis`): messages from other nodes
//! join their room's batch like a client's, and the turn's publishes go out
//! together at its end. The bus itself lives in [`crate::bus`].

use super::Server;
use crate::net::timer::ConnId;
use crate::proto::session::write_message;

/// The sender of frames that came from another node: no connection here,
/// so `--exclude-sender` skips nobody for them.
pub(super) const REMOTE: ConnId = ConnId {
    key: usize::MAX,
    gen: u32::MAX,
};

impl Server {
    /// Encodes every message the bus received, once, into its room's batch
    /// for this turn; `fan_out` then sends it like a local one.
    pub(super) fn bus_inbound(&mut self) {
        let Server { bus, hub, .. } = self;
        let Some(bus) = bus.as_deref_mut() else {
            return;
        };
        if bus.next_deadline().is_some_and(|t| t <= self.now) {
            bus.on_timer(self.poll.registry(), self.now);
        }
        bus.take_inbound(&mut |room, kind, payload| {
            // The bus skips rooms it is not subscribed to; a room may still
            // have emptied this turn, before the unsubscribe went out.
            if let Some(batch) = hub.find(room).and_then(|id| hub.batch(id)) {
                let start = batch.bytes.len();
                write_message(&mut batch.bytes, kind, payload);
                let end = batch.bytes.len();
                batch.frames.push((REMOTE, start..end));
            }
        });
    }

    /// Writes the turn's publishes and subscription changes.
    pub(super) fn bus_flush(&mut self) {
        if let Some(bus) = self.bus.as_deref_mut() {
            bus.flush(self.poll.registry(), self.now);
        }
    }
}
