//! DHCPv4 client (RFC 2131) for the node's host interfaces.
//!
//! Layers, from pure to effectful:
//! - [`machine`]: the client state machine, a function of (state, time,
//!   reply) to actions; [`retransmit`] and [`lease`] hold its timing and
//!   lease rules. Everything here is tested as tables.
//! - [`codec`]: requests to bytes and bytes to replies, with `dhcproto`.
//! - [`socket`]: the UDP socket on port 68, behind the `Transport` seam.
//! - [`session`]: glues them for the single-threaded, poll-driven PID-1
//!   loop and logs each decision ([`describe`]). It reports leases as
//!   events; applying them to the interface is the caller's job.

pub mod codec;
pub mod describe;
pub mod error;
pub mod lease;
pub mod machine;
pub mod message;
pub mod retransmit;
pub mod session;
pub mod socket;

#[cfg(test)]
mod tests;

pub use error::Error;
pub use lease::Lease;
pub use machine::{Action, Client, ClientConfig, State};
pub use message::{Destination, Identity, Reply, ReplyKind, Request, RequestKind};
pub use session::{Event, Session};
pub use socket::{Transport, UdpTransport};
