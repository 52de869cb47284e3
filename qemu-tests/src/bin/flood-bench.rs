//! Flood benchmark under QEMU (TCG). Prints figures; asserts nothing.
//!
//! Boots the same node twice, idle and under an output flood
//! ([`qemu_tests::flood`]: `yes` and a 100 MB line without a newline), and
//! prints side by side the latency of `berth status` (ten calls from a host
//! container) and the delay from a bystander's write to its line on the
//! console (target under the flood: under 1 s each).
//!
//! Usage: cargo run --release -p qemu-tests --bin flood-bench

use std::time::Duration;

use qemu_tests::flood::{bystander_delays, manifest, median_max, status_latencies};
use qemu_tests::{TestImage, Vm, BOOT};

fn main() {
    let idle = measure("flood-bench-idle", false);
    let flood = measure("flood-bench-flood", true);
    println!();
    println!("{:<34} {:>14} {:>14}", "", "idle node", "under flood");
    let row = |what: &str, a: f64, b: f64| println!("{what:<34} {a:>12.2} s {b:>12.2} s");
    row("berth status, median", idle.0 .0, flood.0 .0);
    row("berth status, slowest", idle.0 .1, flood.0 .1);
    row("bystander line delay, median", idle.1 .0, flood.1 .0);
    row("bystander line delay, largest", idle.1 .1, flood.1 .1);
}

/// ((status median, max), (bystander delay median, max)).
fn measure(name: &str, flood: bool) -> ((f64, f64), (f64, f64)) {
    let image = TestImage::build(name, &manifest(flood));
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | admin done", BOOT + Duration::from_secs(180));
    let console = vm.console();
    let status = status_latencies(&console);
    let delays: Vec<f64> = bystander_delays(&console)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    eprintln!(
        "{name}: {} status answers, {} bystander lines",
        status.len(),
        delays.len()
    );
    (median_max(&status), median_max(&delays))
}
