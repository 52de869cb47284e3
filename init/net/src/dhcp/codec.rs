//! Wire format: our [`Request`]s to bytes, server bytes to [`Reply`]s, with
//! `dhcproto`'s v4 module doing the field and option work.
//!
//! Encoding builds the message from a zeroed template by *decoding* it,
//! because every `dhcproto` constructor draws a random xid through `rand`'s
//! thread RNG, which blocks in getrandom(2) until the kernel CRNG is ready
//! and panics if it fails (random(7)): neither is acceptable in PID 1 at
//! boot. The encoded message is padded with zeros to the 300-byte BOOTP
//! minimum (RFC 1542 §3.1.1) that some servers and relays still enforce.
//!
//! Decoding checks what `dhcproto` does not before handing it the bytes:
//! the length of the fixed header, the op code, the magic cookie, and
//! `hlen <= 16` (`Message::chaddr` slices by `hlen` and would panic).
//! A reply must carry a message type that is OFFER, ACK or NAK. Note that
//! `dhcproto` stops reading options at the first one it cannot parse (for
//! example a hostname that is not UTF-8) and keeps the ones before it.

use std::net::Ipv4Addr;

use dhcproto::v4::{
    DhcpOption, DhcpOptions, Flags, HType, Message, MessageType, OptionCode, MAGIC,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use super::message::{Identity, Reply, ReplyKind, Request, RequestKind};

/// Fixed BOOTP header (236 bytes) plus the magic cookie.
const HEADER_LEN: usize = 240;
/// Smallest message we send (RFC 1542 §3.1.1).
const MIN_MESSAGE_LEN: usize = 300;
/// Option 57: the largest message we accept, a full Ethernet frame's IP
/// packet; the receive buffer is larger than this.
pub const MAX_MESSAGE_LEN: u16 = 1500;

/// The options we ask the server for (option 55).
const PARAMETERS: [OptionCode; 9] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::Hostname,
    OptionCode::DomainName,
    OptionCode::InterfaceMtu,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

/// Why a client message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("build the empty message")]
    Template(#[source] dhcproto::error::DecodeError),
    #[error("encode the message")]
    Encode(#[source] dhcproto::error::EncodeError),
}

/// Why bytes from port 67 are not a server reply for us to consider.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{len} bytes is shorter than a dhcp header ({HEADER_LEN})")]
    Truncated { len: usize },
    #[error("op code {op} is not a boot reply")]
    NotReply { op: u8 },
    #[error("magic cookie {cookie:?} is not dhcp's")]
    BadMagic { cookie: [u8; 4] },
    #[error("hardware address length {hlen} is longer than 16")]
    BadHardwareLength { hlen: u8 },
    #[error("parse the message")]
    Malformed(#[source] dhcproto::error::DecodeError),
    #[error("no dhcp message type (option 53)")]
    NoMessageType,
    #[error("message type {kind:?} is not a reply to a client")]
    NotForClient { kind: MessageType },
}

/// Encodes one client message.
pub fn encode(identity: &Identity, request: &Request) -> Result<Vec<u8>, EncodeError> {
    let mut msg = blank_message()?;
    msg.set_htype(HType::Eth)
        .set_chaddr(&identity.mac)
        .set_xid(request.xid)
        .set_secs(request.secs)
        .set_ciaddr(request.ciaddr);
    if request.broadcast {
        msg.set_flags(Flags::default().set_broadcast());
    }
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(match request.kind {
        RequestKind::Discover => MessageType::Discover,
        RequestKind::Request => MessageType::Request,
    }));
    if let Some(client_id) = &identity.client_id {
        opts.insert(DhcpOption::ClientIdentifier(client_id.clone()));
    }
    if let Some(hostname) = &identity.hostname {
        opts.insert(DhcpOption::Hostname(hostname.clone()));
    }
    if let Some(address) = request.requested_ip {
        opts.insert(DhcpOption::RequestedIpAddress(address));
    }
    if let Some(server) = request.server_id {
        opts.insert(DhcpOption::ServerIdentifier(server));
    }
    opts.insert(DhcpOption::ParameterRequestList(PARAMETERS.to_vec()));
    opts.insert(DhcpOption::MaxMessageSize(MAX_MESSAGE_LEN));

    let mut bytes = Vec::with_capacity(MIN_MESSAGE_LEN);
    msg.encode(&mut Encoder::new(&mut bytes))
        .map_err(EncodeError::Encode)?;
    if bytes.len() < MIN_MESSAGE_LEN {
        bytes.resize(MIN_MESSAGE_LEN, 0);
    }
    Ok(bytes)
}

/// An all-zero BOOTREQUEST with the magic cookie and no options.
fn blank_message() -> Result<Message, EncodeError> {
    let mut template = [0u8; HEADER_LEN];
    template[0] = 1; // BOOTREQUEST
    template[HEADER_LEN - 4..].copy_from_slice(&MAGIC);
    Message::decode(&mut Decoder::new(&template)).map_err(EncodeError::Template)
}

/// Decodes bytes received on port 68 into a reply.
pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { len: bytes.len() });
    }
    if bytes[0] != 2 {
        return Err(DecodeError::NotReply { op: bytes[0] });
    }
    let mut cookie = [0u8; 4];
    cookie.copy_from_slice(&bytes[HEADER_LEN - 4..HEADER_LEN]);
    if cookie != MAGIC {
        return Err(DecodeError::BadMagic { cookie });
    }
    let hlen = bytes[2];
    if hlen > 16 {
        return Err(DecodeError::BadHardwareLength { hlen });
    }
    let msg = Message::decode(&mut Decoder::new(bytes)).map_err(DecodeError::Malformed)?;
    let opts = msg.opts();
    let kind = match opts.msg_type() {
        None => return Err(DecodeError::NoMessageType),
        Some(MessageType::Offer) => ReplyKind::Offer,
        Some(MessageType::Ack) => ReplyKind::Ack,
        Some(MessageType::Nak) => ReplyKind::Nak,
        Some(kind) => return Err(DecodeError::NotForClient { kind }),
    };
    let mut reply = Reply::new(kind, msg.xid(), msg.chaddr(), msg.yiaddr());
    reply.server_id = address(opts, OptionCode::ServerIdentifier);
    reply.subnet_mask = address(opts, OptionCode::SubnetMask);
    reply.routers = addresses(opts, OptionCode::Router);
    reply.dns = addresses(opts, OptionCode::DomainNameServer);
    reply.domain = text(opts, OptionCode::DomainName);
    reply.hostname = text(opts, OptionCode::Hostname);
    reply.message = text(opts, OptionCode::Message);
    reply.mtu = match opts.get(OptionCode::InterfaceMtu) {
        Some(DhcpOption::InterfaceMtu(mtu)) => Some(*mtu),
        _ => None,
    };
    reply.lease_time = seconds(opts, OptionCode::AddressLeaseTime);
    reply.renewal_time = seconds(opts, OptionCode::Renewal);
    reply.rebinding_time = seconds(opts, OptionCode::Rebinding);
    Ok(reply)
}

fn address(opts: &DhcpOptions, code: OptionCode) -> Option<Ipv4Addr> {
    match opts.get(code)? {
        DhcpOption::ServerIdentifier(address) | DhcpOption::SubnetMask(address) => Some(*address),
        _ => None,
    }
}

fn addresses(opts: &DhcpOptions, code: OptionCode) -> Vec<Ipv4Addr> {
    match opts.get(code) {
        Some(DhcpOption::Router(list)) | Some(DhcpOption::DomainNameServer(list)) => list.clone(),
        _ => Vec::new(),
    }
}

/// A text option without the trailing NULs some servers include; empty
/// counts as absent.
fn text(opts: &DhcpOptions, code: OptionCode) -> Option<String> {
    let text = match opts.get(code)? {
        DhcpOption::DomainName(text) | DhcpOption::Hostname(text) | DhcpOption::Message(text) => {
            text.trim_end_matches('\0')
        }
        _ => return None,
    };
    (!text.is_empty()).then(|| text.to_string())
}

fn seconds(opts: &DhcpOptions, code: OptionCode) -> Option<u32> {
    match opts.get(code)? {
        DhcpOption::AddressLeaseTime(secs)
        | DhcpOption::Renewal(secs)
        | DhcpOption::Rebinding(secs) => Some(*secs),
        _ => None,
    }
}
