//! Fuzzes the manifest parser (`Manifest::parse`) through
//! `berth_config::fuzz::check_manifest`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_config::fuzz::check_manifest(data));
