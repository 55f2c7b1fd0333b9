//! Reserved and protocol event names (crates/eventcast-engine/src/protocol/names.rs): they never
//! travel, and received ones never reach listeners.

use bson::Bson;
use eventcast_engine::protocol::names::{PROTOCOL_PREFIX, RESERVED_EVENTS};
use eventcast_engine::protocol::sim::Network;
use eventcast_engine::protocol::Config;
use eventcast_engine::wire;

#[path = "support/forge.rs"]
mod forge;

/// A plain unchunked event as a peer would send it, with message number `sn`.
fn event(id: &str, name: &str, sn: Option<i64>, args: &[Bson]) -> Vec<u8> {
    forge::datagram(&forge::meta(Some(id), &"ab".repeat(20), name, 0, 1, sn), &wire::encode_args(args))
}

#[test]
fn reserved_and_protocol_names_cannot_be_emitted() {
    let mut net = Network::new(1);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config::default());
    for name in RESERVED_EVENTS.iter().copied().chain(["__ec_retx", "__ec_hb", "__ec_anything"]) {
        let err = net.emit(a, name, &[Bson::Int32(1)]).unwrap_err();
        assert_eq!(err.code(), "EPAYLOAD", "{name}");
    }
    assert_eq!(net.stats(a).events_sent, 0);
    net.emit(a, "fine", &[]).unwrap();
    assert!(net.run_until_idle());
    assert_eq!(net.events(b).iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["fine"]);
}

#[test]
fn received_reserved_and_protocol_names_are_dropped_and_counted() {
    let mut net = Network::new(2);
    let b = net.add_endpoint(Config::default());
    let from = "10.6.6.6:9000".parse().unwrap();
    let sender = "00000000000000ee";
    let mut forged = 0;
    // Numbered (a new-style sender) and unnumbered (0.1.x-style) forgeries;
    // `__ec_future` stands for a protocol message a later version adds
    // (`__ec_presence` is handled: a beacon, see sim_presence.rs).
    for (i, name) in RESERVED_EVENTS.iter().copied().chain([&*format!("{PROTOCOL_PREFIX}future"), "__ec_"]).enumerate()
    {
        net.inject(b, from, &event(sender, name, Some(i as i64 + 1), &[Bson::String("x".into())]));
        let mut unnumbered = event("00000000000000ef", name, None, &[]);
        // A distinct seqId per 0.1.x-style message, so none is a duplicate of another.
        let pos = unnumbered.windows(40).position(|w| w == "ab".repeat(20).as_bytes()).unwrap();
        unnumbered[pos..pos + 2].copy_from_slice(format!("{:02x}", i).as_bytes());
        net.inject(b, from, &unnumbered);
        forged += 2;
    }
    // A real event from the same sender, after them: delivered once.
    let next_sn = forged / 2 + 1;
    net.inject(b, from, &event(sender, "real", Some(next_sn), &[Bson::Int32(7)]));
    net.inject(b, from, &event(sender, "real", Some(next_sn), &[Bson::Int32(7)]));
    assert!(net.run_until_idle());
    let names: Vec<&str> = net.events(b).iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["real"]);
    let s = net.stats(b);
    assert_eq!(s.rejected_reserved, forged as u64, "{s:?}");
    // The dropped ones were tracked: nothing is missing, nothing is asked for.
    assert_eq!(s.repairs_requested, 0, "{s:?}");
    assert_eq!(s.gaps_unrecovered, 0, "{s:?}");
    assert!(net.node(b).gaps.is_empty());
}

#[test]
fn error_events_travel() {
    // `error` is not reserved: the JS layer hands a received one to 'error'
    // listeners as an Error with code EREMOTE.
    let mut net = Network::new(3);
    let a = net.add_endpoint(Config::default());
    let b = net.add_endpoint(Config::default());
    net.emit(a, "error", &[Bson::String("disk full".into())]).unwrap();
    assert!(net.run_until_idle());
    assert_eq!(net.events(b).len(), 1);
    assert_eq!(net.events(b)[0].name, "error");
}
