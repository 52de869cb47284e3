//! Test harness that boots real berth images under QEMU (TCG) and reads the
//! serial console.
//!
//! Every wait has a deadline; QEMU is always killed (SIGTERM, a grace
//! period, SIGKILL) when a [`Vm`] is dropped; on a failed test the whole
//! console log and QEMU's stderr are printed, so CI output alone explains
//! the failure.

pub mod image;
pub mod vm;

pub use image::{busybox_rootfs, example_manifest, TestImage};
pub use vm::Vm;
