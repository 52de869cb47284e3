//! The DHCP messages as the client machine sees them: plain data, no
//! wire format. [`Request`] is what the machine decides to send (only the
//! fields that vary between exchanges; the constant identity lives in
//! [`Identity`]); [`Reply`] is a server message already decoded and checked
//! by the codec, with the options the client asked for pulled out.

use std::net::Ipv4Addr;

/// Who the client is on the wire: the same in every message it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Hardware address, sent as `chaddr` (htype Ethernet, hlen 6).
    pub mac: [u8; 6],
    /// Option 12, so the server (and its DNS) can learn our name.
    pub hostname: Option<String>,
    /// Option 61; `None` sends no client identifier and the server keys
    /// the lease on `chaddr`.
    pub client_id: Option<Vec<u8>>,
}

impl Identity {
    /// Identity with the RFC 2132 §9.14 client identifier: hardware type
    /// 1 (Ethernet) followed by the MAC address.
    pub fn new(mac: [u8; 6], hostname: Option<String>) -> Identity {
        let mut client_id = Vec::with_capacity(7);
        client_id.push(1);
        client_id.extend_from_slice(&mac);
        Identity {
            mac,
            hostname,
            client_id: Some(client_id),
        }
    }
}

/// The DHCP message type of a client message (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Discover,
    Request,
}

/// One client message, as decided by the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: RequestKind,
    /// Transaction id; the same across retransmissions of one exchange.
    pub xid: u32,
    /// Seconds since this acquisition or renewal began (RFC 2131 `secs`).
    pub secs: u16,
    /// BOOTP broadcast flag: set while we have no address, so the server
    /// broadcasts its reply (a plain UDP socket cannot receive a unicast
    /// to an address the interface does not have yet).
    pub broadcast: bool,
    /// Our address when renewing or rebinding, else 0.0.0.0.
    pub ciaddr: Ipv4Addr,
    /// Option 50: the offered address, only in SELECTING.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54: the chosen server, only in SELECTING.
    pub server_id: Option<Ipv4Addr>,
}

/// Where a client message goes (always UDP port 67).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255.
    Broadcast,
    /// The server that granted the lease (renewal, RFC 2131 §4.4.5).
    Unicast(Ipv4Addr),
}

/// The DHCP message type of a server message (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
    Nak,
}

/// A decoded server message with the fields the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    pub xid: u32,
    /// The client hardware address the server answers (hlen bytes).
    pub chaddr: Vec<u8>,
    /// "Your" address: the offered or granted address.
    pub yiaddr: Ipv4Addr,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3, all routers in the server's order of preference.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 26.
    pub mtu: Option<u16>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
    /// Option 58 (T1), seconds.
    pub renewal_time: Option<u32>,
    /// Option 59 (T2), seconds.
    pub rebinding_time: Option<u32>,
    /// Option 56: the server's explanation, mostly on a NAK.
    pub message: Option<String>,
}

impl Reply {
    /// A reply with only the header fields set; tests and the codec fill in
    /// the options.
    pub fn new(kind: ReplyKind, xid: u32, chaddr: &[u8], yiaddr: Ipv4Addr) -> Reply {
        Reply {
            kind,
            xid,
            chaddr: chaddr.to_vec(),
            yiaddr,
            server_id: None,
            subnet_mask: None,
            routers: Vec::new(),
            dns: Vec::new(),
            domain: None,
            hostname: None,
            mtu: None,
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            message: None,
        }
    }
}
