//! Fuzzes the control protocol's framing and decoders (what a client's
//! bytes become in PID 1) through
//! `berth_supervisor::api::fuzz::check_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_supervisor::api::fuzz::check_decode(data));
