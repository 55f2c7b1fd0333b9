//! `eventcast bridge`: a multicast LAN and a NATS subject, relayed both ways,
//! against a real `nats-server` (inside a private network namespace).

#[path = "../../eventcast/tests/nats_support/mod.rs"]
mod nats_support;
#[path = "../../eventcast/tests/node_support/mod.rs"]
mod node_support;

use bson::Bson;
use eventcast::{EncryptOptions, Eventcast, Events, NatsOptions, Notification, Options, Transport};
use nats_support::{NatsServer, RawClient};
use node_support::{random_port, skip_outside_netns};
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Options on `port` without presence: these tests count what travels until
/// the subject or the LAN goes quiet, and beacons never let it.
fn quiet(port: u16) -> Options {
    Options { presence: None, ..Options::with_port(port) }
}

const BIN: &str = env!("CARGO_BIN_EXE_eventcast");

fn group_for(port: u16) -> Ipv4Addr {
    Ipv4Addr::new(239, 253, (port >> 8) as u8, port as u8)
}

struct BridgeProcess {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl BridgeProcess {
    fn start(port: u16, group: Ipv4Addr, url: &str) -> BridgeProcess {
        BridgeProcess::start_on(port, &group.to_string(), &format!("{group}:{port}"), url)
    }

    /// `--group group_arg`; the ready line must start `bridging SHOWN <-> ...`.
    fn start_on(port: u16, group_arg: &str, shown: &str, url: &str) -> BridgeProcess {
        let mut child = Command::new(BIN)
            .args(["bridge", "--port", &port.to_string(), "--group", group_arg, "--nats", url])
            .args(["--stats", "--timeout-ms", "120000"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("bridge did not get ready");
        assert!(line.starts_with(&format!("bridging {shown} <-> nats subject eventcast.{port}")), "{line}");
        assert!(line.contains(" interface "), "{line}");
        BridgeProcess { child, stderr: rx }
    }

    /// SIGINT, then its `stats {...}` line as JSON.
    fn stop(mut self) -> serde_json::Value {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        assert!(self.child.wait().unwrap().success());
        let mut lines = Vec::new();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            lines.push(l);
        }
        let stats = lines.iter().find_map(|l| l.strip_prefix("stats ")).unwrap_or_else(|| panic!("{lines:?}"));
        serde_json::from_str(stats).unwrap()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn lan_node(port: u16) -> Eventcast {
    let mut o = quiet(port);
    o.multicast_membership = group_for(port).into();
    let n = Eventcast::new(o).unwrap();
    n.start().await.unwrap();
    n
}

async fn nats_node(port: u16, url: &str) -> Eventcast {
    let n = Eventcast::new(Options { transport: Transport::Nats(NatsOptions::new([url])), ..quiet(port) }).unwrap();
    n.start().await.unwrap();
    n
}

async fn events_named(events: &mut Events, prefix: &str, want: usize) -> Vec<eventcast::protocol::Event> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while got.len() < want {
        match tokio::time::timeout_at(deadline.into(), events.recv()).await {
            Ok(Some(Notification::Event(e))) if e.name.starts_with(prefix) => got.push(e),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multicast_node_and_a_nats_node_exchange_events_through_a_bridge() {
    if skip_outside_netns("a_multicast_node_and_a_nats_node_exchange_events_through_a_bridge") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let bridge = BridgeProcess::start(port, group_for(port), &server.url());
    let lan = lan_node(port).await;
    let cloud = nats_node(port, &server.url()).await;
    let (mut lan_events, mut cloud_events) = (lan.subscribe(), cloud.subscribe());

    lan.emit("from-lan", &[Bson::String("hi".into())]).unwrap();
    let e = &events_named(&mut cloud_events, "from-lan", 1).await[0];
    assert_eq!((e.args[0].clone(), e.sender.id.as_str()), (Bson::String("hi".into()), lan.id()));

    // 200 KB from the NATS side: four 60 KiB chunks, each multicast unchanged.
    let big = "c".repeat(200_000);
    cloud.emit("from-cloud", &[Bson::String(big.clone())]).unwrap();
    let e = &events_named(&mut lan_events, "from-cloud", 1).await[0];
    assert_eq!(e.args[0], Bson::String(big));
    // And 20 KB from the LAN: 1 KiB UDP chunks, each published as it is.
    let mid = "l".repeat(20_000);
    lan.emit("from-lan-big", &[Bson::String(mid.clone())]).unwrap();
    assert_eq!(events_named(&mut cloud_events, "from-lan-big", 1).await[0].args[0], Bson::String(mid));

    lan.stop().await.unwrap();
    cloud.stop().await.unwrap();
    let stats = bridge.stop();
    assert!(stats["relayed_to_nats"].as_u64().unwrap() >= 21, "{stats}");
    assert!(stats["relayed_to_lan"].as_u64().unwrap() >= 4, "{stats}");
    assert_eq!(stats["nats_connects"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_2_datagram_multicast_on_the_lan_reaches_a_nats_node() {
    if skip_outside_netns("a_0_1_2_datagram_multicast_on_the_lan_reaches_a_nats_node") {
        return;
    }
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../eventcast-engine/tests/fixtures/eventcast-0.1.2.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let case = fixture["cases"].as_array().unwrap().iter().find(|c| c["name"] == "plain-one-string").unwrap();
    let hex = case["datagrams"][0].as_str().unwrap();
    let datagram: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();

    let server = NatsServer::start(&[]);
    let port = random_port();
    let _bridge = BridgeProcess::start(port, group_for(port), &server.url());
    let cloud = nats_node(port, &server.url()).await;
    let mut events = cloud.subscribe();
    // A 0.1.2 node's datagram, as it sent it, onto the LAN. Repeated every
    // 500 ms until it arrives: one UDP datagram on a machine under load can
    // be late or lost (seen once in a parallel build), and a repeat is a
    // duplicate by its seqId, delivered once.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resend = {
        let arrived = arrived.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                if arrived.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                udp.send_to(&datagram, (group_for(port), port)).unwrap();
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let e = &events_named(&mut events, "myevent", 1).await[0];
    arrived.store(true, std::sync::atomic::Ordering::Relaxed);
    resend.join().unwrap();
    assert_eq!(e.args, vec![Bson::String("hello".into())]);
    assert_eq!(e.sender.id, "a1b2c3d4e5f60718");
    cloud.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_burst_arrives_in_bundles_and_is_multicast_one_datagram_at_a_time() {
    if skip_outside_netns("a_nats_burst_arrives_in_bundles_and_is_multicast_one_datagram_at_a_time") {
        return;
    }
    const TOTAL: usize = 2_000;
    let server = NatsServer::start(&[]);
    let port = random_port();
    let bridge = BridgeProcess::start(port, group_for(port), &server.url());
    let lan = lan_node(port).await;
    let cloud = nats_node(port, &server.url()).await;
    let mut lan_events = lan.subscribe();
    // Back to back: the NATS node bundles them (the send queue holds far more than 2,000 small events).
    for i in 0..TOTAL {
        cloud.emit(&format!("burst-{i}"), &[]).unwrap();
    }
    let got = events_named(&mut lan_events, "burst-", TOTAL).await;
    let names: Vec<String> = got.iter().map(|e| e.name.clone()).collect();
    let want: Vec<String> = (0..TOTAL).map(|i| format!("burst-{i}")).collect();
    let (ls, cs) = (lan.stats(), cloud.stats());
    lan.stop().await.unwrap();
    cloud.stop().await.unwrap();
    let stats = bridge.stop();
    let report = format!("lan {ls:?}; cloud {cs:?}; bridge {stats}");
    // Each once; in order unless the LAN receiver had to repair (its kernel may drop a burst).
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), TOTAL, "{report}");
    if ls.repairs_requested == 0 {
        assert_eq!(names, want, "{report}");
    }
    assert!(cs.nats_bundles_sent > 0, "{report}");
    assert!(stats["bundles_received"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(stats["bundles_malformed"], 0, "{report}");
    assert!(stats["relayed_to_lan"].as_u64().unwrap() >= TOTAL as u64, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_on_one_lan_and_subject_do_not_loop() {
    if skip_outside_netns("two_bridges_on_one_lan_and_subject_do_not_loop") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let b1 = BridgeProcess::start(port, group_for(port), &server.url());
    let b2 = BridgeProcess::start(port, group_for(port), &server.url());
    // Everything that appears on the subject, counted until it has been quiet for 2 s.
    let mut sniffer = RawClient::connect(server.port, Some(&format!("eventcast.{port}")));
    let sniffed = std::thread::spawn(move || sniffer.count_until_quiet(Duration::from_secs(2), 5_000));
    let lan = lan_node(port).await;
    let cloud = nats_node(port, &server.url()).await;
    let (mut lan_events, mut cloud_events) = (lan.subscribe(), cloud.subscribe());
    for i in 0..50 {
        lan.emit(&format!("lan-{i}"), &[]).unwrap();
        cloud.emit(&format!("cloud-{i}"), &[]).unwrap();
    }
    // Exactly once each (the receivers drop the second bridge's copies as duplicates).
    assert_eq!(events_named(&mut cloud_events, "lan-", 50).await.len(), 50);
    assert_eq!(events_named(&mut lan_events, "cloud-", 50).await.len(), 50);
    // Quiet for 2 s: heartbeat tails done, nothing circling.
    let on_subject = tokio::task::spawn_blocking(move || sniffed.join().unwrap()).await.unwrap();
    let (lan_sent, cloud_sent) = (lan.stats().datagrams_sent, cloud.stats().datagrams_sent);
    lan.stop().await.unwrap();
    cloud.stop().await.unwrap();
    let (s1, s2) = (b1.stop(), b2.stop());
    eprintln!("lan sent {lan_sent}, cloud sent {cloud_sent}, on the subject {on_subject}; {s1} {s2}");
    // No loop: the subject went quiet, having carried the NATS node's
    // datagrams and at most one copy of each datagram per bridge (a bridge
    // that hears the other's multicast copy of a NATS datagram before the
    // NATS original republishes it once: a duplicate, never a circle).
    assert!(on_subject < 5_000, "the subject never went quiet: a loop");
    assert!(on_subject <= 3 * cloud_sent + 2 * lan_sent, "{on_subject} messages");
    for s in [&s1, &s2] {
        assert!(s["relayed_to_lan"].as_u64().unwrap() <= cloud_sent + lan_sent, "{s}");
        assert!(s["relayed_to_nats"].as_u64().unwrap() <= lan_sent + cloud_sent, "{s}");
    }
    let loops = s1["loops_dropped"].as_u64().unwrap() + s2["loops_dropped"].as_u64().unwrap();
    assert!(loops >= lan_sent, "each bridge stops the other's copies: {s1} {s2}");
}

/// Every event name `events` delivers within `quiet`, stopping there.
async fn names_within(events: &mut Events, quiet: Duration) -> Vec<String> {
    let deadline = Instant::now() + quiet;
    let mut names = Vec::new();
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline.into(), events.recv()).await {
        if let Notification::Event(e) = n {
            names.push(e.name);
        }
    }
    names
}

fn encrypted(mut o: Options) -> Options {
    o.encrypt = Some(EncryptOptions { key: "bridge passphrase".into(), legacy: false });
    o
}

async fn encrypted_nats_node(port: u16, url: &str, group: Option<Ipv4Addr>) -> Eventcast {
    let mut nats = NatsOptions::new([url]);
    nats.group = group.map(Into::into);
    let n = Eventcast::new(encrypted(Options { transport: Transport::Nats(nats), ..quiet(port) })).unwrap();
    n.start().await.unwrap();
    n
}

/// The key is bound to group and port, so an encrypted LAN on a
/// group other than 224.0.0.1 pairs with NATS nodes that name that group
/// (`nats.group`); NATS nodes bound to another group (the default, or any
/// other) refuse the bridged datagrams and their own cannot reach the LAN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_lan_on_another_group_pairs_only_with_nats_nodes_naming_that_group() {
    if skip_outside_netns("an_encrypted_lan_on_another_group_pairs_only_with_nats_nodes_naming_that_group") {
        return;
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let group = group_for(port);
    let _bridge = BridgeProcess::start(port, group, &server.url());
    let lan = Eventcast::new(encrypted(Options { multicast_membership: group.into(), ..quiet(port) })).unwrap();
    lan.start().await.unwrap();
    let paired = encrypted_nats_node(port, &server.url(), Some(group)).await;
    let unpaired = encrypted_nats_node(port, &server.url(), None).await;
    let other = encrypted_nats_node(port, &server.url(), Some(Ipv4Addr::new(239, 9, 9, 9))).await;
    let (mut lan_events, mut paired_events) = (lan.subscribe(), paired.subscribe());
    let (mut unpaired_events, mut other_events) = (unpaired.subscribe(), other.subscribe());

    // Both ways between the LAN and the paired node, a chunked message included.
    let big = "s".repeat(20_000);
    lan.emit("from-lan", &[Bson::String(big.clone())]).unwrap();
    let e = &events_named(&mut paired_events, "from-lan", 1).await;
    assert_eq!(e.iter().map(|e| e.args[0].clone()).collect::<Vec<_>>(), vec![Bson::String(big)]);
    paired.emit("from-paired", &[Bson::Int32(7)]).unwrap();
    let e = &events_named(&mut lan_events, "from-paired", 1).await;
    assert_eq!(
        e.iter().map(|e| (e.args[0].clone(), e.sender.id.clone())).collect::<Vec<_>>(),
        [(Bson::Int32(7), paired.id().to_string())]
    );

    // The mismatched nodes: their datagrams reach the LAN and the paired node
    // (through the bridge and the subject) and are refused there.
    let lan_rejected_before = lan.stats().rejected_decrypt;
    unpaired.emit("from-unpaired", &[]).unwrap();
    other.emit("from-other", &[]).unwrap();
    paired.emit("after", &[]).unwrap();
    assert_eq!(events_named(&mut lan_events, "after", 1).await.len(), 1);
    let quiet = Duration::from_secs(1);
    let (lan_names, paired_names) =
        (names_within(&mut lan_events, quiet).await, names_within(&mut paired_events, quiet).await);
    assert!(
        lan_names.iter().chain(&paired_names).all(|n| n != "from-unpaired" && n != "from-other"),
        "{lan_names:?} {paired_names:?}"
    );
    assert!(lan.stats().rejected_decrypt > lan_rejected_before, "the LAN node refused the mismatched datagrams");
    // What crossed from the LAN (and from the paired node) is refused by both
    // mismatched nodes: counted, nothing delivered.
    for (node, events) in [(&unpaired, &mut unpaired_events), (&other, &mut other_events)] {
        let names = names_within(events, quiet).await;
        assert!(names.iter().all(|n| n != "from-lan" && n != "from-paired" && n != "after"), "{names:?}");
        assert!(node.stats().rejected_decrypt >= 20, "every chunk refused: {}", node.stats().rejected_decrypt);
    }
    for n in [lan, paired, unpaired, other] {
        n.stop().await.unwrap();
    }
}

/// What reached the multicast group: every datagram a socket joined to it
/// receives until nothing came for `quiet` (or `cap` arrived: a loop).
struct LanSniffer(std::net::UdpSocket);

impl LanSniffer {
    fn join(port: u16, group: Ipv4Addr) -> LanSniffer {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into()).unwrap();
        s.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED).unwrap();
        s.set_recv_buffer_size(8 << 20).unwrap();
        LanSniffer(s.into())
    }

    /// (datagrams, bytes) until quiet.
    fn count_until_quiet(&self, first: Duration, quiet: Duration, cap: u64) -> (u64, u64) {
        let (mut n, mut bytes) = (0, 0);
        let mut buf = vec![0u8; 65_536];
        self.0.set_read_timeout(Some(first)).unwrap();
        while n < cap {
            match self.0.recv(&mut buf) {
                Ok(len) => {
                    n += 1;
                    bytes += len as u64;
                    self.0.set_read_timeout(Some(quiet)).unwrap();
                }
                Err(_) => break,
            }
        }
        (n, bytes)
    }
}

/// A datagram a receiver accepts, distinct by `k` (its `seqId`), with an event name and an empty body.
fn valid_datagram(k: u32) -> Vec<u8> {
    let meta = eventcast::wire::Meta {
        v: 3,
        seq_len: 1,
        seq_end: true,
        seq_id: format!("{k:040x}"),
        name: Some("forged".into()),
        id: Some("0123456789abcdef".into()),
        ..Default::default()
    };
    let mut out = Vec::new();
    eventcast::wire::encode_datagram(&meta, &eventcast::wire::encode_args(&[]), &mut out);
    out
}

/// A bundle (`wire::bundle`) of `frames`.
fn bundle_of(frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    eventcast::wire::bundle::start(&mut out);
    for f in frames {
        eventcast::wire::bundle::push(&mut out, &f).unwrap();
    }
    out
}

/// `count` distinct 3-byte frames, as a bundle of at most `limit` bytes.
fn bundle_of_3_byte_frames(limit: usize) -> Vec<u8> {
    let count = (limit - eventcast::wire::bundle::BUNDLE_HEADER.len()) / 7;
    bundle_of((0..count as u32).map(|k| k.to_be_bytes()[1..].to_vec()))
}

/// Two bridges on one group and subject, and sniffers on both sides.
struct TwoBridges {
    _server: NatsServer,
    port: u16,
    group: Ipv4Addr,
    bridges: Vec<BridgeProcess>,
    lan: LanSniffer,
    nats_port: u16,
}

impl TwoBridges {
    fn start() -> TwoBridges {
        let server = NatsServer::start(&[]);
        let port = random_port();
        let group = group_for(port);
        let bridges =
            vec![BridgeProcess::start(port, group, &server.url()), BridgeProcess::start(port, group, &server.url())];
        let lan = LanSniffer::join(port, group);
        let nats_port = server.port;
        TwoBridges { _server: server, port, group, bridges, lan, nats_port }
    }

    fn stop(self) -> Vec<serde_json::Value> {
        self.bridges.into_iter().map(BridgeProcess::stop).collect()
    }
}

/// A LAN datagram shaped like a bundle of thousands of 3-byte frames: a
/// bridge relays only eventcast datagrams, so neither publishes it and the
/// LAN sees nothing more than the datagram itself (before: each bridge
/// published it, then unpacked the other's copy and multicast every frame,
/// ≈ 18,000 datagrams for one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_sent_on_the_lan_is_not_relayed_nor_multiplied() {
    if skip_outside_netns("a_bundle_sent_on_the_lan_is_not_relayed_nor_multiplied") {
        return;
    }
    let t = TwoBridges::start();
    let mut nats = RawClient::connect(t.nats_port, Some(&format!("eventcast.{}", t.port)));
    let attack = bundle_of_3_byte_frames(65_000);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&attack, (t.group, t.port)).unwrap();
    let (packets, bytes) = t.lan.count_until_quiet(Duration::from_secs(2), Duration::from_secs(1), 100_000);
    let on_nats = nats.count_until_quiet(Duration::from_millis(500), 100_000);
    let (port, group) = (t.port, t.group);
    // A valid datagram still crosses afterwards.
    let cloud = nats_node(port, &t._server.url()).await;
    let mut events = cloud.subscribe();
    let lan = lan_node(port).await;
    lan.emit("after", &[]).unwrap();
    assert_eq!(events_named(&mut events, "after", 1).await.len(), 1);
    lan.stop().await.unwrap();
    cloud.stop().await.unwrap();
    let stats = t.stop();
    let report = format!("LAN {packets} datagrams, {bytes} bytes; NATS {on_nats} messages; bridges {stats:?}");
    eprintln!("{report}");
    // The attacker's own datagram, then nothing: ≤ 3× packets and bytes.
    assert!(packets <= 3, "{report} ({group})");
    assert!(bytes <= 3 * attack.len() as u64, "{report}");
    assert_eq!(on_nats, 0, "{report}");
    for s in &stats {
        assert!(s["not_datagrams_dropped"].as_u64().unwrap() >= 1, "{report}");
    }
}

/// NATS messages that are not well-formed bundles of eventcast datagrams
/// stay on NATS: a 128 KiB bundle of 18,723 distinct 3-byte frames made each
/// bridge multicast 18,656 to 29,684 datagrams; now none. A bundle of valid
/// datagrams crosses once per bridge: at most 3× the datagrams and bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_bundle_of_non_datagrams_is_not_multicast_and_a_valid_one_at_most_once_per_bridge() {
    if skip_outside_netns("a_nats_bundle_of_non_datagrams_is_not_multicast_and_a_valid_one_at_most_once_per_bridge") {
        return;
    }
    let t = TwoBridges::start();
    let subject = format!("eventcast.{}", t.port);
    let mut attacker = RawClient::connect(t.nats_port, None);
    let garbage = bundle_of_3_byte_frames(128 * 1024);
    attacker.publish(&subject, &garbage);
    // One valid datagram among garbage frames: the bundle is refused whole.
    attacker.publish(&subject, &bundle_of([valid_datagram(1), vec![0; 3], valid_datagram(2)]));
    let (garbage_packets, garbage_bytes) =
        t.lan.count_until_quiet(Duration::from_secs(2), Duration::from_secs(1), 100_000);
    // 500 distinct valid datagrams in one bundle.
    let frames: Vec<Vec<u8>> = (10..510).map(valid_datagram).collect();
    let frame_bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    let valid = bundle_of(frames);
    assert!(valid.len() <= 128 * 1024);
    attacker.publish(&subject, &valid);
    let (packets, bytes) = t.lan.count_until_quiet(Duration::from_secs(5), Duration::from_secs(1), 100_000);
    let stats = t.stop();
    let report = format!(
        "garbage: LAN {garbage_packets} datagrams, {garbage_bytes} bytes; valid: {packets}, {bytes}; bridges {stats:?}"
    );
    eprintln!("{report}");
    assert_eq!((garbage_packets, garbage_bytes), (0, 0), "{report}");
    assert!((500..=1_500).contains(&packets), "each valid datagram crosses, once per bridge: {report}");
    assert!(bytes <= 3 * frame_bytes, "{report}");
    for s in &stats {
        assert_eq!(s["bundles_malformed"], 2, "{report}");
        assert_eq!(s["bundles_received"], 3, "{report}");
    }
}

/// The bridge's LAN side on an IPv6 group (link-local, on lo, the interface
/// as the group's zone), with encryption: a LAN node and a NATS node naming
/// that group in `nats.group` exchange events both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_relays_an_encrypted_ipv6_lan() {
    let test = "a_bridge_relays_an_encrypted_ipv6_lan";
    if skip_outside_netns(test) {
        return;
    }
    let routed = std::fs::read_to_string("/proc/self/net/ipv6_route").is_ok_and(|t| {
        t.lines().any(|l| l.starts_with("ff000000000000000000000000000000 08 ") && l.trim_end().ends_with(" lo"))
    });
    if !routed {
        return node_support::skipped(test, "no IPv6 multicast route on lo in this namespace (IPv6 off?)");
    }
    let server = NatsServer::start(&[]);
    let port = random_port();
    let group: std::net::IpAddr = format!("ff12::ec:{port:x}").parse().unwrap();
    let bridge = BridgeProcess::start_on(port, &format!("{group}%lo"), &format!("[{group}]:{port}"), &server.url());
    let lan = Eventcast::new(encrypted(Options {
        multicast_membership: group,
        multicast_interface: Some(eventcast::MulticastInterface::Name("lo".into())),
        ..Options::with_port(port)
    }))
    .unwrap();
    lan.start().await.unwrap();
    let mut nats = NatsOptions::new([server.url()]);
    nats.group = Some(group);
    let cloud =
        Eventcast::new(encrypted(Options { transport: Transport::Nats(nats), ..Options::with_port(port) })).unwrap();
    cloud.start().await.unwrap();
    let (mut lan_events, mut cloud_events) = (lan.subscribe(), cloud.subscribe());
    lan.emit("v6-from-lan", &[Bson::String("l".repeat(5000))]).unwrap();
    let e = &events_named(&mut cloud_events, "v6-from-lan", 1).await;
    assert_eq!(e.len(), 1, "the LAN's chunked event reached NATS");
    assert_eq!(e[0].sender.host, "::1");
    cloud.emit("v6-from-cloud", &[Bson::Int32(6)]).unwrap();
    let e = &events_named(&mut lan_events, "v6-from-cloud", 1).await;
    assert_eq!(e.len(), 1, "the NATS node's event reached the IPv6 LAN");
    assert_eq!(e[0].args, vec![Bson::Int32(6)]);
    lan.stop().await.unwrap();
    cloud.stop().await.unwrap();
    let stats = bridge.stop();
    assert!(stats["relayed_to_nats"].as_u64().unwrap() >= 5, "{stats}");
    assert!(stats["relayed_to_lan"].as_u64().unwrap() >= 1, "{stats}");
}
