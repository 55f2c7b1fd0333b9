//! The authenticated scheme at the engine: only authenticated, fresh, not yet
//! seen datagrams are accepted; repairs never go to an address from a request.

#[path = "support/vectors.rs"]
mod vectors;

use bson::Bson;
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{Config, Destination, Encryption, Endpoint, Identity, Output, RepairRequest};
use eventcast_engine::wire::{self, legacy::LegacyKey, secure::SecureKey, Meta};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

fn key(pass: &str) -> SecureKey {
    // Few iterations: the test is about the protocol, not the key derivation.
    SecureKey::derive_with_iterations(pass, 1000)
}

fn secure(pass: &str) -> Config {
    Config { encryption: Encryption::Secure(key(pass)), ..Config::default() }
}

fn ident(id: &str) -> Identity {
    Identity { id: id.into(), host: "10.0.0.1".into(), port: 9000, hostname: "h".into() }
}

fn src() -> SocketAddr {
    "10.0.0.1:9000".parse().unwrap()
}

struct Pair {
    t0: Instant,
    w0: SystemTime,
    a: Endpoint,
    b: Endpoint,
}

fn pair(cfg_b: Config) -> Pair {
    let t0 = Instant::now();
    let w0 = SystemTime::now();
    let a = Endpoint::new(secure("pw"), ident("00000000000000a1"), 1, t0, w0).unwrap();
    let b = Endpoint::new(cfg_b, ident("00000000000000b2"), 2, t0, w0).unwrap();
    Pair { t0, w0, a, b }
}

fn sent(e: &mut Endpoint) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| e.poll_transmit()).map(|t| t.payload.to_vec()).collect()
}

fn events(e: &mut Endpoint) -> Vec<String> {
    std::iter::from_fn(|| e.poll_output())
        .filter_map(|o| match o {
            Output::Event(ev) => Some(ev.name),
            _ => None,
        })
        .collect()
}

#[test]
fn secure_end_to_end_under_loss_and_nothing_for_outsiders() {
    let mut net = Network::new(90);
    let a = net.add_endpoint(secure("pw"));
    let b = net.add_endpoint(secure("pw"));
    let wrong = net.add_endpoint(secure("other"));
    let plain = net.add_endpoint(Config::default());
    let legacy = net
        .add_endpoint(Config { encryption: Encryption::Legacy(LegacyKey::from_passphrase("pw")), ..Config::default() });
    net.set_loss(0.2);
    let big = Bson::String("s".repeat(200_000));
    net.emit(a, "big", std::slice::from_ref(&big)).unwrap();
    for i in 0..200 {
        net.emit(a, "small", &[Bson::Int32(i)]).unwrap();
    }
    assert!(net.run_until_idle());
    assert_eq!(net.events(b).len(), 201, "{:?}", net.stats(b));
    assert_eq!(net.events(b).iter().filter(|e| e.name == "big" && e.args == [big.clone()]).count(), 1);
    assert!(net.node(b).gaps.is_empty());
    for n in [wrong, plain, legacy] {
        assert!(net.events(n).is_empty());
        assert!(net.node(n).gaps.is_empty());
        assert!(net.stats(n).rejected_decrypt > 100);
        assert_eq!(net.stats(n).datagrams_sent, 0, "outsiders never request repairs");
    }
    // Names and arguments never travel in the clear.
    let mut probe =
        Endpoint::new(secure("pw"), ident("00000000000000c3"), 3, Instant::now(), SystemTime::now()).unwrap();
    probe.emit(Instant::now(), SystemTime::now(), "topsecretname", &[Bson::String("topsecretarg".into())]).unwrap();
    for d in sent(&mut probe) {
        let hay = String::from_utf8_lossy(&d);
        assert!(!hay.contains("topsecret") && !hay.contains("00000000000000c3"));
    }
}

/// What a node of the previous release would have sent in place of `d`, a
/// datagram of ours: the same inner datagram sealed with version 1 (`hs256`).
fn as_hs256(d: &[u8]) -> Vec<u8> {
    let k = key("pw");
    k.seal_hs256(&k.open(d).unwrap(), &mut rand::thread_rng())
}

/// Makes the datagram to test of one of ours.
type Reseal = fn(&[u8]) -> Vec<u8>;

/// Each datagram in the version nodes send, and as an older node sends it.
const VERSIONS: [(&str, Reseal); 2] = [("xaes256gcm", |d| d.to_vec()), ("hs256", as_hs256)];

#[test]
fn every_single_bit_flip_is_dropped() {
    for (version, seal) in VERSIONS {
        every_single_bit_flip_is_dropped_in(version, seal);
    }
}

fn every_single_bit_flip_is_dropped_in(version: &str, seal: Reseal) {
    let mut p = pair(secure("pw"));
    p.a.emit(p.t0, p.w0, "x", &[Bson::String("payload".into())]).unwrap();
    let d = seal(&sent(&mut p.a).remove(0));
    for i in 0..d.len() {
        for bit in 0..8 {
            let mut m = d.clone();
            m[i] ^= 1 << bit;
            p.b.handle_datagram(p.t0, src(), &m);
        }
    }
    assert!(events(&mut p.b).is_empty(), "{version}");
    assert_eq!(p.b.stats().rejected_decrypt, 8 * d.len() as u64, "{version}");
    assert!(sent(&mut p.b).is_empty());
    // The original still works afterwards.
    p.b.handle_datagram(p.t0, src(), &d);
    assert_eq!(events(&mut p.b), ["x"], "{version}");
}

/// Replay protection and freshness hold alike for both versions; an older
/// node's `hs256` datagram is accepted once.
#[test]
fn replayed_datagrams_are_dropped() {
    for (version, seal) in VERSIONS {
        replayed_datagrams_are_dropped_in(version, seal);
    }
}

fn replayed_datagrams_are_dropped_in(version: &str, seal: Reseal) {
    let mut p = pair(secure("pw"));
    p.a.emit(p.t0, p.w0, "once", &[]).unwrap();
    let d = seal(&sent(&mut p.a).remove(0));
    p.b.handle_datagram(p.t0, src(), &d);
    assert_eq!(events(&mut p.b), ["once"], "{version}");
    // Replayed soon after: within the sn window.
    p.b.handle_datagram(p.t0 + Duration::from_secs(1), src(), &d);
    assert!(events(&mut p.b).is_empty());
    assert_eq!(p.b.stats().duplicates_ignored, 1, "{version}");
    // Replayed much later, even at a node that never saw it: outside the freshness window.
    let later = p.t0 + Duration::from_secs(60);
    p.b.handle_datagram(later, src(), &d);
    let mut fresh =
        Endpoint::new(secure("pw"), ident("00000000000000d4"), 4, later, p.w0 + Duration::from_secs(60)).unwrap();
    fresh.handle_datagram(later, src(), &d);
    assert!(events(&mut p.b).is_empty());
    assert!(events(&mut fresh).is_empty());
    assert_eq!(p.b.stats().rejected_replay, 1, "{version}");
    assert_eq!(fresh.stats().rejected_replay, 1, "{version}");
    // A datagram from the future (beyond the clock skew allowance) is refused too.
    let mut early =
        Endpoint::new(secure("pw"), ident("00000000000000e5"), 5, p.t0, p.w0 - Duration::from_secs(60)).unwrap();
    early.handle_datagram(p.t0, src(), &d);
    assert_eq!(early.stats().rejected_replay, 1, "{version}");
}

#[test]
fn plaintext_and_legacy_datagrams_are_dropped_at_a_secure_node() {
    let mut p = pair(secure("pw"));
    let mut plain =
        Endpoint::new(Config::default(), ident("00000000000000f6"), 6, Instant::now(), SystemTime::now()).unwrap();
    plain.emit(p.t0, p.w0, "plain", &[Bson::String("x".repeat(3000))]).unwrap();
    plain.emit(p.t0, p.w0, "plain2", &[]).unwrap();
    let mut legacy = Endpoint::new(
        Config { encryption: Encryption::Legacy(LegacyKey::from_passphrase("pw")), ..Config::default() },
        ident("00000000000000f7"),
        7,
        Instant::now(),
        SystemTime::now(),
    )
    .unwrap();
    legacy.emit(p.t0, p.w0, "legacy", &[]).unwrap();
    let n = {
        let mut all = sent(&mut plain);
        all.extend(sent(&mut legacy));
        for d in &all {
            p.b.handle_datagram(p.t0, src(), d);
        }
        all.len() as u64
    };
    assert!(events(&mut p.b).is_empty());
    assert_eq!(p.b.stats().rejected_decrypt, n);
    // Nothing was held for them either.
    assert_eq!(p.b.stats().reassembly_bytes, 0);
    p.b.handle_timeout(p.t0 + Duration::from_secs(30));
    assert!(sent(&mut p.b).is_empty());
}

#[test]
fn forged_repair_requests_cause_no_traffic_and_real_ones_answer_only_the_group() {
    let mut p = pair(secure("pw"));
    p.a.emit(p.t0, p.w0, "big", &[Bson::String("z".repeat(5000))]).unwrap();
    let chunks = sent(&mut p.a);
    assert!(chunks.len() > 1);
    // We cannot read the group id from the sealed chunks; an insider (b) can.
    let group = wire::decode_datagram(&key("pw").open(&chunks[0]).unwrap()).unwrap().meta.seq_id;
    let req = RepairRequest {
        id: "6666666666666666".into(),
        seq_id: group.clone(),
        missed_seq: vec![0, 1, 2],
        host: "6.6.6.6".into(),
        port: 53,
        missed_sn: vec![1],
        to: Some("00000000000000a1".into()),
        relayed: false,
    };
    let body = wire::encode_document_body(&req.to_document());
    let meta = Meta {
        v: 3,
        seq_len: 1,
        seq_id: "ab".repeat(20),
        seq_end: true,
        name: Some(wire::RETX_EVENT.into()),
        host: Some("6.6.6.6".into()),
        port: Some(53),
        hostname: Some("evil".into()),
        id: Some("6666666666666666".into()),
        time: Some(eventcast_engine::protocol::timefmt::format_iso(p.w0)),
        ..Meta::default()
    };
    let mut forged = Vec::new();
    wire::encode_datagram(&meta, &body, &mut forged);
    let evil: SocketAddr = "6.6.6.6:53".parse().unwrap();
    // Unauthenticated (plaintext) request: dropped, no traffic at all.
    p.a.handle_datagram(p.t0, evil, &forged);
    assert!(sent(&mut p.a).is_empty());
    assert_eq!(p.a.stats().rejected_decrypt, 1);
    // Sealed with the wrong key: same.
    p.a.handle_datagram(p.t0, evil, &key("guess").seal(&forged, &mut rand::thread_rng()));
    assert!(sent(&mut p.a).is_empty());
    // From a member (authenticated): answered, but only on the group, never to 6.6.6.6.
    p.a.handle_datagram(p.t0, evil, &key("pw").seal(&forged, &mut rand::thread_rng()));
    let out: Vec<_> = std::iter::from_fn(|| p.a.poll_transmit()).collect();
    assert!(!out.is_empty());
    assert!(out.iter().all(|t| t.destination == Destination::Group));
    assert!(events(&mut p.a).is_empty());
}

#[test]
fn legacy_vectors_decode_in_legacy_mode_only() {
    let cases = vectors::load();
    for case in &cases {
        let Some(pass) = case.encrypt.as_deref() else { continue };
        let datagrams = &case.datagrams;
        for (cfg, expect) in [
            (Config { encryption: Encryption::Legacy(LegacyKey::from_passphrase(pass)), ..Config::default() }, 1),
            (Config { encryption: Encryption::Secure(key(pass)), ..Config::default() }, 0),
        ] {
            let mut e = Endpoint::new(cfg, ident("0123456789abcdef"), 8, Instant::now(), SystemTime::now()).unwrap();
            for d in datagrams {
                e.handle_datagram(Instant::now(), src(), d);
            }
            assert_eq!(events(&mut e).len(), expect, "{}", case.name);
        }
    }
}
