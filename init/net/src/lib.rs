//! Networking of a berth node: host interfaces (DHCPv4 or static) over
//! rtnetlink, the container bridge with a veth pair per container,
//! nftables NAT for outbound traffic and published ports, and the bridge
//! rules that hold each container to its own MAC and address.

pub mod alloc;
pub mod bridge;
pub mod dhcp;
pub mod files;
pub mod host;
pub mod nft;
pub mod node;
pub mod rtnl;
pub mod sysctl;
pub mod veth;

pub(crate) use berth_config::chain;
