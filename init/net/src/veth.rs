//! Attaching a container's network namespace to the node's bridge, and
//! the bridge itself.
//!
//! [`attach`], in the node's namespace: create the veth pair with the host
//! end named by the caller and the peer created straight inside the
//! container's namespace as `eth0` with the MAC address the caller chose
//! (`IFLA_NET_NS_FD` on the peer, as `ip link add … peer name eth0
//! address … netns …` does: no temporary name in the node, nothing to
//! rename); turn IPv6 and router advertisements off on the host end, make
//! it a port of the bridge, set its MTU, bring it up. Then enter the
//! container's namespace on the current thread with setns(2) (a network
//! namespace belongs to a thread, not a process), set the container's
//! network settings ([`sysctl::container`]: no IPv6 on `eth0`, no router
//! advertisements, ICMP echo sockets for every group), open an rtnetlink
//! handle there (a netlink socket works in the namespace it was opened
//! in), bring `lo` and `eth0` up with the address and the default route
//! via the gateway, and return to the original namespace whatever happened
//! inside: the caller is PID 1, which must never stay in a container's
//! namespace. If any step after the pair exists fails, the host end is
//! deleted, which deletes the peer too, so a retry starts clean.
//!
//! The container's MAC address is PID 1's choice, [`container_mac`], so
//! the bridge rules that hold the port to it can be in place before the
//! port joins the bridge.
//!
//! Errors end with their cause, like [`rtnl::Error`], for the same reason.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};

use super::rtnl::{self, Rtnl};
use super::sysctl::{self, PROC_SYS};

/// The container's end of the pair.
pub const CONTAINER_IFNAME: &str = "eth0";
/// The calling thread's own network namespace (not `/proc/self`, which is
/// the main thread's).
const OWN_NETNS: &str = "/proc/thread-self/ns/net";

/// How to attach one container.
#[derive(Debug)]
pub struct Attach<'a> {
    pub bridge: String,
    /// The host end's name, at most 15 bytes; the caller picks it.
    pub host_ifname: String,
    /// The container's network namespace (`/proc/PID/ns/net`).
    pub netns: BorrowedFd<'a>,
    /// The container's end's MAC address ([`container_mac`]).
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mtu: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("host interface name {0:?} is not 1 to 15 bytes without '/', ':' or white space")]
    HostName(String),
    #[error("there is no bridge {0}")]
    NoBridge(String),
    #[error("{0} vanished while being set up")]
    Vanished(String),
    #[error("{0}")]
    Node(rtnl::Error),
    #[error("{0}")]
    NodeSetting(sysctl::Error),
    #[error("open the current network namespace: {0}")]
    OwnNamespace(io::Error),
    #[error("enter the container's network namespace: {0}")]
    Enter(Errno),
    #[error("in the container's network namespace: {0}")]
    Container(rtnl::Error),
    #[error("in the container's network namespace: {0}")]
    ContainerSetting(sysctl::Error),
    #[error("the container's network namespace has no {0}")]
    Missing(&'static str),
    #[error("return to the original network namespace: {0}")]
    Return(Errno),
}

/// The MAC address of the container whose address is `address`: locally
/// administered, unicast, `02:42` and the four bytes of the address (as
/// Docker does), so it is unique on the bridge as long as the address is.
pub fn container_mac(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Creates bridge `name` if missing, turns IPv6 and router advertisements
/// off on it, gives it `gateway/prefix_len` unless it has it, sets its MTU
/// if asked, and brings it up. Returns its index.
pub fn setup_bridge(
    rtnl: &Rtnl,
    name: &str,
    gateway: Ipv4Addr,
    prefix_len: u8,
    mtu: Option<u32>,
) -> Result<u32, Error> {
    rtnl.create_bridge(name).map_err(Error::Node)?;
    let bridge = rtnl
        .link(name)
        .map_err(Error::Node)?
        .ok_or_else(|| Error::Vanished(name.to_string()))?;
    sysctl::write(Path::new(PROC_SYS), &sysctl::bridge_link(name)).map_err(Error::NodeSetting)?;
    if let Some(mtu) = mtu {
        rtnl.set_mtu(bridge.index, mtu).map_err(Error::Node)?;
    }
    let addresses = rtnl.addresses(bridge.index).map_err(Error::Node)?;
    if !addresses.contains(&(gateway, prefix_len)) {
        rtnl.add_address(bridge.index, gateway, prefix_len)
            .map_err(Error::Node)?;
    }
    rtnl.set_up(bridge.index).map_err(Error::Node)?;
    Ok(bridge.index)
}

/// Connects the container's namespace to the bridge (see the module docs).
pub fn attach(rtnl: &Rtnl, plan: &Attach<'_>) -> Result<(), Error> {
    if !rtnl::valid_name(&plan.host_ifname) {
        return Err(Error::HostName(plan.host_ifname.clone()));
    }
    let bridge = rtnl
        .link(&plan.bridge)
        .map_err(Error::Node)?
        .ok_or_else(|| Error::NoBridge(plan.bridge.clone()))?;
    rtnl.create_veth_into(
        &plan.host_ifname,
        CONTAINER_IFNAME,
        Some(plan.mac),
        plan.netns,
    )
    .map_err(Error::Node)?;
    let result = connect(rtnl, plan, bridge.index);
    if result.is_err() {
        if let Err(e) = detach(rtnl, &plan.host_ifname) {
            log::warn!("clean up after a failed attach: {e}");
        }
    }
    result
}

/// Deletes the host end `host_ifname`, and with it the container's end.
/// Returns whether there was one: a namespace that died takes its pair
/// with it, so the link may be gone already.
pub fn detach(rtnl: &Rtnl, host_ifname: &str) -> Result<bool, Error> {
    let Some(link) = rtnl.link(host_ifname).map_err(Error::Node)? else {
        return Ok(false);
    };
    match rtnl.delete_link(link.index) {
        Ok(()) => Ok(true),
        // Gone between the lookup and the delete.
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(Error::Node(e)),
    }
}

/// The host end onto the bridge and up, then the container's end.
fn connect(rtnl: &Rtnl, plan: &Attach<'_>, bridge_index: u32) -> Result<(), Error> {
    let host = rtnl
        .link(&plan.host_ifname)
        .map_err(Error::Node)?
        .ok_or_else(|| Error::Vanished(plan.host_ifname.clone()))?;
    sysctl::write(Path::new(PROC_SYS), &sysctl::bridge_link(&plan.host_ifname))
        .map_err(Error::NodeSetting)?;
    if let Some(mtu) = plan.mtu {
        rtnl.set_mtu(host.index, mtu).map_err(Error::Node)?;
    }
    rtnl.set_master(host.index, bridge_index)
        .map_err(Error::Node)?;
    rtnl.set_up(host.index).map_err(Error::Node)?;
    in_namespace(plan.netns, || configure_container(plan))
}

/// Inside the container's namespace: the settings, `lo` and `eth0` up,
/// the address, the default route.
fn configure_container(plan: &Attach<'_>) -> Result<(), Error> {
    // Before eth0 comes up: an interface with IPv6 on would send router
    // solicitations and could take a router advertisement's address.
    sysctl::write(Path::new(PROC_SYS), &sysctl::container(CONTAINER_IFNAME))
        .map_err(Error::ContainerSetting)?;
    let rtnl = Rtnl::open().map_err(Error::Container)?;
    let find = |name: &'static str| {
        rtnl.link(name)
            .map_err(Error::Container)?
            .ok_or(Error::Missing(name))
    };
    let lo = find("lo")?;
    rtnl.set_up(lo.index).map_err(Error::Container)?;
    let eth0 = find(CONTAINER_IFNAME)?;
    if let Some(mtu) = plan.mtu {
        rtnl.set_mtu(eth0.index, mtu).map_err(Error::Container)?;
    }
    rtnl.add_address(eth0.index, plan.address, plan.prefix_len)
        .map_err(Error::Container)?;
    // Up before the route: the gateway is reachable only once the
    // address's prefix route exists, which needs the link up.
    rtnl.set_up(eth0.index).map_err(Error::Container)?;
    rtnl.add_route(Ipv4Addr::UNSPECIFIED, 0, Some(plan.gateway), eth0.index)
        .map_err(Error::Container)
}

/// Runs `work` with the calling thread in network namespace `target`, and
/// puts the thread back in its own namespace afterwards, whatever `work`
/// returned, and even if it panicked.
fn in_namespace<T>(
    target: BorrowedFd<'_>,
    work: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let own = File::open(OWN_NETNS).map_err(Error::OwnNamespace)?;
    setns(target, CloneFlags::CLONE_NEWNET).map_err(Error::Enter)?;
    let back = Back { own: Some(own) };
    let result = work();
    back.now().map_err(Error::Return)?;
    result
}

/// The way back to the thread's own network namespace: taken by [`now`],
/// or on drop when a panic unwinds past it.
///
/// [`now`]: Back::now
struct Back {
    own: Option<File>,
}

impl Back {
    fn now(mut self) -> Result<(), Errno> {
        self.go()
    }

    fn go(&mut self) -> Result<(), Errno> {
        match self.own.take() {
            Some(own) => setns(&own, CloneFlags::CLONE_NEWNET).inspect_err(|e| {
                log::error!("return to the original network namespace: {e}");
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Back {
    fn drop(&mut self) {
        // Already logged; nothing more can be done while unwinding.
        let _ = self.go();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_macs_are_local_unicast_and_follow_the_address() {
        let table = [
            (
                Ipv4Addr::new(10, 88, 0, 2),
                [0x02, 0x42, 0x0a, 0x58, 0x00, 0x02],
            ),
            (
                Ipv4Addr::new(172, 17, 255, 254),
                [0x02, 0x42, 0xac, 0x11, 0xff, 0xfe],
            ),
        ];
        for (address, want) in table {
            let mac = container_mac(address);
            assert_eq!(mac, want, "{address}");
            assert_eq!(mac[0] & 0x01, 0, "unicast");
            assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
        }
    }
}
