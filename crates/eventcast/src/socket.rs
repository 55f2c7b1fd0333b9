//! The node's UDP sockets (socket2: a multicast receive socket, a send socket) and host facts (advertised address, hostname).

use super::options::Options;
use crate::protocol::Identity;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Receive and send buffer size we ask the kernel for. Linux caps it at
/// `net.core.rmem_max` (doubled); we read back what we got and log it.
pub const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Creates the node's receive socket: IPv4 UDP, SO_REUSEADDR + SO_REUSEPORT
/// (several nodes on one host and port all receive the group's datagrams),
/// bound to `address:port`, joined to the group on `multicast_interface` (or
/// any), a large receive buffer, non-blocking. Sending goes through
/// [`bind_sender`]'s socket.
pub fn bind_multicast(options: &Options) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
    socket.set_reuse_port(true)?;
    set_recv_buffer(&socket);
    socket.bind(&SockAddr::from(SocketAddrV4::new(options.address, options.port)))?;
    let interface = options.multicast_interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    socket.join_multicast_v4(&options.multicast_membership, &interface)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The node's send socket and the source address its datagrams carry.
///
/// Sending from a socket of its own, on an ephemeral port, gives this node's
/// datagrams a source no other socket has. The receive socket can then drop
/// the multicast loopback copies of our own datagrams in the kernel
/// ([`drop_own_datagrams`]) instead of reading, decoding (or, encrypted,
/// authenticating and decrypting) every one of them only to discard it, which
/// was a fifth of a busy sender's CPU. Peers never use the source address:
/// 0.1.x nodes and ours address requests and repairs to the group or to
/// `meta.host:meta.port` (the group port), so nothing else changes on the wire.
pub struct Sender {
    /// Non-blocking, not connected (the source address follows the routing table
    /// if the host's address changes), multicast TTL / loopback / interface set.
    pub socket: std::net::UdpSocket,
    /// `host:ephemeral port` our datagrams arrive from, as the kernel reports it
    /// for a socket with the same settings connected to the group.
    pub source: SocketAddrV4,
}

/// Creates the send socket: bound to `address` when that is a specific
/// unicast address (else `0.0.0.0`), ephemeral port, no SO_REUSE* (the port
/// is ours alone), same multicast TTL / loopback / interface as the receive socket.
pub fn bind_sender(options: &Options) -> io::Result<Sender> {
    let unicast = !options.address.is_unspecified() && !options.address.is_multicast();
    let bind_ip = if unicast { options.address } else { Ipv4Addr::UNSPECIFIED };
    let group = SocketAddrV4::new(options.multicast_membership, options.port.max(1));
    let configure = |socket: &Socket| -> io::Result<()> {
        socket.set_multicast_loop_v4(options.multicast_loopback)?;
        socket.set_multicast_ttl_v4(options.multicast_ttl)?;
        if let Some(interface) = options.multicast_interface {
            socket.set_multicast_if_v4(&interface)?;
        }
        Ok(())
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    if force_buffer(&socket, SO_SNDBUFFORCE, SOCKET_BUFFER_BYTES).is_err() {
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    }
    // Nothing is ever read from this socket; keep its receive queue tiny.
    let _ = socket.set_recv_buffer_size(4096);
    socket.bind(&SockAddr::from(SocketAddrV4::new(bind_ip, 0)))?;
    configure(&socket)?;
    socket.set_nonblocking(true)?;
    let port = socket.local_addr()?.as_socket_ipv4().map(|a| a.port()).unwrap_or(0);
    // The source IP the kernel picks for the group (IP_MULTICAST_IF's address,
    // else the route's): ask a throwaway socket with the same settings.
    let host = if unicast {
        bind_ip
    } else {
        let probe = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        configure(&probe)?;
        probe.connect(&SockAddr::from(group))?;
        probe.local_addr()?.as_socket_ipv4().map(|a| *a.ip()).unwrap_or(Ipv4Addr::UNSPECIFIED)
    };
    Ok(Sender { socket: socket.into(), source: SocketAddrV4::new(host, port) })
}

/// Attaches a classic BPF filter to the receive socket that drops datagrams
/// from `source` (our send socket) before they are queued: the multicast
/// loopback copies of our own datagrams. Linux only; elsewhere (or if the
/// kernel refuses) the receive task recognises them by source address instead.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn drop_own_datagrams(socket: &std::net::UdpSocket, source: SocketAddrV4) -> io::Result<()> {
    socket2::SockRef::from(socket).attach_filter(&own_source_filter(source))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn drop_own_datagrams(_socket: &std::net::UdpSocket, _source: SocketAddrV4) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "socket filters"))
}

/// `drop if udp.sport == port && ip.saddr == host, else accept`. A UDP socket
/// filter sees the packet from the UDP header on; the IP header is reached
/// through the kernel's SKF_NET_OFF base. Loads are big-endian.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn own_source_filter(source: SocketAddrV4) -> [socket2::SockFilter; 6] {
    use socket2::SockFilter;
    const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const SKF_NET_OFF: u32 = (-0x0010_0000i32) as u32;
    [
        SockFilter::new(LD_H_ABS, 0, 0, 0),                    // A = UDP source port
        SockFilter::new(JEQ_K, 0, 3, source.port() as u32),    // not ours -> accept
        SockFilter::new(LD_W_ABS, 0, 0, SKF_NET_OFF + 12),     // A = IPv4 source address
        SockFilter::new(JEQ_K, 0, 1, u32::from(*source.ip())), // not ours -> accept
        SockFilter::new(RET_K, 0, 0, 0),                       // ours: drop
        SockFilter::new(RET_K, 0, 0, u32::MAX),                // accept, whole datagram
    ]
}

/// Leaves the group (best effort; closing the socket leaves it too).
pub fn leave_multicast(socket: &std::net::UdpSocket, options: &Options) {
    let interface = options.multicast_interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    if let Err(e) = socket.leave_multicast_v4(&options.multicast_membership, &interface) {
        tracing::debug!("leaving multicast group {}: {e}", options.multicast_membership);
    }
}

fn set_recv_buffer(socket: &Socket) {
    // SO_RCVBUF is capped by net.core.rmem_max; SO_RCVBUFFORCE (root / CAP_NET_ADMIN) is not.
    // Try the forcing variant first, fall back to the capped one; never fail start over it.
    if force_buffer(socket, SO_RCVBUFFORCE, SOCKET_BUFFER_BYTES).is_err() {
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    }
    let rcv = socket.recv_buffer_size().unwrap_or(0);
    if rcv < SOCKET_BUFFER_BYTES {
        tracing::debug!("SO_RCVBUF is {rcv} bytes (asked {SOCKET_BUFFER_BYTES}); raise net.core.rmem_max for bursts");
    }
}

// Linux generic socket option numbers (asm-generic/socket.h; same on x86 and arm).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
))]
const SO_SNDBUFFORCE: i32 = 32;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
))]
const SO_RCVBUFFORCE: i32 = 33;
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
)))]
const SO_SNDBUFFORCE: i32 = -1;
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
)))]
const SO_RCVBUFFORCE: i32 = -1;

/// `setsockopt(SOL_SOCKET, SO_{RCV,SND}BUFFORCE, bytes)`. socket2 has no wrapper and
/// the crate does not depend on `libc`, so this declares the one libc symbol it needs.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
))]
fn force_buffer(socket: &Socket, option: i32, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    let value: i32 = bytes as i32;
    // SAFETY: valid fd owned by `socket`, pointer to a live i32 and its exact size.
    let rc = unsafe {
        setsockopt(
            socket.as_raw_fd(),
            SOL_SOCKET,
            option,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")
)))]
fn force_buffer(_socket: &Socket, _option: i32, _bytes: usize) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "SO_*BUFFORCE"))
}

/// The IPv4 address we advertise in `meta.host` (where 0.1.x peers send repair
/// requests and repairs). 0.1.x uses the first non-internal IPv4 address of
/// `os.networkInterfaces()`. We use, in order: `multicast_interface` if set;
/// `address` if it is a specific non-loopback address; the first non-loopback
/// local address in `/proc/net/fib_trie` (Linux, no extra crates, no packet
/// sent anywhere); else `127.0.0.1`.
pub fn advertised_host(options: &Options) -> Ipv4Addr {
    if let Some(interface) = options.multicast_interface {
        if !interface.is_unspecified() {
            return interface;
        }
    }
    if !options.address.is_unspecified() && !options.address.is_loopback() && !options.address.is_multicast() {
        return options.address;
    }
    std::fs::read_to_string("/proc/net/fib_trie")
        .ok()
        .and_then(|text| first_local_address(&text))
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// The `host:port` a node advertises in its datagrams' meta (`meta.host`,
/// `meta.port`): once `start()` built the engine, its identity (kept across
/// stop/start on one port, so after `stop()` it is what peers saw last);
/// before, what the next start will write: [`advertised_host`] and
/// `options.port`. Over NATS the meta is the same (peers do not use it:
/// requests and repairs travel on the subject), and the port is the one that
/// names the default subject `eventcast.<port>`.
pub fn advertised_addr(options: &Options, identity: Option<&Identity>) -> SocketAddrV4 {
    // The identity's host is always one of ours (`advertised_host` formatted), so it parses.
    match identity.and_then(|id| id.host.parse().ok().map(|host| SocketAddrV4::new(host, id.port))) {
        Some(addr) => addr,
        None => SocketAddrV4::new(advertised_host(options), options.port),
    }
}

/// Parses `/proc/net/fib_trie`: a leaf line `|-- A.B.C.D` followed by a line
/// `/32 host LOCAL` is an address of this host.
fn first_local_address(fib_trie: &str) -> Option<Ipv4Addr> {
    let mut last_leaf: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("|-- ") {
            last_leaf = rest.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(addr) = last_leaf {
                if !addr.is_loopback() && !addr.is_unspecified() {
                    return Some(addr);
                }
            }
        }
    }
    None
}

/// The OS hostname (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     |-- 192.168.1.0
        /24 link UNICAST
     |-- 192.168.1.23
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
";

    #[test]
    fn fib_trie_parsing_skips_loopback_and_routes() {
        assert_eq!(first_local_address(FIB), Some(Ipv4Addr::new(192, 168, 1, 23)));
        assert_eq!(first_local_address("Main:\n |-- 127.0.0.1\n   /32 host LOCAL\n"), None);
        assert_eq!(first_local_address(""), None);
    }

    #[test]
    fn advertised_host_prefers_interface_option() {
        let mut o = Options::with_port(1);
        o.multicast_interface = Some(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(advertised_host(&o), Ipv4Addr::new(10, 1, 2, 3));
        let o = Options { address: Ipv4Addr::new(10, 9, 9, 9), ..Options::with_port(1) };
        assert_eq!(advertised_host(&o), Ipv4Addr::new(10, 9, 9, 9));
    }

    #[test]
    fn advertised_host_skips_unspecified_loopback_and_group_addresses() {
        let fallback = advertised_host(&Options::with_port(1));
        let mut o = Options::with_port(1);
        o.multicast_interface = Some(Ipv4Addr::UNSPECIFIED);
        assert_eq!(advertised_host(&o), fallback);
        for address in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::LOCALHOST, Ipv4Addr::new(239, 1, 2, 3)] {
            assert_eq!(advertised_host(&Options { address, ..Options::with_port(1) }), fallback, "{address}");
        }
        // The interface wins over the bind address.
        let o = Options {
            address: Ipv4Addr::new(10, 9, 9, 9),
            multicast_interface: Some(Ipv4Addr::new(10, 1, 2, 3)),
            ..Options::with_port(1)
        };
        assert_eq!(advertised_host(&o), Ipv4Addr::new(10, 1, 2, 3));
    }

    #[test]
    fn advertised_addr_is_the_engines_identity_once_built() {
        let o = Options { address: Ipv4Addr::new(10, 9, 9, 9), ..Options::with_port(9000) };
        assert_eq!(advertised_addr(&o, None), SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), 9000));
        // Port 0 (Rust API: ephemeral) is the bound port once started.
        let identity = Identity { id: "ab".repeat(8), host: "10.5.5.5".into(), port: 41234, hostname: "h".into() };
        assert_eq!(
            advertised_addr(&Options::with_port(0), Some(&identity)),
            SocketAddrV4::new(Ipv4Addr::new(10, 5, 5, 5), 41234)
        );
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
        options.multicast_membership = Ipv4Addr::new(239, 255, 42, 1);
        let a = bind_multicast(&options).unwrap();
        options.port = a.local_addr().unwrap().port();
        let b = bind_multicast(&options).unwrap();
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

    #[test]
    fn own_datagrams_are_filtered_out_by_source_only() {
        if !in_private_netns() {
            crate::skip_report::skipped("own_datagrams_are_filtered_out_by_source_only", NEEDS_NETNS);
            return;
        }
        let mut options = Options::with_port(0);
        options.multicast_membership = Ipv4Addr::new(239, 255, 42, 2);
        let receiver = bind_multicast(&options).unwrap();
        options.port = receiver.local_addr().unwrap().port();
        // Bound to 127.0.0.1 so that another socket can use the same port on 127.0.0.2.
        let ours = bind_sender(&Options { address: Ipv4Addr::LOCALHOST, ..options.clone() }).unwrap();
        assert_eq!(ours.source.port(), ours.socket.local_addr().unwrap().port());
        let group = (options.multicast_membership, options.port);
        receiver.set_nonblocking(false).unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
        let mut buf = [0u8; 64];
        // The source we computed is exactly what receivers see.
        ours.socket.send_to(b"probe", group).unwrap();
        let (_, seen) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(seen, std::net::SocketAddr::V4(ours.source));
        drop_own_datagrams(&receiver, ours.source).unwrap();
        let other = bind_sender(&options).unwrap();
        // Unbound senders: as routed here (loopback has no link-scope address) 0.0.0.0;
        // on a LAN the interface's address. Again exactly what a receiver sees.
        other.socket.send_to(b"probe", group).unwrap();
        let (_, seen) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(seen, std::net::SocketAddr::V4(other.source));
        ours.socket.send_to(b"ours 1", group).unwrap();
        other.socket.send_to(b"theirs", group).unwrap();
        ours.socket.send_to(b"ours 2", group).unwrap();
        // A datagram from our port on another address is not ours either.
        let same_port_other_host = std::net::UdpSocket::bind(("127.0.0.2", ours.source.port())).unwrap();
        same_port_other_host.send_to(b"other host", group).unwrap();
        let mut got = Vec::new();
        while let Ok((n, _)) = receiver.recv_from(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(got, ["theirs", "other host"]);
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
