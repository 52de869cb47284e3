//! Unit tests of the DHCP client: tables over the pure parts (machine,
//! timing, lease rules, codec, log lines) and the session over a recording
//! fake transport.

mod codec;
mod describe;
mod fake;
mod fixtures;
mod lease;
mod machine;
mod retransmit;
mod session;
