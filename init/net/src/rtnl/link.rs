//! What berth needs to know of a network interface and its IPv4
//! addresses, read out of rtnetlink messages (pure).

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::AddressFamily;

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up: carrier present (`IFF_RUNNING`, RFC 2863).
    pub running: bool,
    pub mtu: u32,
    /// The bridge this link is a port of (`IFLA_MASTER`).
    pub master: Option<u32>,
}

impl Link {
    /// Up and with carrier: what the console reports as "link up".
    pub fn usable(&self) -> bool {
        self.up && self.running
    }

    /// The link a `RTM_NEWLINK` describes; `None` for one without a name,
    /// which the kernel never sends.
    pub(crate) fn from_message(message: &LinkMessage) -> Option<Link> {
        let mut link = Link {
            index: message.header.index,
            name: String::new(),
            mac: None,
            up: message.header.flags.contains(LinkFlags::Up),
            running: message.header.flags.contains(LinkFlags::Running),
            mtu: 0,
            master: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name = name.clone(),
                LinkAttribute::Address(mac) => link.mac = mac.as_slice().try_into().ok(),
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                LinkAttribute::Controller(master) => link.master = Some(*master),
                _ => {}
            }
        }
        (!link.name.is_empty()).then_some(link)
    }
}

/// Whether the kernel accepts `name` for an interface: 1 to 15 bytes
/// (`IFNAMSIZ` less the NUL), not `.` or `..`, no `/`, `:` or white space
/// (net/core/dev.c, `dev_valid_name`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// An IPv4 address of a link, as a `RTM_NEWADDR`/`RTM_DELADDR` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkAddress {
    pub index: u32,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// `IFA_LABEL`: the link's name when the address was added.
    pub label: Option<String>,
}

impl LinkAddress {
    /// The IPv4 address a message describes; `None` for other families.
    /// `IFA_LOCAL` is the interface's own address; `IFA_ADDRESS` is the
    /// peer's on point-to-point links, so it only counts without a local.
    pub(crate) fn from_message(message: &AddressMessage) -> Option<LinkAddress> {
        if message.header.family != AddressFamily::Inet {
            return None;
        }
        let mut local = None;
        let mut address = None;
        let mut label = None;
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(IpAddr::V4(ip)) => local = Some(*ip),
                AddressAttribute::Address(IpAddr::V4(ip)) => address = Some(*ip),
                AddressAttribute::Label(name) => label = Some(name.clone()),
                _ => {}
            }
        }
        Some(LinkAddress {
            index: message.header.index,
            address: local.or(address)?,
            prefix_len: message.header.prefix_len,
            label,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_message(flags: LinkFlags, attributes: Vec<LinkAttribute>) -> LinkMessage {
        let mut message = LinkMessage::default();
        message.header.index = 4;
        message.header.flags = flags;
        message.attributes = attributes;
        message
    }

    #[test]
    fn reads_a_link() {
        let message = link_message(
            LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp,
            vec![
                LinkAttribute::IfName("eth0".into()),
                LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
                LinkAttribute::Mtu(1500),
                LinkAttribute::Controller(9),
            ],
        );
        let link = Link::from_message(&message).expect("link");
        assert_eq!(
            link,
            Link {
                index: 4,
                name: "eth0".into(),
                mac: Some([2, 0, 0, 0, 0, 1]),
                up: true,
                running: true,
                mtu: 1500,
                master: Some(9),
            }
        );
        assert!(link.usable());
    }

    #[test]
    fn usable_needs_up_and_carrier() {
        let table = [
            (LinkFlags::empty(), false),
            (LinkFlags::Up, false),
            (LinkFlags::Running, false),
            (LinkFlags::Up | LinkFlags::Running, true),
        ];
        for (flags, usable) in table {
            let message = link_message(flags, vec![LinkAttribute::IfName("x".into())]);
            let link = Link::from_message(&message).expect("link");
            assert_eq!(link.usable(), usable, "{flags:?}");
        }
    }

    #[test]
    fn nameless_link_and_odd_mac_are_tolerated() {
        assert!(Link::from_message(&link_message(LinkFlags::Up, vec![])).is_none());
        let message = link_message(
            LinkFlags::Up,
            vec![
                LinkAttribute::IfName("ipip0".into()),
                LinkAttribute::Address(vec![0, 0, 0, 0]),
            ],
        );
        assert_eq!(Link::from_message(&message).expect("link").mac, None);
    }

    #[test]
    fn interface_names_the_kernel_accepts() {
        let table = [
            ("eth0", true),
            ("berth0", true),
            ("vb-0123456789ab", true),
            ("vb-0123456789abc", false),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a:b", false),
            ("a b", false),
        ];
        for (name, valid) in table {
            assert_eq!(valid_name(name), valid, "{name:?}");
        }
    }

    #[test]
    fn local_address_wins_over_peer_address() {
        let local = Ipv4Addr::new(10, 0, 0, 1);
        let peer = Ipv4Addr::new(10, 0, 0, 2);
        let table = [
            (vec![AddressAttribute::Address(IpAddr::V4(local))], local),
            (
                vec![
                    AddressAttribute::Address(IpAddr::V4(peer)),
                    AddressAttribute::Local(IpAddr::V4(local)),
                ],
                local,
            ),
        ];
        for (attributes, want) in table {
            let mut message = AddressMessage::default();
            message.header.family = AddressFamily::Inet;
            message.header.index = 3;
            message.header.prefix_len = 24;
            message.attributes = attributes;
            let got = LinkAddress::from_message(&message).expect("address");
            assert_eq!((got.index, got.address, got.prefix_len), (3, want, 24));
        }
    }

    #[test]
    fn ipv6_addresses_are_skipped() {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet6;
        message
            .attributes
            .push(AddressAttribute::Address("::1".parse().expect("ipv6")));
        assert!(LinkAddress::from_message(&message).is_none());
    }
}
