//! A small blocking rtnetlink handle for PID 1: list and change links,
//! IPv4 addresses and routes, create bridges and veth pairs, and watch
//! links and addresses ([`Monitor`]).
//!
//! Algorithm: each call builds one request (`message`, pure), numbers it
//! with the next sequence number, sends it and reads datagrams until that
//! number's answer is complete: an ack for a change, `NLMSG_DONE` for a
//! dump. Messages with other numbers (the late answer to a request that
//! timed out) are skipped. A kernel error becomes [`Error::Kernel`] naming
//! the request and its object; a link known only by index is named by a
//! lookup made only then, so a successful call costs one round trip.
//!
//! The socket lives in the network namespace of the thread that opened it
//! (netlink sockets keep the namespace they were created in): to work in
//! another namespace, enter it and open another handle, as `veth` does.
//! The handle is single-threaded (`&self` methods, the sequence number in a
//! `Cell`).

mod error;
mod link;
mod message;
mod monitor;
pub(crate) mod reply;
pub(crate) mod socket;

use std::cell::Cell;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;

pub use self::error::Error;
pub use self::link::{valid_name, Link};
pub use self::monitor::{Change, Monitor};
pub use self::reply::KernelError;

use self::link::LinkAddress;
use self::message::{LinkChange, Request, Route};
use self::reply::Kind;
use self::socket::NlSocket;

/// `netlink(7)`: the routing protocol.
const NETLINK_ROUTE: isize = 0;

/// A blocking rtnetlink handle.
#[derive(Debug)]
pub struct Rtnl {
    socket: NlSocket,
    seq: Cell<u32>,
}

impl Rtnl {
    /// Opens a handle in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl, Error> {
        let socket = NlSocket::open(NETLINK_ROUTE).map_err(Error::Open)?;
        Ok(Rtnl {
            socket,
            seq: Cell::new(0),
        })
    }

    /// Every link of the namespace.
    pub fn links(&self) -> Result<Vec<Link>, Error> {
        let answers = self.transact(message::dump_links(), || "list links".to_string())?;
        Ok(answers
            .iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(link) => Link::from_message(link),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if there is one.
    pub fn link(&self, name: &str) -> Result<Option<Link>, Error> {
        let op = || format!("look up link {name}");
        check_name(name, op)?;
        match self.transact(message::get_link(name), op) {
            Ok(answers) => Ok(answers.iter().find_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(link) => Link::from_message(link),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn set_up(&self, index: u32) -> Result<(), Error> {
        self.change(message::set_link(index, LinkChange::Up), || {
            format!("bring {} up", self.label(index))
        })
    }

    pub fn set_down(&self, index: u32) -> Result<(), Error> {
        self.change(message::set_link(index, LinkChange::Down), || {
            format!("bring {} down", self.label(index))
        })
    }

    pub fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), Error> {
        self.change(message::set_link(index, LinkChange::Mtu(mtu)), || {
            format!("set mtu {mtu} on {}", self.label(index))
        })
    }

    pub fn set_name(&self, index: u32, name: &str) -> Result<(), Error> {
        let op = || format!("rename {} to {name}", self.label(index));
        check_name(name, op)?;
        self.change(
            message::set_link(index, LinkChange::Name(name.to_string())),
            op,
        )
    }

    /// Makes link `index` a port of bridge `bridge_index`.
    pub fn set_master(&self, index: u32, bridge_index: u32) -> Result<(), Error> {
        self.change(
            message::set_link(index, LinkChange::Master(bridge_index)),
            || {
                format!(
                    "attach {} to bridge {}",
                    self.label(index),
                    self.label(bridge_index)
                )
            },
        )
    }

    /// Moves link `index` into the network namespace `netns` (an open
    /// `/proc/PID/ns/net` or `/run/netns/NAME`). Its addresses do not go
    /// with it: the kernel flushes them.
    pub fn set_netns_fd(&self, index: u32, netns: BorrowedFd<'_>) -> Result<(), Error> {
        self.change(
            message::set_link(index, LinkChange::NetnsFd(netns.as_raw_fd())),
            || format!("move {} to another network namespace", self.label(index)),
        )
    }

    /// Adds `address/prefix_len` (with its broadcast address) to link
    /// `index`; fails with EEXIST if the link has it already.
    pub fn add_address(&self, index: u32, address: Ipv4Addr, prefix_len: u8) -> Result<(), Error> {
        let op = || {
            format!(
                "add address {address}/{prefix_len} to {}",
                self.label(index)
            )
        };
        check_prefix(prefix_len, op)?;
        self.change(message::new_address(index, address, prefix_len), op)
    }

    pub fn del_address(&self, index: u32, address: Ipv4Addr, prefix_len: u8) -> Result<(), Error> {
        let op = || {
            format!(
                "remove address {address}/{prefix_len} from {}",
                self.label(index)
            )
        };
        check_prefix(prefix_len, op)?;
        self.change(message::delete_address(index, address, prefix_len), op)
    }

    /// The IPv4 addresses of link `index`.
    pub fn addresses(&self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, Error> {
        Ok(self
            .all_addresses()?
            .into_iter()
            .filter(|a| a.index == index)
            .map(|a| (a.address, a.prefix_len))
            .collect())
    }

    pub(crate) fn all_addresses(&self) -> Result<Vec<LinkAddress>, Error> {
        let answers = self.transact(message::dump_addresses(), || "list addresses".to_string())?;
        Ok(answers
            .iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewAddress(address) => LinkAddress::from_message(address),
                _ => None,
            })
            .collect())
    }

    /// Adds a route to `destination/prefix_len` (prefix 0: the default
    /// route) out of link `oif`, via `gateway` or on-link without one.
    pub fn add_route(
        &self,
        destination: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> Result<(), Error> {
        let route = Route {
            destination,
            prefix_len,
            gateway,
            oif,
        };
        let op = || format!("add {}", describe_route(&route, &self.label(oif)));
        check_prefix(prefix_len, op)?;
        self.change(message::new_route(&route), op)
    }

    pub fn del_route(
        &self,
        destination: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> Result<(), Error> {
        let route = Route {
            destination,
            prefix_len,
            gateway,
            oif,
        };
        let op = || format!("delete {}", describe_route(&route, &self.label(oif)));
        check_prefix(prefix_len, op)?;
        self.change(message::delete_route(&route), op)
    }

    /// Creates bridge `name`. Idempotent: an existing bridge of that name
    /// is left as it is (the request carries `NLM_F_CREATE` without
    /// `NLM_F_EXCL`); an existing link of another kind is an error.
    pub fn create_bridge(&self, name: &str) -> Result<(), Error> {
        let op = || format!("create bridge {name}");
        check_name(name, op)?;
        self.change(message::new_bridge(name), op)
    }

    /// Creates the veth pair `name` – `peer_name` in this namespace.
    pub fn create_veth(&self, name: &str, peer_name: &str) -> Result<(), Error> {
        let op = || format!("create veth pair {name}/{peer_name}");
        check_name(name, op)?;
        check_name(peer_name, op)?;
        self.change(message::new_veth(name, peer_name, None, None), op)
    }

    /// Creates the veth pair `name` – `peer_name` with the peer straight
    /// in network namespace `netns`: no temporary name in this namespace,
    /// no window in which a half-made pair is visible here. The peer gets
    /// MAC address `peer_mac` when given, a random one otherwise.
    pub fn create_veth_into(
        &self,
        name: &str,
        peer_name: &str,
        peer_mac: Option<[u8; 6]>,
        netns: BorrowedFd<'_>,
    ) -> Result<(), Error> {
        let op = || format!("create veth pair {name}/{peer_name} (peer in another namespace)");
        check_name(name, op)?;
        check_name(peer_name, op)?;
        self.change(
            message::new_veth(name, peer_name, peer_mac, Some(netns.as_raw_fd())),
            op,
        )
    }

    /// Deletes link `index`; for a veth, its peer goes too.
    pub fn delete_link(&self, index: u32) -> Result<(), Error> {
        self.change(message::delete_link(index), || {
            format!("delete {}", self.label(index))
        })
    }

    /// How errors name link `index`: its name, looked up now.
    fn label(&self, index: u32) -> String {
        self.links()
            .ok()
            .and_then(|links| links.into_iter().find(|l| l.index == index))
            .map_or_else(|| format!("link #{index}"), |l| l.name)
    }

    fn change(&self, request: Request, op: impl Fn() -> String) -> Result<(), Error> {
        self.transact(request, op).map(drop)
    }

    /// Sends `request` and collects its answers up to the ack or the end
    /// of the dump.
    fn transact(
        &self,
        request: Request,
        op: impl Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, Error> {
        // 0 is what the kernel's notifications carry: never use it.
        let seq = self.seq.get().wrapping_add(1).max(1);
        self.seq.set(seq);
        let dump = request.is_dump();
        self.socket
            .send(&message::encode(request, seq))
            .map_err(|cause| Error::Send { op: op(), cause })?;
        let mut answers = Vec::new();
        loop {
            let datagram = self
                .socket
                .receive()
                .map_err(|cause| Error::Receive { op: op(), cause })?;
            let frames =
                reply::frames(&datagram).map_err(|reason| Error::Decode { op: op(), reason })?;
            for frame in frames {
                if frame.seq != seq {
                    log::debug!("rtnetlink: skipping a message for request {}", frame.seq);
                    continue;
                }
                match frame.kind {
                    Kind::Data { message, .. } => answers.push(
                        decode(message).map_err(|reason| Error::Decode { op: op(), reason })?,
                    ),
                    Kind::Ack if !dump => return Ok(answers),
                    Kind::Done if dump => return Ok(answers),
                    Kind::Error(cause) => return Err(Error::Kernel { op: op(), cause }),
                    Kind::Ack | Kind::Done | Kind::Noop => {}
                }
            }
        }
    }
}

/// Decodes one rtnetlink message (header included).
pub(crate) fn decode(message: &[u8]) -> Result<RouteNetlinkMessage, String> {
    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(message) {
        Ok(NetlinkMessage {
            payload: NetlinkPayload::InnerMessage(inner),
            ..
        }) => Ok(inner),
        Ok(other) => Err(format!("unexpected message {:?}", other.header)),
        Err(e) => Err(e.to_string()),
    }
}

fn check_name(name: &str, op: impl Fn() -> String) -> Result<(), Error> {
    if valid_name(name) {
        return Ok(());
    }
    Err(Error::Invalid {
        op: op(),
        reason: "an interface name is 1 to 15 bytes without '/', ':' or white space",
    })
}

fn check_prefix(prefix_len: u8, op: impl Fn() -> String) -> Result<(), Error> {
    if prefix_len <= 32 {
        return Ok(());
    }
    Err(Error::Invalid {
        op: op(),
        reason: "an IPv4 prefix length is at most 32",
    })
}

/// `route 10.0.0.0/8 via 10.88.0.1 dev eth0`, `default route via … dev …`.
fn describe_route(route: &Route, device: &str) -> String {
    let destination = if route.prefix_len == 0 {
        "default route".to_string()
    } else {
        format!("route {}/{}", route.destination, route.prefix_len)
    };
    match route.gateway {
        Some(gateway) => format!("{destination} via {gateway} dev {device}"),
        None => format!("{destination} dev {device}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_described_like_ip_route() {
        let gateway = Some(Ipv4Addr::new(10, 88, 0, 1));
        let table = [
            (
                Ipv4Addr::UNSPECIFIED,
                0,
                gateway,
                "default route via 10.88.0.1 dev eth0",
            ),
            (
                Ipv4Addr::new(10, 0, 0, 0),
                8,
                gateway,
                "route 10.0.0.0/8 via 10.88.0.1 dev eth0",
            ),
            (
                Ipv4Addr::new(10, 88, 0, 0),
                24,
                None,
                "route 10.88.0.0/24 dev eth0",
            ),
        ];
        for (destination, prefix_len, gateway, want) in table {
            let route = Route {
                destination,
                prefix_len,
                gateway,
                oif: 2,
            };
            assert_eq!(describe_route(&route, "eth0"), want);
        }
    }

    #[test]
    fn invalid_arguments_are_refused_before_the_kernel_sees_them() {
        let op = || "op".to_string();
        assert!(check_name("eth0", op).is_ok());
        let long = check_name("a-very-long-interface", op).expect_err("too long");
        assert!(matches!(long, Error::Invalid { .. }));
        assert!(check_prefix(32, op).is_ok());
        assert!(check_prefix(33, op).is_err());
    }
}
