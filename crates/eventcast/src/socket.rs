//! The node's UDP sockets (socket2: a multicast receive socket, a send
//! socket), IPv4 or IPv6 after the group's family, and host facts
//! (advertised address, hostname).

use super::interface::{self, Resolved};
use super::options::Options;
use crate::protocol::Identity;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Receive and send buffer size we ask the kernel for. Linux caps it at
/// `net.core.rmem_max` (doubled); we read back what we got and log it.
pub const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Creates the node's receive socket: UDP of the group's family,
/// SO_REUSEADDR + SO_REUSEPORT (several nodes on one host and port all
/// receive the group's datagrams), bound to `address:port` (unspecified: any
/// address of the family), joined to the group on `interface` (IPv4: by its
/// address, or any; IPv6: by its index, 0 = the route's), a large receive
/// buffer, non-blocking. Sending goes through [`bind_sender`]'s socket.
pub fn bind_multicast(options: &Options, interface: &Resolved) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(options.multicast_membership)?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
    socket.set_reuse_port(true)?;
    set_recv_buffer(&socket);
    socket.bind(&SockAddr::from(bind_addr(options, interface, options.port)))?;
    match options.multicast_membership {
        IpAddr::V4(group) => socket.join_multicast_v4(&group, &interface.v4.unwrap_or(Ipv4Addr::UNSPECIFIED))?,
        IpAddr::V6(group) => socket.join_multicast_v6(&group, interface.index)?,
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A UDP socket of the group's family. IPv6 ones are IPv6-only: an IPv4
/// datagram to the port (mapped to `::ffff:a.b.c.d`) would reach the socket
/// filter, which reads an IPv6 header, and nothing on an IPv6 group sends one.
fn new_socket(group: IpAddr) -> io::Result<Socket> {
    let domain = if group.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if group.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// `address:port` in the group's family: a specific address as given (an
/// IPv6 link-local one scoped to the interface), an unspecified one of either
/// family as the group's "any".
fn bind_addr(options: &Options, interface: &Resolved, port: u16) -> SocketAddr {
    match (options.multicast_membership, options.address) {
        (IpAddr::V4(_), IpAddr::V4(a)) => SocketAddrV4::new(a, port).into(),
        (IpAddr::V4(_), IpAddr::V6(_)) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into(),
        (IpAddr::V6(_), IpAddr::V6(a)) => {
            let scope = if a.is_unicast_link_local() { interface.index } else { 0 };
            SocketAddrV6::new(a, port, 0, scope).into()
        }
        (IpAddr::V6(_), IpAddr::V4(_)) => SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into(),
    }
}

/// The group and `port` as a destination. An IPv6 group carries the
/// interface as its scope: a link-local group means nothing without it.
pub fn group_addr(options: &Options, interface: &Resolved, port: u16) -> SocketAddr {
    match options.multicast_membership {
        IpAddr::V4(group) => SocketAddrV4::new(group, port).into(),
        IpAddr::V6(group) => SocketAddrV6::new(group, port, 0, interface.index).into(),
    }
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
    pub source: SocketAddr,
}

/// Creates the send socket: bound to `address` when that is a specific
/// unicast address (else the family's any), ephemeral port, no SO_REUSE*
/// (the port is ours alone), same multicast TTL (IPv6: hop limit) / loopback
/// / interface as the receive socket.
pub fn bind_sender(options: &Options, interface: &Resolved) -> io::Result<Sender> {
    let bind = bind_addr(options, interface, 0);
    let unicast = !bind.ip().is_unspecified() && !bind.ip().is_multicast();
    let bind = if unicast { bind } else { SocketAddr::new(unspecified(options.multicast_membership), 0) };
    let group = group_addr(options, interface, options.port.max(1));
    let socket = new_socket(options.multicast_membership)?;
    if force_buffer(&socket, SO_SNDBUFFORCE, SOCKET_BUFFER_BYTES).is_err() {
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    }
    // Nothing is ever read from this socket; keep its receive queue tiny.
    let _ = socket.set_recv_buffer_size(4096);
    socket.bind(&SockAddr::from(bind))?;
    configure_sending(&socket, options, interface)?;
    socket.set_nonblocking(true)?;
    let port = socket.local_addr()?.as_socket().map(|a| a.port()).unwrap_or(0);
    let host = if unicast { bind.ip() } else { probe_source(options, interface, group)? };
    Ok(Sender { socket: socket.into(), source: SocketAddr::new(host, port) })
}

fn unspecified(group: IpAddr) -> IpAddr {
    match group {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Loopback, TTL / hop limit and outgoing interface, as the options say.
fn configure_sending(socket: &Socket, options: &Options, interface: &Resolved) -> io::Result<()> {
    match options.multicast_membership {
        IpAddr::V4(_) => {
            socket.set_multicast_loop_v4(options.multicast_loopback)?;
            socket.set_multicast_ttl_v4(options.multicast_ttl)?;
            if let Some(a) = interface.v4 {
                socket.set_multicast_if_v4(&a)?;
            }
        }
        IpAddr::V6(_) => {
            socket.set_multicast_loop_v6(options.multicast_loopback)?;
            socket.set_multicast_hops_v6(options.multicast_ttl)?;
            if interface.index != 0 {
                socket.set_multicast_if_v6(interface.index)?;
            }
        }
    }
    Ok(())
}

/// The source IP the kernel picks for the group (IPv4: IP_MULTICAST_IF's
/// address, else the route's; IPv6: by RFC 6724 on the interface, so a
/// link-local group gets the link-local address): asks a throwaway socket
/// with the same settings, connected to the group. Connecting a UDP socket
/// sends nothing.
fn probe_source(options: &Options, interface: &Resolved, group: SocketAddr) -> io::Result<IpAddr> {
    let probe = new_socket(options.multicast_membership)?;
    configure_sending(&probe, options, interface)?;
    probe.connect(&SockAddr::from(group))?;
    Ok(probe.local_addr()?.as_socket().map_or(unspecified(group.ip()), |a| a.ip()))
}

/// Attaches a classic BPF filter to the receive socket that drops datagrams
/// from `source` (our send socket) before they are queued: the multicast
/// loopback copies of our own datagrams. Linux only; elsewhere (or if the
/// kernel refuses) the receive task recognises them by source address instead.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn drop_own_datagrams(socket: &std::net::UdpSocket, source: SocketAddr) -> io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    match source {
        SocketAddr::V4(source) => socket.attach_filter(&own_source_filter(source)),
        SocketAddr::V6(source) => socket.attach_filter(&own_source_filter_v6(source)),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn drop_own_datagrams(_socket: &std::net::UdpSocket, _source: SocketAddr) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "socket filters"))
}

// Classic BPF opcodes and the base of the network header in a socket filter.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod bpf {
    pub const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    pub const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    pub const SKF_NET_OFF: u32 = (-0x0010_0000i32) as u32;
}

/// `drop if udp.sport == port && ip.saddr == host, else accept`. A UDP socket
/// filter sees the packet from the UDP header on; the IP header is reached
/// through the kernel's SKF_NET_OFF base. Loads are big-endian.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn own_source_filter(source: SocketAddrV4) -> [socket2::SockFilter; 6] {
    use bpf::*;
    use socket2::SockFilter;
    [
        SockFilter::new(LD_H_ABS, 0, 0, 0),                    // A = UDP source port
        SockFilter::new(JEQ_K, 0, 3, source.port() as u32),    // not ours -> accept
        SockFilter::new(LD_W_ABS, 0, 0, SKF_NET_OFF + 12),     // A = IPv4 source address
        SockFilter::new(JEQ_K, 0, 1, u32::from(*source.ip())), // not ours -> accept
        SockFilter::new(RET_K, 0, 0, 0),                       // ours: drop
        SockFilter::new(RET_K, 0, 0, u32::MAX),                // accept, whole datagram
    ]
}

/// The IPv6 form: `drop if udp.sport == port && ip6.saddr == host`, the
/// 16-byte source (offset 8 of the IPv6 header) compared as four words. The
/// scope id is not on the wire: a link-local source is its 16 bytes.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn own_source_filter_v6(source: SocketAddrV6) -> [socket2::SockFilter; 12] {
    use bpf::*;
    use socket2::SockFilter;
    let o = source.ip().octets();
    let word = |k: usize| u32::from_be_bytes([o[4 * k], o[4 * k + 1], o[4 * k + 2], o[4 * k + 3]]);
    // Each JEQ's false branch jumps to the last instruction (accept): from instruction i, 10 - i ahead.
    [
        SockFilter::new(LD_H_ABS, 0, 0, 0),                 // 0: A = UDP source port
        SockFilter::new(JEQ_K, 0, 9, source.port() as u32), // 1: not ours -> accept
        SockFilter::new(LD_W_ABS, 0, 0, SKF_NET_OFF + 8),   // 2: A = source address, bytes 0-3
        SockFilter::new(JEQ_K, 0, 7, word(0)),              // 3
        SockFilter::new(LD_W_ABS, 0, 0, SKF_NET_OFF + 12),  // 4: bytes 4-7
        SockFilter::new(JEQ_K, 0, 5, word(1)),              // 5
        SockFilter::new(LD_W_ABS, 0, 0, SKF_NET_OFF + 16),  // 6: bytes 8-11
        SockFilter::new(JEQ_K, 0, 3, word(2)),              // 7
        SockFilter::new(LD_W_ABS, 0, 0, SKF_NET_OFF + 20),  // 8: bytes 12-15
        SockFilter::new(JEQ_K, 0, 1, word(3)),              // 9
        SockFilter::new(RET_K, 0, 0, 0),                    // 10: ours: drop
        SockFilter::new(RET_K, 0, 0, u32::MAX),             // 11: accept, whole datagram
    ]
}

/// Leaves the group (best effort; closing the socket leaves it too).
pub fn leave_multicast(socket: &std::net::UdpSocket, options: &Options, interface: &Resolved) {
    let left = match options.multicast_membership {
        IpAddr::V4(group) => socket.leave_multicast_v4(&group, &interface.v4.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        IpAddr::V6(group) => socket.leave_multicast_v6(&group, interface.index),
    };
    if let Err(e) = left {
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

#[cfg(target_os = "linux")]
const SO_SNDBUFFORCE: i32 = libc::SO_SNDBUFFORCE;
#[cfg(target_os = "linux")]
const SO_RCVBUFFORCE: i32 = libc::SO_RCVBUFFORCE;
#[cfg(not(target_os = "linux"))]
const SO_SNDBUFFORCE: i32 = -1;
#[cfg(not(target_os = "linux"))]
const SO_RCVBUFFORCE: i32 = -1;

/// `setsockopt(SOL_SOCKET, SO_{RCV,SND}BUFFORCE, bytes)`: socket2 has no wrapper.
#[cfg(target_os = "linux")]
fn force_buffer(socket: &Socket, option: i32, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: valid fd owned by `socket`, pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn force_buffer(_socket: &Socket, _option: i32, _bytes: usize) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "SO_*BUFFORCE"))
}

/// The address we advertise in `meta.host` (where 0.1.x peers send repair
/// requests and repairs), of the group's family. 0.1.x uses the first
/// non-internal IPv4 address of `os.networkInterfaces()`. We use, in order:
///
/// * IPv4 group: `multicast_interface`'s address (as given, or the IPv4
///   address of the interface named by name or index); `address` if it is a
///   specific non-loopback address; the first non-loopback IPv4 address of
///   the host's interfaces (`getifaddrs`, the order `os.networkInterfaces()`
///   lists them in; no packet sent anywhere); else `127.0.0.1`.
/// * IPv6 group: `address` if it is a specific non-loopback address; the
///   source address the kernel picks for the group on the interface (the
///   interface's link-local address for a link-local group, a global or ULA
///   one for a wider scope; asked of a connected UDP socket, which sends
///   nothing); the host's first non-loopback IPv6 address, global before
///   link-local; else `::1`.
///
/// An interface that does not resolve counts as none here; `start()` reports it.
pub fn advertised_host(options: &Options) -> IpAddr {
    advertised_host_on(options, &interface::resolve(options).unwrap_or_default())
}

/// [`advertised_host`] with the interface already resolved.
pub(crate) fn advertised_host_on(options: &Options, interface: &Resolved) -> IpAddr {
    let specific = |a: IpAddr| !a.is_unspecified() && !a.is_loopback() && !a.is_multicast();
    let address = options.address;
    match options.multicast_membership {
        IpAddr::V4(_) => {
            if let Some(a) = interface.v4.filter(|a| !a.is_unspecified()) {
                return a.into();
            }
            if address.is_ipv4() && specific(address) {
                return address;
            }
            first_host_address(false).unwrap_or(Ipv4Addr::LOCALHOST.into())
        }
        IpAddr::V6(_) => {
            if address.is_ipv6() && specific(address) {
                return address;
            }
            let group = group_addr(options, interface, options.port.max(1));
            match probe_source(options, interface, group) {
                Ok(a) if !a.is_unspecified() => a,
                _ => first_host_address(true).unwrap_or(Ipv6Addr::LOCALHOST.into()),
            }
        }
    }
}

/// The host's first non-loopback address of one family; IPv6 global (or
/// ULA) addresses before link-local ones.
fn first_host_address(v6: bool) -> Option<IpAddr> {
    let listed = interface::host_interfaces().ok()?;
    let all = || listed.iter().flat_map(|i| i.addrs.iter().copied());
    let usable = |a: &IpAddr| a.is_ipv6() == v6 && !a.is_loopback() && !a.is_unspecified();
    let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(a) if a.is_unicast_link_local());
    all().find(|a| usable(a) && !link_local(a)).or_else(|| all().find(usable))
}

/// The `host:port` a node advertises in its datagrams' meta (`meta.host`,
/// `meta.port`): once `start()` built the engine, its identity (kept across
/// stop/start on one port, so after `stop()` it is what peers saw last);
/// before, what the next start will write: [`advertised_host`] and
/// `options.port`. Over NATS the meta is the same (peers do not use it:
/// requests and repairs travel on the subject), and the port is the one that
/// names the default subject `eventcast.<port>`.
pub fn advertised_addr(options: &Options, identity: Option<&Identity>) -> SocketAddr {
    // The identity's host is always one of ours (`advertised_host` formatted), so it parses.
    match identity.and_then(|id| id.host.parse().ok().map(|host| SocketAddr::new(host, id.port))) {
        Some(addr) => addr,
        None => SocketAddr::new(advertised_host(options), options.port),
    }
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
mod tests;
