//! berth's container lifecycle: start order, restart backoff, health
//! checks, exit-status decoding, log line capture, the control protocol
//! and the control socket's non-blocking connection handling. No
//! container runtime here: launching is PID 1's (`init/src/runtime.rs`).

pub mod api;
pub mod backoff;
pub mod control;
pub mod deps;
pub mod exit;
pub mod health;
pub mod lifecycle;
pub mod lines;
pub mod node;
pub mod phases;
pub mod power;
pub mod ring;
