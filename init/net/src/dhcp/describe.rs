//! The log lines of a session, one per decision, as pure functions so
//! their wording is tested and kept stable for people grepping logs:
//! `eth0: dhcp offer 10.0.2.15 from 10.0.2.2`,
//! `eth0: lease 10.0.2.15/24 for 86400s, router 10.0.2.2, dns 10.0.2.3`.

use std::net::Ipv4Addr;

use super::lease::Lease;
use super::machine::State;
use super::message::{Destination, Reply, ReplyKind, Request, RequestKind};

/// A message we send; `attempt` > 1 marks a retransmission.
pub fn send(ifname: &str, request: &Request, to: Destination, attempt: u32) -> String {
    let what = match (request.kind, request.requested_ip, request.server_id, to) {
        (RequestKind::Discover, ..) => "dhcp discover".to_string(),
        (RequestKind::Request, Some(address), Some(server), _) => {
            format!("dhcp request {address} from {server}")
        }
        (RequestKind::Request, _, _, Destination::Unicast(server)) => {
            format!("dhcp renew {} with {server}", request.ciaddr)
        }
        (RequestKind::Request, ..) => format!("dhcp rebind {}", request.ciaddr),
    };
    if attempt > 1 {
        format!("{ifname}: {what} again (attempt {attempt})")
    } else {
        format!("{ifname}: {what}")
    }
}

/// A lease granted (`renewed` false) or extended.
pub fn lease(ifname: &str, lease: &Lease, renewed: bool) -> String {
    let mut line = format!(
        "{ifname}: lease {}/{} {}for {}s",
        lease.address,
        lease.prefix_len,
        if renewed { "renewed " } else { "" },
        lease.lease_time.as_secs()
    );
    if let Some(router) = lease.router {
        line.push_str(&format!(", router {router}"));
    }
    if !lease.dns.is_empty() {
        line.push_str(&format!(", dns {}", list(&lease.dns)));
    }
    if let Some(domain) = &lease.domain {
        line.push_str(&format!(", domain {domain}"));
    }
    if let Some(mtu) = lease.mtu {
        line.push_str(&format!(", mtu {mtu}"));
    }
    line
}

/// A lease given up.
pub fn lost(ifname: &str, reason: &str) -> String {
    format!("{ifname}: dhcp lease lost: {reason}")
}

/// A reply the machine acted on in state `before`, when the resulting
/// actions do not say it themselves (an offer taken, a NAK to our
/// request).
pub fn reply(ifname: &str, before: State, reply: &Reply) -> Option<String> {
    let server = reply
        .server_id
        .map_or_else(|| "a server".to_string(), |server| server.to_string());
    match (before, reply.kind) {
        (State::Selecting, ReplyKind::Offer) => Some(format!(
            "{ifname}: dhcp offer {} from {server}",
            reply.yiaddr
        )),
        (State::Requesting, ReplyKind::Nak) => Some(format!(
            "{ifname}: dhcp nak from {server}{}, discovering again",
            reply
                .message
                .as_ref()
                .map_or_else(String::new, |message| format!(": {message}"))
        )),
        _ => None,
    }
}

fn list(addresses: &[Ipv4Addr]) -> String {
    addresses
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
