//! Warning about a node-id clash, at most once a minute: another process
//! publishes with this node's id, so each would have taken the other's
//! messages for its own echo, had the envelopes no instance token. Both
//! engines count clashes in [`super::BusStats::clash`] and warn here.

use std::time::{Duration, Instant};

use log::warn;

/// The least time between two warnings about a node-id clash.
const EVERY: Duration = Duration::from_secs(60);

/// When a clash was last warned about, and the count then.
#[derive(Debug, Default)]
pub(super) struct ClashWarning {
    warned: Option<(Instant, u64)>,
}

impl ClashWarning {
    /// Warns if clashes were counted since the last warning (`count` in
    /// all) and a minute has passed since it; `engine` names the bus.
    pub(super) fn check(&mut self, engine: &str, node_id: &str, count: u64, now: Instant) {
        if let Some(new) = self.due(count, now) {
            warn!(
                "{engine} bus: another wsd process publishes with this node's id '{node_id}' ({new} messages since the last warning): node ids must be unique; give each process its own --node-id. Its messages are delivered meanwhile."
            );
        }
    }

    /// The clashes since the last warning, if one is due now.
    fn due(&mut self, count: u64, now: Instant) -> Option<u64> {
        let due = match self.warned {
            None => count > 0,
            Some((at, then)) => count > then && now.saturating_duration_since(at) >= EVERY,
        };
        if !due {
            return None;
        }
        let new = count - self.warned.map_or(0, |(_, then)| then);
        self.warned = Some((now, count));
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clash_is_warned_at_once_then_at_most_once_a_minute() {
        let (mut w, t0) = (ClashWarning::default(), Instant::now());
        assert_eq!(w.due(0, t0), None);
        assert_eq!(w.due(3, t0), Some(3));
        assert_eq!(w.due(5, t0 + Duration::from_secs(30)), None);
        assert_eq!(w.due(5, t0 + EVERY), Some(2));
        // Nothing new: nothing to say, however long it has been.
        assert_eq!(w.due(5, t0 + 10 * EVERY), None);
    }
}
