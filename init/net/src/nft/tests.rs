//! The batch, decoded back from its bytes and printed the way
//! `nft --debug=netlink` prints rules, compared with what nft 1.0.6 prints
//! for the same rules written in nft syntax (`unshare -n nft
//! --debug=netlink -f FILE`, in a namespace of its own). Only the meaning
//! is compared: nft orders some attributes differently, and for a /24 it
//! loads 3 bytes instead of masking 4, so the subnets here are /20 and /32.

use std::net::Ipv4Addr;

use super::attr::parse;
use super::*;

/// One decoded message of a batch.
#[derive(Debug)]
struct Decoded {
    message_type: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: Vec<u8>,
}

fn split(mut bytes: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_ne_bytes(bytes[0..4].try_into().expect("len")) as usize;
        assert!(
            len >= 20 && len <= bytes.len() && len.is_multiple_of(4),
            "length {len}"
        );
        out.push(Decoded {
            message_type: u16::from_ne_bytes([bytes[4], bytes[5]]),
            flags: u16::from_ne_bytes([bytes[6], bytes[7]]),
            seq: u32::from_ne_bytes(bytes[8..12].try_into().expect("seq")),
            family: bytes[16],
            res_id: u16::from_be_bytes([bytes[18], bytes[19]]),
            attrs: bytes[20..len].to_vec(),
        });
        bytes = &bytes[len..];
    }
    out
}

fn attr<'a>(attrs: &[(u16, bool, &'a [u8])], kind: u16) -> &'a [u8] {
    attrs
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no attribute {kind} in {attrs:?}"))
}

fn be32(value: &[u8]) -> u32 {
    u32::from_be_bytes(value.try_into().expect("4 bytes"))
}

fn string(value: &[u8]) -> String {
    let text = value.strip_suffix(&[0]).expect("NUL-terminated");
    String::from_utf8(text.to_vec()).expect("utf-8")
}

/// Data as libnftnl prints it: 32-bit words in host order.
fn words(value: &[u8]) -> String {
    value
        .chunks(4)
        .map(|chunk| {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            format!("0x{:08x}", u32::from_le_bytes(word))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `NFTA_DATA_VALUE` inside a nested data attribute.
fn data(value: &[u8]) -> String {
    words(attr(&parse(value), 1))
}

fn render_expr(elem: &[u8]) -> String {
    let elem = parse(elem);
    let name = string(attr(&elem, 1));
    let d = parse(attr(&elem, 2));
    let reg = |kind| be32(attr(&d, kind));
    match name.as_str() {
        "payload" => {
            let base = match reg(2) {
                0 => "link",
                1 => "network",
                2 => "transport",
                other => panic!("base {other}"),
            };
            format!(
                "[ payload load {}b @ {base} header + {} => reg {} ]",
                reg(4),
                reg(3),
                reg(1)
            )
        }
        "bitwise" => format!(
            "[ bitwise reg {} = ( reg {} & {} ) ^ {} ]",
            reg(2),
            reg(1),
            data(attr(&d, 4)),
            data(attr(&d, 5))
        ),
        "cmp" => {
            let op = match reg(2) {
                0 => "eq",
                1 => "neq",
                other => panic!("cmp op {other}"),
            };
            format!("[ cmp {op} reg {} {} ]", reg(1), data(attr(&d, 3)))
        }
        "meta" => {
            let key = match reg(2) {
                6 => "iifname",
                7 => "oifname",
                16 => "l4proto",
                other => panic!("meta key {other}"),
            };
            format!("[ meta load {key} => reg {} ]", reg(1))
        }
        "immediate" if reg(1) == 0 => {
            let verdict = parse(attr(&parse(attr(&d, 2)), 2));
            match be32(attr(&verdict, 1)) as i32 {
                0 => "[ immediate reg 0 drop ]".to_string(),
                1 => "[ immediate reg 0 accept ]".to_string(),
                -3 => format!("[ immediate reg 0 jump -> {} ]", string(attr(&verdict, 2))),
                other => panic!("verdict {other}"),
            }
        }
        "immediate" => format!("[ immediate reg {} {} ]", reg(1), data(attr(&d, 2))),
        "masq" => {
            assert!(d.is_empty(), "masq takes no attributes");
            "[ masq ]".to_string()
        }
        "nat" => {
            assert_eq!(reg(1), 1, "dnat");
            assert_eq!(reg(2), 2, "NFPROTO_IPV4");
            format!(
                "[ nat dnat ip addr_min reg {} proto_min reg {} flags 0x{:x} ]",
                reg(3),
                reg(5),
                reg(7)
            )
        }
        other => panic!("unexpected expression {other}"),
    }
}

/// A message as one block of text: chains and rules like nft's debug
/// output, tables by name.
fn render(message: &Decoded) -> String {
    let attrs = parse(&message.attrs);
    let family = match message.family {
        2 => "ip",
        7 => "bridge",
        other => panic!("family {other}"),
    };
    match message.message_type & 0xff {
        0 => format!("new table {family} {}", string(attr(&attrs, 1))),
        2 => format!("delete table {family} {}", string(attr(&attrs, 1))),
        // A regular chain: table and name only.
        3 if attrs.len() == 2 => format!(
            "{family} {} {}",
            string(attr(&attrs, 1)),
            string(attr(&attrs, 3))
        ),
        3 => {
            let hook = parse(attr(&attrs, 4));
            format!(
                "{family} {} {} type {} hook {} prio {} policy {}",
                string(attr(&attrs, 1)),
                string(attr(&attrs, 3)),
                string(attr(&attrs, 7)),
                be32(attr(&hook, 1)),
                be32(attr(&hook, 2)) as i32,
                be32(attr(&attrs, 5))
            )
        }
        6 => {
            let mut text = format!(
                "{family} {} {}",
                string(attr(&attrs, 1)),
                string(attr(&attrs, 2))
            );
            for (kind, nested, elem) in parse(attr(&attrs, 4)) {
                assert_eq!((kind, nested), (1, true), "NFTA_LIST_ELEM");
                text.push_str("\n  ");
                text.push_str(&render_expr(elem));
            }
            text
        }
        other => panic!("unexpected message {other}"),
    }
}

fn ruleset(subnet: (Ipv4Addr, u8)) -> Ruleset {
    Ruleset {
        subnet,
        bridge: "berth0".into(),
        forwards: vec![
            Forward {
                proto: Proto::Tcp,
                host_port: 8080,
                addr: Ipv4Addr::new(10, 88, 0, 2),
                port: 80,
            },
            Forward {
                proto: Proto::Udp,
                host_port: 5353,
                addr: Ipv4Addr::new(10, 88, 0, 3),
                port: 53,
            },
        ],
        ports: vec![Port {
            ifname: "bv1".into(),
            mac: [0x02, 0x42, 0x0a, 0x58, 0x00, 0x02],
            address: Ipv4Addr::new(10, 88, 0, 2),
        }],
        port_prefix: "bv".into(),
    }
}

#[test]
fn the_batch_is_framed_and_numbered() {
    let bytes = batch(&ruleset((Ipv4Addr::new(10, 88, 0, 0), 20)), 100).expect("valid");
    let messages = split(&bytes);
    let summary: Vec<(u16, u16, u32, u8, u16)> = messages
        .iter()
        .map(|m| (m.message_type, m.flags, m.seq, m.family, m.res_id))
        .collect();
    // REQUEST 0x1, ACK 0x4 (last command only), CREATE 0x400, APPEND
    // 0x800; type is
    // NFNL_SUBSYS_NFTABLES (10) << 8 | NFT_MSG_*; the markers carry
    // res_id NFNL_SUBSYS_NFTABLES.
    assert_eq!(
        summary,
        [
            (16, 0x1, 100, 0, 10),
            (0x0a00, 0x401, 101, 2, 0),
            (0x0a02, 0x001, 102, 2, 0),
            (0x0a00, 0x401, 103, 2, 0),
            (0x0a03, 0x401, 104, 2, 0),
            (0x0a03, 0x401, 105, 2, 0),
            (0x0a06, 0xc01, 106, 2, 0),
            (0x0a06, 0xc01, 107, 2, 0),
            (0x0a06, 0xc01, 108, 2, 0),
            // The bridge table, family NFPROTO_BRIDGE, in the same batch.
            (0x0a00, 0x401, 109, 7, 0),
            (0x0a02, 0x001, 110, 7, 0),
            (0x0a00, 0x401, 111, 7, 0),
            (0x0a03, 0x401, 112, 7, 0),
            (0x0a03, 0x401, 113, 7, 0),
            (0x0a03, 0x401, 114, 7, 0),
            (0x0a06, 0xc01, 115, 7, 0),
            (0x0a06, 0xc01, 116, 7, 0),
            (0x0a06, 0xc01, 117, 7, 0),
            (0x0a06, 0xc01, 118, 7, 0),
            (0x0a06, 0xc01, 119, 7, 0),
            (0x0a06, 0xc05, 120, 7, 0),
            (17, 0x1, 121, 0, 10),
        ]
    );
    let tables: Vec<String> = messages
        .iter()
        .filter(|m| matches!(m.message_type, 0x0a00 | 0x0a02))
        .map(render)
        .collect();
    assert_eq!(
        tables,
        [
            "new table ip berth",
            "delete table ip berth",
            "new table ip berth",
            "new table bridge berth",
            "delete table bridge berth",
            "new table bridge berth",
        ]
    );
}

#[test]
fn chains_are_nat_and_bridge_filter_base_chains_and_a_chain_per_port() {
    let bytes = batch(&ruleset((Ipv4Addr::new(10, 88, 0, 0), 20)), 1).expect("valid");
    let chains: Vec<String> = split(&bytes)
        .iter()
        .filter(|m| m.message_type == 0x0a03)
        .map(render)
        .collect();
    // Hooks: NF_INET_POST_ROUTING and NF_BR_POST_ROUTING 4,
    // NF_INET_PRE_ROUTING and NF_BR_PRE_ROUTING 0; policy accept; the
    // bridge's `filter` priority is -200.
    // nft: bridge (null) (null) use 0 type filter hook prerouting prio -200
    //      bridge (null) (null) use 0 type filter hook postrouting prio -200
    assert_eq!(
        chains,
        [
            "ip berth postrouting type nat hook 4 prio 100 policy 1",
            "ip berth prerouting type nat hook 0 prio -100 policy 1",
            "bridge berth prerouting type filter hook 0 prio -200 policy 1",
            "bridge berth postrouting type filter hook 4 prio -200 policy 1",
            "bridge berth port-bv1",
        ]
    );
}

#[test]
fn rules_match_what_nft_generates() {
    let table = [
        (
            (Ipv4Addr::new(10, 88, 0, 0), 20),
            // nft: ip saddr 10.88.0.0/20 oifname != "berth0" masquerade
            "ip berth postrouting
  [ payload load 4b @ network header + 12 => reg 1 ]
  [ bitwise reg 1 = ( reg 1 & 0x00f0ffff ) ^ 0x00000000 ]
  [ cmp eq reg 1 0x0000580a ]
  [ meta load oifname => reg 1 ]
  [ cmp neq reg 1 0x74726562 0x00003068 0x00000000 0x00000000 ]
  [ masq ]",
        ),
        (
            (Ipv4Addr::new(10, 88, 0, 7), 32),
            // nft: ip saddr 10.88.0.7/32 oifname != "berth0" masquerade
            "ip berth postrouting
  [ payload load 4b @ network header + 12 => reg 1 ]
  [ cmp eq reg 1 0x0700580a ]
  [ meta load oifname => reg 1 ]
  [ cmp neq reg 1 0x74726562 0x00003068 0x00000000 0x00000000 ]
  [ masq ]",
        ),
    ];
    // nft: iifname != "berth0" meta l4proto tcp th dport 8080 dnat to 10.88.0.2:80
    //      iifname != "berth0" meta l4proto udp th dport 5353 dnat to 10.88.0.3:53
    let dnat = [
        "ip berth prerouting
  [ meta load iifname => reg 1 ]
  [ cmp neq reg 1 0x74726562 0x00003068 0x00000000 0x00000000 ]
  [ meta load l4proto => reg 1 ]
  [ cmp eq reg 1 0x00000006 ]
  [ payload load 2b @ transport header + 2 => reg 1 ]
  [ cmp eq reg 1 0x0000901f ]
  [ immediate reg 1 0x0200580a ]
  [ immediate reg 2 0x00005000 ]
  [ nat dnat ip addr_min reg 1 proto_min reg 2 flags 0x2 ]",
        "ip berth prerouting
  [ meta load iifname => reg 1 ]
  [ cmp neq reg 1 0x74726562 0x00003068 0x00000000 0x00000000 ]
  [ meta load l4proto => reg 1 ]
  [ cmp eq reg 1 0x00000011 ]
  [ payload load 2b @ transport header + 2 => reg 1 ]
  [ cmp eq reg 1 0x0000e914 ]
  [ immediate reg 1 0x0300580a ]
  [ immediate reg 2 0x00003500 ]
  [ nat dnat ip addr_min reg 1 proto_min reg 2 flags 0x2 ]",
    ];
    for (subnet, masquerade) in table {
        let bytes = batch(&ruleset(subnet), 1).expect("valid");
        let rules: Vec<String> = split(&bytes)
            .iter()
            .filter(|m| m.message_type == 0x0a06 && m.family == 2)
            .map(render)
            .collect();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0], masquerade, "{subnet:?}");
        assert_eq!(rules[1..], dnat);
    }
}

/// What nft 1.0.6 prints for
///
/// ```text
/// table bridge berth {
///   chain prerouting { type filter hook prerouting priority filter; policy accept;
///     iifname "bv1" jump port-bv1
///     iifname "bv*" drop }
///   chain port-bv1 {
///     ether saddr 02:42:0a:58:00:02 ether type arp arp htype 1 arp ptype ip arp hlen 6
///       arp plen 4 arp saddr ether 02:42:0a:58:00:02 arp saddr ip 10.88.0.2 accept
///     ether saddr 02:42:0a:58:00:02 ether type ip ip saddr 10.88.0.2 accept
///     drop }
///   chain postrouting { type filter hook postrouting priority filter; policy accept;
///     oifname "bv1" ether daddr != 02:42:0a:58:00:02
///       ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 drop }
/// }
/// ```
///
/// in the order berth sends the rules (port chains first, so the jumps
/// have a target).
const NFT_BRIDGE_RULES: [&str; 6] = [
    "bridge berth port-bv1
  [ payload load 8b @ link header + 6 => reg 1 ]
  [ cmp eq reg 1 0x580a4202 0x06080200 ]
  [ payload load 4b @ network header + 0 => reg 1 ]
  [ cmp eq reg 1 0x00080100 ]
  [ payload load 2b @ network header + 4 => reg 1 ]
  [ cmp eq reg 1 0x00000406 ]
  [ payload load 10b @ network header + 8 => reg 1 ]
  [ cmp eq reg 1 0x580a4202 0x580a0200 0x00000200 ]
  [ immediate reg 0 accept ]",
    "bridge berth port-bv1
  [ payload load 8b @ link header + 6 => reg 1 ]
  [ cmp eq reg 1 0x580a4202 0x00080200 ]
  [ payload load 4b @ network header + 12 => reg 1 ]
  [ cmp eq reg 1 0x0200580a ]
  [ immediate reg 0 accept ]",
    "bridge berth port-bv1
  [ immediate reg 0 drop ]",
    "bridge berth prerouting
  [ meta load iifname => reg 1 ]
  [ cmp eq reg 1 0x00317662 0x00000000 0x00000000 0x00000000 ]
  [ immediate reg 0 jump -> port-bv1 ]",
    "bridge berth prerouting
  [ meta load iifname => reg 1 ]
  [ cmp eq reg 1 0x00007662 ]
  [ immediate reg 0 drop ]",
    "bridge berth postrouting
  [ meta load oifname => reg 1 ]
  [ cmp eq reg 1 0x00317662 0x00000000 0x00000000 0x00000000 ]
  [ payload load 6b @ link header + 0 => reg 1 ]
  [ cmp neq reg 1 0x580a4202 0x00000200 ]
  [ payload load 6b @ link header + 0 => reg 1 ]
  [ bitwise reg 1 = ( reg 1 & 0x00000001 0x00000000 ) ^ 0x00000000 0x00000000 ]
  [ cmp eq reg 1 0x00000000 0x00000000 ]
  [ immediate reg 0 drop ]",
];

#[test]
fn bridge_rules_match_what_nft_generates() {
    let bytes = batch(&ruleset((Ipv4Addr::new(10, 88, 0, 0), 20)), 1).expect("valid");
    let rules: Vec<String> = split(&bytes)
        .iter()
        .filter(|m| m.message_type == 0x0a06 && m.family == 7)
        .map(render)
        .collect();
    assert_eq!(rules, NFT_BRIDGE_RULES);
}

#[test]
fn removal_creates_then_deletes_both_tables() {
    let batch = message::batch(&ruleset::remove(), 1);
    let rendered: Vec<String> = split(&batch.bytes)[1..5].iter().map(render).collect();
    assert_eq!(
        rendered,
        [
            "new table ip berth",
            "delete table ip berth",
            "new table bridge berth",
            "delete table bridge berth"
        ]
    );
    assert_eq!(batch.label(2), Some("create table ip berth"));
    assert_eq!(batch.label(6), Some("commit the batch"));
}
