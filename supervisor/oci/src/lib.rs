//! The OCI runtime spec of a manifest entry, pure and shared by the image
//! builder (which writes it into each bundle) and PID 1 (which reads what
//! it needs back): the spec itself, the capability sets, the default
//! seccomp profile, the cgroup limits and the device cgroup's eBPF
//! allow-list program.

pub mod capabilities;
pub mod devices;
pub mod limits;
pub mod seccomp;
pub mod spec;
