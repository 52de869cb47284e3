//! nfnetlink framing: each command becomes one netlink message (header,
//! `struct nfgenmsg`, attributes), and the commands of one change travel
//! between `NFNL_MSG_BATCH_BEGIN` and `NFNL_MSG_BATCH_END` so the kernel
//! applies them all or none (net/netfilter/nfnetlink.c,
//! `nfnetlink_rcv_batch`). The kernel answers every failed command, tied
//! to it by its sequence number, and the last command asks for an ack so
//! that its answer marks the end of the answers.

use super::attr::Attrs;
use super::ruleset::{Chain, Command, TABLE};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;

const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
/// The batch's `res_id`: the subsystem the batch is for.
const NFNL_SUBSYS_NFTABLES: u16 = 10;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NF_ACCEPT: u32 = 1;

/// A batch on the wire, with what each acked sequence number stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    /// `(seq, description)` of every message, the batch's own included.
    pub labels: Vec<(u32, String)>,
    /// `(seq, module)` of every command that needs a module.
    pub modules: Vec<(u32, &'static str)>,
}

impl Batch {
    pub(crate) fn label(&self, seq: u32) -> Option<&str> {
        self.labels
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, label)| label.as_str())
    }

    pub(crate) fn module(&self, seq: u32) -> Option<&'static str> {
        self.modules
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, module)| *module)
    }
}

/// Frames `commands` as one batch numbered from `first_seq`: the begin
/// marker, then each command, then the end marker.
pub(crate) fn batch(commands: &[Command], first_seq: u32) -> Batch {
    let seq = |n: usize| first_seq.wrapping_add(n as u32);
    let end = seq(commands.len() + 1);
    let mut labels = vec![(first_seq, "start the batch".to_string())];
    let mut modules = Vec::new();
    let mut bytes = message(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        first_seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        Vec::new(),
    );
    for (n, command) in commands.iter().enumerate() {
        let (kind, mut flags, attrs) = encode(command);
        // Only the last command asks for an ack: see `acks`.
        if n + 1 == commands.len() {
            flags |= NLM_F_ACK;
        }
        labels.push((seq(n + 1), command.describe()));
        modules.extend(command.module().map(|module| (seq(n + 1), module)));
        bytes.extend(message(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | flags,
            seq(n + 1),
            command.family().number(),
            0,
            attrs,
        ));
    }
    labels.push((end, "commit the batch".to_string()));
    bytes.extend(message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        end,
        0,
        NFNL_SUBSYS_NFTABLES,
        Vec::new(),
    ));
    Batch {
        bytes,
        labels,
        modules,
    }
}

/// Message type (within nf_tables), extra flags and attributes of a
/// command. Flags follow nft: create tables and chains if missing, append
/// rules. The family travels in each message's header, not here.
fn encode(command: &Command) -> (u16, u16, Vec<u8>) {
    let mut attrs = Attrs::new();
    match command {
        Command::NewTable(_) => {
            attrs
                .string(NFTA_TABLE_NAME, TABLE)
                .be32(NFTA_TABLE_FLAGS, 0);
            (NFT_MSG_NEWTABLE, NLM_F_CREATE, attrs.into_bytes())
        }
        Command::DeleteTable(_) => {
            attrs.string(NFTA_TABLE_NAME, TABLE);
            (NFT_MSG_DELTABLE, 0, attrs.into_bytes())
        }
        Command::NewChain(Chain { name, hook, .. }) => {
            attrs
                .string(NFTA_CHAIN_TABLE, TABLE)
                .string(NFTA_CHAIN_NAME, name);
            // A regular chain (a jump target) has no hook, type or policy.
            if let Some(hook) = hook {
                attrs
                    .string(NFTA_CHAIN_TYPE, hook.kind)
                    .be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
                    .nested(NFTA_CHAIN_HOOK, |h| {
                        h.be32(NFTA_HOOK_HOOKNUM, hook.hook)
                            .be32(NFTA_HOOK_PRIORITY, hook.priority as u32);
                    });
            }
            (NFT_MSG_NEWCHAIN, NLM_F_CREATE, attrs.into_bytes())
        }
        Command::NewRule { chain, exprs, .. } => {
            attrs
                .string(NFTA_RULE_TABLE, TABLE)
                .string(NFTA_RULE_CHAIN, chain)
                .nested(NFTA_RULE_EXPRESSIONS, |list| {
                    for expr in exprs {
                        list.nested(NFTA_LIST_ELEM, |elem| expr.encode(elem));
                    }
                });
            (
                NFT_MSG_NEWRULE,
                NLM_F_CREATE | NLM_F_APPEND,
                attrs.into_bytes(),
            )
        }
    }
}

/// One netlink message: `nlmsghdr`, `nfgenmsg { family, version 0,
/// res_id (big-endian) }`, attributes.
fn message(
    message_type: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: Vec<u8>,
) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&(len as u32).to_ne_bytes());
    bytes.extend_from_slice(&message_type.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&seq.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes.push(family);
    bytes.push(0);
    bytes.extend_from_slice(&res_id.to_be_bytes());
    bytes.extend(attrs);
    bytes
}
