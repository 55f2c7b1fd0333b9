//! `--group` with an IPv6 zone (`ff12::1%eth0`) and `--interface`: the group
//! and interface options of `listen`, `emit` and `bridge`.

use eventcast::MulticastInterface;
use std::net::{IpAddr, SocketAddr};

/// `--group`: the address, and the interface an IPv6 zone (`%eth0`) names.
#[derive(Clone, Debug)]
pub(crate) struct GroupArg {
    group: IpAddr,
    zone: Option<MulticastInterface>,
}

pub(crate) fn group_arg(v: &str) -> Result<GroupArg, String> {
    eventcast::parse_group(v).map(|(group, zone)| GroupArg { group, zone })
}

/// The group and interface from `--group` (with its zone) and `--interface`:
/// a zone and `--interface` must agree.
pub(crate) fn group_and_interface(
    group: Option<GroupArg>,
    interface: Option<MulticastInterface>,
) -> Result<(Option<IpAddr>, Option<MulticastInterface>), String> {
    let Some(GroupArg { group, zone }) = group else { return Ok((None, interface)) };
    match (zone, interface) {
        (Some(z), Some(i)) if z != i => {
            Err(format!("--group {group}%{z} and --interface {i} name different interfaces; give one"))
        }
        (zone, interface) => Ok((Some(group), zone.or(interface))),
    }
}

/// `GROUP:PORT`, IPv6 groups in brackets, without the scope (printed apart, with the interface).
pub(crate) fn group_port(group: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(group, port)
}

#[cfg(test)]
mod tests {
    use crate::tests::parse_args;
    use crate::Command;
    use eventcast::MulticastInterface;

    #[test]
    fn ipv6_groups_take_the_interface_by_zone_or_flag() {
        let parse = |args: &[&str]| match parse_args(args) {
            Ok(Command::Listen(l)) => Ok(l.common.options),
            Ok(_) => panic!("not listen"),
            Err(e) => Err(e),
        };
        let eth0 = Some(MulticastInterface::Name("eth0".into()));
        let o = parse(&["listen", "--port", "9000", "--group", "ff12::ec:1%eth0"]).unwrap();
        assert_eq!((o.multicast_membership, &o.multicast_interface), ("ff12::ec:1".parse().unwrap(), &eth0));
        let o = parse(&["listen", "--port", "9000", "--group", "ff12::ec:1", "--interface", "eth0"]).unwrap();
        assert_eq!(o.multicast_interface, eth0);
        let o = parse(&["listen", "--port", "9000", "--group", "ff12::ec:1%eth0", "--interface", "eth0"]).unwrap();
        assert_eq!(o.multicast_interface, eth0, "the same interface twice is fine");
        let o = parse(&["listen", "--port", "9000", "--group", "ff15::ec:1", "--interface", "3"]).unwrap();
        assert_eq!(o.multicast_interface, Some(MulticastInterface::Index(3)));
        let o = parse(&["listen", "--port", "9000", "--interface", "wg0"]).unwrap();
        assert_eq!(o.multicast_interface, Some(MulticastInterface::Name("wg0".into())), "IPv4 by name");
        let o = parse(&["listen", "--port", "9000", "--interface", "192.0.2.1"]).unwrap();
        assert_eq!(o.multicast_interface, Some(MulticastInterface::Addr("192.0.2.1".parse().unwrap())));
        let err = parse(&["listen", "--port", "9000", "--group", "ff12::ec:1"]).unwrap_err();
        assert!(err.contains("multicastInterface") && err.contains("link-local"), "{err}");
        let err =
            parse(&["listen", "--port", "9000", "--group", "ff12::ec:1%eth0", "--interface", "eth1"]).unwrap_err();
        assert!(err.contains("different interfaces"), "{err}");
        assert!(parse(&["listen", "--port", "9000", "--group", "239.1.2.3%eth0"]).unwrap_err().contains("only IPv6"));
        let err = parse(&["listen", "--port", "9000", "--group", "ff15::1", "--key", "k", "--legacy"]).unwrap_err();
        assert!(err.contains("0.1.x") && err.contains("IPv4 only"), "{err}");
        let Command::Bridge(b) =
            parse_args(&["bridge", "--port", "9000", "--nats", "h", "--group", "ff12::1%2"]).unwrap()
        else {
            panic!("not bridge")
        };
        assert_eq!(b.options.multicast.multicast_interface, Some(MulticastInterface::Index(2)));
    }
}
