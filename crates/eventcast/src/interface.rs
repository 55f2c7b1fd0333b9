//! The host's network interfaces, and `multicast_interface` resolved against
//! them when a node starts.
//!
//! The list comes from `getifaddrs(3)` (through `libc`, already a dependency
//! of socket2 and tokio), with indexes from `if_nametoindex(3)`: one call
//! gives names, indexes and addresses of both families on Linux and the
//! BSDs alike, where reading `/proc/net/if_inet6` and `/proc/net/fib_trie` by
//! hand would cover Linux only and one family per file. Elsewhere (Windows)
//! names and indexes cannot be resolved and say so; addresses still work.

use super::group::MulticastInterface;
use super::options::Options;
use crate::error::Error;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

/// One network interface of this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInterface {
    /// Its name (`eth0`; an IPv4 alias label such as `eth0:1` is listed as its own entry).
    pub name: String,
    /// Its index (`if_nametoindex`; 0 if the kernel did not say).
    pub index: u32,
    /// Its addresses, IPv4 and IPv6, in the order the kernel lists them.
    pub addrs: Vec<IpAddr>,
}

impl fmt::Display for HostInterface {
    /// `eth0 (192.0.2.1, fe80::1)`, or `eth1 (no address)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.name)?;
        if self.addrs.is_empty() {
            f.write_str("no address")?;
        }
        for (k, a) in self.addrs.iter().enumerate() {
            write!(f, "{}{a}", if k == 0 { "" } else { ", " })?;
        }
        f.write_str(")")
    }
}

/// The interfaces of this host (of the calling thread's network namespace),
/// by index. Loopback included, down ones too: a name that exists but is
/// down should fail on joining, not as "no such interface".
pub fn host_interfaces() -> io::Result<Vec<HostInterface>> {
    let mut list = list_interfaces()?;
    list.sort_by(|a, b| (a.index, &a.name).cmp(&(b.index, &b.name)));
    Ok(list)
}

/// The interface a started node joins its group on and sends through, as
/// resolved at start ([`Eventcast::interface`](crate::Eventcast::interface)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInUse {
    /// Its name, when known: `None` when the route picks the interface per
    /// datagram (an IPv4 group without `multicast_interface`) and no
    /// interface holds the source address.
    pub name: Option<String>,
    /// Its index; 0 when the route picks it and no interface holds the source.
    pub index: u32,
    /// The source address of our datagrams (what the kernel picks for the
    /// group on this interface; `0.0.0.0` where it has none to pick).
    pub source: IpAddr,
}

impl fmt::Display for InterfaceInUse {
    /// `eth0 (index 2, source 192.0.2.1)`, or `route's choice (source ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, self.index) {
            (Some(name), 0) => write!(f, "{name} (source {})", self.source),
            (Some(name), index) => write!(f, "{name} (index {index}, source {})", self.source),
            (None, 0) => write!(f, "the route's choice (source {})", self.source),
            (None, index) => write!(f, "index {index} (source {})", self.source),
        }
    }
}

/// `multicast_interface` as the sockets need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The interface's name, when one of the host's was found.
    pub(crate) name: Option<String>,
    /// Its index: what an IPv6 group is joined and sent on; 0 = any (the route decides).
    pub(crate) index: u32,
    /// IPv4 groups: the address they are joined and sent by (`None`: any).
    pub(crate) v4: Option<Ipv4Addr>,
}

impl Resolved {
    /// What the node reports once its send socket knows the source address:
    /// the name, else the interface holding `source`.
    pub(crate) fn in_use(&self, source: IpAddr) -> InterfaceInUse {
        let holder = || host_interfaces().ok()?.into_iter().find(|i| i.addrs.contains(&source));
        match &self.name {
            Some(name) => InterfaceInUse { name: Some(name.clone()), index: self.index, source },
            None => match holder().filter(|_| !source.is_unspecified()) {
                Some(i) => InterfaceInUse { name: Some(i.name), index: i.index, source },
                None => InterfaceInUse { name: None, index: self.index, source },
            },
        }
    }
}

/// Resolves `options.multicast_interface` for the group's family:
/// [`Error::NoInterface`] when the host has no such interface, or (IPv4
/// group) the interface has no IPv4 address to join by. An IPv4 address is
/// taken as it is (the kernel refuses one that is not local when joining),
/// as 0.1.x did; the list only names its interface.
pub(crate) fn resolve(options: &Options) -> Result<Resolved, Error> {
    let Some(spec) = options.multicast_interface.as_ref().filter(|i| !i.is_any()) else {
        return Ok(Resolved::default());
    };
    let ipv4_group = options.multicast_membership.is_ipv4();
    if let (true, MulticastInterface::Addr(IpAddr::V4(a))) = (ipv4_group, spec) {
        let listed = host_interfaces().unwrap_or_default();
        let holder = listed.iter().find(|i| i.addrs.contains(&IpAddr::V4(*a)));
        return Ok(Resolved {
            name: holder.map(|i| i.name.clone()),
            index: holder.map_or(0, |i| i.index),
            v4: Some(*a),
        });
    }
    let listed = host_interfaces()
        .map_err(|e| no_interface(spec, format!("cannot list this host's interfaces to find {spec} ({e})"), &[]))?;
    let found = match spec {
        MulticastInterface::Name(n) => listed.iter().find(|i| &i.name == n),
        MulticastInterface::Index(x) => listed.iter().find(|i| i.index == *x),
        MulticastInterface::Addr(a) => listed.iter().find(|i| i.addrs.contains(a)),
    };
    let Some(found) = found else {
        let reason = match spec {
            MulticastInterface::Name(n) => format!("no network interface {n:?} on this host"),
            MulticastInterface::Index(x) => format!("no network interface with index {x} on this host"),
            MulticastInterface::Addr(a) => format!("no network interface of this host has the address {a}"),
        };
        return Err(no_interface(spec, reason, &listed));
    };
    let v4 = found.addrs.iter().find_map(|a| match a {
        IpAddr::V4(v) => Some(*v),
        IpAddr::V6(_) => None,
    });
    if ipv4_group && v4.is_none() {
        let reason = format!(
            "network interface {} has no IPv4 address, which joining IPv4 group {} needs",
            found.name, options.multicast_membership
        );
        return Err(no_interface(spec, reason, &listed));
    }
    Ok(Resolved { name: Some(found.name.clone()), index: found.index, v4: v4.filter(|_| ipv4_group) })
}

fn no_interface(spec: &MulticastInterface, reason: String, listed: &[HostInterface]) -> Error {
    Error::NoInterface {
        interface: spec.to_string(),
        reason,
        available: listed.iter().map(|i| i.to_string()).collect(),
    }
}

#[cfg(unix)]
fn list_interfaces() -> io::Result<Vec<HostInterface>> {
    use std::ffi::CStr;
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is ours until freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out: Vec<HostInterface> = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        // SAFETY: a non-null ifa_addr points to a sockaddr of the family it names, owned by the list.
        let addr = if ifa.ifa_addr.is_null() { None } else { unsafe { sockaddr_ip(ifa.ifa_addr) } };
        let k = match out.iter().position(|i| i.name == name) {
            Some(k) => k,
            None => {
                out.push(HostInterface { name, index: 0, addrs: Vec::new() });
                out.len() - 1
            }
        };
        if let Some(a) = addr.filter(|a| !out[k].addrs.contains(a)) {
            out[k].addrs.push(a);
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once; no reference into it outlives this.
    unsafe { libc::freeifaddrs(head) };
    for i in &mut out {
        // An alias label (`eth0:1`) is its interface's address: the index is the interface's.
        let base = i.name.split(':').next().unwrap_or(&i.name);
        if let Ok(c) = std::ffi::CString::new(base) {
            // SAFETY: a valid NUL-terminated string for the call's duration.
            i.index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        }
    }
    Ok(out)
}

/// The IP address of an `AF_INET`/`AF_INET6` sockaddr; `None` for other families.
///
/// # Safety
/// `sa` points to a readable sockaddr whose storage is as large as its family's type.
#[cfg(unix)]
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller's promise; read_unaligned makes no alignment assumption.
    let family = i32::from(unsafe { std::ptr::read_unaligned(sa) }.sa_family);
    match family {
        libc::AF_INET => {
            // SAFETY: an AF_INET sockaddr is a sockaddr_in (caller's promise on its size).
            let sin = unsafe { std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in>()) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6 (caller's promise on its size).
            let sin6 = unsafe { std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in6>()) };
            Some(IpAddr::V6(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(not(unix))]
fn list_interfaces() -> io::Result<Vec<HostInterface>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "interface names and indexes need getifaddrs (Unix); give an address",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn the_host_has_a_loopback_interface_with_its_addresses() {
        let list = host_interfaces().unwrap();
        let lo = list.iter().find(|i| i.addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST))).expect("loopback listed");
        assert!(lo.index > 0, "{lo:?}");
        assert!(lo.to_string().starts_with(&format!("{} (", lo.name)), "{lo}");
    }

    fn options(group: &str, interface: Option<MulticastInterface>) -> Options {
        Options {
            multicast_membership: group.parse().unwrap(),
            multicast_interface: interface,
            ..Options::with_port(1)
        }
    }

    #[test]
    fn a_missing_interface_is_enointerface_naming_it_and_listing_the_hosts() {
        let lo = host_interfaces().unwrap().into_iter().find(|i| i.addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let lo = lo.expect("loopback listed");
        for (group, spec, says) in [
            ("239.1.2.3", MulticastInterface::Name("ec-missing0".into()), "no network interface \"ec-missing0\""),
            ("ff15::1", MulticastInterface::Name("ec-missing0".into()), "no network interface \"ec-missing0\""),
            ("ff12::1", MulticastInterface::Index(u32::MAX), "no network interface with index 4294967295"),
            ("ff15::1", MulticastInterface::Addr("fd00:ec::dead".parse().unwrap()), "has the address fd00:ec::dead"),
        ] {
            let err = resolve(&options(group, Some(spec.clone()))).unwrap_err();
            assert_eq!(err.code(), "ENOINTERFACE", "{err}");
            let text = err.to_string();
            assert!(text.contains(says), "{text}");
            assert!(text.contains(&lo.to_string()), "lists the host's interfaces: {text}");
            let Error::NoInterface { interface, available, .. } = err else { panic!() };
            assert_eq!(interface, spec.to_string());
            assert!(available.contains(&lo.to_string()));
        }
    }

    #[test]
    fn names_indexes_and_addresses_resolve_to_the_same_interface() {
        let lo = host_interfaces().unwrap().into_iter().find(|i| i.addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let lo = lo.expect("loopback listed");
        let by_name = resolve(&options("239.1.2.3", Some(MulticastInterface::Name(lo.name.clone())))).unwrap();
        assert_eq!(by_name, Resolved { name: Some(lo.name.clone()), index: lo.index, v4: Some(Ipv4Addr::LOCALHOST) });
        let by_index = resolve(&options("239.1.2.3", Some(MulticastInterface::Index(lo.index)))).unwrap();
        assert_eq!(by_index, by_name);
        let by_addr = resolve(&options("239.1.2.3", Some(Ipv4Addr::LOCALHOST.into()))).unwrap();
        assert_eq!(by_addr, by_name);
        // IPv6: the index is what counts; no IPv4 address carried.
        let v6 = resolve(&options("ff12::1", Some(MulticastInterface::Name(lo.name.clone())))).unwrap();
        assert_eq!(v6, Resolved { name: Some(lo.name.clone()), index: lo.index, v4: None });
        if lo.addrs.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)) {
            assert_eq!(resolve(&options("ff12::1", Some(Ipv6Addr::LOCALHOST.into()))).unwrap(), v6);
        }
        // No interface, or "any": the route decides.
        assert_eq!(resolve(&options("239.1.2.3", None)).unwrap(), Resolved::default());
        assert_eq!(resolve(&options("239.1.2.3", Some(Ipv4Addr::UNSPECIFIED.into()))).unwrap(), Resolved::default());
        // An IPv4 address no interface has is passed on as it is (the kernel refuses it when joining).
        let foreign = resolve(&options("239.1.2.3", Some(Ipv4Addr::new(192, 0, 2, 77).into()))).unwrap();
        assert_eq!(foreign, Resolved { name: None, index: 0, v4: Some(Ipv4Addr::new(192, 0, 2, 77)) });
    }

    #[test]
    fn in_use_reports_name_index_and_source() {
        let r = Resolved { name: Some("eth0".into()), index: 2, v4: None };
        assert_eq!(r.in_use("fe80::1".parse().unwrap()).to_string(), "eth0 (index 2, source fe80::1)");
        let any = Resolved::default().in_use(Ipv4Addr::UNSPECIFIED.into());
        assert_eq!(any.to_string(), "the route's choice (source 0.0.0.0)");
    }
}
