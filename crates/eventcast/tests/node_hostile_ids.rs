//! Forged sender ids against real nodes (inside a private network
//! namespace), over UDP multicast and over a real `nats-server`: ≈ 1,100
//! complete events from made-up ids while a real sender is quiet used to
//! push it out of the receiver's 1,024-sender table; its next event then
//! opened a fresh window from message 1 (a young stream) and all its
//! earlier events, still retained by the sender, were delivered a second
//! time. Now a sender that delivered leaves a compact record and resumes
//! from it: every real event is delivered exactly once.

mod nats_support;
mod node_support;

#[path = "../../eventcast-engine/tests/support/forge.rs"]
mod forge;

use bson::Bson;
use eventcast::wire;
use eventcast::{Eventcast, Events, NatsOptions, Notification, Options, Transport};
use nats_support::{NatsServer, RawClient};
use node_support::{random_port, skip_outside_netns, started, test_options};
use std::time::{Duration, Instant};

/// A complete event (`sn` 1) from made-up sender `n`.
fn forged_event(n: usize) -> Vec<u8> {
    let id = format!("{:016x}", 0xf000_0000_0000_0000u64 + n as u64);
    let m = forge::meta(Some(&id), &format!("{n:040x}"), "forged", 0, 1, Some(1));
    forge::datagram(&m, &wire::encode_args(&[Bson::Int32(1)]))
}

/// The numbers of the "real" events `events` delivers until nothing came for `quiet`.
async fn real_events(events: &mut Events, quiet: Duration, until: usize) -> Vec<i32> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < until && Instant::now() < deadline {
        match tokio::time::timeout(quiet, events.recv()).await {
            Ok(Some(Notification::Event(e))) if e.name == "real" => match e.args.first() {
                Some(Bson::Int32(i)) => got.push(*i),
                other => panic!("unexpected arguments {other:?}"),
            },
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    got
}

/// The scenario on started nodes `a` (sender) and `b` (receiver); `forge`
/// sends one forged datagram to the group.
async fn young_stream_survives_forged_ids(a: &Eventcast, b: &Eventcast, mut forge: impl FnMut(&[u8])) {
    let mut events = b.subscribe();
    for i in 0..300 {
        a.emit("real", &[Bson::Int32(i)]).unwrap();
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let first = real_events(&mut events, Duration::from_secs(3), 300).await;
    assert_eq!(first.len(), 300, "{:?}", b.stats());
    for n in 0..1100 {
        forge(&forged_event(n));
        if n % 100 == 99 {
            // Paced: the kernel's receive buffer is not what is tested here.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 300..310 {
        a.emit("real", &[Bson::Int32(i)]).unwrap();
    }
    // Long enough for a repair round (a request follows 375-750 ms after a loss is seen).
    let mut rest = real_events(&mut events, Duration::from_secs(3), usize::MAX).await;
    rest.sort_unstable();
    let s = b.stats();
    eprintln!("after the forged ids: {} real events; receiver {s:?}; sender {:?}", rest.len(), a.stats());
    assert_eq!(rest, (300..310).collect::<Vec<_>>(), "each real event once: {s:?}");
    assert!(s.events_delivered >= 1100 + 310, "the forged events were delivered (plaintext): {s:?}");
    assert!(s.senders_compacted > 0, "{s:?}");
    // Neither delivered again nor reported lost (a fresh window from message 1
    // reports what the sender no longer retains as a gap).
    assert_eq!(s.gaps_unrecovered, 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_ids_over_udp_do_not_make_a_young_stream_deliver_again() {
    if skip_outside_netns("forged_ids_over_udp_do_not_make_a_young_stream_deliver_again") {
        return;
    }
    let options = test_options();
    let b = started(options.clone()).await;
    let a = started(options.clone()).await;
    let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let group = (options.multicast_membership, options.port);
    young_stream_survives_forged_ids(&a, &b, |d| {
        raw.send_to(d, group).unwrap();
    })
    .await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_ids_over_nats_do_not_make_a_young_stream_deliver_again() {
    if skip_outside_netns("forged_ids_over_nats_do_not_make_a_young_stream_deliver_again") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let subject = format!("eventcast.{port}");
    let options = Options { transport: Transport::Nats(NatsOptions::new([server.url()])), ..Options::with_port(port) };
    let b = started(options.clone()).await;
    let a = started(options).await;
    let mut attacker = RawClient::connect(server.port, None);
    young_stream_survives_forged_ids(&a, &b, |d| attacker.publish(&subject, d)).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
