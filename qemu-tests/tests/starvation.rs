//! A workload must not starve the node: under an output flood (one
//! container running `yes`, one writing a 100 MB line without a newline)
//! `berth status` answers, a bystander's lines reach the console and the
//! power button powers the node off.

use std::time::Duration;

use qemu_tests::flood::{bystander_delays, manifest, status_latencies};
use qemu_tests::{TestImage, Vm, BOOT};

#[test]
fn an_output_flood_leaves_the_node_responsive() {
    let image = TestImage::build("flood", &manifest(true));
    let mut vm = Vm::boot(&image);
    vm.wait_for("started flood", BOOT);
    vm.wait_for("admin | admin done", BOOT + Duration::from_secs(180));
    let console = vm.console();
    let latencies = status_latencies(&console);
    assert_eq!(latencies.len(), 10, "every berth status answered");
    assert!(
        !console
            .lines()
            .any(|l| l.contains("admin | status") && l.contains(" failed")),
        "a berth status failed"
    );
    // The bystander's lines keep coming while the flood runs: one a second
    // for the admin's ten (or more) seconds, none lost to the flood.
    let first_status = console
        .lines()
        .find(|l| l.contains("admin | status 1 "))
        .and_then(stamp)
        .expect("first status line");
    let done = console
        .lines()
        .find(|l| l.contains("admin | admin done"))
        .and_then(stamp)
        .expect("admin done line");
    let ticks = bystander_delays(&console)
        .into_iter()
        .filter(|(at, _)| *at >= first_status && *at <= done)
        .count();
    assert!(ticks >= 5, "{ticks} bystander lines during the flood");
    assert!(
        console.contains("lines from flood not shown"),
        "the flood's dropped lines are reported"
    );
    assert!(!console.contains("lines from bystander not shown"));
    // The power button still works.
    vm.monitor("system_powerdown");
    vm.wait_for("power button pressed", Duration::from_secs(60));
    let status = vm.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "QEMU after poweroff: {status:?}");
}

/// The console stamp of a line, in seconds.
fn stamp(line: &str) -> Option<f64> {
    line.split_once(']')?
        .0
        .trim_start_matches('[')
        .trim()
        .parse()
        .ok()
}
