//! Real eventcast 0.1.2 datagrams (crates/eventcast-engine/tests/fixtures, from ../shared/vectors) through `Endpoint::handle_datagram`:
//! every chunk order, with duplicates, plain and legacy-encrypted, and a 0.1.x
//! repair request that must be answered on the group.

use bson::Bson;
use eventcast_engine::protocol::{Config, Destination, Encryption, Endpoint, Identity, Output, RepairRequest};
use eventcast_engine::wire::{self, legacy::LegacyKey, Payload};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

#[path = "support/vectors.rs"]
mod vectors;
use vectors::Case;

fn cases() -> Vec<Case> {
    vectors::load()
}

fn endpoint(encryption: Encryption) -> Endpoint {
    let identity =
        Identity { id: "0123456789abcdef".into(), host: "10.1.2.9".into(), port: 9000, hostname: "t".into() };
    Endpoint::new(Config { encryption, ..Config::default() }, identity, 5, Instant::now(), SystemTime::now()).unwrap()
}

fn encryption_for(c: &Case) -> Encryption {
    match &c.encrypt {
        Some(p) => Encryption::Legacy(LegacyKey::from_passphrase(p)),
        None => Encryption::None,
    }
}

fn source() -> SocketAddr {
    "10.1.2.3:9000".parse().unwrap()
}

fn events(e: &mut Endpoint) -> Vec<(String, Vec<Bson>, String)> {
    let mut out = Vec::new();
    while let Some(o) = e.poll_output() {
        match o {
            Output::Event(ev) => out.push((ev.name, ev.args, ev.sender.id.clone())),
            other => panic!("unexpected output {other:?}"),
        }
    }
    out
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

fn expected_args(c: &Case) -> Option<Vec<Bson>> {
    Some(match c.name.as_str() {
        "plain-one-string" => vec![Bson::String("hello".into())],
        "plain-no-args" => vec![],
        "plain-chunked-3000" => vec![Bson::String("b".repeat(3000))],
        "plain-chunked-small-mps" => vec![Bson::String("123456789".into())],
        "legacy-enc-one-string" => vec![Bson::String("howdy neighborino!".into())],
        "legacy-enc-chunked" => vec![Bson::String("c".repeat(2500))],
        _ => return None,
    })
}

#[test]
fn every_event_vector_in_every_order_with_duplicates_delivers_once() {
    let cases = cases();
    let mut checked = 0;
    for c in cases.iter().filter(|c| c.event != "__ec_retx") {
        for order in permutations(c.datagrams.len()) {
            let mut e = endpoint(encryption_for(c));
            for (k, &i) in order.iter().enumerate() {
                e.handle_datagram(Instant::now(), source(), &c.datagrams[i]);
                if k % 2 == 0 {
                    e.handle_datagram(Instant::now(), source(), &c.datagrams[i]);
                    // duplicate
                }
            }
            // A late duplicate of every datagram after completion.
            for d in &c.datagrams {
                e.handle_datagram(Instant::now(), source(), d);
            }
            let got = events(&mut e);
            assert_eq!(got.len(), 1, "{} order {order:?}", c.name);
            assert_eq!(got[0].0, c.event);
            assert_eq!(got[0].2, "a1b2c3d4e5f60718");
            if let Some(args) = expected_args(c) {
                assert_eq!(got[0].1, args, "{}", c.name);
            } else {
                assert_eq!(got[0].1.len(), 13, "{}", c.name);
                assert_eq!(got[0].1[4], Bson::Int32(5));
            }
            let s = e.stats();
            assert_eq!(s.rejected_malformed + s.rejected_decrypt + s.rejected_limits, 0, "{}: {s:?}", c.name);
            assert!(s.duplicates_ignored > 0);
            assert_eq!(s.reassembly_bytes, 0);
            checked += 1;
        }
    }
    assert_eq!(checked, 3 + 24 + 120 + 1 + 6);
}

#[test]
fn encrypted_vectors_need_the_key_and_plaintext_is_refused_when_encrypting() {
    let cases = cases();
    for c in &cases {
        let wrong = match &c.encrypt {
            Some(_) => vec![Encryption::None, Encryption::Legacy(LegacyKey::from_passphrase("wrong key"))],
            None => vec![Encryption::Legacy(LegacyKey::from_passphrase("NSA-KEY"))],
        };
        for enc in wrong {
            let mut e = endpoint(enc);
            for d in &c.datagrams {
                e.handle_datagram(Instant::now(), source(), d);
            }
            assert!(events(&mut e).is_empty(), "{}", c.name);
            // Wrong key: bad padding is likely but not certain; garbage plaintext is then malformed.
            let s = e.stats();
            assert_eq!(s.rejected_decrypt + s.rejected_malformed, 1, "{}: {s:?}", c.name);
        }
    }
}

fn request_vector(cases: &[Case]) -> Vec<u8> {
    cases.iter().find(|c| c.event == "__ec_retx").expect("retx case").datagrams[0].clone()
}

#[test]
fn retx_vector_is_not_an_event_and_unknown_seq_ids_are_ignored() {
    let cases = cases();
    let mut e = endpoint(Encryption::None);
    e.handle_datagram(Instant::now(), source(), &request_vector(&cases));
    assert!(events(&mut e).is_empty());
    assert_eq!(e.stats().repair_requests_ignored, 1);
    // Not ours: forwarded to the group once, marked `relayed` (it may have
    // reached us by unicast on a host whose port the real sender shares).
    let relay = e.poll_transmit().expect("the request forwarded to the group");
    assert_eq!(relay.destination, Destination::Group);
    assert!(e.poll_transmit().is_none());
    let dg = wire::decode_datagram(&relay.payload).unwrap();
    let Payload::Document(doc) = wire::decode_body(dg.body).unwrap() else { panic!("not a document") };
    let req = RepairRequest::from_document(&doc).unwrap();
    assert!(req.relayed && req.to.is_none());
    assert_eq!(req.missed_seq, vec![1, 3]);
    assert_eq!(e.stats().repair_requests_relayed, 1);
}

#[test]
fn retx_request_of_a_0_1_x_node_is_answered_on_the_group() {
    let cases = cases();
    let mut e = endpoint(Encryption::None);
    e.emit(Instant::now(), SystemTime::now(), "long", &[Bson::String("z".repeat(5000))]).unwrap();
    let sent: Vec<Vec<u8>> = std::iter::from_fn(|| e.poll_transmit()).map(|t| t.payload.to_vec()).collect();
    assert_eq!(sent.len(), 6);
    let group = wire::decode_datagram(&sent[0]).unwrap().meta.seq_id;
    // The 0.1.2 request, re-addressed to our chunk group (its meta and field layout unchanged).
    let vector = request_vector(&cases);
    let dg = wire::decode_datagram(&vector).unwrap();
    let Payload::Document(mut doc) = wire::decode_body(dg.body).unwrap() else { panic!("not a document") };
    let req = RepairRequest::from_document(&doc).unwrap();
    assert_eq!(req.missed_seq, vec![1, 3]);
    assert_eq!((req.host.as_str(), req.port), ("10.1.2.4", 9000));
    doc.insert("seqId", group.clone());
    let mut forged = Vec::new();
    wire::encode_datagram(&dg.meta, &wire::encode_document_body(&doc), &mut forged);
    e.handle_datagram(Instant::now(), "10.1.2.4:9000".parse().unwrap(), &forged);
    let repairs: Vec<_> = std::iter::from_fn(|| e.poll_transmit()).collect();
    assert_eq!(repairs.len(), 2);
    assert!(repairs.iter().all(|t| t.destination == Destination::Group));
    assert_eq!(repairs[0].payload, sent[1]);
    assert_eq!(repairs[1].payload, sent[3]);
    assert!(events(&mut e).is_empty());
    // A 0.1.x requester asks once: two more copies of each follow, spaced.
    e.handle_timeout(Instant::now() + Duration::from_millis(50));
    let copies: Vec<_> = std::iter::from_fn(|| e.poll_transmit()).collect();
    assert_eq!(copies.len(), 4);
    assert!(copies
        .iter()
        .all(|t| t.destination == Destination::Group && (t.payload == sent[1] || t.payload == sent[3])));
    assert_eq!(e.stats().repairs_sent, 6);
    // The same request again right away: no second repair (many requesters, one repair).
    e.handle_datagram(Instant::now(), "10.1.2.4:9000".parse().unwrap(), &forged);
    assert!(e.poll_transmit().is_none());
}
