//! Hostile input at the engine: floods of bogus partial messages stay within
//! the reassembly limits (oldest evicted and counted), oversized messages are
//! refused, legitimate traffic still gets through, and legacy encryption works
//! end to end.

use bson::Bson;
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{Config, Encryption, Limits};
use eventcast_engine::wire::{self, legacy::LegacyKey, Meta};
use rand::{Rng, SeedableRng};
use std::time::Duration;

#[path = "support/forge.rs"]
mod forge;

fn chunk(id: &str, seq_id: &str, seq: i32, seq_len: i32, body: &[u8]) -> Vec<u8> {
    forge::datagram(&forge::meta(Some(id), seq_id, "flood", seq, seq_len, None), body)
}

#[test]
fn flood_of_bogus_partials_stays_within_limits() {
    let limits = Limits { max_partial_messages: 64, max_reassembly_bytes: 256 * 1024, ..Limits::default() };
    let mut net = Network::new(60);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config { limits: limits.clone(), ..Config::default() });
    let mut rng = rand::rngs::StdRng::seed_from_u64(61);
    let from = "10.6.6.6:9000".parse().unwrap();
    let body = vec![0x55u8; 1000];
    for i in 0..20_000u32 {
        let id = wire::ids::instance_id(&mut rng);
        let seq_id = wire::ids::seq_id(&mut rng);
        let seq_len = rng.gen_range(2..2000);
        net.inject(b, from, &chunk(&id, &seq_id, rng.gen_range(0..seq_len - 1), seq_len, &body));
        let s = net.stats(b);
        assert!(s.reassembly_bytes <= limits.max_reassembly_bytes as u64, "{s:?}");
        if i % 1000 == 0 {
            // Real traffic keeps flowing in the middle of the flood.
            net.emit(a, "real", &[Bson::Int32(i as i32)]).unwrap();
            net.run_for(Duration::from_millis(5));
        }
    }
    let s = net.stats(b).clone();
    assert!(s.partials_evicted >= 20_000 - 64, "{s:?}");
    assert!(s.reassembly_bytes <= limits.max_reassembly_bytes as u64);
    // Absurd declarations are refused outright.
    net.inject(b, from, &chunk("0000000000000001", &"ab".repeat(20), 0, 5_000_000, &body));
    net.inject(b, from, &chunk("0000000000000001", &"cd".repeat(20), 7, 3, &body));
    let s2 = net.stats(b);
    assert_eq!(s2.rejected_limits, s.rejected_limits + 1);
    assert_eq!(s2.rejected_malformed, s.rejected_malformed + 1);
    // Bogus partials expire; the endpoint then holds nothing and reports their loss.
    assert!(net.run_until_idle());
    assert_eq!(net.stats(b).reassembly_bytes, 0);
    assert_eq!(net.events(b).iter().filter(|e| e.name == "real").count(), 20);
    assert!(net.events(b).iter().all(|e| e.name == "real"));
}

#[test]
fn big_message_during_flood_still_arrives() {
    let limits = Limits { max_partial_messages: 64, max_reassembly_bytes: 4 << 20, ..Limits::default() };
    let mut net = Network::new(62);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config { limits, ..Config::default() });
    let arg = Bson::String("q".repeat(300_000));
    net.emit(a, "big", std::slice::from_ref(&arg)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(63);
    let from = "10.6.6.6:9000".parse().unwrap();
    // Interleave: bogus one-chunk partials between the real chunks. The least
    // recently progressed partial is evicted, so the flood evicts its own kind.
    for _ in 0..1200 {
        for _ in 0..2 {
            let id = wire::ids::instance_id(&mut rng);
            net.inject(b, from, &chunk(&id, &"ee".repeat(20), 0, 3, &[1; 100]));
        }
        net.step();
    }
    assert!(net.run_until_idle());
    let got: Vec<_> = net.events(b).iter().filter(|e| e.name == "big").collect();
    assert_eq!(got.len(), 1, "{:?}", net.stats(b));
    assert_eq!(got[0].args, vec![arg]);
    assert!(net.stats(b).partials_evicted > 2000, "{:?}", net.stats(b));
}

#[test]
fn oversized_emit_is_refused() {
    let mut net = Network::new(64);
    let a = net
        .add_endpoint(Config { limits: Limits { max_message_size: 10_000, ..Limits::default() }, ..Config::default() });
    let err = net.emit(a, "big", &[Bson::String("x".repeat(20_000))]).unwrap_err();
    assert_eq!(err.code(), "EPAYLOAD");
    assert_eq!(net.emit(a, &"n".repeat(70_000), &[]).unwrap_err().code(), "EPAYLOAD");
    assert_eq!(net.stats(a).events_sent, 0);
}

#[test]
fn legacy_encryption_end_to_end_with_loss() {
    let key = LegacyKey::from_passphrase("s3cret");
    let cfg = Config { encryption: Encryption::Legacy(key), ..Config::default() };
    let mut net = Network::new(65);
    let a = net.add_endpoint(cfg.clone());
    let b = net.add_endpoint(cfg);
    let plain = net.add_endpoint(Config::default());
    let other = net.add_endpoint(Config {
        encryption: Encryption::Legacy(LegacyKey::from_passphrase("other")),
        ..Config::default()
    });
    net.set_loss(0.2);
    let arg = Bson::String("w".repeat(100_000));
    net.emit(a, "secret", std::slice::from_ref(&arg)).unwrap();
    assert!(net.run_until_idle());
    assert_eq!(net.events(b).len(), 1);
    assert_eq!(net.events(b)[0].args, vec![arg]);
    assert!(net.events(plain).is_empty());
    assert!(net.events(other).is_empty());
    assert!(net.stats(plain).rejected_decrypt >= 1);
}

#[test]
fn repair_traffic_per_requester_is_capped() {
    use eventcast_engine::protocol::{Endpoint, Identity, RepairRequest};
    use std::time::{Instant, SystemTime};
    let budget = 1 << 20;
    let cfg =
        Config { limits: Limits { max_repair_bytes_per_requester: budget, ..Limits::default() }, ..Config::default() };
    let identity =
        Identity { id: "00000000000000a1".into(), host: "10.0.0.1".into(), port: 9000, hostname: "a".into() };
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let mut a = Endpoint::new(cfg, identity, 1, t0, w0).unwrap();
    a.emit(t0, w0, "big", &[Bson::String("x".repeat(4 << 20))]).unwrap();
    let first = a.poll_transmit().unwrap().payload;
    while a.poll_transmit().is_some() {}
    let group = wire::decode_datagram(&first).unwrap().meta.seq_id;
    let mut repaired = 0usize;
    // Every 100 ms for 2 s, one requester asks for 64 chunks at a time, all of them.
    for round in 0..20u32 {
        let now = t0 + Duration::from_millis(100) * round;
        for batch in 0..(4 << 20) / 1024 / 64 {
            let req = RepairRequest {
                id: "6666666666666666".into(),
                seq_id: group.clone(),
                missed_seq: (batch * 64..batch * 64 + 64).collect(),
                host: "6.6.6.6".into(),
                port: 53,
                missed_sn: vec![],
                // Our shape (a 0.1.x request, without `to`, gets three spaced copies).
                to: Some("00000000000000a1".into()),
                relayed: false,
            };
            let meta = Meta {
                v: 3,
                seq_len: 1,
                seq_id: wire::ids::seq_id(&mut rand::thread_rng()),
                seq_end: true,
                name: Some(wire::RETX_EVENT.into()),
                id: Some("6666666666666666".into()),
                ..Meta::default()
            };
            let mut d = Vec::new();
            wire::encode_datagram(&meta, &wire::encode_document_body(&req.to_document()), &mut d);
            a.handle_datagram(now, "6.6.6.6:53".parse().unwrap(), &d);
            while let Some(t) = a.poll_transmit() {
                repaired += t.payload.len();
            }
        }
    }
    // At most one burst plus the refill over 2 s.
    assert!(repaired <= 3 * budget + 2048, "{repaired}");
    assert!(repaired >= budget, "{repaired}");
    assert!(a.stats().repairs_rate_limited > 0);
}
