//! One interface's DHCP client for the PID-1 main loop: the pure
//! [`Client`] machine, the codec and a [`Transport`], glued together.
//!
//! The loop polls [`Session::fd`] for input and wakes at
//! [`Session::deadline`]; it calls [`Session::on_readable`] or
//! [`Session::on_tick`] with the current monotonic time, and applies the
//! returned [`Event`]s (over rtnetlink: the session configures nothing).
//! Each call drains the socket (bounded, so a flood cannot starve the
//! loop), feeds every decodable reply to the machine, sends what it
//! decides, and logs each decision at info level, retransmissions and
//! dropped packets at debug. Send and receive errors are logged, not
//! returned: retransmission covers a lost send.

use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use log::{debug, info, warn};

use super::codec;
use super::describe;
use super::error::Error;
use super::lease::Lease;
use super::machine::{Action, Client, ClientConfig, State};
use super::message::{Destination, Request};
use super::socket::{Transport, UdpTransport, SERVER_PORT};
use crate::chain;

/// Datagrams read per `on_readable` call at most.
const MAX_BATCH: usize = 32;
/// Receive buffer: more than the largest message we accept (option 57).
const RECV_BUFFER: usize = 2048;

/// What the caller must apply to the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Configure this new address, route and resolver settings.
    Bound(Lease),
    /// Same address, extended; options may have changed.
    Renewed(Lease),
    /// Remove the address.
    Lost { reason: String },
}

/// A running DHCP client on one interface.
#[derive(Debug)]
pub struct Session<T: Transport = UdpTransport> {
    ifname: String,
    client: Client,
    transport: T,
}

impl Session<UdpTransport> {
    /// Opens the socket on `ifname` (which must be up) and sends the first
    /// DISCOVER. The xid seed comes from std's per-process hash keys,
    /// which are read without blocking even before the kernel CRNG is
    /// ready.
    pub fn open(
        ifname: &str,
        mac: [u8; 6],
        hostname: Option<String>,
        now: Duration,
    ) -> Result<Session<UdpTransport>, Error> {
        let transport = UdpTransport::open(ifname)?;
        let seed = std::collections::hash_map::RandomState::new().hash_one((mac, now));
        // Truncating the hash to the seed's width is intended.
        let config = ClientConfig::new(mac, seed as u32, hostname);
        Ok(Session::with_transport(ifname, config, transport, now))
    }
}

impl<T: Transport> Session<T> {
    /// A session over any transport; sends the first DISCOVER.
    pub fn with_transport(
        ifname: &str,
        config: ClientConfig,
        transport: T,
        now: Duration,
    ) -> Session<T> {
        let mut session = Session {
            ifname: ifname.to_string(),
            client: Client::new(config),
            transport,
        };
        let actions = session.client.start(now);
        // Starting only sends; there is nothing to report yet.
        let _ = session.execute(actions);
        session
    }

    /// The descriptor to poll for input.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.transport.fd()
    }

    /// When [`Session::on_tick`] must run next.
    pub fn deadline(&self) -> Option<Duration> {
        self.client.deadline()
    }

    pub fn state(&self) -> State {
        self.client.state()
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.client.lease()
    }

    /// Reads what the socket holds and acts on it.
    pub fn on_readable(&mut self, now: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        let mut buf = [0u8; RECV_BUFFER];
        for _ in 0..MAX_BATCH {
            let len = match self.transport.recv(&mut buf) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(err) => {
                    warn!("{}: dhcp receive: {err}", self.ifname);
                    break;
                }
            };
            let reply = match codec::decode(&buf[..len]) {
                Ok(reply) => reply,
                Err(err) => {
                    debug!("{}: dhcp drop a packet: {}", self.ifname, chain(&err));
                    continue;
                }
            };
            let before = self.client.state();
            let actions = self.client.on_message(now, &reply);
            // A NAK may only change state, its DISCOVER coming later.
            if actions.is_empty() && self.client.state() == before {
                debug!(
                    "{}: dhcp ignore {:?} for {} (xid {:#010x}) in {before:?}",
                    self.ifname, reply.kind, reply.yiaddr, reply.xid
                );
                continue;
            }
            if let Some(line) = describe::reply(&self.ifname, before, &reply) {
                info!("{line}");
            }
            events.extend(self.execute(actions));
        }
        events
    }

    /// Runs the machine's timers.
    pub fn on_tick(&mut self, now: Duration) -> Vec<Event> {
        let actions = self.client.on_tick(now);
        self.execute(actions)
    }

    /// Sends what must be sent; returns the rest as events.
    fn execute(&mut self, actions: Vec<Action>) -> Vec<Event> {
        let mut events = Vec::new();
        for action in actions {
            match action {
                Action::Send {
                    request,
                    to,
                    attempt,
                } => {
                    let line = describe::send(&self.ifname, &request, to, attempt);
                    if attempt > 1 {
                        debug!("{line}");
                    } else {
                        info!("{line}");
                    }
                    if let Some(bytes) = self.encode(&request) {
                        self.send(&bytes, to);
                    }
                }
                Action::Bound(lease) => {
                    info!("{}", describe::lease(&self.ifname, &lease, false));
                    events.push(Event::Bound(lease));
                }
                Action::Renewed(lease) => {
                    info!("{}", describe::lease(&self.ifname, &lease, true));
                    events.push(Event::Renewed(lease));
                }
                Action::Lost { reason } => {
                    warn!("{}", describe::lost(&self.ifname, &reason));
                    events.push(Event::Lost { reason });
                }
            }
        }
        events
    }

    /// Encodes `request`, logging (and skipping the send) if it cannot be.
    fn encode(&self, request: &Request) -> Option<Vec<u8>> {
        match codec::encode(&self.client.config().identity, request) {
            Ok(bytes) => Some(bytes),
            Err(err) => {
                warn!(
                    "{}: dhcp encode {:?}: {}",
                    self.ifname,
                    request.kind,
                    chain(&err)
                );
                None
            }
        }
    }

    fn send(&mut self, bytes: &[u8], to: Destination) {
        let address = match to {
            Destination::Broadcast => Ipv4Addr::BROADCAST,
            Destination::Unicast(server) => server,
        };
        let target = SocketAddrV4::new(address, SERVER_PORT);
        if let Err(err) = self.transport.send_to(bytes, target) {
            warn!("{}: dhcp send to {target}: {err}", self.ifname);
        }
    }
}
