use super::*;
use std::time::Duration;
const G: Duration = Duration::from_secs(3);

fn sn(v: i64) -> Sn {
    Sn::new(v).expect("valid sn")
}

fn peer(t: Instant, first: i64) -> Peer {
    Peer::new(t, sn(first), G, false)
}

#[test]
fn delivers_once_and_finds_holes() {
    let t = Instant::now();
    let mut p = peer(t, 1);
    assert_eq!(p.on_message(t, sn(1)), (Verdict::Deliver, 0));
    assert_eq!(p.on_message(t, sn(1)), (Verdict::Duplicate, 0));
    assert_eq!(p.on_message(t, sn(4)), (Verdict::Deliver, 0));
    assert_eq!(p.missing(10), vec![2, 3]);
    assert_eq!(p.on_chunk(t, sn(3)), 0);
    assert_eq!(p.missing(10), vec![2]);
    assert_eq!(p.on_latest(t, sn(6)), 0);
    assert_eq!(p.missing(10), vec![2, 5, 6]);
    assert_eq!(p.missing_count(), 3);
    assert_eq!(p.on_message(t, sn(2)), (Verdict::Deliver, 0));
    assert_eq!(p.on_message(t, sn(2)), (Verdict::Duplicate, 0));
    assert!(p.give_up(sn(3)));
    assert!(!p.give_up(sn(3)));
    assert_eq!(p.on_message(t, sn(3)), (Verdict::Duplicate, 0));
    assert_eq!(p.give_up_missing(), 2);
    assert_eq!(p.missing_count(), 0);
    assert_eq!(p.on_message(t, sn(5)), (Verdict::Duplicate, 0));
    assert_eq!(p.on_message(t, sn(7)), (Verdict::Deliver, 0));
    assert_eq!(p.cur.base, 7);
}

/// The join rule: a first contact beyond BACKFILL is a late join unless
/// the sender's numbering started while we listened (`from_start`), and
/// that reaches back to message 1 only from within a window.
#[test]
fn from_start_first_contacts_track_from_message_one() {
    let t = Instant::now();
    // Late join at 100: nothing missing, and 1..=99 are not asked for.
    let mut late = peer(t, 100);
    assert_eq!(late.on_message(t, sn(100)), (Verdict::Deliver, 0));
    assert_eq!(late.missing_count(), 0);
    // Missed start at 100: 1..=99 missing, each delivered once as it comes.
    let mut p = Peer::new(t, sn(100), G, true);
    assert_eq!(p.on_message(t, sn(100)), (Verdict::Deliver, 0));
    assert_eq!(p.missing_count(), 99);
    assert_eq!(p.missing(3), vec![1, 2, 3]);
    assert_eq!(p.on_message(t, sn(1)), (Verdict::Deliver, 0));
    assert_eq!(p.on_message(t, sn(1)), (Verdict::Duplicate, 0));
    assert_eq!(p.missing_count(), 98);
    // At the edge of the window, and beyond it (a late join after all).
    let mut edge = Peer::new(t, sn(SPAN), G, true);
    assert_eq!(edge.on_message(t, sn(SPAN)), (Verdict::Deliver, 0));
    assert_eq!(edge.missing_count(), (SPAN - 1) as u64);
    let mut beyond = Peer::new(t, sn(SPAN + 1), G, true);
    assert_eq!(beyond.on_message(t, sn(SPAN + 1)), (Verdict::Deliver, 0));
    assert_eq!(beyond.missing_count(), 0);
    // Through a heartbeat: everything up to its latest is missing.
    let mut hb = Peer::after_latest(t, sn(50), G, true);
    assert_eq!(hb.on_latest(t, sn(50)), 0);
    assert_eq!(hb.missing_count(), 50);
    let mut hb_late = Peer::after_latest(t, sn(50), G, false);
    assert_eq!(hb_late.on_latest(t, sn(50)), 0);
    assert_eq!(hb_late.missing_count(), 0);
}

#[test]
fn far_jumps_do_not_silence_the_sender_while_it_lives() {
    let t = Instant::now();
    let mut p = peer(t, 1);
    assert_eq!(p.on_message(t, sn(1)), (Verdict::Deliver, 0));
    // Forged/corrupted datagrams far ahead, many and spread over time:
    // delivered once each, never tracked, nothing reported lost.
    let far = 1 << 40;
    let mut real = 2;
    for i in 0..100u32 {
        let now = t + Duration::from_millis(100) * i;
        assert_eq!(p.on_latest(now, sn(far + i64::from(i))), 0);
        assert_eq!(p.on_message(now, sn(far + 10)).1, 0);
        assert_eq!(p.on_message(now, sn(far + 10)), (Verdict::Duplicate, 0));
        // The real sender goes on (more slowly than the forger).
        if i % 5 == 0 {
            assert_eq!(p.on_message(now, sn(real)), (Verdict::Deliver, 0));
            assert_eq!(p.on_message(now, sn(real)), (Verdict::Duplicate, 0));
            real += 1;
        }
        assert_eq!(p.poll(now), None);
    }
    assert_eq!(p.missing_count(), 0);
    assert_eq!(p.cur.highest, real - 1);
}

#[test]
fn a_few_far_datagrams_at_once_never_take_over() {
    let t = Instant::now();
    let mut p = peer(t, 1);
    p.on_message(t, sn(1));
    // Ten at one moment, then silence from everyone: not corroborated over time.
    for i in 0..10 {
        p.on_latest(t, sn((1 << 40) + i));
    }
    assert_eq!(p.others.len(), 1);
    let later = t + 10 * G;
    assert_eq!(p.poll(later), None);
    assert!(p.others.is_empty(), "a challenger silent for 3 TTLs is forgotten");
    assert_eq!(p.on_message(later, sn(2)), (Verdict::Deliver, 0));
}

#[test]
fn a_sender_that_really_moved_on_takes_over_after_a_ttl_and_counts_the_skip() {
    let t = Instant::now();
    let mut p = peer(t, 1);
    assert_eq!(p.on_message(t, sn(1)).0, Verdict::Deliver);
    assert_eq!(p.on_message(t, sn(3)).0, Verdict::Deliver); // 2 missing
    let far = 3 + 100_000;
    let mut lost = 0;
    let mut delivered = 0;
    let mut at = t;
    for i in 0..40 {
        at = t + Duration::from_millis(100) * i;
        if i == 7 {
            continue; // far + 7 lost on the way
        }
        let (v, l) = p.on_message(at, sn(far + i64::from(i)));
        assert_eq!(v, Verdict::Deliver);
        delivered += 1;
        lost += l;
        assert_eq!(p.on_message(at, sn(far + i64::from(i))).0, Verdict::Duplicate);
    }
    assert_eq!(delivered, 39);
    // Took over once a TTL had passed: 2, and 4 ..= far-1, were never heard of.
    assert_eq!(lost, 1 + (far - 4) as u64);
    assert!(at >= t + G);
    assert_eq!(p.missing(10), vec![far + 7], "the new window asks for its own losses");
    assert!(p.nack.due.is_some_and(|d| d <= at + G / 8), "and its request timer is armed");
    assert_eq!(p.on_message(at, sn(far)), (Verdict::Duplicate, 0), "held messages stay settled");
    // The old numbering is now the challenger: what it settled or gave up
    // (and reported) stays so.
    assert_eq!(p.on_message(at, sn(2)), (Verdict::Duplicate, 0));
    assert_eq!(p.on_message(at, sn(3)), (Verdict::Duplicate, 0));
}

#[test]
fn a_forged_takeover_of_an_idle_sender_is_won_back() {
    let t = Instant::now();
    let mut p = peer(t, 1);
    for s in 1..=10 {
        p.on_message(t, sn(s));
    }
    // The sender is idle; a forger corroborates a far numbering for a TTL.
    let far = 1 << 40;
    let mut at = t;
    let mut lost = 0;
    for i in 0..40 {
        at = t + Duration::from_millis(100) * i;
        lost += p.on_latest(at, sn(far));
    }
    assert!(lost > 0, "the forger won");
    // The real sender resumes: delivered once each, and the real numbering wins back.
    let mut lost_back = 0;
    for i in 0..40 {
        let now = at + Duration::from_millis(100) * i;
        let (v, l) = p.on_message(now, sn(11 + i64::from(i)));
        assert_eq!(v, Verdict::Deliver);
        assert_eq!(p.on_message(now, sn(11 + i64::from(i))).0, Verdict::Duplicate);
        lost_back += l;
    }
    assert_eq!(lost_back, 0, "nothing was missing in either numbering");
    assert!(p.cur.highest < 100, "the real numbering is current again");
}

#[test]
fn late_joiner_starts_at_first_message_unless_sender_is_young() {
    let t = Instant::now();
    let mut p = peer(t, 5000);
    assert_eq!(p.on_message(t, sn(5000)).0, Verdict::Deliver);
    assert_eq!(p.on_message(t, sn(5002)).0, Verdict::Deliver);
    assert_eq!(p.missing(10), vec![5001]);
    // Reordered older messages within the grace period: delivered once, never requested.
    assert_eq!(p.on_message(t, sn(4990)).0, Verdict::Deliver);
    assert_eq!(p.on_message(t, sn(4990)).0, Verdict::Duplicate);
    assert_eq!(p.on_message(t, sn(5000 - JOIN_SLACK - 1)).0, Verdict::Duplicate);
    assert_eq!(p.missing_count(), 1);
    let later = t + G;
    assert_eq!(p.on_message(later, sn(4999)).0, Verdict::Duplicate);
    assert_eq!(p.on_message(later, sn(5001)).0, Verdict::Deliver);
    assert_eq!(p.cur.base, 5002);
    let mut q = peer(t, 4);
    q.on_message(t, sn(4));
    assert_eq!(q.missing(10), vec![1, 2, 3]);
}

#[test]
fn window_slides_and_counts_what_falls_out() {
    let t = Instant::now();
    let mut p = peer(t, 1);
    p.on_message(t, sn(1));
    p.on_message(t, sn(3)); // 2 missing
    let (v, lost) = p.on_message(t, sn(3 + SPAN));
    assert_eq!(v, Verdict::Deliver);
    // 2 and the numbers 4..=3 (none) fall out; 3 was settled.
    assert_eq!(lost, 1);
    assert_eq!(p.missing_count(), SPAN as u64 - 1);
}

/// Numbers over the whole `i64` range, weighted towards valid and far ones.
fn number() -> impl proptest::strategy::Strategy<Value = i64> {
    use super::super::sn::MAX_SN;
    proptest::prop_oneof![
        proptest::num::i64::ANY,
        1..=MAX_SN,
        1i64..100_000,
        (1i64 << 40)..(1i64 << 40) + 50_000,
        proptest::strategy::Just(MAX_SN),
        proptest::strategy::Just(0),
    ]
}

proptest::proptest! {
    /// Any sequence of any numbers, valid or not, at any pace: no panic
    /// (overflow panics in this debug build), exact bookkeeping, and no
    /// loss report larger than the largest number anyone claimed.
    #[test]
    fn arbitrary_numbers_never_panic_nor_report_absurd_gaps(
        ops in proptest::collection::vec((0u8..5, number(), 0u64..2000), 1..200),
        near in proptest::collection::vec(1i64..40_000, 0..50),
        first in number(),
        from_start: bool,
        via_heartbeat: bool,
    ) {
        let t = Instant::now();
        // The first contact, as the join rule makes it (a message or a
        // heartbeat, a late join or a stream whose start we missed).
        let first = Sn::new(first).unwrap_or(sn(1));
        let mut p = if via_heartbeat {
            Peer::after_latest(t, first, G, from_start)
        } else {
            Peer::new(t, first, G, from_start)
        };
        let mut now = t;
        let mut max_claimed = first.get();
        let values = ops.iter().map(|&(op, v, dt)| (op, v, dt)).chain(near.iter().map(|&v| (0, v, 100)));
        for (op, v, dt) in values {
            now += Duration::from_millis(dt);
            let Some(s) = Sn::new(v) else { continue };
            max_claimed = max_claimed.max(v);
            let lost = match op {
                0 => p.on_message(now, s).1,
                1 => p.on_chunk(now, s),
                2 => p.on_latest(now, s),
                3 => u64::from(p.give_up(s)),
                _ => p.poll(now).unwrap_or(0),
            };
            proptest::prop_assert!(lost <= max_claimed as u64 + SPAN as u64, "{lost} > {max_claimed}");
            proptest::prop_assert!(p.missing_count() <= SPAN as u64);
            proptest::prop_assert_eq!(p.missing(usize::MAX).len() as u64, p.missing_count());
        }
        proptest::prop_assert!(p.give_up_missing() <= SPAN as u64);
    }
}
