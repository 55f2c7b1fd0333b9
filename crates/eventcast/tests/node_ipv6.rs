//! IPv6 multicast between two hosts: two network namespaces, each a thread
//! of this test (`src/test_netns.rs`), joined by a veth pair `ec6a` ⇄
//! `ec6b` with duplicate address detection off, nodes joined to a
//! link-local group by interface name. Nothing else is in either namespace,
//! so whatever arrives crossed the veth, and nothing can reach a real
//! network wherever the test runs. Every test fails when delivery fails.
// Network namespaces (unshare, veth, nftables) are Linux's.
#![cfg(target_os = "linux")]

#[path = "../../eventcast-engine/tests/support/forge.rs"]
mod forge;
mod node_support;
#[path = "../src/test_netns.rs"]
mod test_netns;

use bson::Bson;
use eventcast::protocol::{Event, RepairRequest};
use eventcast::wire::{self, RETX_EVENT};
use eventcast::{EncryptOptions, Eventcast, Events, MulticastInterface, Notification, Options, Stats};
use node_support::{random_port, skipped};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use test_netns::{enter_fresh_netns, run_sh, thread_netns_path};

const GROUP: &str = "ff12::ec:1";
const MIB: usize = 1 << 20;

/// Setup of a host namespace before its link exists: loopback up, DAD off
/// for every interface made from now on (the peer end is created here).
const NO_DAD: &str = "ip link set lo up && sysctl -qw net.ipv6.conf.default.accept_dad=0 \
                      && sysctl -qw net.ipv6.conf.all.accept_dad=0";

/// Waits (up to 10 s) until `dev` can carry IPv6 multicast: the kernel
/// configures IPv6 on a link only once its carrier is up, which the veth
/// reports asynchronously, and until then there is no `ff00::/8` route on it
/// (sending fails with ENETUNREACH) and no link-local address.
fn wait_link(dev: &str) -> Result<(), String> {
    run_sh(&format!(
        "i=0; until ip -6 route show table local | grep -q 'ff00::/8 dev {dev} ' \
           && ip -6 addr show dev {dev} scope link | grep -q inet6; do \
           i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done"
    ))
    .map_err(|_| format!("{dev} did not come up for IPv6 within 10 s"))
}

/// Runs `a` and `b` on two hosts joined by a veth pair: `a` on `ec6a`
/// (`fd00:ec::1/64`), `b` on `ec6b` (`fd00:ec::2/64`), each with its
/// link-local address, `extra_b` run on b's side once its link is up (loss
/// rules). `Err(reason)` when the namespaces or the link cannot be made.
fn two_hosts<A: Send + 'static, B: Send + 'static>(
    extra_b: &str,
    a: impl FnOnce() -> A + Send + 'static,
    b: impl FnOnce() -> B + Send + 'static,
) -> Result<(A, B), String> {
    let (path_tx, path_rx) = mpsc::channel::<Result<String, String>>();
    let (linked_tx, linked_rx) = mpsc::channel::<bool>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (go_a_tx, go_a_rx) = mpsc::channel::<bool>();
    let (go_b_tx, go_b_rx) = mpsc::channel::<bool>();
    let extra_b = extra_b.to_string();
    let ready_b = ready_tx.clone();
    let host_b = std::thread::spawn(move || -> Option<B> {
        let made = enter_fresh_netns().and_then(|()| run_sh(NO_DAD)).map(|()| thread_netns_path());
        let ok = made.is_ok();
        path_tx.send(made).ok()?;
        if !ok || !linked_rx.recv().ok()? {
            return None;
        }
        let mut setup = "ip -6 addr add fd00:ec::2/64 dev ec6b nodad && ip link set ec6b up".to_string();
        if !extra_b.is_empty() {
            setup = format!("{setup} && {extra_b}");
        }
        ready_b.send(run_sh(&setup)).ok()?;
        // Past this point the setup worked: a link that does not come up is a failure, not a skip.
        go_b_rx.recv().ok()?.then(|| wait_link("ec6b").map(|()| b()).unwrap_or_else(|e| panic!("{e}")))
    });
    let host_a = std::thread::spawn(move || -> Option<A> {
        let linked = (|| {
            let path_b = path_rx.recv().map_err(|_| "host b ended".to_string())??;
            enter_fresh_netns()?;
            run_sh(NO_DAD)?;
            run_sh(&format!(
                "ip link add ec6a type veth peer name ec6b netns {path_b} \
                 && ip -6 addr add fd00:ec::1/64 dev ec6a nodad && ip link set ec6a up"
            ))
        })();
        let _ = linked_tx.send(linked.is_ok());
        ready_tx.send(linked).ok()?;
        go_a_rx.recv().ok()?.then(|| wait_link("ec6a").map(|()| a()).unwrap_or_else(|e| panic!("{e}")))
    });
    let mut why = None;
    for _ in 0..2 {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => why = why.or(Some(e)),
            Err(_) => why = why.or(Some("the hosts' setup did not finish".to_string())),
        }
        if why.is_some() {
            break;
        }
    }
    let go = why.is_none();
    let _ = (go_a_tx.send(go), go_b_tx.send(go));
    let (ra, rb) = (host_a.join(), host_b.join());
    let (ra, rb) =
        (ra.unwrap_or_else(|p| std::panic::resume_unwind(p)), rb.unwrap_or_else(|p| std::panic::resume_unwind(p)));
    match (why, ra, rb) {
        (None, Some(ra), Some(rb)) => Ok((ra, rb)),
        (Some(why), _, _) => Err(why),
        _ => Err("a host ended before its part ran".into()),
    }
}

/// A multi-thread runtime whose workers live in the calling thread's namespace.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn options(port: u16, interface: &str) -> Options {
    Options {
        multicast_membership: GROUP.parse().unwrap(),
        multicast_interface: Some(MulticastInterface::Name(interface.into())),
        ..Options::with_port(port)
    }
}

fn blob(i: u8) -> Bson {
    Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![i; MIB] })
}

/// What a receiving host got: events, gaps reported, its counters.
struct Received {
    events: Vec<Event>,
    gaps: u64,
    stats: Stats,
}

/// Collects `want` events (or until `limit`), tells `done` when it has them.
async fn collect(events: &mut Events, want: usize, limit: Duration, done: &mpsc::Sender<()>) -> (Vec<Event>, u64) {
    let (mut got, mut gaps) = (Vec::new(), 0);
    let deadline = tokio::time::Instant::now() + limit;
    while got.len() < want {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Notification::Event(e))) => got.push(e),
            Ok(Some(Notification::Gap { count, .. })) => gaps += count,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let _ = done.send(());
    (got, gaps)
}

/// The receiver's half: starts on `ec6b`, says so, collects, stops.
fn receiver(options: Options, want: usize, ready: mpsc::Sender<()>, done: mpsc::Sender<()>) -> Received {
    runtime().block_on(async move {
        let node = Eventcast::new(options).unwrap();
        let mut events = node.subscribe();
        node.start().await.expect("start on ec6b");
        ready.send(()).unwrap();
        let (events_got, gaps) = collect(&mut events, want, Duration::from_secs(60), &done).await;
        let stats = node.stats();
        node.stop().await.unwrap();
        Received { events: events_got, gaps, stats }
    })
}

/// What the sending host reports: its advertised address, the interface it
/// used, its counters.
struct Sent {
    advertised: SocketAddr,
    interface: eventcast::InterfaceInUse,
    id: String,
    stats: Stats,
}

/// The sender's half: waits for the receiver, emits `events` (name, args)
/// at about `rate` per second, stays up answering repairs until the
/// receiver is done (at most 60 s).
fn sender(
    options: Options,
    events: Vec<(String, Vec<Bson>)>,
    ready: mpsc::Receiver<()>,
    done: mpsc::Receiver<()>,
) -> Sent {
    runtime().block_on(async move {
        ready.recv_timeout(Duration::from_secs(120)).expect("receiver ready");
        let node = Eventcast::new(options).unwrap();
        node.start().await.expect("start on ec6a");
        for (k, (name, args)) in events.iter().enumerate() {
            node.emit(name, args).unwrap();
            if k % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let t0 = Instant::now();
        while done.try_recv().is_err() && t0.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sent = Sent {
            advertised: node.advertised_addr(),
            interface: node.interface().expect("started over multicast"),
            id: node.id().to_string(),
            stats: node.stats(),
        };
        node.stop().await.unwrap();
        sent
    })
}

/// Small events and a chunked 1 MiB one on a link-local group, interfaces
/// by name: everything arrives exactly once and in order, from the sender's
/// link-local address, which is also what it advertises.
#[test]
fn ipv6_link_local_group_carries_events_between_two_hosts() {
    let port = random_port();
    let mut events: Vec<(String, Vec<Bson>)> = (0..500).map(|i| ("n".to_string(), vec![Bson::Int32(i)])).collect();
    events.push(("blob".into(), vec![blob(7)]));
    let want = events.len();
    let expected = events.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let ran = two_hosts(
        "",
        move || sender(options(port, "ec6a"), events, ready_rx, done_rx),
        move || receiver(options(port, "ec6b"), want, ready_tx, done_tx),
    );
    let (sent, got) = match ran {
        Ok(r) => r,
        Err(why) => return skipped("ipv6_link_local_group_carries_events_between_two_hosts", &why),
    };
    assert_eq!(got.events.len(), want, "delivered over the veth pair; {:?}", got.stats);
    for (e, (name, args)) in got.events.iter().zip(&expected) {
        assert_eq!((&e.name, &e.args), (name, args));
        assert_eq!(e.sender.id, sent.id);
    }
    assert_eq!(got.gaps, 0);
    // The interface by name: index and a link-local source on it, advertised and carried in the meta.
    assert_eq!(sent.interface.name.as_deref(), Some("ec6a"), "{}", sent.interface);
    assert!(sent.interface.index > 0);
    let IpAddr::V6(source) = sent.interface.source else { panic!("IPv4 source {}", sent.interface) };
    assert!(source.is_unicast_link_local(), "a link-local group is sent from the link-local address: {source}");
    assert_eq!(sent.advertised, SocketAddr::new(source.into(), port));
    assert_eq!(got.events[0].sender.host, source.to_string());
    assert!(sent.stats.datagrams_sent > 1024, "the 1 MiB event was chunked: {:?}", sent.stats);
    // Own datagrams stay out (the IPv6 kernel filter), peers' come in.
    assert_eq!(sent.stats.own_datagrams_ignored, 0, "{:?}", sent.stats);
    assert_eq!(got.stats.events_delivered, want as u64);
}

/// 10% loss on the receiver's input (nftables), the authenticated scheme on:
/// every event arrives through repairs, none reported lost.
#[test]
fn ipv6_repairs_recover_loss_and_encryption_works_between_two_hosts() {
    let test = "ipv6_repairs_recover_loss_and_encryption_works_between_two_hosts";
    if run_sh("command -v nft >/dev/null").is_err() {
        return skipped(test, "nft (nftables) is not installed; it makes the loss");
    }
    let port = random_port();
    let loss = format!(
        "nft add table inet t && nft add chain inet t input '{{ type filter hook input priority 0; }}' \
         && nft add rule inet t input udp dport {port} numgen random mod 100 '<' 10 drop"
    );
    let encrypted = |interface: &str| Options {
        encrypt: Some(EncryptOptions { key: "ipv6 passphrase".into(), legacy: false }),
        ..options(port, interface)
    };
    let mut events: Vec<(String, Vec<Bson>)> = (0..1000).map(|i| ("n".to_string(), vec![Bson::Int32(i)])).collect();
    events.push(("blob".into(), vec![blob(9)]));
    let want = events.len();
    let (a, b) = (encrypted("ec6a"), encrypted("ec6b"));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let ran =
        two_hosts(&loss, move || sender(a, events, ready_rx, done_rx), move || receiver(b, want, ready_tx, done_tx));
    let (sent, got) = match ran {
        Ok(r) => r,
        Err(why) => return skipped(test, &why),
    };
    let mut seen: Vec<i32> = got.events.iter().filter_map(|e| e.args[0].as_i32()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(got.events.len(), want, "{:?} (sender {:?})", got.stats, sent.stats);
    assert_eq!(seen.len(), want - 1, "no duplicates");
    assert_eq!(got.gaps, 0);
    assert!(got.stats.repairs_received > 0, "10% loss was repaired: {:?}", got.stats);
    assert!(sent.stats.repairs_sent > 0, "{:?}", sent.stats);
    assert_eq!(got.stats.rejected_decrypt, 0, "{:?}", got.stats);
}

/// A repair request from an IPv6 source naming another host as `host:port`
/// (where a 0.1.x sender would unicast its answer) makes the sender answer on
/// the group, never at that address: the request's fields stay data, as on IPv4.
#[test]
fn ipv6_forged_request_host_cannot_redirect_repairs() {
    let test = "ipv6_forged_request_host_cannot_redirect_repairs";
    let port = random_port();
    let (ready_tx, ready_rx) = mpsc::channel::<String>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let a = move || {
        runtime().block_on(async move {
            let node = Eventcast::new(options(port, "ec6a")).unwrap();
            node.start().await.expect("start on ec6a");
            for i in 0..20 {
                node.emit("n", &[Bson::Int32(i)]).unwrap();
            }
            ready_tx.send(node.id().to_string()).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(60));
            let stats = node.stats();
            node.stop().await.unwrap();
            stats
        })
    };
    let b = move || -> (usize, usize) {
        let sender_id = ready_rx.recv_timeout(Duration::from_secs(60)).expect("sender up");
        // The address a forged request points at: a socket of this host, which must stay silent.
        let victim = UdpSocket::bind("[fd00:ec::2]:0").unwrap();
        victim.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let index = eventcast::host_interfaces().unwrap().into_iter().find(|i| i.name == "ec6b").unwrap().index;
        // A plain member of the group on this host sees what the sender multicasts.
        let group: std::net::Ipv6Addr = GROUP.parse().unwrap();
        let member = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
        member.set_reuse_address(true).unwrap();
        member.set_only_v6(true).unwrap();
        member.bind(&SocketAddr::from(("::".parse::<IpAddr>().unwrap(), port)).into()).unwrap();
        member.join_multicast_v6(&group, index).unwrap();
        let member: UdpSocket = member.into();
        member.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let req = RepairRequest {
            id: "6666666666666666".into(),
            seq_id: String::new(),
            missed_seq: vec![],
            host: "fd00:ec::2".into(),
            port: i32::from(victim.local_addr().unwrap().port()),
            missed_sn: (1..=20).collect(),
            to: Some(sender_id),
            relayed: false,
        };
        let m = forge::meta(Some("6666666666666666"), &format!("{:040x}", 66), RETX_EVENT, 0, 1, None);
        let forged = forge::datagram(&m, &wire::encode_document_body(&req.to_document()));
        let attacker = UdpSocket::bind("[fd00:ec::2]:0").unwrap();
        let to_group = SocketAddr::V6(std::net::SocketAddrV6::new(group, port, 0, index));
        let (mut at_victim, mut on_group) = (0, 0);
        let mut buf = [0u8; 2048];
        while member.recv_from(&mut buf).is_ok() {} // what came before the request
        attacker.send_to(&forged, to_group).unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            if let Ok((_, from)) = member.recv_from(&mut buf) {
                // Repairs come from the sender's link-local source; our own request from fd00:ec::2.
                on_group += usize::from(from.ip() != IpAddr::from("fd00:ec::2".parse::<std::net::Ipv6Addr>().unwrap()));
            }
            at_victim += usize::from(victim.recv_from(&mut buf).is_ok());
        }
        done_tx.send(()).unwrap();
        (at_victim, on_group)
    };
    let (stats, (at_victim, on_group)) = match two_hosts("", a, b) {
        Ok(r) => r,
        Err(why) => return skipped(test, &why),
    };
    assert_eq!(at_victim, 0, "nothing was sent to the request's host:port");
    assert!(on_group > 0 && stats.repairs_sent > 0, "the sender answered, on the group: {on_group} seen, {stats:?}");
}

/// A name no interface has fails `start()` with ENOINTERFACE, naming it and
/// listing the host's interfaces; the node stays stopped and can start once
/// given one that exists.
#[test]
fn a_missing_interface_fails_start_with_enointerface() {
    let ran = test_netns::on_fresh_netns(test_netns::IPV6_LOOPBACK_SETUP, || {
        runtime().block_on(async {
            let mut o = options(random_port(), "ec-missing0");
            let node = Eventcast::new(o.clone()).unwrap();
            let err = node.start().await.unwrap_err();
            assert_eq!(err.code(), "ENOINTERFACE", "{err}");
            let text = err.to_string();
            assert!(text.contains("\"ec-missing0\"") && text.contains("lo (127.0.0.1, ::1)"), "{text}");
            assert_eq!(node.status(), eventcast::Status::Stopped);
            // IPv4 groups by name too.
            o.multicast_membership = "239.255.66.1".parse().unwrap();
            let err = Eventcast::new(o.clone()).unwrap().start().await.unwrap_err();
            assert_eq!(err.code(), "ENOINTERFACE", "{err}");
            // Loopback exists: the same node shape starts on it, IPv6 and IPv4.
            for group in [GROUP, "239.255.66.1"] {
                o.multicast_membership = group.parse().unwrap();
                o.multicast_interface = Some(MulticastInterface::Name("lo".into()));
                let node = Eventcast::new(o.clone()).unwrap();
                node.start().await.expect("start on lo");
                let used = node.interface().unwrap();
                assert_eq!(used.name.as_deref(), Some("lo"), "{used}");
                node.stop().await.unwrap();
            }
        })
    });
    if let Err(why) = ran {
        skipped("a_missing_interface_fails_start_with_enointerface", &why);
    }
}
