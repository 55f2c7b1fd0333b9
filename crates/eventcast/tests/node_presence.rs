//! Presence between real nodes on loopback multicast and over a real
//! `nats-server`, inside a private network namespace
//! (`node scripts/netns.js cargo test --test node_presence`): peers appear
//! within one interval with what they advertise, `set_meta` arrives as an
//! update, `stop()` says goodbye, a node that vanishes without one goes down
//! after the timeout, and presence works unchanged over NATS.

mod nats_support;
mod node_support;

use bson::doc;
use eventcast::{
    Bridge, BridgeOptions, Eventcast, Events, NatsOptions, Notification, Options, PeerDownReason, PeerInfo,
    PeerTransport, PresenceOptions, Transport,
};
use nats_support::NatsServer;
use node_support::{random_port, skip_outside_netns, started, test_options};
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(1000);

fn with_presence(mut o: Options, name: &str) -> Options {
    o.name = Some(name.into());
    o.meta = doc! { "role": name };
    o.presence = Some(PresenceOptions { interval: INTERVAL, timeout: TIMEOUT, max_peers: 64 });
    o
}

/// The next presence notification (events and the like are skipped), within `within`.
async fn next_presence(events: &mut Events, within: Duration) -> Notification {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(n @ (Notification::PeerUp(_) | Notification::PeerDown { .. } | Notification::PeerUpdate(_)))) => {
                return n
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("subscription closed"),
            Err(_) => panic!("no presence notification within {within:?}"),
        }
    }
}

fn up(n: Notification) -> PeerInfo {
    match n {
        Notification::PeerUp(p) => p,
        other => panic!("expected PeerUp, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_come_update_and_go_on_multicast() {
    if skip_outside_netns("peers_come_update_and_go_on_multicast") {
        return;
    }
    let base = test_options();
    let a = Eventcast::new(with_presence(base.clone(), "alpha")).unwrap();
    let mut a_events = a.subscribe();
    a.start().await.unwrap();
    let t0 = Instant::now();
    let b = started(with_presence(base.clone(), "beta")).await;
    // b's first beacon leaves at start: a sees it at once; b sees a within one interval.
    let p = up(next_presence(&mut a_events, INTERVAL * 2).await);
    assert!(t0.elapsed() < INTERVAL + INTERVAL / 5, "peerUp after {:?}", t0.elapsed());
    assert_eq!((p.id.as_str(), p.name.as_deref(), &p.meta), (b.id(), Some("beta"), &doc! { "role": "beta" }));
    assert_eq!((p.pid, p.transport, p.bridged, p.legacy), (Some(std::process::id()), PeerTransport::Udp, false, false));
    assert_eq!(p.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(p.port, base.port);
    let deadline = Instant::now() + INTERVAL * 2;
    while b.peers().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.peers().iter().map(|p| p.id.clone()).collect::<Vec<_>>(), [a.id().to_owned()]);

    // Events count per peer.
    for i in 0..10 {
        b.emit("tick", &[bson::Bson::Int32(i)]).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.peers()[0].delivered, 10);

    // A meta change arrives as an update, well within an interval.
    b.set_meta(doc! { "role": "pricing", "http": 8080 }).unwrap();
    match next_presence(&mut a_events, INTERVAL).await {
        Notification::PeerUpdate(p) => assert_eq!(p.meta, doc! { "role": "pricing", "http": 8080 }),
        other => panic!("expected PeerUpdate, got {other:?}"),
    }
    let big = doc! { "x": "y".repeat(2000) };
    assert_eq!(b.set_meta(big).unwrap_err().code(), "EINVALIDOPTION");

    // stop(): goodbye.
    b.stop().await.unwrap();
    match next_presence(&mut a_events, Duration::from_millis(500)).await {
        Notification::PeerDown { peer, reason } => {
            assert_eq!((peer.id.as_str(), reason), (b.id(), PeerDownReason::Goodbye))
        }
        other => panic!("expected PeerDown, got {other:?}"),
    }
    assert!(a.peers().is_empty());

    // Restarted, it is back; dropped without stop() (as a killed process), it times out.
    b.start().await.unwrap();
    up(next_presence(&mut a_events, INTERVAL * 2).await);
    tokio::time::sleep(INTERVAL).await;
    drop(b);
    let gone = Instant::now();
    match next_presence(&mut a_events, TIMEOUT * 3).await {
        Notification::PeerDown { reason, .. } => assert_eq!(reason, PeerDownReason::Timeout),
        other => panic!("expected PeerDown, got {other:?}"),
    }
    let after = gone.elapsed();
    // Its last beacon was at most one jittered interval before: down within the timeout (+ timer slack).
    assert!(after <= TIMEOUT + Duration::from_millis(100), "down {after:?} after it vanished");
    assert!(after >= TIMEOUT - INTERVAL.mul_f64(1.1), "down too early: {after:?}");
    let s = a.stats();
    assert!(s.beacons_received >= 3 && s.beacons_sent >= 3, "{s:?}");
    a.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_off_sends_no_beacons_and_lists_no_peers() {
    if skip_outside_netns("presence_off_sends_no_beacons_and_lists_no_peers") {
        return;
    }
    let base = test_options();
    let quiet = started(Options { presence: None, ..base.clone() }).await;
    let loud = started(with_presence(base.clone(), "loud")).await;
    tokio::time::sleep(INTERVAL * 3).await;
    assert!(quiet.peers().is_empty());
    assert_eq!(quiet.stats().beacons_sent, 0);
    assert!(loud.peers().is_empty(), "a node without presence does not appear");
    assert_eq!(quiet.set_meta(doc! {}).unwrap_err().code(), "EINVALIDOPTION");
    quiet.stop().await.unwrap();
    loud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_works_unchanged_over_nats() {
    if skip_outside_netns("presence_works_unchanged_over_nats") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let nats = |name: &str| {
        with_presence(
            Options { transport: Transport::Nats(NatsOptions::new([server.url()])), ..Options::with_port(port) },
            name,
        )
    };
    let a = Eventcast::new(nats("north")).unwrap();
    let mut a_events = a.subscribe();
    a.start().await.unwrap();
    let b = started(nats("south")).await;
    let p = up(next_presence(&mut a_events, INTERVAL * 3).await);
    assert_eq!((p.name.as_deref(), p.transport, p.bridged), (Some("south"), PeerTransport::Nats, false));
    b.stop().await.unwrap();
    match next_presence(&mut a_events, Duration::from_secs(1)).await {
        Notification::PeerDown { reason, .. } => assert_eq!(reason, PeerDownReason::Goodbye),
        other => panic!("expected PeerDown, got {other:?}"),
    }
    a.stop().await.unwrap();
}

/// A NATS node sees a LAN node through a bridge, marked as bridged, and the
/// LAN node sees the NATS node likewise (each beacon says its own transport).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_across_the_bridge_are_marked_bridged() {
    if skip_outside_netns("peers_across_the_bridge_are_marked_bridged") {
        return;
    }
    let server = NatsServer::start(&[]);
    let lan_options = test_options();
    let bridge =
        Bridge::start(BridgeOptions { multicast: lan_options.clone(), nats: NatsOptions::new([server.url()]) })
            .await
            .expect("bridge");
    let mut nats = NatsOptions::new([server.url()]);
    nats.group = Some(lan_options.multicast_membership);
    let cloud = Eventcast::new(with_presence(
        Options { transport: Transport::Nats(nats), ..Options::with_port(lan_options.port) },
        "cloud",
    ))
    .unwrap();
    let mut cloud_events = cloud.subscribe();
    cloud.start().await.unwrap();
    let lan = Eventcast::new(with_presence(lan_options.clone(), "lan")).unwrap();
    let mut lan_events = lan.subscribe();
    lan.start().await.unwrap();
    let p = up(next_presence(&mut cloud_events, INTERVAL * 3).await);
    assert_eq!((p.name.as_deref(), p.transport, p.bridged), (Some("lan"), PeerTransport::Udp, true));
    let p = up(next_presence(&mut lan_events, INTERVAL * 3).await);
    assert_eq!((p.name.as_deref(), p.transport, p.bridged), (Some("cloud"), PeerTransport::Nats, true));
    lan.stop().await.unwrap();
    cloud.stop().await.unwrap();
    bridge.stop().await;
}
