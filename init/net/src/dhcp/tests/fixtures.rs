//! Shared test data: one client, one server, and builders for the
//! messages and actions the tables expect.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode};
use dhcproto::{Encodable, Encoder};

use super::super::lease::Lease;
use super::super::machine::{xid, Action, ClientConfig};
use super::super::message::{Destination, Reply, ReplyKind, Request, RequestKind};

pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub const SEED: u32 = 0x00c0_ffee;
pub const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const OTHER_SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub const OTHER_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
pub const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

pub fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

pub fn millis(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub fn config() -> ClientConfig {
    ClientConfig::new(MAC, SEED, Some("node1".to_string()))
}

/// The xid of the client's `n`-th exchange (from 0).
pub fn x(n: u32) -> u32 {
    xid(SEED, n)
}

fn send(request: Request, to: Destination, attempt: u32) -> Action {
    Action::Send {
        request,
        to,
        attempt,
    }
}

fn request(kind: RequestKind, xid: u32, secs: u16) -> Request {
    Request {
        kind,
        xid,
        secs,
        broadcast: true,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        requested_ip: None,
        server_id: None,
    }
}

pub fn discover(xid: u32, secs: u16, attempt: u32) -> Action {
    send(
        request(RequestKind::Discover, xid, secs),
        Destination::Broadcast,
        attempt,
    )
}

/// The SELECTING REQUEST for ADDRESS from SERVER.
pub fn select(xid: u32, secs: u16, attempt: u32) -> Action {
    let mut request = request(RequestKind::Request, xid, secs);
    request.requested_ip = Some(ADDRESS);
    request.server_id = Some(SERVER);
    send(request, Destination::Broadcast, attempt)
}

fn extending(xid: u32, secs: u16) -> Request {
    let mut request = request(RequestKind::Request, xid, secs);
    request.broadcast = false;
    request.ciaddr = ADDRESS;
    request
}

pub fn renew(xid: u32, secs: u16, attempt: u32, server: Ipv4Addr) -> Action {
    send(extending(xid, secs), Destination::Unicast(server), attempt)
}

pub fn rebind(xid: u32, secs: u16, attempt: u32) -> Action {
    send(extending(xid, secs), Destination::Broadcast, attempt)
}

pub fn offer(xid: u32) -> Reply {
    let mut reply = Reply::new(ReplyKind::Offer, xid, &MAC, ADDRESS);
    reply.server_id = Some(SERVER);
    reply.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
    reply.lease_time = Some(3600);
    reply
}

/// An ACK for ADDRESS from SERVER with the given lease time and no T1/T2.
pub fn ack(xid: u32, lease_secs: u32) -> Reply {
    let mut reply = Reply::new(ReplyKind::Ack, xid, &MAC, ADDRESS);
    reply.server_id = Some(SERVER);
    reply.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
    reply.routers = vec![ROUTER];
    reply.dns = vec![DNS];
    reply.domain = Some("example.test".to_string());
    reply.lease_time = Some(lease_secs);
    reply
}

pub fn nak(xid: u32) -> Reply {
    let mut reply = Reply::new(ReplyKind::Nak, xid, &MAC, Ipv4Addr::UNSPECIFIED);
    reply.server_id = Some(SERVER);
    reply.message = Some("wrong network".to_string());
    reply
}

/// The lease `ack(_, lease_secs)` grants, obtained at `obtained_at`.
pub fn lease(obtained_at: Duration, lease_secs: u64) -> Lease {
    let lease_time = secs(lease_secs);
    Lease {
        address: ADDRESS,
        prefix_len: 24,
        router: Some(ROUTER),
        dns: vec![DNS],
        domain: Some("example.test".to_string()),
        hostname: None,
        mtu: None,
        server: SERVER,
        lease_time,
        renew_after: lease_time / 2,
        rebind_after: lease_time * 7 / 8,
        obtained_at,
    }
}

/// `reply` as a server would put it on the wire.
pub fn server_bytes(reply: &Reply) -> Vec<u8> {
    let mut msg = Message::default();
    msg.set_opcode(Opcode::BootReply)
        .set_xid(reply.xid)
        .set_chaddr(&reply.chaddr)
        .set_yiaddr(reply.yiaddr)
        .set_flags(Flags::default().set_broadcast());
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(match reply.kind {
        ReplyKind::Offer => MessageType::Offer,
        ReplyKind::Ack => MessageType::Ack,
        ReplyKind::Nak => MessageType::Nak,
    }));
    if let Some(server) = reply.server_id {
        opts.insert(DhcpOption::ServerIdentifier(server));
    }
    if let Some(mask) = reply.subnet_mask {
        opts.insert(DhcpOption::SubnetMask(mask));
    }
    if !reply.routers.is_empty() {
        opts.insert(DhcpOption::Router(reply.routers.clone()));
    }
    if !reply.dns.is_empty() {
        opts.insert(DhcpOption::DomainNameServer(reply.dns.clone()));
    }
    if let Some(domain) = &reply.domain {
        opts.insert(DhcpOption::DomainName(domain.clone()));
    }
    if let Some(hostname) = &reply.hostname {
        opts.insert(DhcpOption::Hostname(hostname.clone()));
    }
    if let Some(mtu) = reply.mtu {
        opts.insert(DhcpOption::InterfaceMtu(mtu));
    }
    if let Some(secs) = reply.lease_time {
        opts.insert(DhcpOption::AddressLeaseTime(secs));
    }
    if let Some(secs) = reply.renewal_time {
        opts.insert(DhcpOption::Renewal(secs));
    }
    if let Some(secs) = reply.rebinding_time {
        opts.insert(DhcpOption::Rebinding(secs));
    }
    if let Some(message) = &reply.message {
        opts.insert(DhcpOption::Message(message.clone()));
    }
    let mut bytes = Vec::new();
    msg.encode(&mut Encoder::new(&mut bytes))
        .expect("encode a server reply");
    bytes
}
