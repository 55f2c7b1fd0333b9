//! Authenticated scheme: a freshly started node refuses datagrams
//! sent before its start (minus the clock skew allowance). It has no `sn`
//! history yet, so it could otherwise not tell such a datagram from a replay.

use bson::Bson;
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::{Config, Encryption, Endpoint, Identity};
use eventcast_engine::wire::secure::SecureKey;
use std::time::Duration;

fn config(key: SecureKey) -> Config {
    Config { encryption: Encryption::Secure(key), ..Config::default() }
}

fn ident(id: &str) -> Identity {
    Identity { id: id.into(), host: "10.0.0.1".into(), port: 41234, hostname: "h".into() }
}

/// In the simulator: datagrams captured at time 0 and replayed at a node that
/// started later. Without the start bound, everything within
/// `3 * message_ttl + 5 s` (14 s by default) was delivered to a new node.
#[test]
fn a_node_refuses_what_was_sent_before_it_started() {
    let key = SecureKey::derive_with_iterations("pw", 1000);
    let mut net = Network::new(10);
    let a = net.add_endpoint(config(key.clone()));
    // The attacker's capture: a member's datagrams at time 0, kept aside.
    let mut member = Endpoint::new(config(key.clone()), ident("00000000000000c3"), 7, net.now(), net.wall()).unwrap();
    member.emit(net.now(), net.wall(), "captured", &[Bson::Int32(1)]).unwrap();
    let captured: Vec<Vec<u8>> = std::iter::from_fn(|| member.poll_transmit()).map(|t| t.payload.to_vec()).collect();
    let src = "10.0.0.200:9000".parse().unwrap();

    // 3 s later (within the 5 s clock skew allowance): still delivered, once.
    net.run_for(Duration::from_secs(3));
    let within = net.add_endpoint(config(key.clone()));
    for d in &captured {
        net.inject(within, src, d);
        net.inject(within, src, d);
    }
    assert_eq!(net.events(within).len(), 1);

    // 8 s after the capture: a node started then refuses it as a replay...
    net.run_for(Duration::from_secs(5));
    let late = net.add_endpoint(config(key.clone()));
    for d in &captured {
        net.inject(late, src, d);
        net.inject(a, src, d);
    }
    assert!(net.events(late).is_empty());
    assert_eq!(net.stats(late).rejected_replay, captured.len() as u64);
    // ...while a node that was running when it was sent still takes it (late, once).
    assert_eq!(net.events(a).len(), 1);
    assert_eq!(net.events(a)[0].name, "captured");

    // Real traffic after the start is delivered to the late node.
    net.emit(a, "live", &[Bson::Int32(2)]).unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.events(late).iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["live"]);
}
