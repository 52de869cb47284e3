//! Raw Ethernet frames for the layer-2 attack tests: building them (ARP,
//! IPv4/UDP, an ICMPv6 router advertisement), sending and capturing them
//! on a packet socket, and reading the kernel tables they would change
//! (`/proc/thread-self/net/arp`, `if_inet6`, `ipv6_route`). Every function
//! that opens a socket or reads a table works in the network namespace of
//! the calling thread; a socket keeps its namespace afterwards.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::ifaddrs::getifaddrs;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recvfrom, send, socket, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockProtocol,
    SockType,
};

pub const BROADCAST: [u8; 6] = [0xff; 6];
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ARP_REQUEST: u16 = 1;
/// `PACKET_OUTGOING`: a frame this namespace sent, not one it received.
const PACKET_OUTGOING: u8 = 4;

/// The Internet checksum (RFC 1071) of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut frame = Vec::with_capacity(64);
    frame.extend(dst);
    frame.extend(src);
    frame.extend(ethertype.to_be_bytes());
    frame
}

/// A gratuitous ARP request (RFC 5227 §3: sender and target address the
/// same, broadcast) from `mac` claiming `claimed`: a neighbour that has an
/// entry for `claimed` takes `mac` for it at once. `marker` follows as
/// padding, which ARP ignores, so a capture can tell the frame.
pub fn gratuitous_arp(mac: [u8; 6], claimed: Ipv4Addr, marker: &[u8]) -> Vec<u8> {
    let mut frame = ethernet(BROADCAST, mac, ETH_P_ARP);
    frame.extend([0x00, 0x01, 0x08, 0x00, 6, 4]);
    frame.extend(ARP_REQUEST.to_be_bytes());
    frame.extend(mac);
    frame.extend(claimed.octets());
    frame.extend([0; 6]);
    frame.extend(claimed.octets());
    frame.extend(marker);
    frame
}

/// A UDP datagram in an IPv4 packet in an Ethernet frame (UDP checksum 0:
/// none, which IPv4 allows).
pub fn udp(
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = (20 + udp_len) as u16;
    let mut ip = vec![0x45, 0x00];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 0, 0x40, 0x00, 64, 17, 0, 0]);
    ip.extend(ip_src.octets());
    ip.extend(ip_dst.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = ethernet(eth_dst, eth_src, ETH_P_IP);
    frame.extend(ip);
    frame.extend(port.to_be_bytes());
    frame.extend(port.to_be_bytes());
    frame.extend((udp_len as u16).to_be_bytes());
    frame.extend([0, 0]);
    frame.extend(payload);
    frame
}

/// The link-local IPv6 address made from `mac` (RFC 4291, modified EUI-64).
pub fn link_local(mac: [u8; 6]) -> [u8; 16] {
    let mut address = [0u8; 16];
    address[0] = 0xfe;
    address[1] = 0x80;
    address[8..11].copy_from_slice(&[mac[0] ^ 0x02, mac[1], mac[2]]);
    address[11..13].copy_from_slice(&[0xff, 0xfe]);
    address[13..16].copy_from_slice(&mac[3..6]);
    address
}

/// An ICMPv6 router advertisement (RFC 4861 §4.2) from `mac`'s link-local
/// address to all nodes: a default router for 30 minutes, and `prefix`/64
/// for stateless autoconfiguration (on-link and autonomous flags).
pub fn router_advertisement(mac: [u8; 6], prefix: [u8; 16]) -> Vec<u8> {
    let source = link_local(mac);
    let mut all_nodes = [0u8; 16];
    all_nodes[0] = 0xff;
    all_nodes[1] = 0x02;
    all_nodes[15] = 0x01;
    let mut icmp = vec![134, 0, 0, 0, 64, 0];
    icmp.extend(1800u16.to_be_bytes());
    icmp.extend([0; 8]);
    // Source link-layer address option.
    icmp.extend([1, 1]);
    icmp.extend(mac);
    // Prefix information option.
    icmp.extend([3, 4, 64, 0xc0]);
    icmp.extend(86_400u32.to_be_bytes());
    icmp.extend(14_400u32.to_be_bytes());
    icmp.extend([0; 4]);
    icmp.extend(prefix);
    let mut pseudo = Vec::new();
    pseudo.extend(source);
    pseudo.extend(all_nodes);
    pseudo.extend((icmp.len() as u32).to_be_bytes());
    pseudo.extend([0, 0, 0, 58]);
    pseudo.extend(&icmp);
    let sum = checksum(&pseudo);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut frame = ethernet([0x33, 0x33, 0, 0, 0, 1], mac, ETH_P_IPV6);
    frame.extend([0x60, 0, 0, 0]);
    frame.extend((icmp.len() as u16).to_be_bytes());
    frame.extend([58, 255]);
    frame.extend(source);
    frame.extend(all_nodes);
    frame.extend(icmp);
    frame
}

/// A packet socket bound to one interface: sends whole frames, sees every
/// frame the interface receives.
#[derive(Debug)]
pub struct Wire {
    fd: OwnedFd,
}

impl Wire {
    /// Opens it on `ifname` of the calling thread's namespace.
    pub fn open(ifname: &str) -> Wire {
        let link: LinkAddr = getifaddrs()
            .expect("getifaddrs")
            .filter(|i| i.interface_name == ifname)
            .find_map(|i| i.address.and_then(|a| a.as_link_addr().copied()))
            .unwrap_or_else(|| panic!("no packet address for {ifname}"));
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK,
            SockProtocol::EthAll,
        )
        .expect("packet socket (needs CAP_NET_RAW)");
        // The address from getifaddrs names the interface; its protocol is
        // 0, which keeps the socket's own, ETH_P_ALL.
        bind(fd.as_raw_fd(), &link).expect("bind the packet socket");
        Wire { fd }
    }

    pub fn send(&self, frame: &[u8]) {
        let sent = send(self.fd.as_raw_fd(), frame, MsgFlags::empty()).expect("send a frame");
        assert_eq!(sent, frame.len(), "whole frame sent");
    }

    /// Every frame received (not sent) during `window`.
    pub fn capture(&self, window: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + window;
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            loop {
                match recvfrom::<LinkAddr>(self.fd.as_raw_fd(), &mut buf) {
                    Ok((len, from)) => {
                        if from.is_none_or(|f| f.pkttype() != PACKET_OUTGOING) {
                            frames.push(buf[..len].to_vec());
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(e) => panic!("receive a frame: {e}"),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return frames;
            }
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            )
            .expect("poll");
        }
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The neighbour table as `/proc/net/arp` shows it: address → MAC of the
/// complete entries.
pub fn arp_table() -> BTreeMap<Ipv4Addr, String> {
    let table = std::fs::read_to_string("/proc/thread-self/net/arp").expect("read the ARP table");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let complete = fields.get(2).is_some_and(|flags| *flags != "0x0");
            let address = fields.first()?.parse().ok()?;
            let mac = fields.get(3)?.to_string();
            complete.then_some((address, mac))
        })
        .collect()
}

/// `/proc/net/if_inet6` and `/proc/net/ipv6_route`: the IPv6 addresses and
/// routes of the namespace, one line each, empty on a kernel without IPv6.
pub fn ipv6_state() -> (String, String) {
    let read =
        |f: &str| std::fs::read_to_string(format!("/proc/thread-self/net/{f}")).unwrap_or_default();
    (read("if_inet6"), read("ipv6_route"))
}

/// The MAC of `frame`'s destination and source.
pub fn macs(frame: &[u8]) -> ([u8; 6], [u8; 6]) {
    let mut dst = [0; 6];
    let mut src = [0; 6];
    dst.copy_from_slice(&frame[..6]);
    src.copy_from_slice(&frame[6..12]);
    (dst, src)
}
