//! The nf_tables expressions berth's rules are made of, as data, and their
//! netlink encoding (include/uapi/linux/netfilter/nf_tables.h).
//!
//! A rule is a list of expressions run in order on a packet: loads into
//! registers (`meta`, `payload`), tests that stop the rule when false
//! (`cmp`), and actions (`masq`, `nat`, a verdict). Registers are the
//! classic 16-byte ones, `NFT_REG_1` and `NFT_REG_2`, as nft itself uses
//! them; a verdict is an `immediate` into the verdict register,
//! `NFT_REG_VERDICT` (0).

use super::attr::Attrs;

pub(crate) const REG_1: u32 = 1;
pub(crate) const REG_2: u32 = 2;

/// `NFT_META_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaKey {
    /// The input interface's name, 16 bytes (`IFNAMSIZ`).
    IifName = 6,
    /// The output interface's name, 16 bytes.
    OifName = 7,
    /// The transport protocol number, 1 byte.
    L4Proto = 16,
}

/// `NFT_PAYLOAD_*_HEADER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// The Ethernet header (bridge family): nf_tables puts a VLAN tag the
    /// driver or the stack took out of the frame back in place for the
    /// load, so offset 12 is 0x8100 for a tagged frame.
    LinkLayer = 0,
    Network = 1,
    Transport = 2,
}

/// What a rule does with the packet when all its tests passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `NF_ACCEPT`: done with this hook.
    Accept,
    /// `NF_DROP`.
    Drop,
    /// `NFT_JUMP`: on to a regular chain, back here if it ends without a
    /// verdict.
    Jump(String),
}

/// `NFT_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq = 0,
    Neq = 1,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `meta load KEY => reg`
    Meta { key: MetaKey, dreg: u32 },
    /// `payload load LEN @ BASE + OFFSET => reg`
    Payload {
        base: Base,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// `bitwise reg = (reg & mask) ^ xor`, as wide as `mask`.
    Bitwise {
        reg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// `cmp OP reg DATA`
    Cmp { op: CmpOp, sreg: u32, data: Vec<u8> },
    /// `immediate reg DATA`
    Immediate { dreg: u32, data: Vec<u8> },
    /// `masq`: source NAT to the output interface's address.
    Masq,
    /// `nat dnat ip addr_min REG proto_min REG`
    Dnat { addr_reg: u32, port_reg: u32 },
    /// `immediate reg 0 VERDICT`
    Verdict(Verdict),
}

// Attribute numbers, per expression.
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
/// `NFT_REG_VERDICT`.
const REG_VERDICT: u32 = 0;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// `NFT_JUMP`, -3 as a 32-bit big-endian word.
const NFT_JUMP: u32 = -3i32 as u32;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_NAT_FLAGS: u16 = 7;
const NFT_NAT_DNAT: u32 = 1;
pub(crate) const NFPROTO_IPV4: u8 = 2;
pub(crate) const NFPROTO_BRIDGE: u8 = 7;
/// `NF_NAT_RANGE_PROTO_SPECIFIED`: the port is rewritten too.
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;

impl Expr {
    /// The kernel's name of the expression type, which also names the
    /// module that implements it when it is not built into nf_tables.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Expr::Meta { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Cmp { .. } => "cmp",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Masq => "masq",
            Expr::Dnat { .. } => "nat",
        }
    }

    /// Writes one `NFTA_LIST_ELEM`'s contents: the name, then the data.
    pub(crate) fn encode(&self, out: &mut Attrs) {
        out.string(NFTA_EXPR_NAME, self.name());
        out.nested(NFTA_EXPR_DATA, |data| self.encode_data(data));
    }

    fn encode_data(&self, data: &mut Attrs) {
        match self {
            Expr::Meta { key, dreg } => {
                data.be32(NFTA_META_DREG, *dreg)
                    .be32(NFTA_META_KEY, *key as u32);
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                data.be32(NFTA_PAYLOAD_DREG, *dreg)
                    .be32(NFTA_PAYLOAD_BASE, *base as u32)
                    .be32(NFTA_PAYLOAD_OFFSET, *offset)
                    .be32(NFTA_PAYLOAD_LEN, *len);
            }
            Expr::Bitwise { reg, mask, xor } => {
                data.be32(NFTA_BITWISE_SREG, *reg)
                    .be32(NFTA_BITWISE_DREG, *reg)
                    .be32(NFTA_BITWISE_LEN, mask.len() as u32)
                    .nested(NFTA_BITWISE_MASK, |m| {
                        m.bytes_attr(NFTA_DATA_VALUE, mask);
                    })
                    .nested(NFTA_BITWISE_XOR, |x| {
                        x.bytes_attr(NFTA_DATA_VALUE, xor);
                    });
            }
            Expr::Cmp {
                op,
                sreg,
                data: value,
            } => {
                data.be32(NFTA_CMP_SREG, *sreg)
                    .be32(NFTA_CMP_OP, *op as u32)
                    .nested(NFTA_CMP_DATA, |d| {
                        d.bytes_attr(NFTA_DATA_VALUE, value);
                    });
            }
            Expr::Immediate { dreg, data: value } => {
                data.be32(NFTA_IMMEDIATE_DREG, *dreg)
                    .nested(NFTA_IMMEDIATE_DATA, |d| {
                        d.bytes_attr(NFTA_DATA_VALUE, value);
                    });
            }
            Expr::Masq => {}
            Expr::Dnat { addr_reg, port_reg } => {
                data.be32(NFTA_NAT_TYPE, NFT_NAT_DNAT)
                    .be32(NFTA_NAT_FAMILY, u32::from(NFPROTO_IPV4))
                    .be32(NFTA_NAT_REG_ADDR_MIN, *addr_reg)
                    .be32(NFTA_NAT_REG_PROTO_MIN, *port_reg)
                    .be32(NFTA_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
            }
            Expr::Verdict(verdict) => {
                data.be32(NFTA_IMMEDIATE_DREG, REG_VERDICT)
                    .nested(NFTA_IMMEDIATE_DATA, |d| {
                        d.nested(NFTA_DATA_VERDICT, |v| match verdict {
                            Verdict::Accept => {
                                v.be32(NFTA_VERDICT_CODE, NF_ACCEPT);
                            }
                            Verdict::Drop => {
                                v.be32(NFTA_VERDICT_CODE, NF_DROP);
                            }
                            Verdict::Jump(chain) => {
                                v.be32(NFTA_VERDICT_CODE, NFT_JUMP)
                                    .string(NFTA_VERDICT_CHAIN, chain);
                            }
                        });
                    });
            }
        }
    }
}

/// An interface name as `meta iifname`/`oifname` loads it: NUL-padded to
/// `IFNAMSIZ` (16) bytes, so the comparison is exact, not a prefix match.
pub(crate) fn ifname(name: &str) -> Vec<u8> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.resize(16, 0);
    bytes
}

/// What a name prefix compares with (`iifname "bv*"`): its bytes without
/// padding, so `cmp` looks at the first bytes of the register only.
pub(crate) fn ifname_prefix(prefix: &str) -> Vec<u8> {
    prefix.as_bytes().to_vec()
}
