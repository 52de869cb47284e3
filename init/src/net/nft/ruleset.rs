//! The NAT ruleset as data, and its translation into nf_tables commands
//! (pure): what `nft -f` would do for
//!
//! ```text
//! table ip berth {
//!   chain postrouting { type nat hook postrouting priority 100;
//!     ip saddr SUBNET oifname != BRIDGE masquerade }
//!   chain prerouting { type nat hook prerouting priority -100;
//!     iifname != BRIDGE meta l4proto tcp th dport HOST dnat to ADDR:PORT
//!     … one rule per published port }
//! }
//! ```
//!
//! preceded by creating and deleting the table, so that the batch replaces
//! whatever `ip berth` held (creating first makes the delete never fail).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub use berth_config::network::Proto;

use super::expr::{ifname, Base, CmpOp, Expr, MetaKey, REG_1, REG_2};
use super::Error;
use crate::net::rtnl::valid_name;

/// The table berth owns; nothing else of the ruleset is touched.
pub const TABLE: &str = "berth";

/// Everything NAT needs to know: the container subnet, the bridge, and the
/// published ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The container subnet; host bits of the address are ignored.
    pub subnet: (Ipv4Addr, u8),
    pub bridge: String,
    pub forwards: Vec<Forward>,
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

/// A base chain of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chain {
    pub name: &'static str,
    /// `NF_INET_*` hook number.
    pub hook: u32,
    pub priority: i32,
}

/// Source NAT runs after routing (`NF_INET_POST_ROUTING`) at the priority
/// nft calls `srcnat`.
pub(crate) const POSTROUTING: Chain = Chain {
    name: "postrouting",
    hook: 4,
    priority: 100,
};
/// Destination NAT runs before routing (`NF_INET_PRE_ROUTING`) at `dstnat`.
pub(crate) const PREROUTING: Chain = Chain {
    name: "prerouting",
    hook: 0,
    priority: -100,
};

/// One message of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    NewTable,
    DeleteTable,
    NewChain(Chain),
    NewRule {
        chain: &'static str,
        exprs: Vec<Expr>,
        /// What the rule does, for error messages.
        what: String,
    },
}

impl Command {
    /// How an error names the command.
    pub(crate) fn describe(&self) -> String {
        match self {
            Command::NewTable => format!("create table ip {TABLE}"),
            Command::DeleteTable => format!("delete table ip {TABLE}"),
            Command::NewChain(chain) => format!("create nat chain {}", chain.name),
            Command::NewRule { chain, what, .. } => format!("add rule to {chain} ({what})"),
        }
    }

    /// The module that implements what the command uses beyond the
    /// nf_tables core; without it the kernel answers ENOENT.
    pub(crate) fn module(&self) -> Option<&'static str> {
        match self {
            Command::NewChain(_) => Some("nft_chain_nat"),
            Command::NewRule { exprs, .. } => exprs.iter().find_map(|expr| match expr {
                Expr::Masq => Some("nft_masq"),
                Expr::Dnat { .. } => Some("nft_nat"),
                _ => None,
            }),
            Command::NewTable | Command::DeleteTable => None,
        }
    }
}

/// The commands that replace table `ip berth` with `rules`.
pub(crate) fn replace(rules: &Ruleset) -> Result<Vec<Command>, Error> {
    check(rules)?;
    let (address, prefix_len) = rules.subnet;
    let network = Ipv4Addr::from(u32::from(address) & mask(prefix_len));
    let mut commands = vec![
        Command::NewTable,
        Command::DeleteTable,
        Command::NewTable,
        Command::NewChain(POSTROUTING),
        Command::NewChain(PREROUTING),
        Command::NewRule {
            chain: POSTROUTING.name,
            exprs: masquerade(network, prefix_len, &rules.bridge),
            what: format!(
                "masquerade {network}/{prefix_len} leaving by any interface but {}",
                rules.bridge
            ),
        },
    ];
    for forward in &rules.forwards {
        commands.push(Command::NewRule {
            chain: PREROUTING.name,
            exprs: dnat(forward, &rules.bridge),
            what: format!(
                "{} port {} to {}:{}",
                forward.proto.as_str(),
                forward.host_port,
                forward.addr,
                forward.port
            ),
        });
    }
    Ok(commands)
}

/// The commands that delete table `ip berth`, there or not.
pub(crate) fn remove() -> Vec<Command> {
    vec![Command::NewTable, Command::DeleteTable]
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
    Ok(())
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
    fn commands_replace_the_table_then_add_one_rule_per_port() {
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
                "create nat chain postrouting",
                "create nat chain prerouting",
                "add rule to postrouting (masquerade 10.88.0.0/24 leaving by any interface but berth0)",
                "add rule to prerouting (tcp port 8080 to 10.88.0.2:80)",
                "add rule to prerouting (udp port 5353 to 10.88.0.3:53)",
            ]
        );
    }

    #[test]
    fn host_bits_of_the_subnet_are_ignored() {
        let commands = replace(&rules(vec![])).expect("valid");
        let Some(Command::NewRule { exprs, .. }) = commands.last() else {
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
