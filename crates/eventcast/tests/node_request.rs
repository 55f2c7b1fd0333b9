//! Request/reply between real nodes on loopback multicast, over a real
//! `nats-server` and across a real bridge, inside a private network
//! namespace (`node scripts/netns.js cargo test --test node_request`): values
//! round-trip, errors come back as `EREMOTE`, silence as `ETIMEDOUT`, gather
//! collects one reply per node, 500 concurrent requests each get their own
//! answer, a 1 MiB reply arrives; forged replies resolve nothing and grow
//! nothing, and a flood of forged requests is answered within the bound.

mod nats_support;
mod node_support;

#[path = "../../eventcast-engine/tests/support/forge.rs"]
mod forge;

use bson::{doc, Bson};
use eventcast::wire::exchange::{ReplyName, RequestName};
use eventcast::{
    Bridge, BridgeOptions, Error, Eventcast, NatsOptions, Options, RemoteFailure, Request, RequestId, Transport,
    MAX_SERVING,
};
use nats_support::NatsServer;
use node_support::{skip_outside_netns, started, test_options};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_millis(1000);

/// `echo` returns its arguments as an array; `fail` throws.
fn serve(node: &Eventcast) {
    node.handle("echo", |r: Request| async move { Ok(Bson::Array(r.args)) }).unwrap();
    node.handle("fail", |_| async move { Err(RemoteFailure::new("no such thing", "ENOENT")) }).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_errors_timeouts_and_handlers_on_multicast() {
    if skip_outside_netns("values_errors_timeouts_and_handlers_on_multicast") {
        return;
    }
    let options = test_options();
    let a = started(options.clone()).await;
    let b = Eventcast::new(options.clone()).unwrap();
    assert_eq!(b.request("echo", &[], T).await.unwrap_err().code(), "ENOTSTARTED");
    b.start().await.unwrap();
    serve(&a);
    assert_eq!(a.handle("echo", |_| async { Ok(Bson::Null) }).unwrap_err().code(), "EHANDLEREXISTS");

    let when = bson::DateTime::from_millis(1_700_000_000_123);
    let args = vec![
        Bson::String("x".into()),
        Bson::Document(doc! { "deep": { "list": [1, 2.5, "three", null], "at": when } }),
        Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] }),
    ];
    let reply = b.request_reply("echo", &args, T).await.unwrap();
    assert_eq!(reply.outcome, Ok(Bson::Array(args.clone())));
    assert_eq!(reply.peer(), a.id());

    match b.request("fail", &[], T).await {
        Err(Error::Remote { peer, message, remote_code }) => {
            assert_eq!((peer.as_str(), message.as_str(), remote_code.as_str()), (a.id(), "no such thing", "ENOENT"))
        }
        other => panic!("expected EREMOTE, got {other:?}"),
    }

    // A handler that panics answers EINTERNAL (the node goes on).
    a.handle("panic", |_| async { panic!("handler bug") }).unwrap();
    match b.request("panic", &[], T).await {
        Err(Error::Remote { remote_code, .. }) => assert_eq!(remote_code, "EINTERNAL"),
        other => panic!("expected EREMOTE, got {other:?}"),
    }

    let started_at = Instant::now();
    let err = b.request("nobody", &[], Duration::from_millis(300)).await.unwrap_err();
    let waited = started_at.elapsed();
    assert_eq!(err.code(), "ETIMEDOUT");
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_millis(800), "{waited:?}");

    // Requests reach handlers only: an event subscriber of A saw none of them.
    assert!(a.unhandle("echo"));
    assert!(!a.unhandle("echo"));
    assert_eq!(b.request("echo", &[], Duration::from_millis(300)).await.unwrap_err().code(), "ETIMEDOUT");
    let s = a.stats();
    assert_eq!((s.requests_received, s.replies_sent, s.requests_unhandled), (5, 3, 2), "{s:?}");
    assert_eq!(b.request("__ec_x", &[], T).await.unwrap_err().code(), "EPAYLOAD");
    assert_eq!(b.request("x", &[], Duration::ZERO).await.unwrap_err().code(), "EINVALIDOPTION");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_takes_one_reply_per_node_and_many_requests_match_their_answers() {
    if skip_outside_netns("gather_takes_one_reply_per_node_and_many_requests_match_their_answers") {
        return;
    }
    let options = test_options();
    let mut handlers = Vec::new();
    for i in 0..3 {
        let n = started(options.clone()).await;
        n.handle("who", move |_| async move { Ok(Bson::Int32(i)) }).unwrap();
        n.handle("double", |r: Request| async move {
            Ok(Bson::Int64(2 * r.args.first().and_then(Bson::as_i64).unwrap_or(-1)))
        })
        .unwrap();
        handlers.push(n);
    }
    let asker = started(options.clone()).await;
    let window = Duration::from_millis(500);
    let started_at = Instant::now();
    let replies = asker.gather("who", &[], window).await.unwrap();
    assert!(started_at.elapsed() >= window, "the window is waited out");
    let mut got: Vec<(String, Bson)> = replies.into_iter().map(|r| (r.from.id.clone(), r.outcome.unwrap())).collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want: Vec<(String, Bson)> =
        handlers.iter().enumerate().map(|(i, n)| (n.id().to_owned(), Bson::Int32(i as i32))).collect();
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, want, "one reply per node, each its own");
    assert!(asker.gather("nobody", &[], Duration::from_millis(200)).await.unwrap().is_empty());

    // 500 at once, over three responders: each gets the answer to its own question.
    let asks = (0..500i64).map(|i| {
        let asker = asker.clone();
        async move { (i, asker.request("double", &[Bson::Int64(i)], Duration::from_secs(5)).await) }
    });
    for (i, r) in futures_util::future::join_all(asks).await {
        assert_eq!(r.unwrap(), Bson::Int64(2 * i));
    }
    assert_eq!(asker.stats().requests_sent, 502);
    for n in handlers {
        n.stop().await.unwrap();
    }
    asker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mib_reply_arrives() {
    if skip_outside_netns("a_one_mib_reply_arrives") {
        return;
    }
    let options = test_options();
    let a = started(options.clone()).await;
    let b = started(options.clone()).await;
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
    let payload = big.clone();
    a.handle("blob", move |_| {
        let bytes = payload.clone();
        async move { Ok(Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes })) }
    })
    .unwrap();
    match b.request("blob", &[], Duration::from_secs(5)).await.unwrap() {
        Bson::Binary(b) => assert!(b.bytes == big, "1 MiB intact"),
        other => panic!("{other:?}"),
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_nats_and_across_the_bridge() {
    if skip_outside_netns("requests_over_nats_and_across_the_bridge") {
        return;
    }
    let server = NatsServer::start(&[]);
    let lan_options = test_options();
    let bridge =
        Bridge::start(BridgeOptions { multicast: lan_options.clone(), nats: NatsOptions::new([server.url()]) })
            .await
            .expect("bridge");
    let cloud_options = || {
        let mut nats = NatsOptions::new([server.url()]);
        nats.group = Some(lan_options.multicast_membership);
        Options { transport: Transport::Nats(nats), presence: None, ..Options::with_port(lan_options.port) }
    };
    let cloud = started(cloud_options()).await;
    let cloud_asker = started(cloud_options()).await;
    let lan = started(lan_options.clone()).await;
    cloud.handle("where", |_| async { Ok(Bson::String("cloud".into())) }).unwrap();
    lan.handle("where-lan", |_| async { Ok(Bson::String("lan".into())) }).unwrap();
    // Over NATS alone, then each way across the bridge.
    assert_eq!(cloud_asker.request("where", &[], T).await.unwrap(), Bson::String("cloud".into()));
    assert_eq!(lan.request("where", &[], T).await.unwrap(), Bson::String("cloud".into()));
    assert_eq!(cloud.request("where-lan", &[], T).await.unwrap(), Bson::String("lan".into()));
    let all = cloud_asker.gather("where", &[], Duration::from_millis(300)).await.unwrap();
    assert_eq!(all.len(), 1);
    // 1,000 over NATS, 50 at a time: every one answered within 1 s, each its own answer.
    cloud
        .handle("double", |r: Request| async move {
            Ok(Bson::Int64(2 * r.args.first().and_then(Bson::as_i64).unwrap_or(-1)))
        })
        .unwrap();
    for batch in 0..20i64 {
        let asks = (0..50i64).map(|k| {
            let (asker, i) = (cloud_asker.clone(), batch * 50 + k);
            async move { (i, asker.request("double", &[Bson::Int64(i)], T).await) }
        });
        for (i, r) in futures_util::future::join_all(asks).await {
            assert_eq!(r.unwrap(), Bson::Int64(2 * i));
        }
    }
    for n in [cloud, cloud_asker, lan] {
        n.stop().await.unwrap();
    }
    bridge.stop().await;
}

/// A reply to request `rid` of `to` from a made-up responder `n`.
fn forged_reply(to: &str, rid: u64, n: usize) -> Vec<u8> {
    let id = format!("{:016x}", 0xe000_0000_0000_0000u64 + n as u64);
    let name = ReplyName { to, rid: RequestId(rid), error: false }.to_wire();
    let m = forge::meta(Some(&id), &format!("{n:040x}"), &name, 0, 1, Some(1));
    forge::datagram(&m, &eventcast::wire::encode_args(&[Bson::String("forged".into())]))
}

/// A request `rid` named `name` from made-up requester `n`, its message `sn`.
fn forged_request(name: &str, rid: u64, n: usize, sn: i64) -> Vec<u8> {
    let id = format!("{:016x}", 0xd000_0000_0000_0000u64 + n as u64);
    let wire_name = RequestName { rid: RequestId(rid), timeout_ms: 10_000, name }.to_wire();
    let m = forge::meta(Some(&id), &format!("{n:08x}{rid:032x}"), &wire_name, 0, 1, Some(sn));
    forge::datagram(&m, &eventcast::wire::encode_args(&[]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replies_resolve_nothing_and_grow_nothing() {
    if skip_outside_netns("forged_replies_resolve_nothing_and_grow_nothing") {
        return;
    }
    let options = test_options();
    let a = started(options.clone()).await;
    let b = started(options.clone()).await;
    a.handle("slow", |_| async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok(Bson::String("real".into()))
    })
    .unwrap();
    let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let group = (options.multicast_membership, options.port);
    let asking = tokio::spawn({
        let b = b.clone();
        async move { b.gather("slow", &[], Duration::from_millis(1500)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 5,000 replies to B under ids it never used, and 1,000 to someone else.
    for n in 0..6000 {
        let to = if n < 5000 { b.id().to_owned() } else { "0123456789abcdef".to_owned() };
        raw.send_to(&forged_reply(&to, 0x5eed_0000 + n as u64, n), group).unwrap();
        if n % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let replies = asking.await.unwrap().unwrap();
    assert_eq!(replies.len(), 1, "only the real responder's reply counts: {replies:?}");
    assert_eq!((replies[0].peer(), replies[0].outcome.clone()), (a.id(), Ok(Bson::String("real".into()))));
    let s = b.stats();
    eprintln!("receiver after 6,000 forged replies: {s:?}");
    // At most a few more than the forged ones: a real reply or its copy
    // arriving after the gather closed is unmatched too.
    assert!(s.replies_unmatched >= 4500 && s.replies_unmatched <= 5005, "{s:?}");
    assert!(s.replies_not_ours >= 900 && s.replies_not_ours <= 1000, "{s:?}");
    assert_eq!(s.events_delivered, 0, "never delivered as events");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_requests_is_answered_within_the_bound() {
    if skip_outside_netns("a_flood_of_forged_requests_is_answered_within_the_bound") {
        return;
    }
    let options = test_options();
    let a = started(options.clone()).await;
    // Handlers wait at this gate until the flood is over: no slot frees meanwhile.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    a.handle("work", move |_| {
        let g = g.clone();
        async move {
            let _pass = g.acquire().await;
            Ok(Bson::Int32(1))
        }
    })
    .unwrap();
    let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let group = (options.multicast_membership, options.port);
    let flood = 3 * MAX_SERVING;
    for n in 0..flood {
        let sn = (n / 50) as i64 + 1;
        raw.send_to(&forged_request("work", n as u64 + 1, n % 50, sn), group).unwrap();
        raw.send_to(&forged_request("unserved", n as u64 + 1, 100 + n % 50, sn), group).unwrap();
        if n % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = a.stats();
    assert_eq!(s.replies_sent, 0, "{s:?}");
    gate.add_permits(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.stats().replies_sent < MAX_SERVING as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = a.stats();
    eprintln!("responder after {flood} forged requests: {s:?}");
    assert!(s.requests_received as usize >= 2 * flood * 9 / 10, "{s:?}");
    assert_eq!(s.replies_sent as usize, MAX_SERVING, "one reply per accepted request, at most {MAX_SERVING} at once");
    assert_eq!(
        s.requests_received,
        s.replies_sent + s.requests_refused + s.requests_unhandled,
        "every request answered, refused or unhandled: {s:?}"
    );
    a.stop().await.unwrap();
}
