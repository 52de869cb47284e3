//! berth's container lifecycle: the OCI runtime spec built from a manifest
//! entry (pure, shared with the image builder), exit-status decoding, log
//! line capture and, behind the `runtime` feature, the adapter that launches
//! bundles in-process through youki's `libcontainer`.

pub mod api;
pub mod backoff;
pub mod capabilities;
pub mod deps;
pub mod devices;
pub mod exit;
pub mod health;
pub mod lifecycle;
pub mod limits;
pub mod lines;
pub mod node;
pub mod phases;
pub mod power;
pub mod ring;
pub mod seccomp;
pub mod spec;

#[cfg(feature = "runtime")]
pub mod runtime;
