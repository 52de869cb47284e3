//! Fuzzes opening an OCI image layout (index.json, manifest, config and a
//! layer, NUL-separated, with digest placeholders) through
//! `berth_image::oci::fuzz::check_layout`. Set `TMPDIR=/dev/shm` to keep
//! the scratch folders in memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_image::oci::fuzz::check_layout(data));
