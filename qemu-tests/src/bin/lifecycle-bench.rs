//! Lifecycle benchmark under QEMU (TCG). Prints figures; asserts nothing.
//!
//! 1. Restart latency: a container that exits at once with `restart =
//!    "always"` and no backoff delay; each run prints the node's uptime
//!    (`/proc/uptime`, 10 ms resolution) when it starts and just before it
//!    exits. Latency = next start − previous exit: reaping, cleanup and a
//!    full libcontainer launch.
//! 2. Shutdown: the example manifest running, QEMU's `system_powerdown`,
//!    time until QEMU exits (the host's wall clock).
//!
//! Usage: cargo run --release -p qemu-tests --bin lifecycle-bench [RESTARTS]

use std::time::{Duration, Instant};

use qemu_tests::{example_manifest, TestImage, Vm};

fn main() {
    let cycles: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    restart_latency(cycles);
    powerdown();
}

fn restart_latency(cycles: usize) {
    let image = TestImage::build(
        "restart-bench",
        r#"
[container.flap]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo up $(cut -d' ' -f1 /proc/uptime); echo down $(cut -d' ' -f1 /proc/uptime); exit 1"]
restart = "always"
backoff-initial = "0ms"
backoff-max = "0ms"
# Measure restarts, not the protection against them.
crash-loop-starts = 0
"#,
    );
    let mut vm = Vm::boot(&image);
    let mut last = String::new();
    for n in 1..=cycles + 1 {
        last = format!("restart {n},");
        vm.wait_for(&last, Duration::from_secs(120));
    }
    let _ = last;
    let console = vm.console();
    let mut lat = qemu_tests::bench::restart_gaps_ms(&console, "flap");
    lat.sort_by(f64::total_cmp);
    if lat.is_empty() {
        println!("restart latency: no samples");
        return;
    }
    println!(
        "restart latency (exit → next run's first line, {} samples): median {:.0} ms, min {:.0} ms, max {:.0} ms",
        lat.len(),
        lat[lat.len() / 2],
        lat[0],
        lat[lat.len() - 1]
    );
}

fn powerdown() {
    let manifest = example_manifest();
    let image = TestImage::build("powerdown-bench", &manifest);
    for n in 1..=3 {
        let mut vm = Vm::boot(&image);
        vm.wait_for("admin | admin container", Duration::from_secs(120));
        vm.wait_for("hello | my cgroup", Duration::from_secs(120));
        let t = Instant::now();
        vm.monitor("system_powerdown");
        vm.wait_exit(Duration::from_secs(120));
        let console = vm.console();
        let steps: Vec<&str> = console
            .lines()
            .filter(|l| l.contains("shutdown:") || l.contains("stopped:"))
            .collect();
        println!(
            "powerdown {n}: system_powerdown → QEMU exit {:.0} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        for s in steps {
            println!("    {s}");
        }
    }
}
