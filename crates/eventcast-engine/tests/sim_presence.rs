//! Presence in the deterministic simulation: peers appear within one
//! interval, go down on goodbye at once and after a crash within the
//! documented bound (`timeout` after the last beacon), stay up under 10% loss,
//! see meta changes as updates; 0.1.x senders appear from their traffic;
//! forged beacons are bounded (table size, evictions counted), trigger no
//! sends, and malformed ones are counted, never fatal.

use bson::{doc, Bson};
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{
    Advertised, Config, Encryption, PeerChange, PeerDownReason, PeerInfo, PeerTransport, PresenceConfig,
};
use eventcast_engine::wire::beacon::{Beacon, BeaconKind, PeerStats, PRESENCE_EVENT};
use eventcast_engine::wire::{self, SecureKey};
use std::net::SocketAddr;
use std::time::Duration;

#[path = "support/forge.rs"]
mod forge;

const INTERVAL: Duration = Duration::from_millis(1000);
const TIMEOUT: Duration = Duration::from_millis(5000);

fn presence(name: &str, transport: PeerTransport) -> PresenceConfig {
    PresenceConfig {
        interval: INTERVAL,
        timeout: TIMEOUT,
        max_peers: 64,
        advertised: Advertised {
            name: Some(name.into()),
            pid: Some(100),
            version: "0.2.0-test".into(),
            transport,
            meta: doc! { "role": name },
        },
    }
}

fn config(name: &str) -> Config {
    Config { presence: Some(presence(name, PeerTransport::Udp)), ..Config::default() }
}

/// `n` started nodes named `n0`, `n1`, ...
fn group(seed: u64, n: usize) -> Network {
    let mut net = Network::new(seed);
    for i in 0..n {
        let k = net.add_endpoint(config(&format!("n{i}")));
        net.act(k, |ep, now| ep.start_presence(now));
    }
    net
}

fn ups(net: &Network, i: usize) -> Vec<&PeerInfo> {
    net.node(i).peer_changes.iter().filter_map(|c| if let PeerChange::Up(p) = c { Some(p) } else { None }).collect()
}

fn downs(net: &Network, i: usize) -> Vec<(&PeerInfo, PeerDownReason)> {
    let changes = &net.node(i).peer_changes;
    changes.iter().filter_map(|c| if let PeerChange::Down(p, r) = c { Some((p, *r)) } else { None }).collect()
}

#[test]
fn peers_appear_within_one_interval_with_what_they_advertise() {
    let mut net = group(1, 3);
    net.run_for(INTERVAL + INTERVAL / 10 + Duration::from_millis(10));
    for i in 0..3 {
        let peers = net.node(i).endpoint.peers();
        let names: Vec<_> = peers.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(peers.len(), 2, "node {i} knows {names:?}");
        assert_eq!(ups(&net, i).len(), 2);
        for p in &peers {
            let j: usize = p.name.as_deref().unwrap()[1..].parse().unwrap();
            assert_eq!(p.id, net.id(j));
            assert_eq!(p.meta, doc! { "role": format!("n{j}") });
            assert_eq!(
                (p.pid, p.version.as_deref(), p.legacy, p.bridged),
                (Some(100), Some("0.2.0-test"), false, false)
            );
            assert_eq!(p.host, format!("10.0.0.{}", j + 1));
            assert!(p.since <= p.last_seen);
        }
    }
}

#[test]
fn goodbye_takes_a_peer_down_at_once_and_a_crash_within_the_timeout() {
    let mut net = group(2, 3);
    net.run_for(Duration::from_secs(3));
    // Node 2 stops: goodbye.
    net.act(2, |ep, now| ep.stop_presence(now));
    net.run_for(Duration::from_millis(20));
    for i in 0..2 {
        let d = downs(&net, i);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].0.id.as_str(), d[0].1), (net.id(2).as_str(), PeerDownReason::Goodbye));
        assert_eq!(net.node(i).endpoint.peers().len(), 1);
    }
    assert!(net.node(2).endpoint.peers().is_empty(), "a stopped node forgets its peers");
    // Node 1 crashes: nothing more leaves it.
    let crashed = net.now();
    net.set_link_loss(1, 0, 1.0);
    net.set_link_loss(1, 2, 1.0);
    let bound = TIMEOUT + INTERVAL.mul_f64(1.1);
    let mut down_after = None;
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    while waited < bound + Duration::from_secs(1) {
        net.run_for(step);
        waited += step;
        if downs(&net, 0).len() == 2 && down_after.is_none() {
            down_after = Some(net.now() - crashed);
        }
    }
    let after = down_after.expect("the crashed peer never went down");
    assert_eq!(downs(&net, 0)[1].1, PeerDownReason::Timeout);
    // Its last beacon came at most one (jittered) interval before the crash,
    // so it is down between timeout − interval and timeout after it.
    assert!(after >= TIMEOUT - INTERVAL.mul_f64(1.1) && after <= TIMEOUT + step, "down {after:?} after the crash");
}

#[test]
fn ten_percent_loss_does_not_flap() {
    let mut net = group(3, 4);
    net.set_loss(0.10);
    net.run_for(Duration::from_secs(120));
    for i in 0..4 {
        assert_eq!(net.node(i).endpoint.peers().len(), 3, "node {i}");
        assert!(downs(&net, i).is_empty(), "node {i}: {:?}", downs(&net, i));
    }
}

#[test]
fn a_meta_change_reaches_peers_as_an_update() {
    let mut net = group(4, 2);
    net.run_for(Duration::from_millis(1200));
    net.act(0, |ep, now| ep.set_meta(now, doc! { "role": "pricing", "http": 8080 })).unwrap();
    net.run_for(Duration::from_millis(100));
    let updates: Vec<_> = net
        .node(1)
        .peer_changes
        .iter()
        .filter_map(|c| if let PeerChange::Update(p) = c { Some(p) } else { None })
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].meta, doc! { "role": "pricing", "http": 8080 });
    // Too large: refused, the old meta stays.
    let big = doc! { "x": "y".repeat(2000) };
    let err = net.act(0, |ep, now| ep.set_meta(now, big)).unwrap_err();
    assert_eq!(err.code(), "EINVALIDOPTION");
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.node(1).endpoint.peers()[0].meta, doc! { "role": "pricing", "http": 8080 });
}

#[test]
fn a_legacy_sender_appears_from_its_traffic_and_times_out() {
    let mut net = group(5, 1);
    let legacy = "0123456789abcdef";
    let body = wire::encode_args(&[Bson::String("hello".into())]);
    let m = forge::meta(Some(legacy), &"a".repeat(40), "myevent", 0, 1, None);
    let from: SocketAddr = "10.6.6.6:9000".parse().unwrap();
    net.inject(0, from, &forge::datagram(&m, &body));
    let peers = net.node(0).endpoint.peers();
    assert_eq!(peers.len(), 1);
    let p = &peers[0];
    assert!(p.legacy && p.version.is_none() && p.pid.is_none(), "{p:?}");
    assert_eq!((p.id.as_str(), p.host.as_str(), p.hostname.as_str(), p.delivered), (legacy, "10.6.6.6", "evil", 1));
    net.run_for(TIMEOUT + Duration::from_millis(10));
    assert_eq!(downs(&net, 0).len(), 1);
    assert_eq!(downs(&net, 0)[0].1, PeerDownReason::Timeout);
}

#[test]
fn a_peer_on_another_transport_is_marked_bridged() {
    let mut net = Network::new(6);
    let lan = net.add_endpoint(config("lan"));
    let nats = net.add_endpoint(Config { presence: Some(presence("nats", PeerTransport::Nats)), ..Config::default() });
    net.act(lan, |ep, now| ep.start_presence(now));
    net.act(nats, |ep, now| ep.start_presence(now));
    net.run_for(Duration::from_millis(50));
    let seen_by_nats = &net.node(nats).endpoint.peers()[0];
    assert!(seen_by_nats.bridged && seen_by_nats.transport == PeerTransport::Udp);
    let seen_by_lan = &net.node(lan).endpoint.peers()[0];
    assert!(seen_by_lan.bridged && seen_by_lan.transport == PeerTransport::Nats);
}

fn beacon_datagram(id: &str, beacon: &Beacon) -> Vec<u8> {
    let body = wire::encode_document_body(&beacon.to_document());
    let m = forge::meta(Some(id), &format!("{:0>40}", id), PRESENCE_EVENT, 0, 1, None);
    forge::datagram(&m, &body)
}

fn forged(kind: BeaconKind) -> Beacon {
    Beacon {
        kind,
        version: "6.6.6".into(),
        since_ms: 1,
        transport: PeerTransport::Udp,
        name: Some("evil".into()),
        pid: Some(666),
        meta: doc! { "x": "y".repeat(900) },
        stats: PeerStats::default(),
    }
}

#[test]
fn forged_beacons_are_bounded_counted_and_answered_with_nothing() {
    let mut net = group(7, 2);
    net.run_for(Duration::from_millis(1500));
    let from: SocketAddr = "10.6.6.6:9000".parse().unwrap();
    let sent_before = net.stats(0).datagrams_sent - net.stats(0).beacons_sent;
    for k in 0..5000u64 {
        let id = format!("{k:016x}");
        net.inject(0, from, &beacon_datagram(&id, &forged(BeaconKind::Hello)));
    }
    let s = net.stats(0);
    assert_eq!(net.node(0).endpoint.peers().len(), 64, "the table holds max_peers");
    assert_eq!(s.peers_known, 64);
    // 64 admissions per timeout: 63 fill the table, 1 evicts the real peer, the rest are refused.
    assert_eq!((s.peers_evicted, s.peers_refused), (1, 5000 - 64), "every eviction and refusal counted");
    let reported = net.node(0).peer_changes.len();
    assert!(reported <= 2 * 64 + 2, "the application hears of at most 2 × max_peers changes: {reported}");
    assert_eq!(s.datagrams_sent - s.beacons_sent, sent_before, "beacons are answered with nothing");
    // Goodbyes for unknown ids change nothing; the real peer comes back with its next beacon.
    for k in 0..100u64 {
        net.inject(0, from, &beacon_datagram(&format!("{:016x}", 90_000 + k), &forged(BeaconKind::Goodbye)));
    }
    assert_eq!(net.node(0).endpoint.peers().len(), 64);
    net.run_for(Duration::from_millis(1200));
    assert!(net.node(0).endpoint.peers().iter().any(|p| p.id == net.id(1)));
}

#[test]
fn malformed_beacons_are_counted_not_fatal() {
    let mut net = group(8, 1);
    let from: SocketAddr = "10.6.6.6:9000".parse().unwrap();
    let good = forged(BeaconKind::Hello).to_document();
    let mut bad_docs = Vec::new();
    for (key, value) in [
        ("kind", Bson::Int32(1)),
        ("since", Bson::Int64(-5)),
        ("transport", Bson::String("pigeon".into())),
        ("meta", Bson::String("x".repeat(5000))),
        ("name", Bson::String("n".repeat(300))),
        ("pid", Bson::Double(f64::NAN)),
        ("stats", Bson::Array(vec![])),
    ] {
        let mut d = good.clone();
        d.insert(key, value);
        bad_docs.push(d);
    }
    let before = net.stats(0).rejected_malformed;
    for (k, d) in bad_docs.iter().enumerate() {
        let body = wire::encode_document_body(d);
        let id = format!("{:016x}", k + 1);
        let m = forge::meta(Some(&id), &format!("{:0>40}", id), PRESENCE_EVENT, 0, 1, None);
        net.inject(0, from, &forge::datagram(&m, &body));
    }
    // An args body where a document belongs, too.
    let m = forge::meta(Some("00000000000000ff"), &"f".repeat(40), PRESENCE_EVENT, 0, 1, None);
    net.inject(0, from, &forge::datagram(&m, &wire::encode_args(&[Bson::Int32(1)])));
    assert_eq!(net.stats(0).rejected_malformed - before, bad_docs.len() as u64 + 1);
    assert!(net.node(0).endpoint.peers().is_empty());
}

#[test]
fn with_encryption_beacons_are_authenticated() {
    let key = SecureKey::derive("presence test");
    let secure = |name: &str| Config {
        encryption: Encryption::Secure(key.clone()),
        presence: Some(presence(name, PeerTransport::Udp)),
        ..Config::default()
    };
    let mut net = Network::new(9);
    let a = net.add_endpoint(secure("a"));
    let b = net.add_endpoint(secure("b"));
    net.act(a, |ep, now| ep.start_presence(now));
    net.act(b, |ep, now| ep.start_presence(now));
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.node(a).endpoint.peers().len(), 1, "sealed beacons pass");
    let from: SocketAddr = "10.6.6.6:9000".parse().unwrap();
    let decrypt_before = net.stats(a).rejected_decrypt;
    net.inject(a, from, &beacon_datagram("00000000000000aa", &forged(BeaconKind::Hello)));
    net.inject(a, from, &beacon_datagram(&net.id(b), &forged(BeaconKind::Goodbye)));
    assert_eq!(net.stats(a).rejected_decrypt - decrypt_before, 2, "plaintext beacons are refused");
    assert_eq!(net.node(a).endpoint.peers().len(), 1, "a forged goodbye takes no one down");
}

/// 0.1.x-style events (no `sn`) from ever new ids: each is a new "legacy
/// peer". Admissions are bounded per timeout, so the table, the work and
/// what the application hears stay bounded; the events themselves are
/// delivered as before.
#[test]
fn a_flood_of_new_legacy_senders_is_admitted_within_the_budget() {
    let mut net = group(10, 1);
    let from: SocketAddr = "10.6.6.6:9000".parse().unwrap();
    let body = wire::encode_args(&[Bson::Int32(1)]);
    for k in 0..3000u64 {
        let id = format!("{:016x}", 0xabc0_0000 + k);
        let m = forge::meta(Some(&id), &format!("{:0>40}", id), "myevent", 0, 1, None);
        net.inject(0, from, &forge::datagram(&m, &body));
    }
    assert_eq!(net.events(0).len(), 3000, "the events are delivered");
    let s = net.stats(0);
    assert_eq!(s.peers_known, 64);
    assert_eq!(s.peers_refused, 3000 - 64);
    assert!(net.node(0).peer_changes.len() <= 2 * 64, "{}", net.node(0).peer_changes.len());
    // One timeout later the budget is back: a real newcomer gets in.
    net.run_for(TIMEOUT);
    let k = net.add_endpoint(config("late"));
    net.act(k, |ep, now| ep.start_presence(now));
    net.run_for(Duration::from_millis(50));
    assert!(net.node(0).endpoint.peers().iter().any(|p| p.name.as_deref() == Some("late")));
}
