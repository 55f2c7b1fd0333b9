//! Pattern subscriptions between real nodes on loopback multicast, inside a
//! private network namespace (`node scripts/netns.js cargo test -p eventcast
//! --test node_pattern`): a subscription takes exactly the events whose names
//! match, in order, and nothing else of the notification stream; it survives
//! a stop/start; an invalid pattern is `EPATTERN`.

mod node_support;

use bson::Bson;
use eventcast::protocol::Event;
use eventcast::{Events, Notification, PatternEvents};
use node_support::{is_presence, skip_outside_netns, started, test_options};
use std::time::Duration;

/// The next event of a full subscription (presence skipped), within 10 s.
async fn next_event(events: &mut Events) -> Event {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Notification::Event(e))) => return e,
            Ok(Some(n)) if is_presence(&n) => {}
            Ok(Some(other)) => panic!("unexpected notification {other:?}"),
            Ok(None) => panic!("subscription closed"),
            Err(_) => panic!("no event within 10 s"),
        }
    }
}

/// The names a pattern subscription has ready, in order (call it once the
/// full subscription, fed last, saw the last event).
async fn names(sub: &mut PatternEvents) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(e) = sub.try_recv() {
        out.push(e.name);
    }
    out
}

const SENT: &[&str] = &[
    "orders.eu.created",
    "orders.eu.paid",
    "audit",
    "orders.us.created",
    "orders.created",
    "orders.eu.created.late",
    "orders..created",
    "metrics.cpu.host1",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_subscriptions_take_exactly_the_matching_events() {
    if skip_outside_netns("pattern_subscriptions_take_exactly_the_matching_events") {
        return;
    }
    let options = test_options();
    let a = started(options.clone()).await;
    let b = started(options.clone()).await;
    let mut created = a.subscribe_pattern("orders.*.created").unwrap();
    let mut orders = a.subscribe_pattern("orders.>").unwrap();
    let mut everything = a.subscribe_pattern(">").unwrap();
    let mut literal = a.subscribe_pattern("audit").unwrap();
    assert_eq!(created.pattern().as_str(), "orders.*.created");
    // Subscribed last, so fed last: once it has an event, the others have theirs.
    let mut all = a.subscribe();
    // b's own subscription: a node never hears its own emits.
    let mut own = b.subscribe_pattern(">").unwrap();

    for (i, name) in SENT.iter().enumerate() {
        b.emit(name, &[Bson::Int32(i as i32)]).unwrap();
    }
    b.emit("done", &[]).unwrap();
    for name in SENT.iter().chain(&["done"]) {
        assert_eq!(&next_event(&mut all).await.name, name);
    }
    assert_eq!(names(&mut created).await, ["orders.eu.created", "orders.us.created", "orders..created"]);
    assert_eq!(
        names(&mut orders).await,
        [
            "orders.eu.created",
            "orders.eu.paid",
            "orders.us.created",
            "orders.created",
            "orders.eu.created.late",
            "orders..created"
        ]
    );
    let every: Vec<String> = SENT.iter().chain(&["done"]).map(|s| s.to_string()).collect();
    assert_eq!(names(&mut everything).await, every);
    assert_eq!(names(&mut literal).await, ["audit"]);
    assert!(own.try_recv().is_none(), "own emits are not delivered");

    // The arguments and the sender come through.
    b.emit("orders.jp.created", &[Bson::String("x".into()), Bson::Int32(7)]).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), created.recv()).await.expect("within 10 s").unwrap();
    assert_eq!(
        (e.name.as_str(), &e.args[..], e.sender.id.as_str()),
        ("orders.jp.created", &[Bson::String("x".into()), Bson::Int32(7)][..], b.id())
    );

    // Alive across stop/start, like every subscription.
    a.stop().await.unwrap();
    a.start().await.unwrap();
    b.emit("orders.fr.created", &[]).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), created.recv()).await.expect("within 10 s").unwrap();
    assert_eq!(e.name, "orders.fr.created");

    // Invalid patterns: typed, coded, nothing subscribed.
    for bad in ["", "a.>.b", "a*", "a..b"] {
        let err = a.subscribe_pattern(bad).unwrap_err();
        assert_eq!(err.code(), "EPATTERN", "{bad:?}: {err}");
        assert!(matches!(err, eventcast::Error::Pattern { .. }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscription_ends_with_the_node() {
    if skip_outside_netns("a_pattern_subscription_ends_with_the_node") {
        return;
    }
    let a = started(test_options()).await;
    let mut sub = a.subscribe_pattern("x.*").unwrap();
    a.stop().await.unwrap();
    drop(a);
    let end = tokio::time::timeout(Duration::from_secs(10), sub.recv()).await.expect("ends within 10 s");
    assert!(end.is_none());
}
