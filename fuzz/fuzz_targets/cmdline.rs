//! Fuzzes the kernel command-line parser (`KernelCmdline::parse`) through
//! `berth_config::fuzz::check_cmdline`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_config::fuzz::check_cmdline(data));
