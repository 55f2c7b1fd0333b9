//! Hostile `sn` values at the engine: forged heartbeats and events
//! carrying a real sender's id with far, huge, zero or negative numbers never
//! mute that sender nor report a forged gap; a sender that really moved far
//! ahead (the receiver missed 100,000 of its messages) is reported as a gap
//! of the right size and keeps being delivered; arbitrary numbers over the
//! whole `i64` range never panic the engine (debug builds check overflow).

use bson::{doc, Bson};
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{Config, HEARTBEAT_EVENT, MAX_SN};
use eventcast_engine::wire::{self, Meta};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

#[path = "support/forge.rs"]
mod forge;

fn forged_meta(id: &str, name: &str, sn: Option<i64>, n: u64) -> Meta {
    forge::meta(Some(id), &format!("{n:040x}"), name, 0, 1, sn)
}

/// A heartbeat `{id, sn}` in `id`'s name, its meta claiming `snAge` `age`.
fn forged_heartbeat_aged(id: &str, sn: i64, n: u64, age: Option<i32>) -> Vec<u8> {
    let mut out = Vec::new();
    let body = wire::encode_document_body(&doc! { "id": id, "sn": Bson::Int64(sn) });
    wire::encode_datagram(&Meta { sn_age: age, ..forged_meta(id, HEARTBEAT_EVENT, Some(sn), n) }, &body, &mut out);
    out
}

/// A heartbeat `{id, sn}` in `id`'s name.
fn forged_heartbeat(id: &str, sn: i64, n: u64) -> Vec<u8> {
    forged_heartbeat_aged(id, sn, n, None)
}

/// An event `forged` in `id`'s name, its meta claiming `snAge` `age`.
fn forged_event_aged(id: &str, sn: i64, n: u64, age: Option<i32>) -> Vec<u8> {
    let mut out = Vec::new();
    let body = wire::encode_args(&[Bson::Int64(sn)]);
    wire::encode_datagram(&Meta { sn_age: age, ..forged_meta(id, "forged", Some(sn), n) }, &body, &mut out);
    out
}

/// An event `forged` in `id`'s name.
fn forged_event(id: &str, sn: i64, n: u64) -> Vec<u8> {
    forged_event_aged(id, sn, n, None)
}

fn attacker() -> SocketAddr {
    "10.6.6.6:9000".parse().unwrap()
}

/// How often each `real` event (by its argument) was delivered at `i`.
fn real_counts(net: &Network, i: usize) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for e in net.events(i).iter().filter(|e| e.name == "real") {
        let Some(Bson::Int64(k)) = e.args.first() else { panic!("{e:?}") };
        *counts.entry(*k).or_insert(0) += 1;
    }
    counts
}

fn assert_each_once(net: &Network, i: usize, n: i64, ctx: &str) {
    let counts = real_counts(net, i);
    let wrong: Vec<_> = (0..n).filter(|k| counts.get(k) != Some(&1)).take(10).collect();
    assert!(wrong.is_empty(), "{ctx}: events not delivered exactly once: {wrong:?} ({:?})", net.stats(i));
}

/// Forged datagrams in the real sender's name, `forgeries` rounds of every
/// far number, while the sender keeps emitting for 10 s.
fn forged_numbers_do_not_mute(forgeries: u64, heartbeats_only: bool) {
    let mut net = Network::new(1000 + forgeries);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config::default());
    let id = net.id(a);
    let far = [1i64 << 40, (1 << 40) + 1, i64::MAX, i64::MIN, 0, -1, MAX_SN, MAX_SN + 1];
    let total = 200i64;
    let mut n = 0u64;
    let per_round = forgeries.div_ceil(total as u64);
    let mut sent = 0u64;
    for k in 0..total {
        net.emit(a, "real", &[Bson::Int64(k)]).unwrap();
        // The forger starts once the sender is known (as in the issue's
        // measurement); a forger speaking first is in the proptest below.
        for _ in 0..per_round {
            if sent >= forgeries || k == 0 {
                break;
            }
            sent += 1;
            for &sn in &far {
                n += 1;
                net.inject(b, attacker(), &forged_heartbeat(&id, sn, n));
                if !heartbeats_only {
                    n += 1;
                    net.inject(b, attacker(), &forged_event(&id, sn, n));
                }
            }
        }
        net.run_for(Duration::from_millis(50));
    }
    assert!(net.run_until_idle());
    let ctx = format!("{forgeries} forgeries, heartbeats only: {heartbeats_only}");
    assert_each_once(&net, b, total, &ctx);
    let gaps: u64 = net.node(b).gaps.iter().map(|g| g.1).sum();
    assert_eq!(gaps, 0, "{ctx}: no real loss, no gap: {:?}", net.node(b).gaps);
    let s = net.stats(b);
    // 0, -1, i64::MIN, i64::MAX and MAX_SN + 1 are refused (heartbeats and events).
    let refused_each = if heartbeats_only { 5 } else { 10 };
    assert!(sent * 2 >= forgeries, "{ctx}: only {sent} sent");
    assert_eq!(s.rejected_malformed, refused_each * sent, "{ctx}: {s:?}");
}

#[test]
fn two_forged_heartbeats_do_not_mute_the_sender() {
    forged_numbers_do_not_mute(2, true);
}

#[test]
fn ten_forged_heartbeats_and_events_do_not_mute_the_sender() {
    forged_numbers_do_not_mute(10, false);
}

#[test]
fn a_thousand_forged_heartbeats_and_events_do_not_mute_the_sender() {
    forged_numbers_do_not_mute(1000, false);
}

#[test]
fn a_real_jump_past_the_window_is_reported_as_a_gap_and_delivery_goes_on() {
    let mut net = Network::new(77);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config::default());
    let id = net.id(a);
    for k in 0..10 {
        net.emit(a, "before", &[Bson::Int64(k)]).unwrap();
    }
    net.run_for(Duration::from_millis(100));
    // b's kernel drops everything for a while: 100,000 messages never reach it.
    net.set_receiver_loss(b, 1.0);
    for k in 0..100_000 {
        net.emit(a, "missed", &[Bson::Int64(k)]).unwrap();
        if k % 1000 == 999 {
            net.run_for(Duration::from_millis(1));
        }
    }
    net.run_for(Duration::from_millis(100));
    net.set_receiver_loss(b, 0.0);
    let restored = net.elapsed();
    let total = 200;
    let mut reported_at = None;
    for k in 0..total {
        net.emit(a, "real", &[Bson::Int64(k)]).unwrap();
        net.run_for(Duration::from_millis(50));
        if reported_at.is_none() && !net.node(b).gaps.is_empty() {
            reported_at = Some(net.elapsed() - restored);
        }
    }
    assert!(net.run_until_idle());
    let gaps = &net.node(b).gaps;
    assert_eq!(gaps, &vec![(id, 100_000)], "{:?}", net.stats(b));
    let after = reported_at.expect("a gap was reported");
    // A TTL (3 s) of corroboration, then the next arrival or timer.
    assert!(after <= Duration::from_secs(4), "reported {after:?} after the link came back");
    assert_each_once(&net, b, total, "after the jump");
    assert_eq!(net.events(b).iter().filter(|e| e.name == "before").count(), 10);
    assert_eq!(net.stats(b).gaps_unrecovered, 100_000);
}

/// The third row: the receiver misses a 100,000-message burst and
/// the sender then stops, so all that tells the receiver is the sender's
/// tail heartbeats, of which it may hear only the last few.
fn a_missed_burst_then_silence(restore_after: Duration, seed: u64) {
    let mut net = Network::new(seed);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config::default());
    let id = net.id(a);
    for k in 0..10 {
        net.emit(a, "before", &[Bson::Int64(k)]).unwrap();
    }
    net.run_for(Duration::from_secs(5)); // tail heartbeats of this first burst done
    net.set_receiver_loss(b, 1.0);
    for k in 0..100_000 {
        net.emit(a, "missed", &[Bson::Int64(k)]).unwrap();
    }
    net.run_for(restore_after);
    net.set_receiver_loss(b, 0.0);
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.node(b).gaps, vec![(id, 100_000)], "{:?}", net.stats(b));
    assert!(net.run_until_idle());
    assert_eq!(net.stats(b).gaps_unrecovered, 100_000);
}

#[test]
fn a_missed_burst_is_reported_from_the_tail_heartbeats() {
    a_missed_burst_then_silence(Duration::from_millis(1), 78);
}

#[test]
fn a_missed_burst_is_reported_from_the_last_tail_heartbeats() {
    // The burst takes no virtual time; its heartbeats are due 0.5 s and 1 s
    // after it, then every ~167 ms until 2 s: from 1.75 s on only the last
    // two (1.83 s and 2 s) reach the receiver.
    a_missed_burst_then_silence(Duration::from_millis(1750), 79);
}

/// Any `i64` that is not among the real sender's numbers (1 ..= 100,000).
fn foreign_number() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>().prop_filter("not a real number", |v| !(1..=100_000).contains(v)),
        100_001..=MAX_SN,
        (1i64 << 40)..(1i64 << 40) + 100_000,
        Just(i64::MAX),
        Just(i64::MIN),
        Just(0i64),
        Just(-1i64),
        Just(MAX_SN),
    ]
}

/// Forged heartbeats (`true`) and events at numbers `sn`, each followed by a
/// real event and `dt` ms of virtual time: every real event is delivered
/// once and no gap larger than a window is reported.
fn forged_then_real(forged: &[(bool, i64, u64)]) -> Result<(), TestCaseError> {
    let aged: Vec<_> = forged.iter().map(|&(h, sn, dt)| (h, sn, dt, None)).collect();
    forged_aged_then_real(&aged)
}

/// [`forged_then_real`] with a forged `snAge` on each forged datagram.
fn forged_aged_then_real(forged: &[(bool, i64, u64, Option<i32>)]) -> Result<(), TestCaseError> {
    let mut net = Network::new(4242);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config::default());
    let id = net.id(a);
    let mut k = 0i64;
    for (n, &(heartbeat, sn, dt, age)) in forged.iter().enumerate() {
        let n = n as u64;
        let d = if heartbeat { forged_heartbeat_aged(&id, sn, n, age) } else { forged_event_aged(&id, sn, n, age) };
        net.inject(b, attacker(), &d);
        net.emit(a, "real", &[Bson::Int64(k)]).unwrap();
        k += 1;
        net.run_for(Duration::from_millis(dt));
    }
    prop_assert!(net.run_until_idle());
    let counts = real_counts(&net, b);
    prop_assert!((0..k).all(|i| counts.get(&i) == Some(&1)), "{:?}", net.stats(b));
    let gaps = &net.node(b).gaps;
    prop_assert!(gaps.iter().all(|g| g.1 <= 16_384), "{gaps:?}");
    prop_assert_eq!(net.stats(b).gaps_unrecovered, gaps.iter().map(|g| g.1).sum::<u64>());
    Ok(())
}

/// Found by the proptest below in CI: a forged far number heard twice, ~650 ms
/// apart, while the real sender was itself still a challenger (a forger spoke
/// first). The real numbering took over, went quiet after its tail
/// heartbeats, and the forged challenger's run (started while the real one
/// was being heard) then took over too, reporting 9·10^15 messages lost.
#[test]
fn a_forged_challenger_does_not_outlive_the_real_takeover() {
    forged_then_real(&[
        (false, 1_412_828_808, 319),
        (true, -1, 240),
        (false, 1_099_511_696_943, 50),
        (false, MAX_SN, 200),
        (true, i64::MIN, 282),
        (false, -1, 74),
        (false, MAX_SN, 73),
        (true, -1, 289),
    ])
    .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Arbitrary forged heartbeats and events over the whole `i64` range, at
    /// arbitrary moments, in the name of a real sender, starting before the
    /// real sender is heard: the engine never panics, every real event is
    /// delivered exactly once, and no absurd gap is reported. (A forger
    /// heard first can claim, and so report lost, up to a window of its own
    /// numbers, as one near the real numbers always could.)
    #[test]
    fn arbitrary_forged_numbers_never_panic_nor_mute(
        forged in proptest::collection::vec((any::<bool>(), foreign_number(), 0u64..400), 1..120),
    ) {
        forged_then_real(&forged)?;
    }

    /// The same with forged `snAge` values (negative, 0, `i32::MAX`, any):
    /// the claim that a numbering is young never panics the engine nor
    /// mutes the real sender, and opens no gap larger than a window. (Forged
    /// numbers near the real ones are another matter, with or without
    /// `snAge`: plaintext has no integrity; `crates/eventcast-engine/tests/sim_join.rs` and
    /// `sim_budget` bound what a young claim near the start costs.)
    #[test]
    fn forged_sn_age_never_panics_nor_mutes(
        forged in proptest::collection::vec(
            (
                any::<bool>(),
                foreign_number(),
                0u64..400,
                proptest::option::of(prop_oneof![Just(-1), Just(0), Just(i32::MAX), any::<i32>()]),
            ),
            1..120,
        ),
    ) {
        forged_aged_then_real(&forged)?;
    }
}
