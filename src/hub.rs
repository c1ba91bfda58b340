//! Broadcast membership: the set of connections a message fans out to.
//!
//! Join and leave are O(1): members live in a dense vector and a leaving
//! member's place is taken by the last one, whose owner is told its new slot.
//! The frame itself is encoded once by the caller and shared (`Rc<[u8]>`)
//! by every receiver's output queue.

/// The open connections, by slab key.
#[derive(Debug, Default)]
pub struct Hub {
    members: Vec<usize>,
}

impl Hub {
    /// Adds `key`; returns its slot, to be given back to [`Hub::leave`].
    pub fn join(&mut self, key: usize) -> usize {
        self.members.push(key);
        self.members.len() - 1
    }

    /// Removes the member in `slot`. Returns the key of the member that was
    /// moved into `slot` to fill the hole, whose slot is now `slot`.
    pub fn leave(&mut self, slot: usize) -> Option<usize> {
        if slot >= self.members.len() {
            return None;
        }
        self.members.swap_remove(slot);
        self.members.get(slot).copied()
    }

    /// The members' keys.
    pub fn members(&self) -> &[usize] {
        &self.members
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_moves_the_last_member_into_the_hole() {
        let mut hub = Hub::default();
        let slots: Vec<usize> = (10..15).map(|k| hub.join(k)).collect();
        assert_eq!(slots, [0, 1, 2, 3, 4]);
        assert_eq!(hub.leave(1), Some(14));
        assert_eq!(hub.members(), [10, 14, 12, 13]);
        // Leaving from the end moves nobody.
        assert_eq!(hub.leave(3), None);
        assert_eq!(hub.members(), [10, 14, 12]);
        assert_eq!(hub.leave(7), None);
        assert_eq!(hub.len(), 3);
    }
}
