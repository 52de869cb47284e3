//! Test harness that boots real berth images under QEMU (TCG) and reads the
//! serial console.
//!
//! Every wait has a deadline; QEMU is always killed (SIGTERM, a grace
//! period, SIGKILL) when a [`Vm`] is dropped; on a failed test the whole
//! console log and QEMU's stderr are printed, so CI output alone explains
//! the failure.

pub mod bench;
pub mod disk;
pub mod flood;
pub mod http;
pub mod image;
pub mod oci;
pub mod vm;

pub use berth_config::chain;
pub use image::{busybox_rootfs, example_manifest, tools_rootfs, TestImage};
pub use vm::Vm;

use std::time::Duration;

/// The deadline of every wait in the QEMU tests: TCG boots in a few
/// seconds; this is generous for a loaded 2-core CI machine.
pub const BOOT: Duration = Duration::from_secs(90);

/// Where `needle` first appears in `console`, for ordering checks; panics
/// (naming it) when it is missing.
pub fn position(console: &str, needle: &str) -> usize {
    console
        .find(needle)
        .unwrap_or_else(|| panic!("console lacks {needle:?}"))
}

/// Asserts that each of `lines` first appears on `console` after the one
/// before it.
pub fn assert_in_order(console: &str, lines: &[&str]) {
    for pair in lines.windows(2) {
        assert!(
            position(console, pair[0]) < position(console, pair[1]),
            "{:?} not before {:?}",
            pair[0],
            pair[1]
        );
    }
}
