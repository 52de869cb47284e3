//! berth's two tables as data, and their translation into nf_tables
//! commands (pure): what `nft -f` would do for
//!
//! ```text
//! table ip berth {
//!   chain postrouting { type nat hook postrouting priority 100;
//!     ip saddr SUBNET oifname != BRIDGE masquerade }
//!   chain prerouting { type nat hook prerouting priority -100;
//!     iifname != BRIDGE meta l4proto tcp th dport HOST dnat to ADDR:PORT
//!     … one rule per published port }
//! }
//! table bridge berth { … see `ports` }
//! ```
//!
//! each preceded by creating and deleting the table, so that one batch
//! replaces whatever `ip berth` and `bridge berth` held (creating first
//! makes the delete never fail), both or neither.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

pub use berth_config::network::Proto;

use super::expr::{ifname, Base, CmpOp, Expr, MetaKey, NFPROTO_BRIDGE, NFPROTO_IPV4, REG_1, REG_2};
use super::ports;
use super::Error;
use crate::rtnl::valid_name;

/// The name of both tables berth owns; nothing else of the ruleset is
/// touched.
pub const TABLE: &str = "berth";

/// Everything the tables need to know: the container subnet, the bridge,
/// the published ports, and the bridge's container ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The container subnet; host bits of the address are ignored.
    pub subnet: (Ipv4Addr, u8),
    pub bridge: String,
    pub forwards: Vec<Forward>,
    /// Every container's port of the bridge, with what it may send as.
    pub ports: Vec<Port>,
    /// How the host ends of containers' veth pairs are named (`bv`): a
    /// bridge port with this prefix but without an entry in `ports` gets
    /// no frame through.
    pub port_prefix: String,
}

/// One published port: `proto` traffic to the node's `host_port` goes to
/// `addr:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub proto: Proto,
    pub host_port: u16,
    pub addr: Ipv4Addr,
    pub port: u16,
}

/// A container's port of the bridge (the host end of its veth pair): it
/// may send only with the container's MAC and address, and receives
/// unicast only for that MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub ifname: String,
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
}

/// An nf_tables address family (`NFPROTO_*`), which is also the message's
/// `nfgen_family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Ip,
    Bridge,
}

impl Family {
    pub(crate) fn number(self) -> u8 {
        match self {
            Family::Ip => NFPROTO_IPV4,
            Family::Bridge => NFPROTO_BRIDGE,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ip => "ip",
            Family::Bridge => "bridge",
        })
    }
}

/// Where a base chain hooks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hook {
    /// The chain type: `nat` or `filter`.
    pub kind: &'static str,
    /// `NF_INET_*` or `NF_BR_*` hook number (the same for the hooks used
    /// here: 0 prerouting, 4 postrouting).
    pub hook: u32,
    pub priority: i32,
}

/// A chain of one of the tables: a base chain with its hook, or a regular
/// one that rules jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub family: Family,
    pub name: String,
    pub hook: Option<Hook>,
}

/// Source NAT runs after routing (`NF_INET_POST_ROUTING`) at the priority
/// nft calls `srcnat`.
pub(crate) const POSTROUTING: (&str, Hook) = (
    "postrouting",
    Hook {
        kind: "nat",
        hook: 4,
        priority: 100,
    },
);
/// Destination NAT runs before routing (`NF_INET_PRE_ROUTING`) at `dstnat`.
pub(crate) const PREROUTING: (&str, Hook) = (
    "prerouting",
    Hook {
        kind: "nat",
        hook: 0,
        priority: -100,
    },
);

/// One message of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    NewTable(Family),
    DeleteTable(Family),
    NewChain(Chain),
    NewRule {
        family: Family,
        chain: String,
        exprs: Vec<Expr>,
        /// What the rule does, for error messages.
        what: String,
    },
}

impl Command {
    /// How an error names the command.
    pub(crate) fn describe(&self) -> String {
        match self {
            Command::NewTable(family) => format!("create table {family} {TABLE}"),
            Command::DeleteTable(family) => format!("delete table {family} {TABLE}"),
            Command::NewChain(Chain {
                family,
                name,
                hook: Some(hook),
            }) => format!("create {} chain {family} {TABLE} {name}", hook.kind),
            Command::NewChain(Chain {
                family,
                name,
                hook: None,
            }) => format!("create chain {family} {TABLE} {name}"),
            Command::NewRule {
                family,
                chain,
                what,
                ..
            } => format!("add rule to {family} {TABLE} {chain} ({what})"),
        }
    }

    /// The module that implements what the command uses beyond the
    /// nf_tables core; without it the kernel answers ENOENT. The bridge
    /// family's `filter` chain type is part of `nf_tables` itself, but its
    /// `meta` is `nft_meta_bridge` where that is a module.
    pub(crate) fn module(&self) -> Option<&'static str> {
        match self {
            Command::NewChain(Chain {
                hook: Some(Hook { kind: "nat", .. }),
                ..
            }) => Some("nft_chain_nat"),
            Command::NewRule { family, exprs, .. } => exprs.iter().find_map(|expr| match expr {
                Expr::Masq => Some("nft_masq"),
                Expr::Dnat { .. } => Some("nft_nat"),
                Expr::Meta { .. } if *family == Family::Bridge => Some("nft_meta_bridge"),
                _ => None,
            }),
            Command::NewChain(_) | Command::NewTable(_) | Command::DeleteTable(_) => None,
        }
    }

    /// The family the message is for.
    pub(crate) fn family(&self) -> Family {
        match self {
            Command::NewTable(family) | Command::DeleteTable(family) => *family,
            Command::NewChain(chain) => chain.family,
            Command::NewRule { family, .. } => *family,
        }
    }
}

/// A base chain of table `ip berth`.
fn ip_chain((name, hook): (&str, Hook)) -> Command {
    Command::NewChain(Chain {
        family: Family::Ip,
        name: name.to_string(),
        hook: Some(hook),
    })
}

/// A rule of table `ip berth`.
fn ip_rule(chain: (&str, Hook), exprs: Vec<Expr>, what: String) -> Command {
    Command::NewRule {
        family: Family::Ip,
        chain: chain.0.to_string(),
        exprs,
        what,
    }
}

/// The commands that replace tables `ip berth` and `bridge berth` with
/// `rules`.
pub(crate) fn replace(rules: &Ruleset) -> Result<Vec<Command>, Error> {
    check(rules)?;
    let (address, prefix_len) = rules.subnet;
    let network = Ipv4Addr::from(u32::from(address) & mask(prefix_len));
    let mut commands = vec![
        Command::NewTable(Family::Ip),
        Command::DeleteTable(Family::Ip),
        Command::NewTable(Family::Ip),
        ip_chain(POSTROUTING),
        ip_chain(PREROUTING),
        ip_rule(
            POSTROUTING,
            masquerade(network, prefix_len, &rules.bridge),
            format!(
                "masquerade {network}/{prefix_len} leaving by any interface but {}",
                rules.bridge
            ),
        ),
    ];
    for forward in &rules.forwards {
        commands.push(ip_rule(
            PREROUTING,
            dnat(forward, &rules.bridge),
            format!(
                "{} port {} to {}:{}",
                forward.proto.as_str(),
                forward.host_port,
                forward.addr,
                forward.port
            ),
        ));
    }
    commands.extend(ports::commands(&rules.ports, &rules.port_prefix));
    Ok(commands)
}

/// The commands that delete both tables, there or not.
pub(crate) fn remove() -> Vec<Command> {
    vec![
        Command::NewTable(Family::Ip),
        Command::DeleteTable(Family::Ip),
        Command::NewTable(Family::Bridge),
        Command::DeleteTable(Family::Bridge),
    ]
}

fn check(rules: &Ruleset) -> Result<(), Error> {
    if !valid_name(&rules.bridge) {
        return Err(Error::Invalid(format!(
            "bridge name {:?} is not a valid interface name",
            rules.bridge
        )));
    }
    if rules.subnet.1 > 32 {
        return Err(Error::Invalid(format!(
            "subnet prefix length {} is over 32",
            rules.subnet.1
        )));
    }
    let mut seen = BTreeSet::new();
    for forward in &rules.forwards {
        if forward.host_port == 0 || forward.port == 0 {
            return Err(Error::Invalid(format!(
                "port 0 in {} {} -> {}:{}",
                forward.proto.as_str(),
                forward.host_port,
                forward.addr,
                forward.port
            )));
        }
        if !seen.insert((forward.proto.as_str(), forward.host_port)) {
            return Err(Error::Invalid(format!(
                "{} port {} is published twice",
                forward.proto.as_str(),
                forward.host_port
            )));
        }
    }
    ports::check(&rules.ports, &rules.port_prefix)
}

fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0)
}

/// `ip saddr NETWORK/PREFIX oifname != BRIDGE masquerade`
fn masquerade(network: Ipv4Addr, prefix_len: u8, bridge: &str) -> Vec<Expr> {
    let mut exprs = vec![Expr::Payload {
        base: Base::Network,
        offset: 12,
        len: 4,
        dreg: REG_1,
    }];
    if prefix_len < 32 {
        exprs.push(Expr::Bitwise {
            reg: REG_1,
            mask: mask(prefix_len).to_be_bytes().to_vec(),
            xor: vec![0; 4],
        });
    }
    exprs.extend([
        Expr::Cmp {
            op: CmpOp::Eq,
            sreg: REG_1,
            data: network.octets().to_vec(),
        },
        Expr::Meta {
            key: MetaKey::OifName,
            dreg: REG_1,
        },
        Expr::Cmp {
            op: CmpOp::Neq,
            sreg: REG_1,
            data: ifname(bridge),
        },
        Expr::Masq,
    ]);
    exprs
}

/// `iifname != BRIDGE meta l4proto PROTO th dport HOST dnat to ADDR:PORT`
fn dnat(forward: &Forward, bridge: &str) -> Vec<Expr> {
    let l4proto: u8 = match forward.proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
    };
    vec![
        Expr::Meta {
            key: MetaKey::IifName,
            dreg: REG_1,
        },
        Expr::Cmp {
            op: CmpOp::Neq,
            sreg: REG_1,
            data: ifname(bridge),
        },
        Expr::Meta {
            key: MetaKey::L4Proto,
            dreg: REG_1,
        },
        Expr::Cmp {
            op: CmpOp::Eq,
            sreg: REG_1,
            data: vec![l4proto],
        },
        // The destination port is at offset 2 of both TCP and UDP headers.
        Expr::Payload {
            base: Base::Transport,
            offset: 2,
            len: 2,
            dreg: REG_1,
        },
        Expr::Cmp {
            op: CmpOp::Eq,
            sreg: REG_1,
            data: forward.host_port.to_be_bytes().to_vec(),
        },
        Expr::Immediate {
            dreg: REG_1,
            data: forward.addr.octets().to_vec(),
        },
        Expr::Immediate {
            dreg: REG_2,
            data: forward.port.to_be_bytes().to_vec(),
        },
        Expr::Dnat {
            addr_reg: REG_1,
            port_reg: REG_2,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(proto: Proto, host_port: u16, last: u8, port: u16) -> Forward {
        Forward {
            proto,
            host_port,
            addr: Ipv4Addr::new(10, 88, 0, last),
            port,
        }
    }

    fn rules(forwards: Vec<Forward>) -> Ruleset {
        Ruleset {
            subnet: (Ipv4Addr::new(10, 88, 0, 1), 24),
            bridge: "berth0".into(),
            forwards,
            ports: vec![Port {
                ifname: "bv1".into(),
                mac: [0x02, 0x42, 10, 88, 0, 2],
                address: Ipv4Addr::new(10, 88, 0, 2),
            }],
            port_prefix: "bv".into(),
        }
    }

    #[test]
    fn masks_of_each_prefix() {
        let table = [
            (0, 0),
            (8, 0xff00_0000),
            (20, 0xffff_f000),
            (24, 0xffff_ff00),
            (32, u32::MAX),
        ];
        for (prefix_len, want) in table {
            assert_eq!(mask(prefix_len), want, "/{prefix_len}");
        }
    }

    #[test]
    fn commands_replace_the_nat_table_then_the_bridge_table() {
        let commands = replace(&rules(vec![
            forward(Proto::Tcp, 8080, 2, 80),
            forward(Proto::Udp, 5353, 3, 53),
        ]))
        .expect("valid");
        let described: Vec<String> = commands.iter().map(Command::describe).collect();
        assert_eq!(
            described,
            [
                "create table ip berth",
                "delete table ip berth",
                "create table ip berth",
                "create nat chain ip berth postrouting",
                "create nat chain ip berth prerouting",
                "add rule to ip berth postrouting (masquerade 10.88.0.0/24 leaving by any interface but berth0)",
                "add rule to ip berth prerouting (tcp port 8080 to 10.88.0.2:80)",
                "add rule to ip berth prerouting (udp port 5353 to 10.88.0.3:53)",
                "create table bridge berth",
                "delete table bridge berth",
                "create table bridge berth",
                "create filter chain bridge berth prerouting",
                "create filter chain bridge berth postrouting",
                "create chain bridge berth port-bv1",
                "add rule to bridge berth port-bv1 (ARP from 02:42:0a:58:00:02 as 10.88.0.2)",
                "add rule to bridge berth port-bv1 (IPv4 from 02:42:0a:58:00:02 as 10.88.0.2)",
                "add rule to bridge berth port-bv1 (drop anything else from bv1)",
                "add rule to bridge berth prerouting (frames from bv1 to port-bv1)",
                "add rule to bridge berth prerouting (drop frames from other bv* ports)",
                "add rule to bridge berth postrouting (unicast to bv1 only for 02:42:0a:58:00:02)",
            ]
        );
        let families: Vec<Family> = commands.iter().map(Command::family).collect();
        assert!(families[..8].iter().all(|f| *f == Family::Ip));
        assert!(families[8..].iter().all(|f| *f == Family::Bridge));
        let modules: Vec<(usize, &str)> = commands
            .iter()
            .enumerate()
            .filter_map(|(n, c)| c.module().map(|m| (n, m)))
            .collect();
        assert_eq!(
            modules,
            [
                (3, "nft_chain_nat"),
                (4, "nft_chain_nat"),
                (5, "nft_masq"),
                (6, "nft_nat"),
                (7, "nft_nat"),
                (17, "nft_meta_bridge"),
                (18, "nft_meta_bridge"),
                (19, "nft_meta_bridge"),
            ]
        );
    }

    #[test]
    fn removal_deletes_both_tables() {
        let described: Vec<String> = remove().iter().map(Command::describe).collect();
        assert_eq!(
            described,
            [
                "create table ip berth",
                "delete table ip berth",
                "create table bridge berth",
                "delete table bridge berth",
            ]
        );
    }

    #[test]
    fn host_bits_of_the_subnet_are_ignored() {
        let commands = replace(&rules(vec![])).expect("valid");
        let Some(Command::NewRule { exprs, .. }) = commands.iter().find(|c| {
            matches!(
                c,
                Command::NewRule {
                    family: Family::Ip,
                    ..
                }
            )
        }) else {
            panic!("no masquerade rule");
        };
        assert!(exprs.contains(&Expr::Cmp {
            op: CmpOp::Eq,
            sreg: REG_1,
            data: vec![10, 88, 0, 0],
        }));
    }

    #[test]
    fn invalid_rulesets_are_refused() {
        let long_bridge = Ruleset {
            bridge: "a-bridge-name-too-long".into(),
            ..rules(vec![])
        };
        let wide_prefix = Ruleset {
            subnet: (Ipv4Addr::new(10, 0, 0, 0), 33),
            ..rules(vec![])
        };
        let table = [
            (long_bridge, "is not a valid interface name"),
            (wide_prefix, "prefix length 33"),
            (rules(vec![forward(Proto::Tcp, 0, 2, 80)]), "port 0"),
            (
                rules(vec![
                    forward(Proto::Tcp, 8080, 2, 80),
                    forward(Proto::Tcp, 8080, 3, 80),
                ]),
                "tcp port 8080 is published twice",
            ),
            (
                Ruleset {
                    port_prefix: "vb".into(),
                    ..rules(vec![])
                },
                "port \"bv1\" is not a valid interface name starting with \"vb\"",
            ),
        ];
        for (ruleset, want) in table {
            let err = replace(&ruleset).expect_err(want).to_string();
            assert!(err.contains(want), "{err}");
        }
        let same_port_both_protocols = rules(vec![
            forward(Proto::Tcp, 53, 2, 53),
            forward(Proto::Udp, 53, 2, 53),
        ]);
        assert!(replace(&same_port_both_protocols).is_ok());
    }
}
