//! The join rule (where loss detection starts for a sender heard for the
//! first time) in the deterministic simulation: a receiver that was already
//! listening when a sender started, but lost the sender's first 100
//! datagrams, asks for them (the sender's `snAge` says its numbering is
//! younger than the receiver) and gets each event once, or reports the ones
//! the sender no longer has as a gap; a real late joiner asks for nothing
//! sent before it joined and reports no gap; forged `snAge` values neither
//! panic a node nor make it send more than the repair budgets allow.

use bson::Bson;
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{Config, Limits};
use eventcast_engine::wire::{self, Meta};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

#[path = "support/forge.rs"]
mod forge;

/// How often each event `n` (by its argument) was delivered at `i`.
fn counts(net: &Network, i: usize) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for e in net.events(i).iter().filter(|e| e.name == "n") {
        let Some(Bson::Int64(k)) = e.args.first() else { panic!("{e:?}") };
        *counts.entry(*k).or_insert(0) += 1;
    }
    counts
}

fn emit_range(net: &mut Network, a: usize, range: std::ops::RangeInclusive<i64>) {
    for k in range {
        net.emit(a, "n", &[Bson::Int64(k)]).unwrap();
    }
}

fn gap_total(net: &Network, i: usize) -> u64 {
    net.node(i).gaps.iter().map(|(_, n)| n).sum()
}

/// Receiver `r` started a second before sender `a`; the sender's first 100
/// datagrams (events 1..=100) never reach `r`, the next 100 do.
fn missed_start(seed: u64, sender: Config) -> (Network, usize, usize) {
    missed_start_after(seed, sender, Duration::from_secs(1))
}

/// As [`missed_start`], the sender starting `pause` after the receiver.
fn missed_start_after(seed: u64, sender: Config, pause: Duration) -> (Network, usize, usize) {
    let mut net = Network::new(seed);
    let r = net.add_endpoint(Config::default());
    let a = net.add_endpoint(sender);
    net.run_for(pause);
    net.set_link_loss(a, r, 1.0);
    emit_range(&mut net, a, 1..=100);
    net.set_link_loss(a, r, 0.0);
    emit_range(&mut net, a, 101..=200);
    assert!(net.run_until_idle(), "network never went idle");
    (net, a, r)
}

/// Fails on the rule before `snAge` (first `sn` heard 101 > BACKFILL: a late
/// joiner, events 1..=100 silently lost: 100 events, no gap).
#[test]
fn a_receiver_that_missed_the_start_of_a_stream_repairs_it() {
    for seed in [1, 2, 3] {
        let (net, a, r) = missed_start(seed, Config::default());
        let c = counts(&net, r);
        let wrong: Vec<_> = (1..=200).filter(|k| c.get(k) != Some(&1)).take(10).collect();
        assert!(wrong.is_empty(), "seed {seed}: not delivered exactly once: {wrong:?}; {:?}", net.stats(r));
        assert_eq!(net.events(r).len(), 200);
        assert!(net.node(r).gaps.is_empty(), "{:?}", net.node(r).gaps);
        assert!(net.stats(r).repairs_requested > 0);
        assert!(net.stats(a).repairs_sent >= 100, "{:?}", net.stats(a));
    }
}

/// A receiver and a sender started together (the usual deployment: both
/// come up at once) or the sender a few milliseconds later: the receiver
/// was listening when the stream began, so it asks for what it missed.
/// Fails with a margin on the rule (e.g. the base repair delay, 375 ms):
/// then such a receiver counts as a late joiner and loses events 1..=100
/// silently.
#[test]
fn a_receiver_started_together_with_the_sender_repairs_a_lost_start() {
    for (seed, pause_ms) in [(5, 0), (6, 3), (7, 50), (8, 300)] {
        let (net, _a, r) = missed_start_after(seed, Config::default(), Duration::from_millis(pause_ms));
        let c = counts(&net, r);
        let wrong: Vec<_> = (1..=200).filter(|k| c.get(k) != Some(&1)).take(10).collect();
        assert!(wrong.is_empty(), "pause {pause_ms} ms: not delivered exactly once: {wrong:?}; {:?}", net.stats(r));
        assert!(net.node(r).gaps.is_empty(), "pause {pause_ms} ms: {:?}", net.node(r).gaps);
    }
}

/// What the sender no longer retains is reported as a gap of exactly that
/// many events, never lost silently.
#[test]
fn what_the_sender_no_longer_has_is_reported_as_a_gap() {
    // Each of these datagrams is about 260 bytes: 16 KiB retains the
    // last 60 or so, so events 1..=100 are gone when asked for.
    let limits = Limits { max_retained_bytes: 16 * 1024, ..Limits::default() };
    let (net, a, r) = missed_start(4, Config { limits, ..Config::default() });
    assert!(net.stats(a).retention_dropped >= 100, "{:?}", net.stats(a));
    let c = counts(&net, r);
    assert!((101..=200).all(|k| c.get(&k) == Some(&1)), "{:?}", net.stats(r));
    assert_eq!(net.events(r).len(), 100);
    assert_eq!(gap_total(&net, r), 100, "{:?}", net.node(r).gaps);
    assert!(net.node(r).gaps.iter().all(|(id, _)| *id == net.id(a)));
}

/// A receiver that lost a whole short burst learns of it from the sender's
/// tail heartbeats (their meta carries `snAge` too) and asks for all of it.
#[test]
fn a_lost_burst_is_repaired_from_the_heartbeats() {
    let mut net = Network::new(5);
    let r = net.add_endpoint(Config::default());
    let a = net.add_endpoint(Config::default());
    net.run_for(Duration::from_secs(1));
    net.set_link_loss(a, r, 1.0);
    emit_range(&mut net, a, 1..=50);
    net.set_link_loss(a, r, 0.0);
    assert!(net.run_until_idle());
    let c = counts(&net, r);
    assert!((1..=50).all(|k| c.get(&k) == Some(&1)), "{c:?} {:?}", net.stats(r));
    assert!(net.node(r).gaps.is_empty());
}

/// A real late joiner: the sender's numbering is older than the receiver.
/// It asks for nothing sent before it joined and reports no gap, whether
/// it first hears a message or a heartbeat.
#[test]
fn a_late_joiner_asks_for_nothing_before_it_joined() {
    for (seed, quiet) in [(6, Duration::ZERO), (7, Duration::from_millis(300)), (8, Duration::from_secs(5))] {
        let mut net = Network::new(seed);
        let a = net.add_endpoint(Config::default());
        // 200 events over a second.
        for k in 1..=200 {
            net.emit(a, "n", &[Bson::Int64(k)]).unwrap();
            net.run_for(Duration::from_millis(5));
        }
        let r = net.add_endpoint(Config::default());
        net.run_for(quiet);
        emit_range(&mut net, a, 201..=300);
        assert!(net.run_until_idle());
        let c = counts(&net, r);
        assert!((201..=300).all(|k| c.get(&k) == Some(&1)), "quiet {quiet:?}: {:?}", net.stats(r));
        assert_eq!(net.events(r).len(), 100, "quiet {quiet:?}");
        assert_eq!(net.stats(r).repairs_requested, 0, "quiet {quiet:?}");
        assert!(net.node(r).gaps.is_empty(), "quiet {quiet:?}: {:?}", net.node(r).gaps);
    }
}

/// Past `SPAN` (16,384) messages a stream stops writing `snAge` (its
/// receivers' windows cannot reach back to message 1 any more): the
/// per-datagram cost is only paid by young streams.
#[test]
fn only_young_streams_write_sn_age() {
    let net = Network::new(9);
    let mut sizes = Vec::new();
    // Drive the endpoint directly: the network's flush would queue 16k datagrams.
    let cfg = Config::default();
    let id = eventcast_engine::protocol::Identity {
        id: "00000000000000a1".into(),
        host: "10.0.0.1".into(),
        port: 9000,
        hostname: "a".into(),
    };
    let t0 = net.now();
    let mut ep = eventcast_engine::protocol::Endpoint::new(cfg, id, 1, t0, net.wall()).unwrap();
    let mut ages = Vec::new();
    for k in 1..=16_385u64 {
        let now = t0 + Duration::from_millis(k);
        ep.emit(now, net.wall(), "n", &[Bson::Int64(k as i64)]).unwrap();
        while let Some(t) = ep.poll_transmit() {
            let m = wire::decode_datagram(&t.payload).unwrap().meta;
            if m.name.as_deref() == Some("n") {
                ages.push((m.sn, m.sn_age));
                sizes.push(t.payload.len());
            }
        }
    }
    assert_eq!(ages[0], (Some(1), Some(0)));
    assert_eq!(ages[999], (Some(1000), Some(999)));
    assert_eq!(ages[16_383], (Some(16_384), Some(16_383)));
    assert_eq!(ages[16_384], (Some(16_385), None));
    // The field costs 11 bytes (`10 'snAge' 00` and an int32).
    eprintln!("datagram of a one-int64 event: {} bytes with snAge, {} without", sizes[16_383], sizes[16_384]);
    assert_eq!(sizes[16_383] - sizes[16_384], 11);
}

fn attacker() -> SocketAddr {
    "10.6.6.6:9000".parse().unwrap()
}

/// A forged event in the real sender's name at `sn` with `snAge` `age`.
fn forged_event(id: &str, sn: i64, age: Option<i32>, n: u64) -> Vec<u8> {
    let meta = Meta { sn_age: age, ..forge::meta(Some(id), &format!("{n:040x}"), "n", 0, 1, Some(sn)) };
    forge::datagram(&meta, &wire::encode_args(&[Bson::Int64(-1)]))
}

/// Forged first contacts: a negative `snAge` is refused like an out-of-range
/// `sn`; `i32::MAX` is a late join; 0 on a far `sn` (beyond the window's
/// reach of message 1) is a late join too; 0 on `sn` 16,384 starts loss
/// detection at 1, and the requests that makes stay within the request
/// budget; none of it reports a gap of the (silent) victim's id or panics.
#[test]
fn forged_sn_age_first_contacts() {
    let mut net = Network::new(10);
    let r = net.add_endpoint(Config::default());
    net.run_for(Duration::from_secs(1));
    let id = |n: u64| format!("{:016x}", 0x6000_0000_0000_0000u64 + n);

    let before = net.stats(r).rejected_malformed;
    net.inject(r, attacker(), &forged_event(&id(1), 500, Some(-1), 1));
    net.inject(r, attacker(), &forged_event(&id(1), 500, Some(i32::MIN), 2));
    assert_eq!(net.stats(r).rejected_malformed, before + 2);
    assert!(net.events(r).is_empty());

    for (n, sn, age) in [
        (3, 500, Some(i32::MAX)),
        (4, 16_385, Some(0)),
        (5, 1 << 50, Some(0)),
        (6, eventcast_engine::protocol::MAX_SN, Some(0)),
    ] {
        net.inject(r, attacker(), &forged_event(&id(n), sn, age, n));
    }
    assert_eq!(net.events(r).len(), 4);
    net.run_for(Duration::from_secs(30));
    assert_eq!(net.stats(r).repairs_requested, 0, "late joins ask for nothing: {:?}", net.stats(r));
    assert!(net.node(r).gaps.is_empty());

    // 0 at the edge of the window: 16,383 numbers missing, asked for within
    // the request budget: what the forged datagram paid for (half its
    // bytes), the first second of floor and the floor since, in datagrams
    // of at least 200 bytes.
    let sent_before = net.stats(r).datagrams_sent;
    let forged = forged_event(&id(7), 16_384, Some(0), 7);
    net.inject(r, attacker(), &forged);
    net.run_for(Duration::from_secs(30));
    let requests = net.stats(r).datagrams_sent - sent_before;
    assert!(net.stats(r).repairs_requested > 0);
    let l = Limits::default();
    let bound = (forged.len() as f64 / 2.0 + l.request_floor_bytes_per_sec as f64 * (1.0 + 30.0)) / 200.0;
    assert!((requests as f64) <= bound, "{requests} requests > {bound}: {:?}", net.stats(r));
    // Reported as the gap of a sender that delivered one event here: exact.
    let gaps: u64 = net.node(r).gaps.iter().filter(|(g, _)| *g == id(7)).map(|(_, n)| n).sum();
    assert_eq!(gaps, 16_383, "{:?}", net.node(r).gaps);
    assert!(net.node(r).gaps.iter().all(|(g, _)| *g == id(7)));
}

/// A receiver that stopped listening and started again (a node's stop and
/// start keep its endpoint): a sender that began while it was away is a late
/// join, even though the endpoint itself is older than the sender's stream.
#[test]
fn a_restarted_receiver_is_a_late_joiner_for_streams_begun_while_away() {
    let mut net = Network::new(11);
    let r = net.add_endpoint(Config::default());
    let a = net.add_endpoint(Config::default());
    net.run_for(Duration::from_secs(1));
    // r is "stopped": it hears nothing while a sends 1..=100.
    net.set_link_loss(a, r, 1.0);
    for k in 1..=100 {
        net.emit(a, "n", &[Bson::Int64(k)]).unwrap();
        net.run_for(Duration::from_millis(10));
    }
    net.run_for(Duration::from_secs(3));
    // r starts again, a keeps going.
    let now = net.now();
    net.node_mut(r).endpoint.listening_since(now);
    net.set_link_loss(a, r, 0.0);
    emit_range(&mut net, a, 101..=200);
    assert!(net.run_until_idle());
    let c = counts(&net, r);
    assert!((101..=200).all(|k| c.get(&k) == Some(&1)), "{:?}", net.stats(r));
    assert_eq!(net.events(r).len(), 100);
    assert_eq!(net.stats(r).repairs_requested, 0);
    assert!(net.node(r).gaps.is_empty(), "{:?}", net.node(r).gaps);
}
