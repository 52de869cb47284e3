//! Fuzzes unpacking one OCI layer blob (tar, gzip or zstd) into a scratch
//! rootfs through `berth_image::oci::fuzz::check_layer`. Set
//! `TMPDIR=/dev/shm` to keep the scratch folders in memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_image::oci::fuzz::check_layer(data));
