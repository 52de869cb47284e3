//! A granted lease and the pure rules that turn a DHCPACK into one.
//!
//! - Prefix: from option 1 when it is a contiguous mask of at least one
//!   bit; otherwise (missing, 0.0.0.0 or non-contiguous) the classful
//!   default, as the kernel's own
//!   `ipconfig.c` does: class A (0–127) /8, class B (128–191) /16, anything
//!   else /24.
//! - Times (RFC 2131 §4.4.5): the lease time from option 51, or one hour
//!   when a sloppy server leaves it out of the ACK (better online and
//!   renewing soon than offline); at least one second, so a zero lease
//!   cannot spin the machine. T2 is option 59 when `0 < T2 < lease`, else
//!   7/8 of the lease; T1 is option 58 when `0 < T1 < T2`, else half the
//!   lease, or half of T2 when that would not come before T2. An
//!   "infinite" lease (0xffffffff) needs no special case: 136 years.
//! - Times count from when the REQUEST was first sent, not from when the
//!   ACK arrived (RFC 2131 §4.4.1), so a slow server never makes us think
//!   the lease lasts longer than it does.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::message::Reply;

/// Lease time assumed when an ACK has no option 51.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// The shortest lease we honour.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// What the server granted: everything the caller needs to configure the
/// interface, and the times the machine acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The first router of option 3.
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// The name the server gave us (option 12), if any.
    pub hostname: Option<String>,
    /// Option 26, only if at least the IPv4 minimum of 68.
    pub mtu: Option<u16>,
    /// The server to renew with (option 54 of the ACK).
    pub server: Ipv4Addr,
    pub lease_time: Duration,
    /// T1, relative to `obtained_at`.
    pub renew_after: Duration,
    /// T2, relative to `obtained_at`.
    pub rebind_after: Duration,
    /// When the REQUEST that got this lease was first sent.
    pub obtained_at: Duration,
}

impl Lease {
    /// Builds the lease from an ACK. `server` is the server to renew with
    /// when the ACK lacks option 54.
    pub fn from_ack(ack: &Reply, server: Ipv4Addr, obtained_at: Duration) -> Lease {
        let (lease_time, renew_after, rebind_after) =
            lease_times(ack.lease_time, ack.renewal_time, ack.rebinding_time);
        Lease {
            address: ack.yiaddr,
            prefix_len: prefix_len(ack.yiaddr, ack.subnet_mask),
            router: ack
                .routers
                .iter()
                .copied()
                .find(|router| !router.is_unspecified()),
            dns: ack
                .dns
                .iter()
                .copied()
                .filter(|dns| !dns.is_unspecified())
                .collect(),
            domain: ack.domain.clone(),
            hostname: ack.hostname.clone(),
            mtu: ack.mtu.filter(|mtu| *mtu >= 68),
            server: ack.server_id.unwrap_or(server),
            lease_time,
            renew_after,
            rebind_after,
            obtained_at,
        }
    }

    /// When to start renewing (T1).
    pub fn renew_at(&self) -> Duration {
        self.obtained_at + self.renew_after
    }

    /// When to start rebinding (T2).
    pub fn rebind_at(&self) -> Duration {
        self.obtained_at + self.rebind_after
    }

    /// When the address must be given up.
    pub fn expires_at(&self) -> Duration {
        self.obtained_at + self.lease_time
    }
}

/// The prefix length for `address`: from `mask` if it is contiguous, else
/// classful (see the module docs).
pub fn prefix_len(address: Ipv4Addr, mask: Option<Ipv4Addr>) -> u8 {
    if let Some(mask) = mask {
        let bits = u32::from(mask);
        let ones = bits.leading_ones();
        if ones > 0 && bits.checked_shl(ones).unwrap_or(0) == 0 {
            // `ones` is at most 32, which fits a u8.
            return ones as u8;
        }
    }
    match address.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// (lease time, T1, T2) from options 51, 58 and 59, by the rules in the
/// module docs.
pub fn lease_times(
    lease: Option<u32>,
    renewal: Option<u32>,
    rebinding: Option<u32>,
) -> (Duration, Duration, Duration) {
    let lease = lease
        .map(|secs| Duration::from_secs(u64::from(secs)))
        .unwrap_or(DEFAULT_LEASE)
        .max(MIN_LEASE);
    let within = |secs: Option<u32>, limit: Duration| {
        secs.map(|secs| Duration::from_secs(u64::from(secs)))
            .filter(|time| !time.is_zero() && *time < limit)
    };
    let rebind = within(rebinding, lease).unwrap_or(lease * 7 / 8);
    let renew = within(renewal, rebind).unwrap_or(if lease / 2 < rebind {
        lease / 2
    } else {
        rebind / 2
    });
    (lease, renew, rebind)
}
