//! The cluster under loom's model checker (scripts/loom.sh): every
//! interleaving of joins, leaves, handoffs and accepts.

use super::*;

fn handoff(room: &str, n: u32) -> Handoff {
    Handoff {
        room: room.into(),
        bytes: Arc::new(Vec::new()),
        messages: n,
        publish: Vec::new(),
    }
}

/// Two reactors join and leave one room at the same time, as their
/// first and last members come and go: however the steps interleave,
/// the bus is told of the room's opening and closing alternately,
/// starting with an opening and ending with a closing, and the
/// directory ends empty.
#[test]
fn concurrent_joins_and_leaves_keep_the_directory_and_the_bus_in_step() {
    loom::model(|| {
        let c = Cluster::new(2);
        let threads: Vec<_> = (0..2)
            .map(|me| {
                let c = c.clone();
                loom::thread::spawn(move || {
                    let share = c.join_room("/r", me, true);
                    assert_ne!(share.others(1 - me) & bit(me), 0);
                    c.leave_room(&share, me, true);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.rooms(), 0);
        let changes = c.take_room_changes();
        assert!(!changes.is_empty());
        for (i, ch) in changes.iter().enumerate() {
            match ch {
                RoomChange::Opened(_) => assert_eq!(i % 2, 0),
                RoomChange::Closed(_) => assert_eq!(i % 2, 1),
            }
        }
        assert!(matches!(changes.last(), Some(RoomChange::Closed(_))));
    });
}

/// A publisher that sees a reactor in the room's set hands it batches
/// in order while that reactor drains its mailbox: every batch arrives,
/// in order, and none is dropped below the mailbox's bound.
#[test]
fn handoffs_from_one_reactor_arrive_in_order_while_the_receiver_drains() {
    loom::model(|| {
        let c = Cluster::new(2);
        let share = c.join_room("/r", 1, false);
        let producer = {
            let c = c.clone();
            loom::thread::spawn(move || {
                let joined = c.join_room("/r", 0, false);
                for i in 0..3 {
                    if joined.others(0) & bit(1) != 0 {
                        assert!(c.hand_off(1, handoff("/r", i)));
                    }
                }
            })
        };
        let mut next = 0;
        for _ in 0..2 {
            if let Some(h) = c.next_handoff(1) {
                assert_eq!(h.messages, next);
                next += 1;
            }
            loom::thread::yield_now();
        }
        producer.join().unwrap();
        while let Some(h) = c.next_handoff(1) {
            assert_eq!(h.messages, next);
            next += 1;
        }
        assert_eq!(next, 3);
        assert_eq!(c.handoff_drops(), 0);
        c.leave_room(&share, 1, false);
    });
}

/// Accepts on two reactors never take the process past its limit.
#[test]
fn concurrent_accepts_never_overshoot_the_connection_limit() {
    loom::model(|| {
        let c = Cluster::new(2);
        c.activate();
        let limit = 2;
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                loom::thread::spawn(move || {
                    let full = c.activate() >= limit;
                    if full {
                        c.deactivate();
                    }
                    !full
                })
            })
            .collect();
        let admitted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&ok| ok)
            .count();
        assert_eq!(admitted, 1);
        assert_eq!(c.active(), 2);
    });
}
