//! Loss matrix in the deterministic simulation: messages of every size get
//! through random loss, duplication and reordering, each delivered exactly once.

use bson::Bson;
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{Config, Endpoint, Identity};
use std::time::Duration;

fn big_arg(len: usize, seed: u8) -> Bson {
    Bson::Binary(bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect(),
    })
}

fn net(seed: u64, receivers: usize) -> (Network, usize, Vec<usize>) {
    let mut net = Network::new(seed);
    let a = net.add_endpoint(Config::default());
    let rs = (0..receivers).map(|_| net.add_endpoint(Config::default())).collect();
    (net, a, rs)
}

fn one_mib_through(loss: f64, seed: u64) {
    let (mut net, a, rs) = net(seed, 2);
    net.set_loss(loss);
    let arg = big_arg(1 << 20, seed as u8);
    net.emit(a, "big", &[Bson::String("x".into()), arg.clone()]).unwrap();
    assert!(net.run_until_idle(), "network never went idle");
    for &r in &rs {
        let ev = net.events(r);
        assert_eq!(
            ev.len(),
            1,
            "loss {loss} seed {seed}: receiver {r} got {} events; stats {:?}; sender {:?}",
            ev.len(),
            net.stats(r),
            net.stats(a)
        );
        assert_eq!(ev[0].name, "big");
        assert_eq!(ev[0].args, vec![Bson::String("x".into()), arg.clone()]);
        assert_eq!(ev[0].sender.id, net.id(a));
        assert!(net.node(r).gaps.is_empty());
        assert_eq!(net.stats(r).reassembly_bytes, 0);
    }
    if loss > 0.0 {
        assert!(net.stats(a).repairs_sent > 0);
        assert!(rs.iter().all(|&r| net.stats(r).repairs_requested > 0));
    }
}

#[test]
fn one_mib_no_loss() {
    let (mut net, a, rs) = net(1, 2);
    let arg = big_arg(1 << 20, 3);
    net.emit(a, "big", std::slice::from_ref(&arg)).unwrap();
    assert!(net.run_until_idle());
    for &r in &rs {
        assert_eq!(net.events(r).len(), 1);
        assert_eq!(net.events(r)[0].args, vec![arg.clone()]);
        assert_eq!(net.stats(r).repairs_requested, 0);
    }
    assert!(net.stats(a).datagrams_sent > 1024);
    // The sender dropped its own looped-back datagrams.
    assert!(net.events(a).is_empty());
    assert!(net.stats(a).own_datagrams_ignored > 1024);
}

#[test]
fn one_mib_ten_percent_loss() {
    for seed in [11, 12, 13] {
        one_mib_through(0.10, seed);
    }
}

#[test]
fn one_mib_thirty_percent_loss() {
    for seed in [21, 22, 23, 24, 25] {
        one_mib_through(0.30, seed);
    }
}

#[test]
fn reorder_and_duplicates() {
    for seed in 30..34 {
        let (mut net, a, rs) = net(seed, 3);
        net.set_latency(Duration::from_millis(1), Duration::from_millis(20));
        net.set_duplication(0.3);
        net.set_loss(0.1);
        let arg = big_arg(200_000, 1);
        net.emit(a, "m", std::slice::from_ref(&arg)).unwrap();
        net.emit(a, "n", &[Bson::Int32(5)]).unwrap();
        assert!(net.run_until_idle());
        for &r in &rs {
            let mut names: Vec<_> = net.events(r).iter().map(|e| e.name.clone()).collect();
            names.sort();
            assert_eq!(names, ["m", "n"], "seed {seed}");
            assert!(net.stats(r).duplicates_ignored > 0);
        }
    }
}

#[test]
fn many_small_messages_without_loss_arrive_once() {
    let (mut net, a, rs) = net(40, 2);
    for i in 0..2000 {
        net.emit(a, "tick", &[Bson::Int32(i)]).unwrap();
        if i % 50 == 0 {
            net.run_for(Duration::from_millis(1));
        }
    }
    assert!(net.run_until_idle());
    for &r in &rs {
        let mut got: Vec<i32> = net.events(r).iter().map(|e| e.args[0].as_i32().unwrap()).collect();
        got.sort();
        assert!(got == (0..2000).collect::<Vec<_>>(), "receiver {r}: {} events", got.len());
    }
}

#[test]
fn chunk_group_with_all_but_one_chunk_lost_expires_as_gap() {
    // Of a known sender (one that delivered an event here before, or 8
    // chunks of one message): retried and reported. Of a sender never heard
    // from: a one-chunk partial is what a forgery looks like, so it gets one
    // request and is only counted (before the hardening it got 4 requests and a
    // 'gap' event; that was the bug).
    for (known, chunks) in [(true, 1), (false, 1), (false, 8)] {
        let mut net = Network::new(50);
        let cfg = Config { message_ttl: Duration::from_millis(1000), ..Config::default() };
        let b = net.add_endpoint(cfg.clone());
        // A sender outside the network: only its first chunk ever reaches b.
        let identity =
            Identity { id: "00000000000000aa".into(), host: "10.9.9.9".into(), port: 9000, hostname: "x".into() };
        let mut a = Endpoint::new(cfg, identity, 1, net.now(), net.wall()).unwrap();
        let from = "10.9.9.9:9000".parse().unwrap();
        if known {
            a.emit(net.now(), net.wall(), "hello", &[]).unwrap();
            net.inject(b, from, &a.poll_transmit().unwrap().payload);
        }
        a.emit(net.now(), net.wall(), "big", &[big_arg(10_000, 0)]).unwrap();
        let chunks: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).take(chunks).collect();
        assert!(a.poll_transmit().is_some(), "more chunks than delivered");
        for c in &chunks {
            net.inject(b, from, &c.payload);
        }
        let start = net.elapsed();
        assert!(net.run_until_idle());
        assert_eq!(net.events(b).len(), usize::from(known));
        assert_eq!(net.stats(b).reassembly_bytes, 0);
        assert!(net.elapsed() - start >= Duration::from_millis(1000));
        if known || chunks.len() >= 8 {
            assert_eq!(net.node(b).gaps, vec![("00000000000000aa".to_string(), 1)]);
            assert_eq!((net.stats(b).gaps_unrecovered, net.stats(b).gaps_unconfirmed), (1, 0));
            // 1 request + retransmit_attempts retries, then expiry message_ttl after the last progress.
            assert_eq!(net.stats(b).repairs_requested, 4);
        } else {
            assert!(net.node(b).gaps.is_empty());
            assert_eq!((net.stats(b).gaps_unrecovered, net.stats(b).gaps_unconfirmed), (0, 1));
            assert_eq!((net.stats(b).repairs_requested, net.stats(b).datagrams_sent), (1, 1));
        }
    }
}

fn small_messages_through(loss: f64, seed: u64, n: i32) {
    let (mut net, a, rs) = net(seed, 2);
    net.set_loss(loss);
    for i in 0..n {
        net.emit(a, "tick", &[Bson::Int32(i)]).unwrap();
        if i % 20 == 0 {
            net.run_for(Duration::from_millis(1));
        }
    }
    assert!(net.run_until_idle());
    for &r in &rs {
        let mut got: Vec<i32> = net.events(r).iter().map(|e| e.args[0].as_i32().unwrap()).collect();
        got.sort();
        let s = net.stats(r);
        assert!(got == (0..n).collect::<Vec<_>>(), "loss {loss} seed {seed} receiver {r}: {} of {n}; {s:?}", got.len());
        assert!(net.node(r).gaps.is_empty());
        if loss > 0.0 {
            assert!(s.repairs_requested > 0 && s.repairs_received > 0, "{s:?}");
        }
    }
}

#[test]
fn small_messages_ten_percent_loss() {
    for seed in [70, 71] {
        small_messages_through(0.10, seed, 2000);
    }
}

#[test]
fn small_messages_thirty_percent_loss() {
    for seed in [72, 73, 74] {
        small_messages_through(0.30, seed, 2000);
    }
}

#[test]
fn lost_last_message_is_recovered_through_heartbeats() {
    let (mut net, a, rs) = net(80, 1);
    let b = rs[0];
    net.emit(a, "first", &[]).unwrap();
    net.run_for(Duration::from_millis(10));
    net.set_link_loss(a, b, 1.0);
    net.emit(a, "last", &[]).unwrap();
    net.run_for(Duration::from_millis(10));
    net.set_link_loss(a, b, 0.0);
    assert!(net.run_until_idle());
    let names: Vec<_> = net.events(b).iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["first", "last"]);
    assert!(net.stats(a).heartbeats_sent >= 1);
    assert_eq!(net.stats(a).heartbeats_sent, 8);
    assert!(net.stats(b).repairs_received >= 1);
}

#[test]
fn a_lost_tail_is_noticed_at_thirty_percent_loss() {
    // Short streams at 30% loss on every link: the last events and the
    // heartbeats after them can all be lost. Every event must end up delivered
    // or reported as a gap. With the former 3 tail heartbeats, 0.3^4 ≈ 0.8% of
    // trials lost a tail unnoticed (here the first at seed 653).
    for seed in 0..1000u64 {
        let mut net = Network::new(5000 + seed);
        let a = net.add_endpoint(Config::default());
        let r = net.add_endpoint(Config::default());
        net.set_loss(0.30);
        for i in 0..10 {
            net.emit(a, "e", &[Bson::Int32(i)]).unwrap();
            net.run_for(Duration::from_millis(1));
        }
        assert!(net.run_until_idle());
        let delivered = net.events(r).len() as u64;
        let gaps: u64 = net.node(r).gaps.iter().map(|g| g.1).sum();
        assert_eq!(delivered + gaps, 10, "seed {seed}: {delivered} delivered, {gaps} reported lost");
    }
}

#[test]
fn unrecoverable_loss_is_reported_as_a_gap() {
    let (mut net, a, rs) = net(81, 1);
    let b = rs[0];
    net.emit(a, "one", &[]).unwrap();
    net.run_for(Duration::from_millis(10));
    // b hears nothing from a (data, heartbeats, repairs) for longer than the retention time.
    net.set_link_loss(a, b, 1.0);
    for i in 0..5 {
        net.emit(a, "lost", &[Bson::Int32(i)]).unwrap();
    }
    net.run_for(Duration::from_secs(12));
    net.set_link_loss(a, b, 0.0);
    net.emit(a, "after", &[]).unwrap();
    assert!(net.run_until_idle());
    let names: Vec<_> = net.events(b).iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["one", "after"]);
    assert_eq!(net.node(b).gaps, vec![(net.id(a), 5)]);
    assert_eq!(net.stats(b).gaps_unrecovered, 5);
}

#[test]
fn late_joiner_gets_events_from_its_join_onwards() {
    let (mut net, a, rs) = net(82, 1);
    for i in 0..100 {
        net.emit(a, "early", &[Bson::Int32(i)]).unwrap();
    }
    net.run_for(Duration::from_millis(50));
    let late = net.add_endpoint(Config::default());
    for i in 0..10 {
        net.emit(a, "later", &[Bson::Int32(i)]).unwrap();
    }
    assert!(net.run_until_idle());
    assert_eq!(net.events(rs[0]).len(), 110, "{:?} {:?}", net.stats(rs[0]), net.node(rs[0]).gaps);
    assert_eq!(net.events(late).len(), 10);
    assert!(net.events(late).iter().all(|e| e.name == "later"));
    assert!(net.node(late).gaps.is_empty());
}

#[test]
fn many_receivers_missing_the_same_datagram_cause_few_requests_and_one_repair() {
    let (mut net, a, rs) = net(83, 12);
    net.emit(a, "warmup", &[]).unwrap();
    net.run_for(Duration::from_millis(10));
    for &r in &rs {
        net.set_link_loss(a, r, 1.0);
    }
    net.emit(a, "missed", &[Bson::String("y".repeat(5000))]).unwrap();
    net.emit(a, "missed-small", &[]).unwrap();
    net.run_for(Duration::from_millis(5));
    for &r in &rs {
        net.set_link_loss(a, r, 0.0);
    }
    net.emit(a, "next", &[]).unwrap();
    assert!(net.run_until_idle());
    for &r in &rs {
        assert_eq!(net.events(r).len(), 4, "{:?}", net.stats(r));
    }
    let requested: u64 = rs.iter().map(|&r| net.stats(r).repairs_requested).sum();
    let suppressed: u64 = rs.iter().map(|&r| net.stats(r).repair_requests_suppressed).sum();
    assert!(requested <= 4, "{requested} requests from 12 receivers");
    assert!(suppressed >= 8, "{suppressed}");
    // 6 chunks + 1 small message, each resent once.
    assert_eq!(net.stats(a).repairs_sent, 7, "{:?}", net.stats(a));
}
