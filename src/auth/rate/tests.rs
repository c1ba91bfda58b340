//! The token bucket against its naive twin, and the per-client counter.

use super::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

/// The naive twin: refills one millisecond at a time.
#[derive(Debug)]
struct Naive {
    milli: u64,
    last_ms: u64,
}

impl Naive {
    fn take(&mut self, rate: u64, now_ms: u64, cost: u64) -> bool {
        while self.last_ms < now_ms {
            self.milli = (self.milli + rate).min(rate * 1000);
            self.last_ms += 1;
        }
        if cost * 1000 > self.milli {
            return false;
        }
        self.milli -= cost * 1000;
        true
    }
}

#[test]
fn a_full_bucket_allows_one_second_then_the_rate() {
    let rate = Rate::per_second(10).unwrap();
    let mut bucket = Bucket::full(rate, 1000);
    for _ in 0..10 {
        assert!(bucket.take(rate, 1000, 1));
    }
    assert!(!bucket.take(rate, 1000, 1));
    // One message every 100 ms from then on.
    assert!(!bucket.take(rate, 1099, 1));
    assert!(bucket.take(rate, 1100, 1));
    assert!(!bucket.take(rate, 1150, 1));
    assert!(bucket.take(rate, 1200, 1));
    // A long pause refills to one second's worth, no more.
    assert!(bucket.take(rate, 60_000, 10));
    assert!(!bucket.take(rate, 60_000, 1));
}

#[test]
fn a_refused_take_takes_nothing() {
    let rate = Rate::per_second(100).unwrap();
    let mut bucket = Bucket::full(rate, 0);
    assert!(bucket.take(rate, 0, 60));
    assert!(!bucket.take(rate, 0, 41));
    assert_eq!(bucket.available(), 40);
    assert!(bucket.take(rate, 0, 40));
}

#[test]
fn a_cost_over_one_second_is_always_refused() {
    let rate = Rate::per_second(1000).unwrap();
    let mut bucket = Bucket::full(rate, 0);
    assert!(!bucket.take(rate, 0, 1001));
    assert!(!bucket.take(rate, u64::MAX, 1001));
    assert!(bucket.take(rate, u64::MAX, 1000));
    // Zero costs nothing, even from an empty bucket.
    assert!(bucket.take(rate, u64::MAX, 0));
}

#[test]
fn a_clock_going_back_refills_nothing() {
    let rate = Rate::per_second(1000).unwrap();
    let mut bucket = Bucket::full(rate, 5000);
    assert!(bucket.take(rate, 5000, 1000));
    assert!(!bucket.take(rate, 0, 1));
    // And the later time is kept: 1 ms after 5000 refills 1 unit.
    assert!(bucket.take(rate, 5001, 1));
    assert!(!bucket.take(rate, 5001, 1));
}

#[test]
fn zero_means_no_limit_and_huge_rates_do_not_overflow() {
    assert_eq!(Rate::per_second(0), None);
    let rate = Rate::per_second(u64::MAX).unwrap();
    assert_eq!(rate.get(), MAX_RATE);
    let mut bucket = Bucket::full(rate, 0);
    assert!(bucket.take(rate, u64::MAX, MAX_RATE));
    assert!(bucket.take(rate, u64::MAX, 0));
    assert!(!bucket.take(rate, u64::MAX, u64::MAX));
}

#[test]
fn labels_are_stable_and_distinct() {
    let labels: Vec<_> = Limited::ALL.iter().map(|l| l.label()).collect();
    assert_eq!(labels, ["messages", "bytes", "connections_per_ip"]);
}

proptest! {
    #[test]
    fn the_bucket_agrees_with_its_naive_twin(
        rate in 1u64..200,
        start in 0u64..1_000_000,
        steps in proptest::collection::vec((0u64..40, 0u64..300), 1..60),
    ) {
        let limit = Rate::per_second(rate).unwrap();
        let mut fast = Bucket::full(limit, start);
        let mut naive = Naive { milli: rate * 1000, last_ms: start };
        let mut now = start;
        for (dt, cost) in steps {
            now += dt;
            let cost = cost % (rate * 3 / 2 + 1);
            prop_assert_eq!(fast.take(limit, now, cost), naive.take(rate, now, cost));
            prop_assert_eq!(fast.milli, naive.milli);
        }
    }

    #[test]
    fn no_window_admits_more_than_a_burst_plus_the_rate(
        rate in 1u64..500,
        steps in proptest::collection::vec((0u64..30, 1u64..20), 1..200),
    ) {
        let limit = Rate::per_second(rate).unwrap();
        let mut bucket = Bucket::full(limit, 0);
        let mut now = 0;
        let mut taken = Vec::new();
        for (dt, cost) in steps {
            now += dt;
            if bucket.take(limit, now, cost) {
                taken.push((now, cost));
            }
        }
        // Over any span of T ms: at most one second's worth plus T ms of it.
        for (i, &(from, _)) in taken.iter().enumerate() {
            let mut sum = 0;
            for &(at, cost) in &taken[i..] {
                sum += cost * 1000;
                prop_assert!(sum <= rate * 1000 + (at - from) * rate);
            }
        }
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn connections_are_counted_per_client_up_to_the_limit() {
    let mut per_ip = ConnectionsPerIp::new(2).unwrap();
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    assert!(per_ip.try_acquire(a));
    assert!(per_ip.try_acquire(a));
    assert!(!per_ip.try_acquire(a));
    assert!(per_ip.try_acquire(b));
    assert_eq!(
        (per_ip.open(a), per_ip.open(b), per_ip.clients()),
        (2, 1, 2)
    );
    assert!(per_ip.release(a));
    assert!(per_ip.try_acquire(a));
    assert_eq!(per_ip.max(), 2);
}

#[test]
fn entries_are_freed_at_zero_and_a_stray_release_cannot_underflow() {
    let mut per_ip = ConnectionsPerIp::new(1).unwrap();
    let a = v4(192, 0, 2, 1);
    assert!(!per_ip.release(a));
    assert_eq!(per_ip.clients(), 0);
    assert!(per_ip.try_acquire(a));
    assert!(per_ip.release(a));
    assert_eq!(per_ip.clients(), 0);
    assert!(!per_ip.release(a));
    assert_eq!(per_ip.open(a), 0);
    // Still one allowed, not two.
    assert!(per_ip.try_acquire(a));
    assert!(!per_ip.try_acquire(a));
    // A refused acquire leaves nothing behind for a stranger.
    assert_eq!(per_ip.clients(), 1);
    assert_eq!(ConnectionsPerIp::new(0).map(|p| p.max()), None);
}

#[test]
fn ipv6_clients_are_their_slash_64_and_mapped_ipv4_is_ipv4() {
    let mut per_ip = ConnectionsPerIp::new(1).unwrap();
    let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let same_site: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let other_site: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert!(per_ip.try_acquire(one));
    assert!(!per_ip.try_acquire(same_site));
    assert!(per_ip.try_acquire(other_site));
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert!(per_ip.try_acquire(v4(10, 0, 0, 1)));
    assert!(!per_ip.try_acquire(mapped));
    assert!(per_ip.release(mapped));
    assert_eq!(per_ip.open(v4(10, 0, 0, 1)), 0);
}

proptest! {
    #[test]
    fn the_counter_matches_a_plain_tally(
        ops in proptest::collection::vec((any::<bool>(), 0u8..4), 0..200),
    ) {
        let mut per_ip = ConnectionsPerIp::new(3).unwrap();
        let mut tally = [0u32; 4];
        for (acquire, who) in ops {
            let ip = v4(10, 0, 0, who);
            let n = &mut tally[usize::from(who)];
            if acquire {
                prop_assert_eq!(per_ip.try_acquire(ip), *n < 3);
                *n = (*n + 1).min(3);
            } else {
                prop_assert_eq!(per_ip.release(ip), *n > 0);
                *n = n.saturating_sub(1);
            }
            prop_assert_eq!(per_ip.open(ip), *n);
            prop_assert_eq!(per_ip.clients(), tally.iter().filter(|&&t| t > 0).count());
        }
    }
}
