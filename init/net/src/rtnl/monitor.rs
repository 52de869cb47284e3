//! Watches links and IPv4 addresses so the console can say when a link's
//! carrier comes or goes and when an address is added or removed.
//!
//! Algorithm: [`Monitor::open`] joins `RTNLGRP_LINK` and
//! `RTNLGRP_IPV4_IFADDR` on a non-blocking socket, then seeds a
//! [`Tracker`] from a dump, so that only later transitions are reported.
//! [`Monitor::drain`] reads what is queued and turns each notification into
//! an [`Event`] (pure), which the tracker turns into at most one
//! [`Change`] (pure): the kernel sends `RTM_NEWLINK` on every change of a
//! link (flags, MTU, master, …), so the tracker keeps per link whether it
//! was last seen usable (up with carrier) and reports only flips.
//!
//! Two kernel habits matter. A bridge sends `AF_BRIDGE` link messages about
//! its ports to the same group, including an `RTM_DELLINK` when a port
//! leaves the bridge though the link lives on: only `AF_UNSPEC` link
//! messages count. And when the socket's queue overflows the kernel drops
//! notifications and says so once with ENOBUFS (netlink(7)): the monitor
//! then dumps links and addresses again and feeds the dump to the tracker
//! as events, so a transition missed in between is still reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::link::{Link, LinkAddress};
use super::reply::{self, Kind};
use super::socket::NlSocket;
use super::{decode, Error, Rtnl, NETLINK_ROUTE};

/// rtnetlink multicast groups (include/uapi/linux/rtnetlink.h).
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// At most this many datagrams per [`Monitor::drain`]: the socket stays
/// readable, so a storm of notifications cannot starve the main loop.
const DRAIN_LIMIT: usize = 256;

/// A change worth one console line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    LinkUp {
        name: String,
    },
    LinkDown {
        name: String,
    },
    AddressAdded {
        name: String,
        address: Ipv4Addr,
        prefix_len: u8,
    },
    AddressRemoved {
        name: String,
        address: Ipv4Addr,
        prefix_len: u8,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::LinkUp { name } => write!(f, "{name}: link up"),
            Change::LinkDown { name } => write!(f, "{name}: link down"),
            Change::AddressAdded {
                name,
                address,
                prefix_len,
            } => write!(f, "{name}: address {address}/{prefix_len} added"),
            Change::AddressRemoved {
                name,
                address,
                prefix_len,
            } => write!(f, "{name}: address {address}/{prefix_len} removed"),
        }
    }
}

/// A link/address monitor of the calling thread's network namespace.
#[derive(Debug)]
pub struct Monitor {
    socket: NlSocket,
    tracker: Tracker,
}

impl Monitor {
    pub fn open() -> Result<Monitor, Error> {
        let socket = NlSocket::open(NETLINK_ROUTE).map_err(Error::Open)?;
        let subscribe = |group: u32| {
            socket.subscribe(group).map_err(|cause| Error::Receive {
                op: format!("join rtnetlink group {group}"),
                cause,
            })
        };
        subscribe(RTNLGRP_LINK)?;
        subscribe(RTNLGRP_IPV4_IFADDR)?;
        socket.set_non_blocking().map_err(|cause| Error::Receive {
            op: "make the monitor socket non-blocking".to_string(),
            cause,
        })?;
        // Joined first, dumped second: a change in between shows up in
        // both, and the tracker reports it once at most.
        let mut tracker = Tracker::default();
        let (links, addresses) = snapshot()?;
        tracker.resync(links, addresses);
        Ok(Monitor { socket, tracker })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// The changes queued since the last call, oldest first. Read errors
    /// are logged, not returned: the monitor only informs.
    pub fn drain(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for _ in 0..DRAIN_LIMIT {
            match self.socket.receive_now() {
                Ok(Some(datagram)) => self.absorb(&datagram, &mut changes),
                Ok(None) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    log::warn!("rtnetlink monitor lost notifications; reading the state again");
                    match snapshot() {
                        Ok((links, addresses)) => {
                            changes.extend(self.tracker.resync(links, addresses))
                        }
                        Err(e) => log::warn!("rtnetlink monitor: {e}"),
                    }
                }
                Err(e) => {
                    log::warn!("rtnetlink monitor: read notifications: {e}");
                    break;
                }
            }
        }
        changes
    }

    fn absorb(&mut self, datagram: &[u8], changes: &mut Vec<Change>) {
        let frames = match reply::frames(datagram) {
            Ok(frames) => frames,
            Err(e) => {
                log::warn!("rtnetlink monitor: malformed notification: {e}");
                return;
            }
        };
        for frame in frames {
            let Kind::Data { message, .. } = frame.kind else {
                continue;
            };
            match decode(message) {
                Ok(message) => {
                    if let Some(event) = event(&message) {
                        changes.extend(self.tracker.observe(event));
                    }
                }
                Err(e) => log::debug!("rtnetlink monitor: skipping a notification: {e}"),
            }
        }
    }
}

/// Links and addresses as they are now, through a handle of its own.
fn snapshot() -> Result<(Vec<Link>, Vec<LinkAddress>), Error> {
    let rtnl = Rtnl::open()?;
    Ok((rtnl.links()?, rtnl.all_addresses()?))
}

/// What a notification says, if it is one the monitor follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Link(Link),
    LinkGone(u32),
    Address(LinkAddress),
    AddressGone(LinkAddress),
}

pub(crate) fn event(message: &RouteNetlinkMessage) -> Option<Event> {
    match message {
        RouteNetlinkMessage::NewLink(link)
            if link.header.interface_family == AddressFamily::Unspec =>
        {
            Link::from_message(link).map(Event::Link)
        }
        RouteNetlinkMessage::DelLink(link)
            if link.header.interface_family == AddressFamily::Unspec =>
        {
            Some(Event::LinkGone(link.header.index))
        }
        RouteNetlinkMessage::NewAddress(address) => {
            LinkAddress::from_message(address).map(Event::Address)
        }
        RouteNetlinkMessage::DelAddress(address) => {
            LinkAddress::from_message(address).map(Event::AddressGone)
        }
        _ => None,
    }
}

/// The last seen state of links and addresses, to report transitions only.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Per link index: its name and whether it was usable.
    links: BTreeMap<u32, (String, bool)>,
    addresses: BTreeSet<(u32, Ipv4Addr, u8)>,
}

impl Tracker {
    pub(crate) fn observe(&mut self, event: Event) -> Option<Change> {
        match event {
            Event::Link(link) => {
                let usable = link.usable();
                let before = self
                    .links
                    .insert(link.index, (link.name.clone(), usable))
                    .map(|(_, was)| was);
                // A link seen for the first time counts as having been down.
                match (before.unwrap_or(false), usable) {
                    (false, true) => Some(Change::LinkUp { name: link.name }),
                    (true, false) => Some(Change::LinkDown { name: link.name }),
                    _ => None,
                }
            }
            Event::LinkGone(index) => {
                // Its addresses went with it (the kernel flushes them first).
                self.addresses.retain(|(i, _, _)| *i != index);
                match self.links.remove(&index) {
                    Some((name, true)) => Some(Change::LinkDown { name }),
                    _ => None,
                }
            }
            Event::Address(address) => {
                let key = (address.index, address.address, address.prefix_len);
                self.addresses.insert(key).then(|| Change::AddressAdded {
                    name: self.name(&address),
                    address: address.address,
                    prefix_len: address.prefix_len,
                })
            }
            Event::AddressGone(address) => {
                let key = (address.index, address.address, address.prefix_len);
                self.addresses.remove(&key).then(|| Change::AddressRemoved {
                    name: self.name(&address),
                    address: address.address,
                    prefix_len: address.prefix_len,
                })
            }
        }
    }

    /// Brings the tracker to a full snapshot, reporting what differs.
    pub(crate) fn resync(&mut self, links: Vec<Link>, addresses: Vec<LinkAddress>) -> Vec<Change> {
        let mut changes = Vec::new();
        let now: BTreeSet<(u32, Ipv4Addr, u8)> = addresses
            .iter()
            .map(|a| (a.index, a.address, a.prefix_len))
            .collect();
        let gone: Vec<(u32, Ipv4Addr, u8)> = self.addresses.difference(&now).copied().collect();
        for (index, address, prefix_len) in gone {
            let event = Event::AddressGone(LinkAddress {
                index,
                address,
                prefix_len,
                label: None,
            });
            changes.extend(self.observe(event));
        }
        let present: BTreeSet<u32> = links.iter().map(|l| l.index).collect();
        let vanished: Vec<u32> = self
            .links
            .keys()
            .filter(|index| !present.contains(index))
            .copied()
            .collect();
        for index in vanished {
            changes.extend(self.observe(Event::LinkGone(index)));
        }
        for link in links {
            changes.extend(self.observe(Event::Link(link)));
        }
        for address in addresses {
            changes.extend(self.observe(Event::Address(address)));
        }
        changes
    }

    fn name(&self, address: &LinkAddress) -> String {
        self.links
            .get(&address.index)
            .map(|(name, _)| name.clone())
            .or_else(|| address.label.clone())
            .unwrap_or_else(|| format!("link #{}", address.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::address::AddressMessage;
    use netlink_packet_route::link::LinkMessage;

    fn link(index: u32, name: &str, up: bool, running: bool) -> Event {
        Event::Link(Link {
            index,
            name: name.into(),
            mac: None,
            up,
            running,
            mtu: 1500,
            master: None,
        })
    }

    fn address(index: u32, last: u8) -> LinkAddress {
        LinkAddress {
            index,
            address: Ipv4Addr::new(10, 0, 2, last),
            prefix_len: 24,
            label: None,
        }
    }

    #[test]
    fn reports_transitions_only() {
        let table: Vec<(Event, Option<&str>)> = vec![
            (link(2, "eth0", false, false), None),
            (link(2, "eth0", true, false), None),
            (link(2, "eth0", true, true), Some("eth0: link up")),
            (link(2, "eth0", true, true), None),
            (
                Event::Address(address(2, 15)),
                Some("eth0: address 10.0.2.15/24 added"),
            ),
            (Event::Address(address(2, 15)), None),
            (link(2, "eth0", true, false), Some("eth0: link down")),
            (link(2, "eth0", false, false), None),
            (
                Event::AddressGone(address(2, 15)),
                Some("eth0: address 10.0.2.15/24 removed"),
            ),
            (Event::AddressGone(address(2, 15)), None),
            (link(3, "veth1", true, true), Some("veth1: link up")),
            (link(3, "web0", true, true), None),
            (Event::LinkGone(3), Some("web0: link down")),
            (Event::LinkGone(3), None),
            (
                Event::Address(LinkAddress {
                    label: Some("tun0".into()),
                    ..address(9, 1)
                }),
                Some("tun0: address 10.0.2.1/24 added"),
            ),
            (
                Event::Address(address(10, 1)),
                Some("link #10: address 10.0.2.1/24 added"),
            ),
        ];
        let mut tracker = Tracker::default();
        for (step, (event, want)) in table.into_iter().enumerate() {
            let got = tracker.observe(event).map(|c| c.to_string());
            assert_eq!(got.as_deref(), want, "step {step}");
        }
    }

    #[test]
    fn resync_reports_what_differs_from_the_last_state() {
        let mut tracker = Tracker::default();
        let Event::Link(eth0) = link(2, "eth0", true, true) else {
            unreachable!()
        };
        let Event::Link(veth) = link(5, "veth5", true, true) else {
            unreachable!()
        };
        let seeded = tracker.resync(vec![eth0.clone(), veth], vec![address(2, 15)]);
        // Monitor::open discards what seeding reports.
        assert_eq!(seeded.len(), 3, "{seeded:?}");

        let Event::Link(eth0_down) = link(2, "eth0", true, false) else {
            unreachable!()
        };
        let changes: Vec<String> = tracker
            .resync(vec![eth0_down], vec![address(2, 16)])
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            changes,
            [
                "eth0: address 10.0.2.15/24 removed",
                "veth5: link down",
                "eth0: link down",
                "eth0: address 10.0.2.16/24 added",
            ]
        );
        assert_eq!(tracker.resync(vec![eth0], vec![address(2, 16)]).len(), 1);
    }

    #[test]
    fn bridge_port_messages_are_not_link_events() {
        let mut port = LinkMessage::default();
        port.header.index = 7;
        port.header.interface_family = AddressFamily::Bridge;
        assert_eq!(event(&RouteNetlinkMessage::DelLink(port.clone())), None);
        port.header.interface_family = AddressFamily::Unspec;
        assert_eq!(
            event(&RouteNetlinkMessage::DelLink(port)),
            Some(Event::LinkGone(7))
        );
        let mut v6 = AddressMessage::default();
        v6.header.family = AddressFamily::Inet6;
        assert_eq!(event(&RouteNetlinkMessage::NewAddress(v6)), None);
    }
}
