//! The NATS transport against real `nats-server` processes (inside a private
//! network namespace; see `nats_support`).

mod nats_support;
mod node_support;

use bson::{doc, spec::BinarySubtype, Binary, Bson, DateTime};
use eventcast::protocol::Event;
use eventcast::{EncryptOptions, Error, Eventcast, Events, NatsOptions, Notification, Options, Transport};
use nats_support::{NatsServer, RawClient};
use node_support::{is_presence, random_port, skip_outside_netns};
use std::time::{Duration, Instant};

fn nats_options(port: u16, nats: NatsOptions) -> Options {
    Options { transport: Transport::Nats(nats), ..Options::with_port(port) }
}

async fn started(options: Options) -> Eventcast {
    let node = Eventcast::new(options).expect("valid options");
    node.start().await.expect("start");
    node
}

async fn next_event(events: &mut Events) -> Event {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Notification::Event(e))) => return e,
            Ok(Some(Notification::Error { code, .. })) if code.starts_with("ENATS") => continue,
            Ok(Some(n)) if is_presence(&n) => continue,
            Ok(Some(other)) => panic!("unexpected notification {other:?}"),
            Ok(None) => panic!("subscription closed"),
            Err(_) => panic!("no event within 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_small_typed_and_1mib_events_over_nats() {
    if skip_outside_netns("two_nodes_exchange_small_typed_and_1mib_events_over_nats") {
        return;
    }
    let server = NatsServer::start(&[]);
    let options = nats_options(random_port(), NatsOptions::new([server.url()]));
    let a = started(options.clone()).await;
    let b = started(options.clone()).await;
    let mut a_events = a.subscribe();
    let mut b_events = b.subscribe();

    let typed = vec![
        Bson::String("hello".into()),
        Bson::DateTime(DateTime::from_millis(1_700_000_000_123)),
        Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] }),
        Bson::Document(doc! { "nested": { "deep": [1, 2.5, "x", null] } }),
    ];
    a.emit("typed", &typed).unwrap();
    let e = next_event(&mut b_events).await;
    assert_eq!((e.name.as_str(), &e.args, e.sender.id.as_str()), ("typed", &typed, a.id()));

    // 1 MiB: 18 chunks of 60 KiB instead of 1,025 of 1 KiB.
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let sent_before = b.stats().datagrams_sent;
    b.emit("big", &[Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: big.clone() })]).unwrap();
    let e = next_event(&mut a_events).await;
    assert_eq!(e.name, "big");
    assert_eq!(e.args, vec![Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: big })]);
    let chunks = b.stats().datagrams_sent - sent_before;
    assert!((18..=25).contains(&chunks), "1 MiB took {chunks} datagrams");

    // no_echo: a node never hears itself; nothing was dropped as its own.
    for n in [&a, &b] {
        let s = n.stats();
        assert_eq!(s.own_datagrams_ignored, 0, "{s:?}");
        assert_eq!(s.nats_connects, 1, "{s:?}");
        assert_eq!(s.rejected_malformed, 0, "{s:?}");
    }
    assert_eq!(a.local_addr(), None);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_events_cross_and_the_server_sees_only_ciphertext() {
    if skip_outside_netns("encrypted_events_cross_and_the_server_sees_only_ciphertext") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let mut sniffer = RawClient::connect(server.port, Some(&format!("eventcast.{port}")));
    let mut options = nats_options(port, NatsOptions::new([server.url()]));
    options.encrypt = Some(EncryptOptions { key: "correct horse".into(), legacy: false });
    let a = started(options.clone()).await;
    let b = started(options).await;
    let mut b_events = b.subscribe();
    let secret = "the-launch-code-is-0000";
    a.emit("secret-event-name", &[Bson::String(secret.into())]).unwrap();
    let e = next_event(&mut b_events).await;
    assert_eq!(e.args, vec![Bson::String(secret.into())]);
    // Every message on the subject until the event's: no plaintext name or argument.
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen < 3 && Instant::now() < deadline {
        let m = sniffer.next_message();
        let text = String::from_utf8_lossy(&m);
        assert!(!text.contains(secret) && !text.contains("secret-event-name"), "plaintext on the wire: {text}");
        seen += 1;
        if m.len() > 60 {
            break; // the event itself (heartbeats are small)
        }
    }
    assert!(seen > 0);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_subject_is_counted_and_dropped() {
    if skip_outside_netns("garbage_on_the_subject_is_counted_and_dropped") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let subject = format!("eventcast.{port}");
    let options = nats_options(port, NatsOptions::new([server.url()]));
    let a = started(options.clone()).await;
    let b = started(options).await;
    let mut b_events = b.subscribe();

    let mut attacker = RawClient::connect(server.port, None);
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut garbage = 0;
    for len in [0usize, 1, 2, 3, 17, 300, 4000, 65_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                (rng >> 33) as u8
            })
            .collect();
        attacker.publish(&subject, &bytes);
        garbage += 1;
    }
    // A meta length pointing past the end, and a 200 KiB message (over NATS_MAX_DATAGRAM).
    attacker.publish(&subject, &[0xff, 0xff, 1, 2, 3]);
    garbage += 1;
    attacker.publish(&subject, &vec![0x41; 200 * 1024]);

    a.emit("still-works", &[Bson::Int32(1)]).unwrap();
    let e = next_event(&mut b_events).await;
    assert_eq!(e.name, "still-works");
    let s = b.stats();
    assert_eq!(s.nats_oversize_dropped, 1, "{s:?}");
    assert!(s.rejected_malformed >= garbage - 1, "{garbage} garbage messages, {s:?}");
    assert_eq!(s.events_delivered, 1, "{s:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

fn nats_code(e: &Error) -> &'static str {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_bad_url_and_wrong_credentials_fail_clearly() {
    if skip_outside_netns("unreachable_server_bad_url_and_wrong_credentials_fail_clearly") {
        return;
    }
    // Nothing listens on this port: refused at once, well within the bound.
    let node =
        Eventcast::new(nats_options(9000, NatsOptions::new([format!("nats://127.0.0.1:{}", random_port())]))).unwrap();
    let t = Instant::now();
    let err = node.start().await.expect_err("no server");
    assert_eq!(nats_code(&err), "ENATSCONNECT", "{err}");
    assert!(t.elapsed() < eventcast::NATS_START_TIMEOUT + Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(node.status(), eventcast::Status::Stopped);

    // A server that accepts TCP but never speaks NATS: the start timeout bounds it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let node =
        Eventcast::new(nats_options(9000, NatsOptions::new([format!("nats://{}", silent.local_addr().unwrap())])))
            .unwrap();
    let t = Instant::now();
    let err = node.start().await.expect_err("silent server");
    assert_eq!(nats_code(&err), "ENATSCONNECT", "{err}");
    assert!(t.elapsed() < eventcast::NATS_START_TIMEOUT + Duration::from_secs(1), "{:?}", t.elapsed());

    // Bad URL: refused at construction.
    let err = Eventcast::new(nats_options(9000, NatsOptions::new(["http://127.0.0.1:4222"]))).unwrap_err();
    assert!(matches!(err, Error::InvalidOption { option: "transport", .. }), "{err}");

    // Wrong credentials: ENATSAUTH; right ones work.
    let server = NatsServer::start(&["--user", "svc", "--pass", "s3cret"]);
    let mut nats = NatsOptions::new([server.url()]);
    nats.user = Some("svc".into());
    nats.pass = Some("wrong".into());
    let node = Eventcast::new(nats_options(9000, nats.clone())).unwrap();
    let t = Instant::now();
    let err = node.start().await.expect_err("wrong password");
    assert_eq!(nats_code(&err), "ENATSAUTH", "{err}");
    assert!(t.elapsed() < eventcast::NATS_START_TIMEOUT + Duration::from_secs(1), "{:?}", t.elapsed());
    nats.pass = Some("s3cret".into());
    let node = Eventcast::new(nats_options(9000, nats)).unwrap();
    node.start().await.expect("right password");
    node.stop().await.unwrap();

    // A missing creds file: ENATSCONFIG before any connection.
    let mut nats = NatsOptions::new([server.url()]);
    nats.creds_file = Some("/nonexistent/user.creds".into());
    let err = Eventcast::new(nats_options(9000, nats)).unwrap().start().await.expect_err("no creds file");
    assert_eq!(nats_code(&err), "ENATSCONFIG", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_reported_and_traffic_resumes() {
    if skip_outside_netns("a_server_restart_is_reported_and_traffic_resumes") {
        return;
    }
    let mut server = NatsServer::start(&[]);
    let options = nats_options(random_port(), NatsOptions::new([server.url()]));
    let a = started(options.clone()).await;
    let b = started(options).await;
    let mut b_events = b.subscribe();
    a.emit("before", &[]).unwrap();
    assert_eq!(next_event(&mut b_events).await.name, "before");

    server.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline.into(), b_events.recv()).await {
            Ok(Some(Notification::Error { code: "ENATSDISCONNECTED", .. })) => break,
            Ok(Some(_)) => continue,
            other => panic!("no ENATSDISCONNECTED within 10 s: {other:?}"),
        }
    }
    server.restart();
    // Reconnected (the client backs off a little between attempts).
    let deadline = Instant::now() + Duration::from_secs(15);
    while a.stats().nats_connects < 2 || b.stats().nats_connects < 2 {
        assert!(Instant::now() < deadline, "no reconnect: {:?} {:?}", a.stats(), b.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.emit("after", &[]).unwrap();
    assert_eq!(next_event(&mut b_events).await.name, "after");
    assert!(b.stats().nats_disconnects >= 1);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
