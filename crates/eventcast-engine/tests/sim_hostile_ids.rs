//! Hostile identifiers at the engine: sender ids and `seqId`s
//! that are not what the protocol says (16 and 40 lower-case hex chars) are
//! refused at decode and counted as `rejectedMalformed`, whatever their size
//! (a 60,000-char `seqId` used to be stored twice in the done set, uncharged);
//! what is stored per message key is fixed-size and bounded by the limits;
//! the real sender's traffic is delivered throughout.

use bson::{doc, Bson};
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{Config, Limits, RepairRequest, HEARTBEAT_EVENT};
use eventcast_engine::wire::{self, Meta, RETX_EVENT};
use std::net::SocketAddr;
use std::time::Duration;

#[path = "support/forge.rs"]
mod forge;

fn meta(id: Option<&str>, seq_id: &str, name: &str, seq: i32, seq_len: i32) -> Meta {
    forge::meta(id, seq_id, name, seq, seq_len, None)
}

fn datagram(m: &Meta, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode_datagram(m, body, &mut out);
    out
}

fn attacker() -> SocketAddr {
    "10.6.6.6:9000".parse().unwrap()
}

/// Malformed (id, seqId) pairs: each is refused.
fn bad_pairs(n: usize) -> Vec<(Option<String>, String)> {
    let good_id = "0123456789abcdef".to_owned();
    let good_seq = |i: usize| format!("{i:040x}");
    vec![
        // 0.1.x-style seqIds of 60,000 characters (each one distinct).
        (Some(good_id.clone()), format!("{n:x}{}", "a".repeat(60_000))),
        (Some(good_id.clone()), format!("{n:039x}")), // one short
        (Some(good_id.clone()), format!("{n:041x}")), // one long
        (Some(good_id.clone()), format!("{n:040X}").replace('0', "F")), // upper case
        (Some(good_id.clone()), format!("{n:038x}zz")), // not hex
        (Some(good_id.clone()), String::new()),
        (Some(format!("{n:x}{}", "b".repeat(60_000))), good_seq(n)),
        (Some("0123456789ABCDEF".into()), good_seq(n)),
        (Some(format!("{n:015x}")), good_seq(n)),
        (Some(format!("{n:016x}-")), good_seq(n)),
        (Some(String::new()), good_seq(n)),
    ]
}

#[test]
fn malformed_identifiers_are_refused_counted_and_cost_nothing() {
    let limits = Limits { max_completed_ids: 256, max_partial_messages: 32, ..Limits::default() };
    let mut net = Network::new(90);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config { limits, ..Config::default() });
    let body = wire::encode_args(&[Bson::Int32(1)]);
    let mut refused = 0;
    let rounds = 300;
    for n in 0..rounds {
        for (id, seq_id) in bad_pairs(n) {
            // As a whole 0.1.x-style event (no sn), and as the first chunk of two.
            net.inject(b, attacker(), &datagram(&meta(id.as_deref(), &seq_id, "forged", 0, 1), &body));
            net.inject(b, attacker(), &datagram(&meta(id.as_deref(), &seq_id, "forged", 0, 2), &[7; 100]));
            refused += 2;
        }
        let s = net.stats(b);
        assert_eq!((s.reassembly_bytes, s.reassembly_keys), (0, 0), "{s:?}");
        if n % 10 == 0 {
            net.emit(a, "real", &[Bson::Int64(n as i64)]).unwrap();
            net.run_for(Duration::from_millis(5));
        }
    }
    assert!(net.run_until_idle());
    let s = net.stats(b);
    assert_eq!(s.rejected_malformed, refused, "{s:?}");
    assert!(net.events(b).iter().all(|e| e.name == "real"));
    assert_eq!(net.events(b).len(), rounds / 10);
    // Only the real messages' keys... none: they carry sn, so no done-set key.
    assert_eq!(s.reassembly_keys, 0, "{s:?}");
}

#[test]
fn control_documents_with_malformed_identifiers_are_refused() {
    let mut net = Network::new(91);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config::default());
    let id = net.id(a);
    let good_seq = "ab".repeat(20);
    let mut n = 0u64;
    let mut send = |net: &mut Network, name: &str, doc: bson::Document| {
        n += 1;
        let m = Meta { sn: None, ..meta(Some(&id), &format!("{n:040x}"), name, 0, 1) };
        net.inject(b, attacker(), &datagram(&m, &wire::encode_document_body(&doc)));
    };
    // Heartbeats: the document's id must be the datagram's sender id.
    send(&mut net, HEARTBEAT_EVENT, doc! { "id": "x".repeat(60_000), "sn": 5i64 });
    send(&mut net, HEARTBEAT_EVENT, doc! { "id": "fedcba9876543210", "sn": 5i64 });
    send(&mut net, HEARTBEAT_EVENT, doc! { "sn": 5i64 });
    // Repair requests: id and to 16, seqId 40 lower-case hex (or empty).
    let req = |id: &str, seq_id: &str, to: Option<&str>| {
        let mut d = RepairRequest {
            id: id.into(),
            seq_id: seq_id.into(),
            missed_seq: vec![0],
            host: "h".into(),
            port: 1,
            missed_sn: vec![1],
            to: None,
            relayed: false,
        }
        .to_document();
        if let Some(to) = to {
            d.insert("to", to);
        }
        d
    };
    send(&mut net, RETX_EVENT, req(&"c".repeat(60_000), &good_seq, None));
    send(&mut net, RETX_EVENT, req("FEDCBA9876543210", &good_seq, None));
    send(&mut net, RETX_EVENT, req("fedcba9876543210", &"d".repeat(60_000), None));
    send(&mut net, RETX_EVENT, req("fedcba9876543210", &"AB".repeat(20), None));
    send(&mut net, RETX_EVENT, req("fedcba9876543210", "", Some(&"e".repeat(60_000))));
    send(&mut net, RETX_EVENT, req("fedcba9876543210", "", Some("0123")));
    assert_eq!(net.stats(b).rejected_malformed, 9, "{:?}", net.stats(b));
    // Well-formed ones are still accepted (the request is merely unanswerable).
    send(&mut net, RETX_EVENT, req("fedcba9876543210", &good_seq, Some("0123456789abcdef")));
    send(&mut net, HEARTBEAT_EVENT, doc! { "id": id.clone(), "sn": 5i64 });
    let s = net.stats(b);
    assert_eq!(s.rejected_malformed, 9, "{s:?}");
    assert_eq!(s.repair_requests_ignored, 1, "{s:?}");
}

#[test]
fn a_flood_of_valid_distinct_keys_stays_within_the_limits() {
    let limits = Limits { max_completed_ids: 512, max_partial_messages: 64, ..Limits::default() };
    let mut net = Network::new(92);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config { limits, ..Config::default() });
    let body = wire::encode_args(&[Bson::Int32(1)]);
    for n in 0..20_000usize {
        let seq_id = format!("{n:040x}");
        // 0.1.x-style events (no sn: deduplicated by key) and first chunks.
        net.inject(b, attacker(), &datagram(&meta(Some("0123456789abcdef"), &seq_id, "old", 0, 1), &body));
        net.inject(b, attacker(), &datagram(&meta(Some("0123456789abcdee"), &seq_id, "old", 0, 2), &[7; 100]));
        let s = net.stats(b);
        assert!(s.reassembly_keys <= 512 + 64, "{s:?}");
        if n % 1000 == 0 {
            net.emit(a, "real", &[Bson::Int64(n as i64)]).unwrap();
            net.run_for(Duration::from_millis(5));
        }
    }
    assert!(net.run_until_idle());
    let s = net.stats(b);
    assert_eq!(s.rejected_malformed, 0, "{s:?}");
    assert_eq!(net.events(b).iter().filter(|e| e.name == "real").count(), 20);
    assert_eq!(net.events(b).iter().filter(|e| e.name == "old").count(), 20_000);
    assert!(s.reassembly_keys <= 512, "{s:?}");
}

/// A forged, complete event (`sn` 1, a fresh numbering) from made-up
/// sender `n`: it is delivered like any first event of a new sender, so the
/// forged id counts as one that delivered here.
fn forged_event(n: usize) -> Vec<u8> {
    let m = forge::meta(
        Some(&format!("{:016x}", 0xf000_0000_0000_0000u64 + n as u64)),
        &format!("{n:040x}"),
        "forged",
        0,
        1,
        Some(1),
    );
    datagram(&m, &wire::encode_args(&[Bson::Int32(1)]))
}

/// The first chunk of two of a forged message: its id never delivers anything.
fn forged_chunk(n: usize) -> Vec<u8> {
    let m = forge::meta(
        Some(&format!("{:016x}", 0xe000_0000_0000_0000u64 + n as u64)),
        &format!("{n:040x}"),
        "forged",
        0,
        2,
        Some(1),
    );
    datagram(&m, &[7; 100])
}

/// The numbers of the "real" events `b` delivered, sorted (the simulated
/// network reorders), duplicates kept.
fn real_events(net: &Network, b: usize) -> Vec<i64> {
    let mut v: Vec<i64> = net
        .events(b)
        .iter()
        .filter(|e| e.name == "real")
        .map(|e| match e.args[0] {
            Bson::Int64(v) => v,
            _ => -1,
        })
        .collect();
    v.sort_unstable();
    v
}

/// Young stream: 300 events, then ≈ 1,100 forged sender ids while the real
/// sender is quiet. Its next events must not bring its first 300 again (a
/// fresh window from message 1 would ask for them, and the sender still
/// retains them), whatever the forged ids did.
#[test]
fn forged_ids_never_make_a_young_stream_deliver_again() {
    for (round, forged) in [forged_event as fn(usize) -> Vec<u8>, forged_chunk].into_iter().enumerate() {
        let mut net = Network::new(93 + round as u64);
        let a = net.add_endpoint(Config::default());
        let b = net.add_endpoint(Config::default());
        for i in 0..300 {
            net.emit(a, "real", &[Bson::Int64(i)]).unwrap();
        }
        net.run_for(Duration::from_millis(50));
        assert_eq!(real_events(&net, b).len(), 300);
        for n in 0..1100 {
            net.inject(b, attacker(), &forged(n));
        }
        for i in 300..310 {
            net.emit(a, "real", &[Bson::Int64(i)]).unwrap();
        }
        assert!(net.run_until_idle());
        let got = real_events(&net, b);
        assert_eq!(got, (0..310).collect::<Vec<_>>(), "round {round}: {:?}", net.stats(b));
        // Forged ids that delivered crowd the table: the real sender went
        // into a compact record and came back from it.
        assert_eq!(net.stats(b).senders_compacted > 0, round == 0, "{:?}", net.stats(b));
        assert!(net.node(b).gaps.iter().all(|(id, _)| *id != net.id(a)), "{:?}", net.node(b).gaps);
    }
}

/// Older stream (the receiver joined late, so no `snAge` rule brings the
/// start back): after the forged ids, 20 events are lost, then one arrives.
/// The 20 must be repaired (or reported as a gap), never skipped silently.
#[test]
fn forged_ids_never_make_a_loss_after_them_silent() {
    for (round, forged) in [forged_event as fn(usize) -> Vec<u8>, forged_chunk].into_iter().enumerate() {
        let mut net = Network::new(95 + round as u64);
        let a = net.add_endpoint(Config::default());
        for i in 0..100 {
            net.emit(a, "early", &[Bson::Int64(i)]).unwrap();
        }
        net.run_for(Duration::from_millis(50));
        // Joins late: A's numbering is older than B.
        let b = net.add_endpoint(Config::default());
        net.run_for(Duration::from_millis(50));
        for i in 0..50 {
            net.emit(a, "real", &[Bson::Int64(i)]).unwrap();
        }
        net.run_for(Duration::from_millis(50));
        assert_eq!(real_events(&net, b).len(), 50);
        for n in 0..1100 {
            net.inject(b, attacker(), &forged(n));
        }
        net.set_link_loss(a, b, 1.0);
        for i in 50..70 {
            net.emit(a, "real", &[Bson::Int64(i)]).unwrap();
        }
        net.run_for(Duration::from_millis(50));
        net.set_link_loss(a, b, 0.0);
        net.emit(a, "real", &[Bson::Int64(70)]).unwrap();
        assert!(net.run_until_idle());
        let got = real_events(&net, b);
        let gap: u64 = net.node(b).gaps.iter().filter(|(id, _)| *id == net.id(a)).map(|(_, c)| c).sum();
        assert_eq!(got.len() as u64 + gap, 71, "round {round}: {got:?} gap {gap} {:?}", net.stats(b));
        assert_eq!(got, (0..71).collect::<Vec<_>>(), "round {round}: repaired in time: {:?}", net.stats(b));
    }
}

/// The reassembly table too: a real sender's partial message waiting for
/// its last chunk (a repair, say) is not pushed out by ≈ 2,000 forged
/// partials from made-up ids (1,024 partials at most): those go first.
#[test]
fn forged_partials_never_evict_a_real_senders_partial() {
    let mut net = Network::new(97);
    let b = net.add_endpoint(Config::default());
    let real = "0123456789abcdef";
    // The real sender delivered here before.
    let first = forge::meta(Some(real), &"11".repeat(20), "real", 0, 1, Some(1));
    net.inject(b, attacker(), &datagram(&first, &wire::encode_args(&[Bson::Int64(1)])));
    // Its message 2, in two chunks: the inner datagram cut in halves.
    let inner = datagram(
        &forge::meta(Some(real), &"22".repeat(20), "real", 0, 1, Some(2)),
        &wire::encode_args(&[Bson::Int64(2), Bson::String("x".repeat(1500))]),
    );
    let (h0, h1) = inner.split_at(inner.len().div_ceil(2));
    let chunk =
        |seq: i32, body: &[u8]| datagram(&forge::meta(Some(real), &"33".repeat(20), "real", seq, 2, Some(2)), body);
    net.inject(b, attacker(), &chunk(0, h0));
    for n in 0..2000 {
        net.inject(b, attacker(), &forged_chunk(n));
    }
    net.inject(b, attacker(), &chunk(1, h1));
    let got = real_events(&net, b);
    let s = net.stats(b);
    assert_eq!(got, vec![1, 2], "{s:?}");
    assert!(s.partials_evicted >= 2000 - 1024, "{s:?}");
    assert!(net.node(b).gaps.is_empty(), "{:?}", net.node(b).gaps);
}
