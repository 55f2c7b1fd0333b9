use super::*;
#[cfg(target_os = "linux")]
use crate::group::MulticastInterface;
#[cfg(target_os = "linux")]
use crate::test_netns::{on_fresh_netns, IPV6_LOOPBACK_SETUP};

fn any() -> Resolved {
    Resolved::default()
}

#[test]
fn advertised_host_prefers_interface_option() {
    let mut o = Options::with_port(1);
    o.multicast_interface = Some(Ipv4Addr::new(10, 1, 2, 3).into());
    assert_eq!(advertised_host(&o), IpAddr::from([10, 1, 2, 3]));
    let o = Options { address: Ipv4Addr::new(10, 9, 9, 9).into(), ..Options::with_port(1) };
    assert_eq!(advertised_host(&o), IpAddr::from([10, 9, 9, 9]));
}

#[test]
fn advertised_host_skips_unspecified_loopback_and_group_addresses() {
    let fallback = advertised_host(&Options::with_port(1));
    assert!(fallback.is_ipv4(), "an IPv4 group advertises an IPv4 host: {fallback}");
    let mut o = Options::with_port(1);
    o.multicast_interface = Some(Ipv4Addr::UNSPECIFIED.into());
    assert_eq!(advertised_host(&o), fallback);
    for address in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::LOCALHOST, Ipv4Addr::new(239, 1, 2, 3)] {
        assert_eq!(
            advertised_host(&Options { address: address.into(), ..Options::with_port(1) }),
            fallback,
            "{address}"
        );
    }
    // The interface wins over the bind address.
    let o = Options {
        address: Ipv4Addr::new(10, 9, 9, 9).into(),
        multicast_interface: Some(Ipv4Addr::new(10, 1, 2, 3).into()),
        ..Options::with_port(1)
    };
    assert_eq!(advertised_host(&o), IpAddr::from([10, 1, 2, 3]));
}

#[test]
fn advertised_addr_is_the_engines_identity_once_built() {
    let o = Options { address: Ipv4Addr::new(10, 9, 9, 9).into(), ..Options::with_port(9000) };
    assert_eq!(advertised_addr(&o, None), "10.9.9.9:9000".parse().unwrap());
    // Port 0 (Rust API: ephemeral) is the bound port once started.
    let identity = Identity { id: "ab".repeat(8), host: "10.5.5.5".into(), port: 41234, hostname: "h".into() };
    assert_eq!(advertised_addr(&Options::with_port(0), Some(&identity)), "10.5.5.5:41234".parse().unwrap());
    let identity = Identity { host: "fd00:ec::5".into(), ..identity };
    assert_eq!(advertised_addr(&Options::with_port(0), Some(&identity)), "[fd00:ec::5]:41234".parse().unwrap());
}

#[test]
fn the_group_destination_carries_the_interface_as_its_scope() {
    let v6 = Options { multicast_membership: "ff12::ec:1".parse().unwrap(), ..Options::with_port(9000) };
    let eth = Resolved { name: Some("eth0".into()), index: 7, v4: None };
    assert_eq!(
        group_addr(&v6, &eth, 9000),
        SocketAddr::V6(SocketAddrV6::new("ff12::ec:1".parse().unwrap(), 9000, 0, 7))
    );
    assert_eq!(group_addr(&Options::with_port(9000), &eth, 9000), "224.0.0.1:9000".parse().unwrap());
    // 0.0.0.0, the default, binds `::` for an IPv6 group; a link-local address gets the scope.
    assert_eq!(bind_addr(&v6, &eth, 9000), "[::]:9000".parse().unwrap());
    let ll = Options { address: "fe80::1".parse().unwrap(), ..v6.clone() };
    assert_eq!(bind_addr(&ll, &eth, 0), SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 0, 0, 7)));
}

/// Why the socket tests skip outside a private namespace: they multicast.
const NEEDS_NETNS: &str =
    "opens multicast sockets, runs only in a private network namespace (npm test, scripts/netns.js)";

/// Same check as `tests/node_support`: only `lo`, and 224.0.0.0/4 routed to it.
fn in_private_netns() -> bool {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let ifaces: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    let route = std::fs::read_to_string("/proc/self/net/route").unwrap_or_default();
    ifaces == ["lo"] && route.lines().any(|l| l.starts_with("lo\t000000E0"))
}

#[test]
fn two_sockets_on_one_port_both_get_group_datagrams() {
    if !in_private_netns() {
        crate::skip_report::skipped("two_sockets_on_one_port_both_get_group_datagrams", NEEDS_NETNS);
        return;
    }
    let mut options = Options::with_port(0);
    options.multicast_membership = Ipv4Addr::new(239, 255, 42, 1).into();
    let a = bind_multicast(&options, &any()).unwrap();
    options.port = a.local_addr().unwrap().port();
    let b = bind_multicast(&options, &any()).unwrap();
    assert_eq!(b.local_addr().unwrap().port(), options.port);
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"hello group", (options.multicast_membership, options.port)).unwrap();
    for s in [&a, &b] {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello group");
    }
    // The receive buffer request was honoured (forced past rmem_max as root).
    let rcv = socket2::SockRef::from(&a).recv_buffer_size().unwrap();
    assert!(rcv >= 1024 * 1024, "SO_RCVBUF only {rcv}");
}

/// Everything `receiver` gets until it is quiet for its read timeout, as text.
fn drain(receiver: &std::net::UdpSocket) -> Vec<String> {
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while let Ok((n, _)) = receiver.recv_from(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[test]
fn own_datagrams_are_filtered_out_by_source_only() {
    if !in_private_netns() {
        crate::skip_report::skipped("own_datagrams_are_filtered_out_by_source_only", NEEDS_NETNS);
        return;
    }
    let mut options = Options::with_port(0);
    options.multicast_membership = Ipv4Addr::new(239, 255, 42, 2).into();
    let receiver = bind_multicast(&options, &any()).unwrap();
    options.port = receiver.local_addr().unwrap().port();
    // Bound to 127.0.0.1 so that another socket can use the same port on 127.0.0.2.
    let ours = bind_sender(&Options { address: Ipv4Addr::LOCALHOST.into(), ..options.clone() }, &any()).unwrap();
    assert_eq!(ours.source.port(), ours.socket.local_addr().unwrap().port());
    let group = (options.multicast_membership, options.port);
    receiver.set_nonblocking(false).unwrap();
    receiver.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 64];
    // The source we computed is exactly what receivers see.
    ours.socket.send_to(b"probe", group).unwrap();
    let (_, seen) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(seen, ours.source);
    drop_own_datagrams(&receiver, ours.source).unwrap();
    let other = bind_sender(&options, &any()).unwrap();
    // Unbound senders: as routed here (loopback has no link-scope address) 0.0.0.0;
    // on a LAN the interface's address. Again exactly what a receiver sees.
    other.socket.send_to(b"probe", group).unwrap();
    let (_, seen) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(seen, other.source);
    ours.socket.send_to(b"ours 1", group).unwrap();
    other.socket.send_to(b"theirs", group).unwrap();
    ours.socket.send_to(b"ours 2", group).unwrap();
    // A datagram from our port on another address is not ours either.
    let same_port_other_host = std::net::UdpSocket::bind(("127.0.0.2", ours.source.port())).unwrap();
    same_port_other_host.send_to(b"other host", group).unwrap();
    assert_eq!(drain(&receiver), ["theirs", "other host"]);
}

/// The IPv6 filter, on loopback in a namespace of the test's own (two
/// addresses, `::1` and `fd00:ec::2`, so that "our port on another host" can
/// be sent): it drops exactly our 16-byte source and port, passes a datagram
/// from our port on another address and one from our address on another port.
#[cfg(target_os = "linux")]
#[test]
fn ipv6_own_datagrams_are_filtered_out_by_source_only() {
    let setup = format!("{IPV6_LOOPBACK_SETUP} && ip -6 addr add fd00:ec::2/128 dev lo nodad");
    let ran = on_fresh_netns(&setup, || {
        let mut options = Options {
            multicast_membership: "ff12::ec:42".parse().unwrap(),
            multicast_interface: Some(MulticastInterface::Name("lo".into())),
            ..Options::with_port(0)
        };
        let lo = crate::interface::resolve(&options).unwrap();
        assert!(lo.index > 0 && lo.v4.is_none(), "{lo:?}");
        let receiver = bind_multicast(&options, &lo).unwrap();
        options.port = receiver.local_addr().unwrap().port();
        let ours = bind_sender(&Options { address: Ipv6Addr::LOCALHOST.into(), ..options.clone() }, &lo).unwrap();
        assert_eq!(ours.source, SocketAddr::new(Ipv6Addr::LOCALHOST.into(), ours.socket.local_addr().unwrap().port()));
        let group = group_addr(&options, &lo, options.port);
        receiver.set_nonblocking(false).unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
        let mut buf = [0u8; 64];
        ours.socket.send_to(b"probe", group).unwrap();
        let (_, seen) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!((seen.ip(), seen.port()), (ours.source.ip(), ours.source.port()), "the source we computed");
        drop_own_datagrams(&receiver, ours.source).unwrap();
        // Unbound: the kernel's pick for the group on lo; exactly what a receiver sees, and advertised.
        let other = bind_sender(&options, &lo).unwrap();
        other.socket.send_to(b"probe", group).unwrap();
        let (_, seen) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!((seen.ip(), seen.port()), (other.source.ip(), other.source.port()));
        assert_eq!(
            advertised_host_on(&options, &lo),
            other.source.ip(),
            "the advertised host is our datagrams' source"
        );
        ours.socket.send_to(b"ours 1", group).unwrap();
        other.socket.send_to(b"theirs", group).unwrap();
        ours.socket.send_to(b"ours 2", group).unwrap();
        let same_port_other_host = std::net::UdpSocket::bind(("fd00:ec::2", ours.source.port())).unwrap();
        same_port_other_host.send_to(b"other host", group).unwrap();
        let same_host_other_port = std::net::UdpSocket::bind("[::1]:0").unwrap();
        same_host_other_port.send_to(b"other port", group).unwrap();
        ours.socket.send_to(b"ours 3", group).unwrap();
        assert_eq!(drain(&receiver), ["theirs", "other host", "other port"]);
        // An IPv6 receive socket takes no IPv4 datagram to its port (IPv6-only).
        let v4 = std::net::UdpSocket::bind("127.0.0.1:0");
        if let Ok(v4) = v4 {
            let _ = v4.send_to(b"ipv4", ("127.0.0.1", options.port));
            assert!(drain(&receiver).is_empty());
        }
    });
    if let Err(why) = ran {
        crate::skip_report::skipped("ipv6_own_datagrams_are_filtered_out_by_source_only", &why);
    }
}

#[test]
fn hostname_is_not_empty() {
    assert!(!hostname().is_empty());
}
