//! The cluster on real threads.

use super::*;

fn handoff(room: &str, n: u32) -> Handoff {
    Handoff {
        room: room.into(),
        bytes: Arc::new(vec![0; 4]),
        messages: n,
        publish: Vec::new(),
    }
}

#[test]
fn a_room_knows_its_reactors_and_goes_away_with_the_last() {
    let c = Cluster::new(4);
    let a0 = c.join_room("/r", 0, false);
    let a2 = c.join_room("/r", 2, false);
    assert!(Arc::ptr_eq(&a0, &a2));
    assert_eq!(a0.others(0), 0b100);
    assert_eq!(a0.others(2), 0b001);
    assert_eq!(c.rooms(), 1);
    c.leave_room(&a0, 0, false);
    assert_eq!(a2.others(1), 0b100);
    assert_eq!(c.rooms(), 1);
    c.leave_room(&a2, 2, false);
    assert_eq!(c.rooms(), 0);
    // Joined again: a fresh share.
    let again = c.join_room("/r", 1, false);
    assert!(!Arc::ptr_eq(&again, &a0));
    assert_eq!(again.others(0), 0b010);
}

#[test]
fn with_a_bus_the_process_wide_opening_and_closing_of_rooms_is_noted_in_order() {
    let c = Cluster::new(2);
    let a = c.join_room("/a", 1, true);
    let again = c.join_room("/a", 0, true);
    c.leave_room(&a, 1, true);
    c.leave_room(&again, 0, true);
    let b = c.join_room("/b", 0, true);
    let names: Vec<String> = c
        .take_room_changes()
        .into_iter()
        .map(|ch| match ch {
            RoomChange::Opened(s) => format!("+{}", s.name()),
            RoomChange::Closed(n) => format!("-{n}"),
        })
        .collect();
    assert_eq!(names, ["+/a", "-/a", "+/b"]);
    assert!(c.take_room_changes().is_empty());
    c.leave_room(&b, 0, false);
    assert!(c.take_room_changes().is_empty());
}

#[test]
fn handoffs_arrive_in_order_and_a_full_mailbox_drops_and_notes_the_room() {
    let c = Cluster::new(2);
    for i in 0..MAILBOX_BATCHES as u32 {
        assert!(c.hand_off(1, handoff("/a", i)));
    }
    assert!(!c.hand_off(1, handoff("/b", 0)));
    assert!(!c.hand_off(1, handoff("/b", 1)));
    assert_eq!(c.handoff_drops(), 2);
    assert_eq!(c.take_lost(1), vec![Arc::<str>::from("/b")]);
    assert!(c.take_lost(1).is_empty());
    for i in 0..MAILBOX_BATCHES as u32 {
        assert_eq!(c.next_handoff(1).map(|h| h.messages), Some(i));
    }
    assert!(c.next_handoff(1).is_none());
    assert!(c.next_handoff(0).is_none());
}

#[test]
fn the_drain_is_begun_by_one_reactor_and_ended_by_the_last() {
    let c = Cluster::new(3);
    assert!(c.begin_drain());
    assert!(!c.begin_drain());
    assert!(!c.begin_drain());
    assert_eq!(c.end_drain(2), None);
    assert_eq!(c.end_drain(0), None);
    assert_eq!(c.end_drain(5), Some(7));
}

#[test]
fn active_connections_are_counted_process_wide_and_never_go_negative() {
    let c = Cluster::new(2);
    assert_eq!(c.activate(), 0);
    assert_eq!(c.activate(), 1);
    c.deactivate();
    c.deactivate();
    c.deactivate();
    assert_eq!(c.active(), 0);
}

#[test]
fn counters_of_the_other_reactors_add_up() {
    let c = Cluster::new(3);
    for (i, n) in [(0, 1), (1, 10), (2, 100)] {
        let mut stats = Stats {
            messages_in: n,
            ..Stats::default()
        };
        *stats.closes.entry(1000).or_default() += n;
        c.publish(
            i,
            Published {
                stats,
                connections: n as usize,
                bus: None,
            },
        );
    }
    let mut sum = Stats::default();
    assert_eq!(c.add_others(0, &mut sum), 110);
    assert_eq!(sum.messages_in, 110);
    assert_eq!(sum.closes.get(&1000), Some(&110));
}

#[test]
fn handoffs_cross_threads_in_order_per_producer() {
    let c = Cluster::new(3);
    let producers: Vec<_> = [0usize, 2]
        .into_iter()
        .map(|from| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..1000u32 {
                    let room = if from == 0 { "/zero" } else { "/two" };
                    while !c.hand_off(1, handoff(room, i)) {
                        c.take_lost(1);
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let mut next = HashMap::new();
    let mut got = 0;
    while got < 2000 {
        match c.next_handoff(1) {
            Some(h) => {
                let want = next.entry(h.room.clone()).or_insert(0u32);
                assert_eq!(h.messages, *want, "{}", h.room);
                *want += 1;
                got += 1;
            }
            None => std::thread::yield_now(),
        }
    }
    for p in producers {
        p.join().unwrap();
    }
}
