//! Forged repair requests over NATS against a real `nats-server` (inside a
//! private network namespace). NATS gives the engine no source address, so
//! every requester used to share the one budget of the one synthetic
//! source: ≈ 18 KB of forged requests with rotating requester ids made a
//! sender of 20 × 1 MiB resend 20.3 MB. Now each requester id gets at most
//! 3× the bytes of its requests (`repairsCreditLimited` counts the rest):
//! with NATS chunks of ~60 KiB, a small forged request gets nothing, one
//! that carries ~25 KB gets about one chunk.

mod nats_support;
mod node_support;

#[path = "../../eventcast-engine/tests/support/forge.rs"]
mod forge;

use bson::Bson;
use eventcast::protocol::RepairRequest;
use eventcast::wire::{self, RETX_EVENT};
use eventcast::{Error, Eventcast, NatsOptions, Notification, Options, Transport};
use nats_support::{NatsServer, RawClient};
use node_support::{random_port, skip_outside_netns};
use std::time::Duration;

/// Options on `port` without presence: these tests count what travels until
/// the subject or the LAN goes quiet, and beacons never let it.
fn quiet(port: u16) -> Options {
    Options { presence: None, ..Options::with_port(port) }
}

const MIB: usize = 1 << 20;

/// A forged `__ec_retx` from requester `i` asking `to` for messages 1..=20,
/// with `pad` bytes of padding.
fn forged_request(i: u64, to: &str, pad: usize) -> Vec<u8> {
    let requester = format!("{:016x}", 0x6000_0000_0000_0000u64 + i);
    let req = RepairRequest {
        id: requester.clone(),
        seq_id: String::new(),
        missed_seq: vec![],
        host: "6.6.6.6".into(),
        port: 53,
        missed_sn: (1..=20).collect(),
        to: Some(to.to_owned()),
        relayed: false,
    };
    let mut doc = req.to_document();
    if pad > 0 {
        doc.insert("pad", bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; pad] });
    }
    let m = forge::meta(Some(&requester), &format!("{:040x}", i + 1), RETX_EVENT, 0, 1, None);
    forge::datagram(&m, &wire::encode_document_body(&doc))
}

/// The engine recognises NATS datagrams by the source the driver gives them.
#[test]
fn the_nats_source_is_the_engines_no_source_address() {
    assert_eq!(eventcast::NATS_SOURCE, eventcast::protocol::NO_SOURCE_ADDRESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_repair_requests_over_nats_get_at_most_three_times_their_bytes() {
    if skip_outside_netns("forged_repair_requests_over_nats_get_at_most_three_times_their_bytes") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let subject = format!("eventcast.{port}");
    let a = Eventcast::new(Options { transport: Transport::Nats(NatsOptions::new([server.url()])), ..quiet(port) })
        .unwrap();
    a.start().await.unwrap();
    let mut events = a.subscribe();
    for i in 0..20u8 {
        let big = Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![i; MIB] });
        loop {
            match a.emit("big", std::slice::from_ref(&big)) {
                Ok(()) => break,
                Err(Error::Backpressure { .. }) => {
                    let drained = tokio::time::timeout(Duration::from_secs(10), async {
                        while let Some(n) = events.recv().await {
                            if matches!(n, Notification::Drain) {
                                return;
                            }
                        }
                    })
                    .await;
                    assert!(drained.is_ok(), "no drain within 10 s");
                }
                Err(e) => panic!("emit {i}: {e}"),
            }
        }
    }
    // Let the burst and the heartbeats after it pass before listening.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let id = a.id().to_owned();
    let before = a.stats();
    let listen = tokio::task::spawn_blocking(move || {
        let mut l = RawClient::connect(server.port, Some(&subject));
        let mut attacker = RawClient::connect(server.port, None);
        let mut sent = 0;
        for i in 0..60u64 {
            // The first two pay for about one chunk each (~60 KiB over NATS).
            let d = forged_request(i, &id, if i < 2 { 25_000 } else { 0 });
            sent += d.len();
            attacker.publish(&subject, &d);
            // Past the sender's resend window, so no answer is suppressed.
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = l.bytes_until_quiet(Duration::from_secs(1), 64 * MIB as u64);
        (sent, out, server)
    });
    let (sent, out, _server) = listen.await.unwrap();
    let s = a.stats();
    let repairs = s.repairs_sent - before.repairs_sent;
    eprintln!(
        "forged requests {sent} B (60 ids) -> {out} B on the subject (requests included), {repairs} repairs; {s:?}"
    );
    // The listener also saw the forged requests themselves, and perhaps a
    // few of the sender's heartbeats (≈ 100 B each).
    let answered = (out as usize).saturating_sub(sent);
    assert!(answered <= 3 * sent + 2048, "{answered} B answered for {sent} B of requests");
    assert!(repairs > 0, "the requests that paid got an answer: {s:?}");
    assert!(s.repairs_credit_limited > 0, "{s:?}");
    a.stop().await.unwrap();
}
