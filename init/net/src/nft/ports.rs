//! Table `bridge berth`: every container's port of the bridge sends only
//! as its container, and receives unicast only for it (pure). What `nft -f`
//! would do for
//!
//! ```text
//! table bridge berth {
//!   chain prerouting { type filter hook prerouting priority -200;
//!     iifname "bv1" jump port-bv1      … one rule per port
//!     iifname "bv*" drop }
//!   chain port-bv1 {
//!     ether saddr MAC ether type arp arp htype 1 arp ptype ip arp hlen 6
//!       arp plen 4 arp saddr ether MAC arp saddr ip ADDRESS accept
//!     ether saddr MAC ether type ip ip saddr ADDRESS accept
//!     drop }
//!   chain postrouting { type filter hook postrouting priority -200;
//!     oifname "bv1" ether daddr != MAC
//!       ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 drop
//!     … one rule per port }
//! }
//! ```
//!
//! Ingress (`prerouting`, before the bridge learns the source address or
//! forwards the frame, and before a frame for the node reaches its IP
//! stack): a frame from a container's port passes only if it is ARP whose
//! Ethernet source and ARP sender are the container's MAC and address, or
//! IPv4 from the container's MAC and address. Everything else is dropped:
//! other source MACs (so the bridge never learns a neighbour's MAC on the
//! wrong port), other source addresses, VLAN-tagged frames (nf_tables puts
//! the tag back for the load, so the type reads 0x8100), other ethertypes
//! and 802.3 frames, and all of IPv6. The bridge is IPv4 only, so dropping
//! IPv6 is how router advertisements and neighbour discovery from a
//! container are held to the rule: none reaches the node or another
//! container. A port named like a container's (`port_prefix`) without a
//! chain of its own gets nothing through: a host end left over from a
//! container whose rules are gone is mute.
//!
//! Egress (`postrouting`, for frames the bridge forwards or floods to a
//! port and frames the node sends through the bridge): a unicast frame
//! (group bit of the destination clear) passes only when it is for the
//! port's own MAC, so unicast the bridge floods because it has not learnt
//! (or has forgotten) where a MAC lives never reaches another container.
//! Broadcast and multicast pass.
//!
//! Expressions are those nft 1.0.6 generates for the rules above (it
//! merges adjacent payload loads: `ether saddr` and `ether type` become
//! one 8-byte load), so `tests.rs` compares them with nft's own output.

use std::collections::BTreeSet;

use berth_config::network::format_mac;

use super::expr::{ifname, ifname_prefix, Base, CmpOp, Expr, MetaKey, Verdict, REG_1};
use super::ruleset::{Chain, Command, Family, Hook, Port};
use super::Error;
use crate::rtnl::valid_name;

/// `NF_BR_PRE_ROUTING` at `NF_BR_PRI_FILTER_BRIDGED` (nft's `filter`).
const PREROUTING: (&str, Hook) = (
    "prerouting",
    Hook {
        kind: "filter",
        hook: 0,
        priority: -200,
    },
);
/// `NF_BR_POST_ROUTING` at the same priority.
const POSTROUTING: (&str, Hook) = (
    "postrouting",
    Hook {
        kind: "filter",
        hook: 4,
        priority: -200,
    },
);

const ETH_P_IP: [u8; 2] = [0x08, 0x00];
const ETH_P_ARP: [u8; 2] = [0x08, 0x06];

/// The regular chain of `port`'s ingress rules.
pub(crate) fn chain_name(ifname: &str) -> String {
    format!("port-{ifname}")
}

/// The commands that replace table `bridge berth` with the rules of
/// `ports`.
pub(crate) fn commands(ports: &[Port], port_prefix: &str) -> Vec<Command> {
    let base = |(name, hook): (&str, Hook)| {
        Command::NewChain(Chain {
            family: Family::Bridge,
            name: name.to_string(),
            hook: Some(hook),
        })
    };
    let rule = |chain: &str, exprs: Vec<Expr>, what: String| Command::NewRule {
        family: Family::Bridge,
        chain: chain.to_string(),
        exprs,
        what,
    };
    let mut commands = vec![
        Command::NewTable(Family::Bridge),
        Command::DeleteTable(Family::Bridge),
        Command::NewTable(Family::Bridge),
        base(PREROUTING),
        base(POSTROUTING),
    ];
    for port in ports {
        let chain = chain_name(&port.ifname);
        let (mac, address) = (format_mac(&port.mac), port.address);
        commands.push(Command::NewChain(Chain {
            family: Family::Bridge,
            name: chain.clone(),
            hook: None,
        }));
        commands.push(rule(
            &chain,
            arp_from(port),
            format!("ARP from {mac} as {address}"),
        ));
        commands.push(rule(
            &chain,
            ipv4_from(port),
            format!("IPv4 from {mac} as {address}"),
        ));
        commands.push(rule(
            &chain,
            vec![Expr::Verdict(Verdict::Drop)],
            format!("drop anything else from {}", port.ifname),
        ));
    }
    for port in ports {
        commands.push(rule(
            PREROUTING.0,
            jump(port),
            format!(
                "frames from {} to {}",
                port.ifname,
                chain_name(&port.ifname)
            ),
        ));
    }
    commands.push(rule(
        PREROUTING.0,
        vec![
            Expr::Meta {
                key: MetaKey::IifName,
                dreg: REG_1,
            },
            Expr::Cmp {
                op: CmpOp::Eq,
                sreg: REG_1,
                data: ifname_prefix(port_prefix),
            },
            Expr::Verdict(Verdict::Drop),
        ],
        format!("drop frames from other {port_prefix}* ports"),
    ));
    for port in ports {
        commands.push(rule(
            POSTROUTING.0,
            unicast_only_for(port),
            format!(
                "unicast to {} only for {}",
                port.ifname,
                format_mac(&port.mac)
            ),
        ));
    }
    commands
}

/// Refuses ports the rules could not keep apart.
pub(crate) fn check(ports: &[Port], port_prefix: &str) -> Result<(), Error> {
    if !valid_name(port_prefix) {
        return Err(Error::Invalid(format!(
            "port prefix {port_prefix:?} is not a valid interface name"
        )));
    }
    let (mut names, mut macs, mut addresses) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for port in ports {
        let mac = format_mac(&port.mac);
        if !valid_name(&port.ifname) || !port.ifname.starts_with(port_prefix) {
            return Err(Error::Invalid(format!(
                "port {:?} is not a valid interface name starting with {port_prefix:?}",
                port.ifname
            )));
        }
        if port.mac[0] & 1 != 0 || port.mac == [0; 6] {
            return Err(Error::Invalid(format!(
                "port {}: {mac} is not a unicast MAC address",
                port.ifname
            )));
        }
        if !names.insert(port.ifname.as_str()) {
            return Err(Error::Invalid(format!(
                "port {} is listed twice",
                port.ifname
            )));
        }
        if !macs.insert(port.mac) {
            return Err(Error::Invalid(format!("MAC {mac} is on two ports")));
        }
        if !addresses.insert(port.address) {
            return Err(Error::Invalid(format!(
                "address {} is on two ports",
                port.address
            )));
        }
    }
    Ok(())
}

fn load(base: Base, offset: u32, len: u32) -> Expr {
    Expr::Payload {
        base,
        offset,
        len,
        dreg: REG_1,
    }
}

fn equals(data: Vec<u8>) -> Expr {
    Expr::Cmp {
        op: CmpOp::Eq,
        sreg: REG_1,
        data,
    }
}

/// `ether saddr MAC` and `ether type TYPE`: one load of 8 bytes at 6.
fn from_mac(mac: [u8; 6], ethertype: [u8; 2]) -> [Expr; 2] {
    let mut data = mac.to_vec();
    data.extend(ethertype);
    [load(Base::LinkLayer, 6, 8), equals(data)]
}

/// `ether saddr MAC ether type arp arp htype 1 arp ptype ip arp hlen 6
/// arp plen 4 arp saddr ether MAC arp saddr ip ADDRESS accept`: the fixed
/// part of an Ethernet/IPv4 ARP header (RFC 826), then the sender's
/// hardware and protocol addresses, which follow each other at 8.
fn arp_from(port: &Port) -> Vec<Expr> {
    let mut sender = port.mac.to_vec();
    sender.extend(port.address.octets());
    let mut exprs = from_mac(port.mac, ETH_P_ARP).to_vec();
    exprs.extend([
        load(Base::Network, 0, 4),
        equals(vec![0x00, 0x01, 0x08, 0x00]),
        load(Base::Network, 4, 2),
        equals(vec![6, 4]),
        load(Base::Network, 8, 10),
        equals(sender),
        Expr::Verdict(Verdict::Accept),
    ]);
    exprs
}

/// `ether saddr MAC ether type ip ip saddr ADDRESS accept`
fn ipv4_from(port: &Port) -> Vec<Expr> {
    let mut exprs = from_mac(port.mac, ETH_P_IP).to_vec();
    exprs.extend([
        load(Base::Network, 12, 4),
        equals(port.address.octets().to_vec()),
        Expr::Verdict(Verdict::Accept),
    ]);
    exprs
}

/// `iifname PORT jump port-PORT`
fn jump(port: &Port) -> Vec<Expr> {
    vec![
        Expr::Meta {
            key: MetaKey::IifName,
            dreg: REG_1,
        },
        equals(ifname(&port.ifname)),
        Expr::Verdict(Verdict::Jump(chain_name(&port.ifname))),
    ]
}

/// `oifname PORT ether daddr != MAC ether daddr & 01:00:00:00:00:00 ==
/// 00:00:00:00:00:00 drop`
fn unicast_only_for(port: &Port) -> Vec<Expr> {
    let mut group_bit = vec![0; 6];
    group_bit[0] = 1;
    vec![
        Expr::Meta {
            key: MetaKey::OifName,
            dreg: REG_1,
        },
        equals(ifname(&port.ifname)),
        load(Base::LinkLayer, 0, 6),
        Expr::Cmp {
            op: CmpOp::Neq,
            sreg: REG_1,
            data: port.mac.to_vec(),
        },
        load(Base::LinkLayer, 0, 6),
        Expr::Bitwise {
            reg: REG_1,
            mask: group_bit,
            xor: vec![0; 6],
        },
        equals(vec![0; 6]),
        Expr::Verdict(Verdict::Drop),
    ]
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn port(n: u8) -> Port {
        Port {
            ifname: format!("bv{n}"),
            mac: [0x02, 0x42, 10, 88, 0, n],
            address: Ipv4Addr::new(10, 88, 0, n),
        }
    }

    fn described(ports: &[Port]) -> Vec<String> {
        commands(ports, "bv")
            .iter()
            .map(Command::describe)
            .collect()
    }

    #[test]
    fn no_ports_leave_only_the_catch_all() {
        assert_eq!(
            described(&[]),
            [
                "create table bridge berth",
                "delete table bridge berth",
                "create table bridge berth",
                "create filter chain bridge berth prerouting",
                "create filter chain bridge berth postrouting",
                "add rule to bridge berth prerouting (drop frames from other bv* ports)",
            ]
        );
    }

    #[test]
    fn each_port_gets_a_chain_a_jump_and_an_egress_rule() {
        assert_eq!(
            described(&[port(2), port(3)])[5..],
            [
                "create chain bridge berth port-bv2",
                "add rule to bridge berth port-bv2 (ARP from 02:42:0a:58:00:02 as 10.88.0.2)",
                "add rule to bridge berth port-bv2 (IPv4 from 02:42:0a:58:00:02 as 10.88.0.2)",
                "add rule to bridge berth port-bv2 (drop anything else from bv2)",
                "create chain bridge berth port-bv3",
                "add rule to bridge berth port-bv3 (ARP from 02:42:0a:58:00:03 as 10.88.0.3)",
                "add rule to bridge berth port-bv3 (IPv4 from 02:42:0a:58:00:03 as 10.88.0.3)",
                "add rule to bridge berth port-bv3 (drop anything else from bv3)",
                "add rule to bridge berth prerouting (frames from bv2 to port-bv2)",
                "add rule to bridge berth prerouting (frames from bv3 to port-bv3)",
                "add rule to bridge berth prerouting (drop frames from other bv* ports)",
                "add rule to bridge berth postrouting (unicast to bv2 only for 02:42:0a:58:00:02)",
                "add rule to bridge berth postrouting (unicast to bv3 only for 02:42:0a:58:00:03)",
            ]
        );
    }

    #[test]
    fn every_port_rule_ends_in_a_verdict() {
        for command in commands(&[port(2)], "bv") {
            if let Command::NewRule { exprs, what, .. } = command {
                assert!(
                    matches!(exprs.last(), Some(Expr::Verdict(_))),
                    "{what}: {exprs:?}"
                );
            }
        }
    }

    #[test]
    fn ports_that_cannot_be_kept_apart_are_refused() {
        let table: Vec<(&str, Vec<Port>, &str)> = vec![
            ("", vec![], "port prefix \"\""),
            (
                "bv",
                vec![Port {
                    ifname: "eth1".into(),
                    ..port(2)
                }],
                "starting with \"bv\"",
            ),
            (
                "bv",
                vec![Port {
                    ifname: "bv/1".into(),
                    ..port(2)
                }],
                "not a valid interface name",
            ),
            (
                "bv",
                vec![Port {
                    mac: [0x03, 0, 0, 0, 0, 1],
                    ..port(2)
                }],
                "not a unicast MAC",
            ),
            (
                "bv",
                vec![Port {
                    mac: [0; 6],
                    ..port(2)
                }],
                "not a unicast MAC",
            ),
            ("bv", vec![port(2), port(2)], "bv2 is listed twice"),
            (
                "bv",
                vec![
                    port(2),
                    Port {
                        ifname: "bv9".into(),
                        ..port(2)
                    },
                ],
                "MAC 02:42:0a:58:00:02 is on two ports",
            ),
            (
                "bv",
                vec![
                    port(2),
                    Port {
                        ifname: "bv9".into(),
                        mac: [2, 0, 0, 0, 0, 9],
                        ..port(2)
                    },
                ],
                "address 10.88.0.2 is on two ports",
            ),
        ];
        for (prefix, ports, want) in table {
            let err = check(&ports, prefix).expect_err(want).to_string();
            assert!(err.contains(want), "{err}");
        }
        assert!(check(&[port(2), port(3)], "bv").is_ok());
    }
}
