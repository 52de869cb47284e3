//! rtnetlink requests as data: one pure function per request, and
//! [`encode`] to put one on the wire with its flags and sequence number.
//!
//! Flags follow iproute2: a change asks for an ack (`NLM_F_ACK`), a new
//! address or route must not exist yet (`NLM_F_CREATE | NLM_F_EXCL`, so
//! adding twice fails with EEXIST), a bridge may (`NLM_F_CREATE` alone: the
//! kernel then changes the existing bridge, which with no attributes is a
//! no-op, and refuses a link of another kind), and a dump ends with
//! `NLMSG_DONE` rather than an ack.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A request and the netlink flags it is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub message: RouteNetlinkMessage,
    pub flags: u16,
}

impl Request {
    /// Whether the answer is a dump, ended by `NLMSG_DONE`.
    pub fn is_dump(&self) -> bool {
        self.flags & NLM_F_DUMP == NLM_F_DUMP
    }
}

const CHANGE: u16 = NLM_F_REQUEST | NLM_F_ACK;
const CREATE: u16 = CHANGE | NLM_F_CREATE | NLM_F_EXCL;
const DUMP: u16 = NLM_F_REQUEST | NLM_F_DUMP;

/// One change to an existing link (`RTM_SETLINK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkChange {
    Up,
    Down,
    Mtu(u32),
    Name(String),
    Master(u32),
    NetnsFd(RawFd),
}

/// A route in the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub destination: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub oif: u32,
}

/// The wire form of `request`, numbered `seq`.
pub(crate) fn encode(request: Request, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = request.flags;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(request.message));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

pub(crate) fn dump_links() -> Request {
    Request {
        message: RouteNetlinkMessage::GetLink(LinkMessage::default()),
        flags: DUMP,
    }
}

pub(crate) fn get_link(name: &str) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    Request {
        message: RouteNetlinkMessage::GetLink(message),
        flags: CHANGE,
    }
}

pub(crate) fn set_link(index: u32, change: LinkChange) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    match change {
        LinkChange::Up => {
            message.header.flags = LinkFlags::Up;
            message.header.change_mask = LinkFlags::Up;
        }
        LinkChange::Down => message.header.change_mask = LinkFlags::Up,
        LinkChange::Mtu(mtu) => message.attributes.push(LinkAttribute::Mtu(mtu)),
        LinkChange::Name(name) => message.attributes.push(LinkAttribute::IfName(name)),
        LinkChange::Master(master) => message.attributes.push(LinkAttribute::Controller(master)),
        LinkChange::NetnsFd(fd) => message.attributes.push(LinkAttribute::NetNsFd(fd)),
    }
    Request {
        message: RouteNetlinkMessage::SetLink(message),
        flags: CHANGE,
    }
}

pub(crate) fn new_bridge(name: &str) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        // An (empty) IFLA_INFO_DATA makes the kernel check the kind of
        // an existing link of that name: EOPNOTSUPP unless a bridge
        // (net/core/rtnetlink.c, `rtnl_newlink`).
        LinkInfo::Data(InfoData::Bridge(Vec::new())),
    ]));
    Request {
        message: RouteNetlinkMessage::NewLink(message),
        flags: CHANGE | NLM_F_CREATE,
    }
}

/// A veth pair `name` – `peer`; the peer gets MAC address `peer_mac` when
/// given (a random one otherwise) and is created straight in the network
/// namespace `peer_netns` when given.
pub(crate) fn new_veth(
    name: &str,
    peer: &str,
    peer_mac: Option<[u8; 6]>,
    peer_netns: Option<RawFd>,
) -> Request {
    let mut peer_message = LinkMessage::default();
    peer_message
        .attributes
        .push(LinkAttribute::IfName(peer.to_string()));
    if let Some(mac) = peer_mac {
        peer_message
            .attributes
            .push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(fd) = peer_netns {
        peer_message.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
    ]));
    Request {
        message: RouteNetlinkMessage::NewLink(message),
        flags: CREATE,
    }
}

pub(crate) fn delete_link(index: u32) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    Request {
        message: RouteNetlinkMessage::DelLink(message),
        flags: CHANGE,
    }
}

fn address_message(index: u32, address: Ipv4Addr, prefix_len: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix_len;
    message.header.index = index;
    message
        .attributes
        .push(AddressAttribute::Local(IpAddr::V4(address)));
    message
        .attributes
        .push(AddressAttribute::Address(IpAddr::V4(address)));
    message
}

/// `address/prefix_len` on link `index`, with the subnet's broadcast
/// address as `ip addr add … brd +` sets it.
pub(crate) fn new_address(index: u32, address: Ipv4Addr, prefix_len: u8) -> Request {
    let mut message = address_message(index, address, prefix_len);
    if let Some(broadcast) = broadcast(address, prefix_len) {
        message
            .attributes
            .push(AddressAttribute::Broadcast(broadcast));
    }
    Request {
        message: RouteNetlinkMessage::NewAddress(message),
        flags: CREATE,
    }
}

pub(crate) fn delete_address(index: u32, address: Ipv4Addr, prefix_len: u8) -> Request {
    Request {
        message: RouteNetlinkMessage::DelAddress(address_message(index, address, prefix_len)),
        flags: CHANGE,
    }
}

pub(crate) fn dump_addresses() -> Request {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    Request {
        message: RouteNetlinkMessage::GetAddress(message),
        flags: DUMP,
    }
}

fn route_message(route: &Route) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.destination_prefix_length = route.prefix_len;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    if route.prefix_len > 0 {
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(
                route.destination,
            )));
    }
    if let Some(gateway) = route.gateway {
        message
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    }
    message.attributes.push(RouteAttribute::Oif(route.oif));
    message
}

/// A unicast route; one without a gateway is on-link (scope link).
pub(crate) fn new_route(route: &Route) -> Request {
    let mut message = route_message(route);
    message.header.protocol = RouteProtocol::Boot;
    message.header.kind = RouteType::Unicast;
    message.header.scope = if route.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    Request {
        message: RouteNetlinkMessage::NewRoute(message),
        flags: CREATE,
    }
}

/// Deletes the route whatever its scope, as `ip route del` does.
pub(crate) fn delete_route(route: &Route) -> Request {
    let mut message = route_message(route);
    message.header.scope = RouteScope::NoWhere;
    Request {
        message: RouteNetlinkMessage::DelRoute(message),
        flags: CHANGE,
    }
}

/// The broadcast address of `address/prefix_len`; none for /31 and /32,
/// which have no room for one (RFC 3021).
pub(crate) fn broadcast(address: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(address) | host_bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> NetlinkMessage<RouteNetlinkMessage> {
        NetlinkMessage::deserialize(bytes).expect("decode our own request")
    }

    #[test]
    fn broadcast_of_each_prefix() {
        let table = [
            ("10.88.0.1", 24, Some("10.88.0.255")),
            ("10.88.3.7", 20, Some("10.88.15.255")),
            ("192.0.2.1", 30, Some("192.0.2.3")),
            ("10.0.0.1", 8, Some("10.255.255.255")),
            ("0.0.0.0", 0, Some("255.255.255.255")),
            ("192.0.2.1", 31, None),
            ("192.0.2.1", 32, None),
        ];
        for (address, prefix, want) in table {
            let address: Ipv4Addr = address.parse().expect("address");
            let want = want.map(|w| w.parse::<Ipv4Addr>().expect("broadcast"));
            assert_eq!(broadcast(address, prefix), want, "{address}/{prefix}");
        }
    }

    #[test]
    fn requests_carry_their_flags_and_sequence_number() {
        let table: Vec<(&str, Request, u16)> = vec![
            ("dump links", dump_links(), DUMP),
            ("get link", get_link("eth0"), CHANGE),
            ("set up", set_link(3, LinkChange::Up), CHANGE),
            ("bridge", new_bridge("berth0"), CHANGE | NLM_F_CREATE),
            ("veth", new_veth("vb1", "eth0", None, None), CREATE),
            ("delete link", delete_link(3), CHANGE),
            (
                "address",
                new_address(3, Ipv4Addr::new(10, 88, 0, 1), 24),
                CREATE,
            ),
            ("dump addresses", dump_addresses(), DUMP),
            (
                "default route",
                new_route(&Route {
                    destination: Ipv4Addr::UNSPECIFIED,
                    prefix_len: 0,
                    gateway: Some(Ipv4Addr::new(10, 88, 0, 1)),
                    oif: 2,
                }),
                CREATE,
            ),
        ];
        for (name, request, flags) in table {
            let dump = request.is_dump();
            let message = decode(&encode(request, 41));
            assert_eq!(message.header.flags, flags, "{name}");
            assert_eq!(message.header.sequence_number, 41, "{name}");
            assert_eq!(dump, flags & NLM_F_DUMP == NLM_F_DUMP, "{name}");
        }
    }

    #[test]
    fn up_and_down_touch_only_the_up_flag() {
        for (change, flags) in [
            (LinkChange::Up, LinkFlags::Up),
            (LinkChange::Down, LinkFlags::empty()),
        ] {
            let NetlinkPayload::InnerMessage(RouteNetlinkMessage::SetLink(link)) =
                decode(&encode(set_link(7, change), 1)).payload
            else {
                panic!("not a SETLINK");
            };
            assert_eq!(link.header.index, 7);
            assert_eq!(link.header.flags, flags);
            assert_eq!(link.header.change_mask, LinkFlags::Up);
        }
    }

    #[test]
    fn the_peer_of_a_veth_gets_the_chosen_mac() {
        let mac = [0x02, 0x42, 10, 88, 0, 2];
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) =
            decode(&encode(new_veth("bv1", "eth0", Some(mac), Some(9)), 1)).payload
        else {
            panic!("not a NEWLINK");
        };
        let peer = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) => Some(peer),
                    _ => None,
                }),
                _ => None,
            })
            .expect("a peer");
        assert!(peer
            .attributes
            .contains(&LinkAttribute::Address(mac.to_vec())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(9)));
        assert!(!link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Address(_))));
    }

    #[test]
    fn address_carries_local_address_and_broadcast() {
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address)) =
            decode(&encode(new_address(4, Ipv4Addr::new(10, 88, 0, 1), 24), 1)).payload
        else {
            panic!("not a NEWADDR");
        };
        assert_eq!(address.header.index, 4);
        assert_eq!(address.header.prefix_len, 24);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1));
        assert!(address.attributes.contains(&AddressAttribute::Local(ip)));
        assert!(address.attributes.contains(&AddressAttribute::Address(ip)));
        assert!(address
            .attributes
            .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(10, 88, 0, 255))));
    }

    #[test]
    fn routes_with_and_without_gateway() {
        let table = [
            (
                0,
                Some(Ipv4Addr::new(10, 88, 0, 1)),
                RouteScope::Universe,
                false,
            ),
            (24, None, RouteScope::Link, true),
        ];
        for (prefix_len, gateway, scope, has_destination) in table {
            let route = Route {
                destination: Ipv4Addr::new(10, 99, 0, 0),
                prefix_len,
                gateway,
                oif: 5,
            };
            let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(message)) =
                decode(&encode(new_route(&route), 1)).payload
            else {
                panic!("not a NEWROUTE");
            };
            assert_eq!(message.header.scope, scope);
            assert_eq!(message.header.table, RouteHeader::RT_TABLE_MAIN);
            assert_eq!(message.header.destination_prefix_length, prefix_len);
            let destination = message
                .attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Destination(_)));
            assert_eq!(destination, has_destination, "/{prefix_len}");
            assert!(message.attributes.contains(&RouteAttribute::Oif(5)));
        }
    }
}
