//! The RFC 2131 client state machine, pure: time comes in as a `Duration`
//! since any fixed origin, and every decision goes out as [`Action`]s for
//! the caller to carry out. No clock, socket or randomness inside.
//!
//! ```text
//!  start ─► SELECTING ──OFFER──► REQUESTING ──ACK──► BOUND ──T1──► RENEWING
//!              ▲  DISCOVER          │ REQUEST(50,54)   ▲           │ unicast REQUEST
//!              │  1,2,4..32 s       │ 4 tries, NAK     │ ACK       │ (ciaddr)
//!              ├────────────────────┘                  ├───────────┤
//!              │                                       │ ACK       ▼ T2
//!              └──────── NAK / expiry: Lost ───────────┴──── REBINDING
//!                                                           broadcast REQUEST
//! ```
//!
//! - A reply counts only if its xid is the current exchange's and its
//!   chaddr is our MAC; the first acceptable OFFER wins.
//! - Each exchange (a discovery, a renewal, a rebinding) gets a fresh xid
//!   derived from the configured seed and a counter, so the sequence is
//!   deterministic; retransmissions reuse it, and the SELECTING REQUEST
//!   reuses the DISCOVER's, as RFC 2131 requires.
//! - `Lost` is only emitted when an address was bound: a NAK to the
//!   SELECTING REQUEST just restarts discovery. Discovery restarts at once
//!   after expiry or a first NAK, later after NAKs in a row (see
//!   [`super::retransmit`]). There is no INIT-REBOOT (no address is
//!   remembered across boots) and no ARP probe or DECLINE.
//! - An ACK while renewing or rebinding that grants a different address
//!   yields `Lost` for the old one, then `Bound` for the new one.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::lease::Lease;
use super::message::{Destination, Identity, Reply, ReplyKind, Request, RequestKind};
use super::retransmit::{after_nak, backoff, lease_retry, MAX_REQUEST_ATTEMPTS};

/// What the client is and how it numbers its exchanges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub identity: Identity,
    /// Seed of the xid sequence; give each boot a different one.
    pub xid_seed: u32,
}

impl ClientConfig {
    /// A client for `mac` with the default client identifier (see
    /// [`Identity::new`]).
    pub fn new(mac: [u8; 6], xid_seed: u32, hostname: Option<String>) -> ClientConfig {
        ClientConfig {
            identity: Identity::new(mac, hostname),
            xid_seed,
        }
    }
}

/// The RFC 2131 state, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Init,
    Selecting,
    Requesting,
    Bound,
    Renewing,
    Rebinding,
}

/// A decision for the caller to carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Encode and send `request`; `attempt` counts transmissions of this
    /// exchange from 1, so more than 1 is a retransmission.
    Send {
        request: Request,
        to: Destination,
        attempt: u32,
    },
    /// A new address: configure it.
    Bound(Lease),
    /// The same address for longer; other options may have changed.
    Renewed(Lease),
    /// The address is no longer ours: deconfigure it.
    Lost { reason: String },
}

/// One transaction: a discovery, a renewal or a rebinding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exchange {
    xid: u32,
    /// When this acquisition or renewal began, for `secs`.
    started: Duration,
    /// When the current message was first sent: a lease granted in answer
    /// counts from here.
    first_sent: Duration,
    /// Transmissions of the current message so far.
    attempts: u32,
    /// When to transmit again (or, past the last attempt, give up).
    next_send: Duration,
}

impl Exchange {
    fn new(xid: u32, now: Duration) -> Exchange {
        Exchange {
            xid,
            started: now,
            first_sent: now,
            attempts: 0,
            next_send: now,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Init,
    Selecting(Exchange),
    Requesting {
        exchange: Exchange,
        offered: Ipv4Addr,
        server: Ipv4Addr,
    },
    Bound(Lease),
    Renewing {
        lease: Lease,
        exchange: Exchange,
    },
    Rebinding {
        lease: Lease,
        exchange: Exchange,
    },
}

/// The DHCPv4 client machine.
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    /// Exchanges begun so far: the input to the next xid.
    exchanges: u32,
    /// NAKs since the last ACK.
    naks: u32,
    phase: Phase,
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        Client {
            config,
            exchanges: 0,
            naks: 0,
            phase: Phase::Init,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Starts discovery; does nothing unless in INIT.
    pub fn start(&mut self, now: Duration) -> Vec<Action> {
        match self.phase {
            Phase::Init => self.discover(now),
            _ => Vec::new(),
        }
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Init => State::Init,
            Phase::Selecting(_) => State::Selecting,
            Phase::Requesting { .. } => State::Requesting,
            Phase::Bound(_) => State::Bound,
            Phase::Renewing { .. } => State::Renewing,
            Phase::Rebinding { .. } => State::Rebinding,
        }
    }

    /// The lease held, while BOUND, RENEWING or REBINDING.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.phase {
            Phase::Bound(lease)
            | Phase::Renewing { lease, .. }
            | Phase::Rebinding { lease, .. } => Some(lease),
            _ => None,
        }
    }

    /// The next time [`Client::on_tick`] has something to do.
    pub fn deadline(&self) -> Option<Duration> {
        match &self.phase {
            Phase::Init => None,
            Phase::Bound(lease) => Some(lease.renew_at()),
            Phase::Selecting(exchange)
            | Phase::Requesting { exchange, .. }
            | Phase::Renewing { exchange, .. }
            | Phase::Rebinding { exchange, .. } => Some(exchange.next_send),
        }
    }

    /// Runs the timers due at `now`: retransmissions, T1, T2, expiry.
    pub fn on_tick(&mut self, now: Duration) -> Vec<Action> {
        match &self.phase {
            Phase::Init => Vec::new(),
            Phase::Selecting(exchange) if now >= exchange.next_send => self.transmit(now),
            Phase::Requesting { exchange, .. } if now >= exchange.next_send => {
                if exchange.attempts >= MAX_REQUEST_ATTEMPTS {
                    self.discover(now)
                } else {
                    self.transmit(now)
                }
            }
            Phase::Bound(lease)
            | Phase::Renewing { lease, .. }
            | Phase::Rebinding { lease, .. }
                if now >= lease.expires_at() =>
            {
                self.lose(now, format!("lease on {} expired", lease.address))
            }
            Phase::Bound(lease) | Phase::Renewing { lease, .. } if now >= lease.rebind_at() => {
                let lease = lease.clone();
                self.phase = Phase::Rebinding {
                    lease,
                    exchange: Exchange::new(self.next_xid(), now),
                };
                self.transmit(now)
            }
            Phase::Bound(lease) if now >= lease.renew_at() => {
                let lease = lease.clone();
                self.phase = Phase::Renewing {
                    lease,
                    exchange: Exchange::new(self.next_xid(), now),
                };
                self.transmit(now)
            }
            Phase::Renewing { exchange, .. } | Phase::Rebinding { exchange, .. }
                if now >= exchange.next_send =>
            {
                self.transmit(now)
            }
            _ => Vec::new(),
        }
    }

    /// Handles a decoded server message.
    pub fn on_message(&mut self, now: Duration, reply: &Reply) -> Vec<Action> {
        if reply.chaddr != self.config.identity.mac {
            return Vec::new();
        }
        match (&self.phase, reply.kind) {
            (Phase::Selecting(exchange), ReplyKind::Offer)
                if reply.xid == exchange.xid && usable(reply.yiaddr) =>
            {
                let Some(server) = reply.server_id else {
                    return Vec::new();
                };
                let mut exchange = exchange.clone();
                exchange.first_sent = now;
                exchange.attempts = 0;
                exchange.next_send = now;
                self.phase = Phase::Requesting {
                    exchange,
                    offered: reply.yiaddr,
                    server,
                };
                self.transmit(now)
            }
            (
                Phase::Requesting {
                    exchange, server, ..
                },
                kind,
            ) if reply.xid == exchange.xid && reply.server_id.is_none_or(|id| id == *server) => {
                match kind {
                    ReplyKind::Ack if usable(reply.yiaddr) => {
                        let lease = Lease::from_ack(reply, *server, exchange.first_sent);
                        self.naks = 0;
                        self.phase = Phase::Bound(lease.clone());
                        vec![Action::Bound(lease)]
                    }
                    ReplyKind::Nak => {
                        self.naks = self.naks.saturating_add(1);
                        self.discover_after(now, after_nak(self.naks))
                    }
                    _ => Vec::new(),
                }
            }
            (Phase::Renewing { lease, exchange }, kind)
            | (Phase::Rebinding { lease, exchange }, kind)
                if reply.xid == exchange.xid =>
            {
                match kind {
                    ReplyKind::Ack if usable(reply.yiaddr) => {
                        let old = lease.address;
                        let lease = Lease::from_ack(reply, lease.server, exchange.first_sent);
                        self.naks = 0;
                        self.phase = Phase::Bound(lease.clone());
                        if lease.address == old {
                            vec![Action::Renewed(lease)]
                        } else {
                            let reason =
                                format!("server moved the lease from {old} to {}", lease.address);
                            vec![Action::Lost { reason }, Action::Bound(lease)]
                        }
                    }
                    ReplyKind::Nak => {
                        let reason = nak_reason(lease.address, reply);
                        self.naks = self.naks.saturating_add(1);
                        let mut actions = vec![Action::Lost { reason }];
                        actions.extend(self.discover_after(now, after_nak(self.naks)));
                        actions
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Gives up the lease and starts discovery again.
    fn lose(&mut self, now: Duration, reason: String) -> Vec<Action> {
        let mut actions = vec![Action::Lost { reason }];
        actions.extend(self.discover(now));
        actions
    }

    /// Begins a new discovery and sends its first DISCOVER.
    fn discover(&mut self, now: Duration) -> Vec<Action> {
        self.discover_after(now, Duration::ZERO)
    }

    /// Begins a new discovery whose first DISCOVER goes out after `delay`.
    fn discover_after(&mut self, now: Duration, delay: Duration) -> Vec<Action> {
        self.phase = Phase::Selecting(Exchange::new(self.next_xid(), now + delay));
        if delay.is_zero() {
            self.transmit(now)
        } else {
            Vec::new()
        }
    }

    fn next_xid(&mut self) -> u32 {
        let xid = xid(self.config.xid_seed, self.exchanges);
        self.exchanges = self.exchanges.wrapping_add(1);
        xid
    }

    /// Sends the current phase's message and schedules the next one.
    fn transmit(&mut self, now: Duration) -> Vec<Action> {
        let (exchange, request, to, until) = match &mut self.phase {
            Phase::Init | Phase::Bound(_) => return Vec::new(),
            Phase::Selecting(exchange) => {
                let request = fresh(RequestKind::Discover, exchange, now);
                (exchange, request, Destination::Broadcast, None)
            }
            Phase::Requesting {
                exchange,
                offered,
                server,
            } => {
                let mut request = fresh(RequestKind::Request, exchange, now);
                request.requested_ip = Some(*offered);
                request.server_id = Some(*server);
                (exchange, request, Destination::Broadcast, None)
            }
            Phase::Renewing { lease, exchange } => {
                let request = extending(lease, exchange, now);
                let to = Destination::Unicast(lease.server);
                (exchange, request, to, Some(lease.rebind_at()))
            }
            Phase::Rebinding { lease, exchange } => {
                let request = extending(lease, exchange, now);
                (
                    exchange,
                    request,
                    Destination::Broadcast,
                    Some(lease.expires_at()),
                )
            }
        };
        exchange.attempts += 1;
        exchange.next_send = match until {
            None => now + backoff(exchange.attempts),
            Some(until) => lease_retry(now, until),
        };
        vec![Action::Send {
            request,
            to,
            attempt: exchange.attempts,
        }]
    }
}

/// A message sent before we have an address.
fn fresh(kind: RequestKind, exchange: &Exchange, now: Duration) -> Request {
    Request {
        kind,
        xid: exchange.xid,
        secs: secs(exchange, now),
        broadcast: true,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        requested_ip: None,
        server_id: None,
    }
}

/// A renewing or rebinding REQUEST: ciaddr set, no options 50 and 54.
fn extending(lease: &Lease, exchange: &Exchange, now: Duration) -> Request {
    Request {
        kind: RequestKind::Request,
        xid: exchange.xid,
        secs: secs(exchange, now),
        broadcast: false,
        ciaddr: lease.address,
        requested_ip: None,
        server_id: None,
    }
}

fn secs(exchange: &Exchange, now: Duration) -> u16 {
    let secs = now.saturating_sub(exchange.started).as_secs();
    u16::try_from(secs).unwrap_or(u16::MAX)
}

/// An address a server may hand to a host.
fn usable(address: Ipv4Addr) -> bool {
    !(address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_loopback())
}

fn nak_reason(address: Ipv4Addr, reply: &Reply) -> String {
    let mut reason = match reply.server_id {
        Some(server) => format!("{server} refused {address} (nak)"),
        None => format!("a server refused {address} (nak)"),
    };
    if let Some(message) = &reply.message {
        reason.push_str(": ");
        reason.push_str(message);
    }
    reason
}

/// The xid of exchange number `exchange`: a splitmix64 finaliser over the
/// seed and the counter, so consecutive xids look unrelated.
pub fn xid(seed: u32, exchange: u32) -> u32 {
    let mut z = ((u64::from(seed) << 32) | u64::from(exchange)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    // Keeping the low half of a well-mixed word is the point.
    (z ^ (z >> 31)) as u32
}
