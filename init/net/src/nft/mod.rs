//! nftables for the container bridge, over netlink (`NETLINK_NETFILTER`),
//! encoded by hand: no crate fits (rustables is GPL, nftnl needs libnftnl
//! and libmnl, which cannot be linked into the static binary).
//!
//! berth owns two tables and replaces both whole on every change in one
//! atomic batch ([`apply`]): for each, create the table, delete it, create
//! it again (creating first makes the delete never fail), then its chains
//! and rules. `ip berth` is the NAT: a `postrouting` chain masquerading
//! the container subnet when it leaves by any interface but the bridge,
//! and a `prerouting` chain with one DNAT rule per published port for
//! packets that do not come from the bridge. `bridge berth` holds every
//! container's bridge port to its own MAC and address (`ports`: ARP and
//! IPv4 only, from the container's MAC and address; unicast out of a port
//! only for that MAC). The layers: `ruleset` turns a [`Ruleset`] into
//! commands, `ports` writes the bridge table's, `expr` encodes the rule
//! expressions, `message` frames the batch, `acks` judges the answers;
//! all pure. Only [`apply`] and [`remove`] touch the kernel.
//!
//! There is no `output` chain: connections from the node itself to its own
//! published port are not forwarded. Doing it needs `fib daddr type local`
//! (module `nft_fib_ipv4`) and must leave out 127.0.0.0/8, whose DNAT to a
//! bridge address needs `route_localnet` and a masquerade of its own.
//!
//! The kernel modules the batch needs, besides `nf_tables` (whose core has
//! `meta`, `payload`, `bitwise`, `cmp` and `immediate`, and, with
//! `CONFIG_NF_TABLES_BRIDGE`, the bridge family's `filter` chains):
//! [`KERNEL_MODULES`]. Seen on Debian's 6.1: the bridge table failed with
//! ENOENT on its first `meta` rule until `nft_meta_bridge` was loaded.

mod acks;
mod attr;
mod error;
mod expr;
mod message;
mod ports;
mod ruleset;
#[cfg(test)]
mod tests;

pub use self::error::Error;
pub use self::ruleset::{Forward, Port, Proto, Ruleset, TABLE};

use self::acks::Tally;
use self::ruleset::Command;
use crate::rtnl::reply;
use crate::rtnl::socket::NlSocket;

/// Modules the batch needs, dependencies first: `nf_tables`, then
/// `nf_conntrack` and `nf_nat` (which pull in `nf_defrag_ipv4`,
/// `nf_defrag_ipv6` and `libcrc32c`), then the `nat` chain type
/// (`nft_chain_nat`) and the `nat` and `masq` expressions (`nft_nat`,
/// `nft_masq`), and the bridge family's `meta` (`nft_meta_bridge`, after
/// `bridge`): where it is a module, the core's `meta` refuses the bridge
/// family (`nft_meta_select_ops` asks for the module, and without modprobe
/// the kernel answers ENOENT), even for the generic `iifname`.
pub const KERNEL_MODULES: &[&str] = &[
    "nf_tables",
    "nf_conntrack",
    "nf_nat",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_meta_bridge",
];

/// `netlink(7)`: the netfilter protocol.
const NETLINK_NETFILTER: isize = 12;

/// The batch that replaces tables `ip berth` and `bridge berth` with
/// `rules`, numbered from `seq`: begin marker, commands, end marker.
pub fn batch(rules: &Ruleset, seq: u32) -> Result<Vec<u8>, Error> {
    Ok(message::batch(&ruleset::replace(rules)?, seq).bytes)
}

/// Replaces tables `ip berth` and `bridge berth` with `rules`, both at
/// once or neither, in the calling thread's network namespace.
pub fn apply(rules: &Ruleset) -> Result<(), Error> {
    run(&ruleset::replace(rules)?)
}

/// Deletes tables `ip berth` and `bridge berth` where they are.
pub fn remove() -> Result<(), Error> {
    run(&ruleset::remove())
}

/// Sends the batch and reads the answers up to the last command's.
fn run(commands: &[Command]) -> Result<(), Error> {
    let batch = message::batch(commands, 1);
    let socket = NlSocket::open(NETLINK_NETFILTER).map_err(Error::Open)?;
    socket.send(&batch.bytes).map_err(Error::Send)?;
    let mut tally = Tally::new(&batch);
    while !tally.complete() {
        match socket.receive() {
            Ok(datagram) => {
                for frame in reply::frames(&datagram).map_err(Error::Decode)? {
                    tally.record(frame);
                }
            }
            // A failure already seen explains the rest better than a read
            // error does; a timeout becomes "the kernel did not answer".
            Err(_) if tally.has_failures() => break,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => return Err(Error::Receive(e)),
        }
    }
    tally.verdict()
}
