//! The multicast UDP socket (socket2) and host facts (advertised address, hostname).

use super::options::Options;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Receive and send buffer size we ask the kernel for. Linux caps it at
/// `net.core.rmem_max` (doubled); we read back what we got and log it.
pub const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Creates the node's socket: IPv4 UDP, SO_REUSEADDR + SO_REUSEPORT (several
/// nodes on one host and port all receive the group's datagrams), bound to
/// `address:port`, joined to the group on `multicast_interface` (or any),
/// loopback / TTL / outgoing interface set, large buffers, non-blocking.
pub fn bind_multicast(options: &Options) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
    socket.set_reuse_port(true)?;
    set_buffers(&socket);
    socket.bind(&SockAddr::from(SocketAddrV4::new(options.address, options.port)))?;
    let interface = options.multicast_interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    socket.join_multicast_v4(&options.multicast_membership, &interface)?;
    socket.set_multicast_loop_v4(options.multicast_loopback)?;
    socket.set_multicast_ttl_v4(options.multicast_ttl)?;
    if let Some(interface) = options.multicast_interface {
        socket.set_multicast_if_v4(&interface)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Leaves the group (best effort; closing the socket leaves it too).
pub fn leave_multicast(socket: &tokio::net::UdpSocket, options: &Options) {
    let interface = options.multicast_interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    if let Err(e) = socket.leave_multicast_v4(options.multicast_membership, interface) {
        tracing::debug!("leaving multicast group {}: {e}", options.multicast_membership);
    }
}

fn set_buffers(socket: &Socket) {
    // SO_RCVBUF is capped by net.core.rmem_max; SO_RCVBUFFORCE (root / CAP_NET_ADMIN) is not.
    // Try the forcing variant first, fall back to the capped one; never fail start over it.
    if force_buffer(socket, SO_RCVBUFFORCE).is_err() {
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    }
    if force_buffer(socket, SO_SNDBUFFORCE).is_err() {
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    }
    let rcv = socket.recv_buffer_size().unwrap_or(0);
    let snd = socket.send_buffer_size().unwrap_or(0);
    if rcv < SOCKET_BUFFER_BYTES {
        tracing::debug!("SO_RCVBUF is {rcv} bytes (asked {SOCKET_BUFFER_BYTES}); raise net.core.rmem_max for bursts");
    }
    tracing::trace!("socket buffers: rcv={rcv} snd={snd}");
}

// Linux generic socket option numbers (asm-generic/socket.h; same on x86 and arm).
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")))]
const SO_SNDBUFFORCE: i32 = 32;
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")))]
const SO_RCVBUFFORCE: i32 = 33;
#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm"))))]
const SO_SNDBUFFORCE: i32 = -1;
#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm"))))]
const SO_RCVBUFFORCE: i32 = -1;

/// `setsockopt(SOL_SOCKET, SO_{RCV,SND}BUFFORCE, 8 MiB)`. socket2 has no wrapper and
/// the crate does not depend on `libc`, so this declares the one libc symbol it needs.
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm")))]
fn force_buffer(socket: &Socket, option: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    let value: i32 = SOCKET_BUFFER_BYTES as i32;
    // SAFETY: valid fd owned by `socket`, pointer to a live i32 and its exact size.
    let rc = unsafe {
        setsockopt(socket.as_raw_fd(), SOL_SOCKET, option, (&value as *const i32).cast(), std::mem::size_of::<i32>() as u32)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86", target_arch = "arm"))))]
fn force_buffer(_socket: &Socket, _option: i32) -> io::Result<()> {
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
            eprintln!("SKIPPED: socket test needs scripts/netns-run.sh (private network namespace)");
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
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
