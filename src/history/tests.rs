use super::*;
use proptest::prelude::*;

fn cfg(keep: usize, memory: usize) -> HistoryConfig {
    HistoryConfig {
        keep,
        ttl: Duration::from_secs(600),
        memory,
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    crate::proto::session::write_message(&mut f, MessageKind::Text, payload);
    f
}

fn add(h: &mut History, room: &str, payload: &[u8], now: u64) -> Offset {
    let f = frame(payload);
    h.append(room, MessageKind::Text, &f, f.len() - payload.len(), now)
}

/// The payloads `ask` replays in `room`, and the answer.
fn replay(h: &mut History, room: &str, ask: Ask, now: u64) -> (Vec<Vec<u8>>, Recovery) {
    let mut got = Vec::new();
    let r = h.join(room, ask, now, &mut |e| got.push(e.payload().to_vec()));
    (got, r)
}

fn payloads(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| i.to_string().into_bytes()).collect()
}

#[test]
fn rewind_by_count_gives_the_last_n_oldest_first() {
    let mut h = History::new(cfg(5, 1 << 20), 1);
    for i in 0..8u32 {
        add(&mut h, "/a", i.to_string().as_bytes(), 1000);
    }
    add(&mut h, "/b", b"other room", 1000);
    assert_eq!(replay(&mut h, "/a", Ask::Last(3), 1000).0, payloads(5..8));
    // At most --history: the room keeps 5.
    let (got, r) = replay(&mut h, "/a", Ask::Last(50), 1000);
    assert_eq!(got, payloads(3..8));
    assert_eq!(r.outcome, Outcome::Rewound(5));
    assert_eq!(h.messages(), 6);
    assert_eq!(h.stats().rewinds, 2);
}

#[test]
fn rewind_by_time_gives_the_recent_ones() {
    let mut h = History::new(cfg(100, 1 << 20), 1);
    for i in 0..10u32 {
        add(
            &mut h,
            "/",
            i.to_string().as_bytes(),
            10_000 + u64::from(i) * 1000,
        );
    }
    let (got, _) = replay(&mut h, "/", Ask::Within(Duration::from_secs(3)), 19_500);
    assert_eq!(got, payloads(7..10));
}

#[test]
fn live_join_replays_nothing_and_names_the_last_offset() {
    let mut h = History::new(cfg(10, 1 << 20), 1);
    let o = add(&mut h, "/", b"x", 5);
    let (got, r) = replay(&mut h, "/", Ask::Live, 6);
    assert!(got.is_empty());
    assert_eq!((r.last, r.outcome), (o, Outcome::Live));
    // A room never written has an epoch already, and offset zero.
    let (_, fresh) = replay(&mut h, "/new", Ask::Live, 6);
    assert_eq!(fresh.last, Offset::ZERO);
    assert_ne!(fresh.epoch, r.epoch);
    let o2 = add(&mut h, "/new", b"y", 7);
    let (_, again) = replay(&mut h, "/new", Ask::Live, 8);
    assert_eq!((again.epoch, again.last), (fresh.epoch, o2));
}

#[test]
fn resume_gives_exactly_what_came_after() {
    let mut h = History::new(cfg(10, 1 << 20), 1);
    let offsets: Vec<Offset> = (0..6u32)
        .map(|i| add(&mut h, "/", i.to_string().as_bytes(), 100))
        .collect();
    let epoch = replay(&mut h, "/", Ask::Live, 100).1.epoch;
    let since = |k: usize| Ask::Since {
        offset: offsets[k],
        epoch,
    };
    let (got, r) = replay(&mut h, "/", since(2), 100);
    assert_eq!(got, payloads(3..6));
    assert_eq!(r.outcome, Outcome::Resumed(3));
    let (got, r) = replay(&mut h, "/", since(5), 100);
    assert!(got.is_empty());
    assert_eq!(r.outcome, Outcome::Resumed(0));
    assert_eq!(h.stats().resumes, 2);
}

#[test]
fn resume_from_before_the_history_or_another_epoch_is_a_reset() {
    let mut h = History::new(cfg(3, 1 << 20), 1);
    let offsets: Vec<Offset> = (0..6u32)
        .map(|i| add(&mut h, "/", i.to_string().as_bytes(), 100))
        .collect();
    let epoch = replay(&mut h, "/", Ask::Live, 100).1.epoch;
    // Kept: 3, 4, 5. After 2 nothing is missing; after 1, message 2 is.
    let ask = |k: usize, epoch| Ask::Since {
        offset: offsets[k],
        epoch,
    };
    assert_eq!(replay(&mut h, "/", ask(2, epoch), 100).0, payloads(3..6));
    let (got, r) = replay(&mut h, "/", ask(1, epoch), 100);
    assert!(got.is_empty());
    assert_eq!(r.outcome, Outcome::Reset(ResetReason::TooOld));
    let (got, r) = replay(&mut h, "/", ask(4, epoch + 1), 100);
    assert!(got.is_empty());
    assert_eq!(r.outcome, Outcome::Reset(ResetReason::Epoch));
    // An offset from the future is not this history's either.
    let ahead = Ask::Since {
        offset: Offset { ms: 999, seq: 0 },
        epoch,
    };
    assert_eq!(
        replay(&mut h, "/", ahead, 100).1.outcome,
        Outcome::Reset(ResetReason::Epoch)
    );
    assert_eq!(h.stats().resets, 3);
}

#[test]
fn another_process_has_other_epochs() {
    let mut a = History::new(cfg(3, 1 << 20), 1 << 40);
    let mut b = History::new(cfg(3, 1 << 20), 7 << 40);
    let ea = replay(&mut a, "/", Ask::Live, 1).1.epoch;
    let eb = replay(&mut b, "/", Ask::Live, 1).1.epoch;
    assert_ne!(ea, eb);
    assert!(ea < 1 << 53 && eb < 1 << 53);
}

#[test]
fn ttl_drops_old_messages_and_idle_rooms() {
    let mut h = History::new(cfg(100, 1 << 20), 1);
    add(&mut h, "/a", b"old", 1_000);
    add(&mut h, "/b", b"alone", 1_000);
    add(&mut h, "/a", b"new", 500_000);
    h.expire(601_500, &|_| false);
    assert_eq!(h.messages(), 1);
    // /b: no messages, idle, nobody in it: gone. /a keeps its one.
    assert_eq!(h.rooms(), 1);
    assert_eq!(replay(&mut h, "/a", Ask::Last(10), 601_500).0, [b"new"]);
    // A room with members keeps its record (and epoch) while idle.
    let epoch = h.join("/a", Ask::Live, 601_500, &mut |_| {}).epoch;
    h.expire(2_000_000, &|name| name == "/a");
    assert_eq!(h.messages(), 0);
    assert_eq!(h.join("/a", Ask::Live, 2_000_000, &mut |_| {}).epoch, epoch);
    h.expire(4_000_000, &|_| false);
    assert_eq!(h.rooms(), 0);
    assert_eq!(h.bytes(), 0);
}

#[test]
fn the_memory_cap_drops_the_oldest_first_across_rooms() {
    let per = frame(&[b'x'; 100]).len() + ENTRY_OVERHEAD;
    let rooms = 20;
    let memory = rooms * (ROOM_OVERHEAD + 8) + 10 * per;
    let mut h = History::new(cfg(1000, memory), 1);
    for i in 0..rooms {
        add(&mut h, &format!("/r{i:04}"), &[b'x'; 100], 1000 + i as u64);
    }
    assert!(h.bytes() <= memory, "{} > {memory}", h.bytes());
    assert!(h.stats().evicted > 0);
    // Rooms that lost every message lost their record too.
    assert!(h.rooms() < rooms);
    // The newest rooms kept theirs, the oldest lost them.
    assert_eq!(replay(&mut h, "/r0019", Ask::Last(1), 2000).0.len(), 1);
    assert_eq!(replay(&mut h, "/r0000", Ask::Last(1), 2000).0.len(), 0);
}

/// The naive twin: per room, every message ever recorded, with its
/// offset and the epoch of the record it went into.
#[derive(Default)]
struct Model {
    rooms: HashMap<String, Vec<(u64, Offset, Vec<u8>)>>,
}

proptest! {
    /// Whatever is appended, in any order of rooms, a resume from any
    /// offset ever given out is either exactly the later messages of its
    /// epoch (no gap, no duplicate) or a reset; and the cap holds.
    #[test]
    fn resume_is_exact_or_a_reset(
        ops in proptest::collection::vec((0u8..4, 0usize..40, 0u64..3), 1..200),
        keep in 1usize..8,
        memory_msgs in 1usize..30,
    ) {
        let memory = 4 * (ROOM_OVERHEAD + 3) + memory_msgs * (ENTRY_OVERHEAD + 45);
        let mut h = History::new(cfg(keep, memory), 1);
        let mut model = Model::default();
        let mut now = 1_000;
        for (i, (room, len, step)) in ops.into_iter().enumerate() {
            now += step;
            let name = format!("/{room}");
            let payload = vec![b'a' + (i % 26) as u8; len];
            let o = add(&mut h, &name, &payload, now);
            let epoch = h.join(&name, Ask::Live, now, &mut |_| {}).epoch;
            model.rooms.entry(name).or_default().push((epoch, o, payload));
            prop_assert!(h.bytes() <= memory);
        }
        for (name, sent) in &model.rooms {
            let current = h.join(name, Ask::Live, now, &mut |_| {}).epoch;
            for (k, (epoch, offset, _)) in sent.iter().enumerate() {
                let ask = Ask::Since { offset: *offset, epoch: *epoch };
                let (got, r) = replay(&mut h, name, ask, now);
                match r.outcome {
                    Outcome::Resumed(n) => {
                        prop_assert_eq!(*epoch, current);
                        let want: Vec<Vec<u8>> =
                            sent[k + 1..].iter().map(|(_, _, p)| p.clone()).collect();
                        prop_assert_eq!(n, want.len());
                        prop_assert_eq!(got, want);
                    }
                    Outcome::Reset(ResetReason::TooOld) => prop_assert!(got.is_empty()),
                    // The memory cap took the record it was from.
                    Outcome::Reset(ResetReason::Epoch) => {
                        prop_assert!(got.is_empty());
                        prop_assert_ne!(*epoch, current);
                    }
                    other => prop_assert!(false, "{:?}", other),
                }
            }
            // Offsets increase within an epoch.
            prop_assert!(sent.windows(2).all(|w| w[0].0 != w[1].0 || w[0].1 < w[1].1));
        }
    }
}
