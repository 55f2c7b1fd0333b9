//! The multicast group and the interface that joins it, as options: the
//! [`MulticastInterface`] type, the group syntax with a zone
//! (`ff12::1%eth0`), and the checks every API applies to the pair.
//!
//! IPv4 groups work as in 0.1.x: the interface is an address of it, or any.
//! IPv6 groups (`ff00::/8`) join by interface index, and link-local ones
//! (`ff02::…`, `ff12::…`) exist only on one link, so they need the interface
//! named. Names and indexes are resolved at `start()` against the host's
//! interfaces (`interface`), not here: this module checks only what the value
//! itself says.

use crate::error::Error;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The network interface a node joins its group on and sends through
/// ([`Options::multicast_interface`](crate::Options::multicast_interface),
/// JS `multicastInterface`, CLI `--interface`).
///
/// Resolved at `start()` against the host's interfaces: a name, index or
/// address that no interface has fails the start with
/// [`Error::NoInterface`] (`ENOINTERFACE`), whose message lists the host's
/// interfaces. Parse one from text with [`str::parse`]: an IP address is
/// [`Addr`](Self::Addr), digits are an [`Index`](Self::Index), anything else
/// a [`Name`](Self::Name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MulticastInterface {
    /// An address of the interface. For an IPv4 group the kernel joins and
    /// sends by this address, as 0.1.x did (`0.0.0.0`: any interface, the
    /// route decides); for an IPv6 group, the interface holding it.
    Addr(IpAddr),
    /// The interface's name (`eth1`, `wg0`; Linux: at most 15 bytes).
    Name(String),
    /// The interface's index (what `ip link` prints first; an IPv6 scope id).
    Index(u32),
}

impl MulticastInterface {
    /// Whether this leaves the choice to the kernel's routes (`0.0.0.0`, `::`).
    pub fn is_any(&self) -> bool {
        matches!(self, MulticastInterface::Addr(a) if a.is_unspecified())
    }
}

impl fmt::Display for MulticastInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MulticastInterface::Addr(a) => write!(f, "{a}"),
            MulticastInterface::Name(n) => f.write_str(n),
            MulticastInterface::Index(i) => write!(f, "{i}"),
        }
    }
}

impl From<Ipv4Addr> for MulticastInterface {
    fn from(a: Ipv4Addr) -> Self {
        MulticastInterface::Addr(a.into())
    }
}

impl From<Ipv6Addr> for MulticastInterface {
    fn from(a: Ipv6Addr) -> Self {
        MulticastInterface::Addr(a.into())
    }
}

impl From<IpAddr> for MulticastInterface {
    fn from(a: IpAddr) -> Self {
        MulticastInterface::Addr(a)
    }
}

impl FromStr for MulticastInterface {
    type Err = String;

    /// `192.0.2.1` / `fe80::1` → an address, `3` → an index, `eth1` → a name.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(MulticastInterface::Addr(a));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let index = s.parse::<u32>().map_err(|_| format!("{s:?} is too large for an interface index"))?;
            let index = MulticastInterface::Index(index);
            check_interface_value(&index)?;
            return Ok(index);
        }
        let name = MulticastInterface::Name(s.to_string());
        check_interface_value(&name)?;
        Ok(name)
    }
}

/// Longest interface name Linux accepts (`IFNAMSIZ` minus the NUL).
pub const MAX_INTERFACE_NAME: usize = 15;

/// What the value of an interface says by itself: a name the kernel could
/// have (1–15 bytes, no `/`, whitespace or NUL, not `.` or `..`), an index
/// other than 0, an address that is not a group's.
fn check_interface_value(i: &MulticastInterface) -> Result<(), String> {
    match i {
        MulticastInterface::Name(n) => {
            if n.is_empty() || n.len() > MAX_INTERFACE_NAME {
                return Err(format!("{n:?} is not an interface name (1–{MAX_INTERFACE_NAME} bytes)"));
            }
            if n == "." || n == ".." || n.chars().any(|c| c == '/' || c == '\0' || c.is_whitespace()) {
                return Err(format!("{n:?} is not an interface name (no '/', spaces or NUL)"));
            }
        }
        MulticastInterface::Index(0) => {
            return Err("index 0 is no interface (leave multicastInterface unset for any)".into());
        }
        MulticastInterface::Index(_) => {}
        MulticastInterface::Addr(a) => {
            if a.is_multicast() || *a == IpAddr::V4(Ipv4Addr::BROADCAST) {
                return Err(format!("{a} is not a local interface address"));
            }
        }
    }
    Ok(())
}

/// Parses a group as the CLI takes it: an address, and for IPv6 an optional
/// zone naming the interface, `ff12::1%eth0` (or `%3`, an index), as
/// `ping -6` and URLs spell a scoped address. Returns the group and the
/// interface the zone names.
pub fn parse_group(text: &str) -> Result<(IpAddr, Option<MulticastInterface>), String> {
    let (addr, zone) = match text.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (text, None),
    };
    let group: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
    let interface = match zone {
        None => None,
        Some(_) if group.is_ipv4() => return Err(format!("{text:?}: only IPv6 groups take a %zone")),
        Some(z) => Some(z.parse::<MulticastInterface>()?),
    };
    Ok((group, interface))
}

/// Whether an IPv6 group's scope (RFC 4291: the low four bits of its second
/// byte) confines it to one link or one interface (`ff01::/16`, `ff02::/16`,
/// `ff12::/16`, ...): such a group means nothing without the interface, so
/// `multicast_interface` must name one. IPv4 groups never need it.
pub fn needs_interface(group: IpAddr) -> bool {
    match group {
        IpAddr::V4(_) => false,
        IpAddr::V6(g) => g.is_multicast() && (g.octets()[1] & 0x0f) <= 2,
    }
}

/// `multicastMembership`, `address` and `multicastInterface` together, and
/// the legacy scheme on an IPv6 group. Called by `Options::validate`.
pub(crate) fn check_group(
    address: IpAddr,
    group: IpAddr,
    interface: Option<&MulticastInterface>,
    legacy_encryption: bool,
) -> Result<(), Error> {
    fn bad(option: &'static str, reason: impl Into<String>) -> Result<(), Error> {
        Err(Error::InvalidOption { option, reason: reason.into() })
    }
    if !group.is_multicast() {
        return bad(
            "multicastMembership",
            format!("{group} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)"),
        );
    }
    let family = |a: IpAddr| if a.is_ipv4() { "IPv4" } else { "IPv6" };
    // Unspecified in either family means "any" (the default is 0.0.0.0 whatever the group).
    if !address.is_unspecified() {
        if address.is_ipv4() != group.is_ipv4() {
            return bad("address", format!("{address} is {}, the group {group} is {}", family(address), family(group)));
        }
        // Binding a group address is legal on Linux but confuses the advertised host; keep it simple.
        if (address.is_multicast() || address == IpAddr::V4(Ipv4Addr::BROADCAST)) && address != group {
            return bad("address", format!("{address} is not a local unicast address"));
        }
    }
    if let Some(i) = interface {
        check_interface_value(i).or_else(|reason| bad("multicastInterface", reason))?;
        if let MulticastInterface::Addr(a) = i {
            if !a.is_unspecified() && a.is_ipv4() != group.is_ipv4() {
                return bad(
                    "multicastInterface",
                    format!(
                        "{a} is {}, the group {group} is {} (name the interface instead)",
                        family(*a),
                        family(group)
                    ),
                );
            }
        }
    }
    if needs_interface(group) && interface.is_none_or(MulticastInterface::is_any) {
        return bad(
            "multicastInterface",
            format!(
                "{group} is a link-local (or interface-local) IPv6 group: it exists only on one link, so name the \
                 interface (multicastInterface: 'eth0', or its index)"
            ),
        );
    }
    if legacy_encryption && group.is_ipv6() {
        return bad(
            "encrypt",
            "the legacy scheme is for eventcast 0.1.x nodes, which speak IPv4 only; on an IPv6 group use \
             encrypt: {key} (the authenticated scheme)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(r: Result<(), Error>) -> Option<&'static str> {
        match r {
            Ok(()) => None,
            Err(Error::InvalidOption { option, .. }) => Some(option),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn interfaces_parse_as_address_index_or_name() {
        assert_eq!("192.0.2.1".parse(), Ok(MulticastInterface::Addr("192.0.2.1".parse().unwrap())));
        assert_eq!("fe80::1".parse(), Ok(MulticastInterface::Addr("fe80::1".parse().unwrap())));
        assert_eq!("3".parse(), Ok(MulticastInterface::Index(3)));
        assert_eq!("eth1".parse(), Ok(MulticastInterface::Name("eth1".into())));
        assert_eq!("eth0:1".parse(), Ok(MulticastInterface::Name("eth0:1".into())), "an IPv4 alias label");
        for bad in ["", "0", "99999999999", "a/b", "has space", "..", "sixteen-bytes-xx"] {
            assert!(bad.parse::<MulticastInterface>().is_err(), "{bad:?}");
        }
        for s in ["192.0.2.1", "fe80::1", "3", "eth1"] {
            assert_eq!(s.parse::<MulticastInterface>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn groups_parse_with_an_ipv6_zone() {
        let g = |s: &str| parse_group(s);
        assert_eq!(g("239.1.2.3"), Ok(("239.1.2.3".parse().unwrap(), None)));
        assert_eq!(g("ff12::1%eth0"), Ok(("ff12::1".parse().unwrap(), Some(MulticastInterface::Name("eth0".into())))));
        assert_eq!(g("ff12::1%4"), Ok(("ff12::1".parse().unwrap(), Some(MulticastInterface::Index(4)))));
        assert!(g("239.1.2.3%eth0").unwrap_err().contains("only IPv6"));
        assert!(g("ff12::1%").is_err());
        assert!(g("nonsense").is_err());
    }

    #[test]
    fn link_and_interface_local_groups_need_an_interface() {
        for g in ["ff02::1", "ff12::ec:1", "ff01::1", "ff32::1"] {
            assert!(needs_interface(g.parse().unwrap()), "{g}");
        }
        for g in ["ff05::1", "ff15::ec:1", "ff0e::1", "239.1.2.3", "224.0.0.1"] {
            assert!(!needs_interface(g.parse().unwrap()), "{g}");
        }
    }

    #[test]
    fn the_group_address_and_interface_are_checked_together() {
        let any4: IpAddr = Ipv4Addr::UNSPECIFIED.into();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let name = MulticastInterface::Name("eth0".into());
        let c = |address: IpAddr, group: &str, i: Option<&MulticastInterface>, legacy| {
            option(check_group(address, ip(group), i, legacy))
        };
        assert_eq!(c(any4, "239.1.2.3", None, true), None);
        assert_eq!(c(any4, "ff15::1", None, false), None, "0.0.0.0 means any for an IPv6 group too");
        assert_eq!(c(ip("::"), "239.1.2.3", None, false), None);
        assert_eq!(c(any4, "ff12::1", Some(&name), false), None);
        assert_eq!(c(any4, "ff12::1", Some(&MulticastInterface::Index(2)), false), None);
        assert_eq!(c(any4, "239.1.2.3", Some(&name), false), None, "IPv4 by name");
        assert_eq!(c(any4, "10.0.0.1", None, false), Some("multicastMembership"));
        assert_eq!(c(any4, "fd00::1", None, false), Some("multicastMembership"));
        assert_eq!(c(ip("10.0.0.1"), "ff15::1", None, false), Some("address"));
        assert_eq!(c(ip("fd00::1"), "239.1.2.3", None, false), Some("address"));
        assert_eq!(c(ip("fd00::1"), "ff15::1", None, false), None);
        assert_eq!(c(any4, "ff12::1", None, false), Some("multicastInterface"));
        assert_eq!(c(any4, "ff02::1", Some(&MulticastInterface::Addr(ip("::"))), false), Some("multicastInterface"));
        assert_eq!(
            c(any4, "ff15::1", Some(&MulticastInterface::Addr(ip("192.0.2.1"))), false),
            Some("multicastInterface")
        );
        assert_eq!(
            c(any4, "239.1.2.3", Some(&MulticastInterface::Addr(ip("fe80::1"))), false),
            Some("multicastInterface")
        );
        assert_eq!(
            c(any4, "239.1.2.3", Some(&MulticastInterface::Addr(ip("239.1.1.1"))), false),
            Some("multicastInterface")
        );
        assert_eq!(c(any4, "239.1.2.3", Some(&MulticastInterface::Index(0)), false), Some("multicastInterface"));
        assert_eq!(
            c(any4, "239.1.2.3", Some(&MulticastInterface::Name(String::new())), false),
            Some("multicastInterface")
        );
        assert_eq!(c(any4, "ff15::1", None, true), Some("encrypt"), "0.1.x's scheme on a group 0.1.x cannot join");
        let Err(e) = check_group(any4, ip("ff12::1"), None, false) else { panic!() };
        assert!(e.to_string().contains("link-local") && e.to_string().contains("eth0"), "{e}");
    }
}
