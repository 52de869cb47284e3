//! Network benchmark: boots an image with DHCP on the node and a few bridge
//! containers (one publishing a port) several times under QEMU (TCG) and
//! prints, per boot, from berth's own console lines:
//!
//! - the guest uptime at which the node was online (DHCP lease from QEMU
//!   bound, `network online`), and how long after the network start that
//!   was;
//! - the time to create the bridge with its NAT table (first container
//!   only), and the time to set up each bridge container's network (veth
//!   pair, address, routes, name files, NAT when it publishes ports);
//! - the wall-clock time from QEMU's start until the host fetched a page
//!   through the published port (tried once every container is up).
//!
//! DHCP→online includes the time the loop spends launching containers
//! that do not wait for the network: leases are handled between launches.
//!
//! Prints figures; asserts nothing.
//!
//! Usage: cargo run --release -p qemu-tests --bin net-bench [BOOTS]

use std::time::{Duration, Instant};

use qemu_tests::vm::free_port;
use qemu_tests::{TestImage, Vm};

const CONTAINERS: usize = 4;

fn manifest() -> String {
    let mut m = String::from(
        r#"
[container.web]
rootfs = "@BUSYBOX@"
init = true
ports = ["8080:80"]
command = ["/bin/sh", "-c", "mkdir -p /tmp/www && echo bench page > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"]
"#,
    );
    for n in 1..CONTAINERS {
        m.push_str(&format!(
            r#"
[container.idle{n}]
rootfs = "@BUSYBOX@"
init = true
command = ["/bin/sh", "-c", "sleep 100000"]
"#
        ));
    }
    m
}

/// The guest uptime stamp `[  12.345]` at the start of a console line.
fn stamp(line: &str) -> Option<f64> {
    line.trim_start_matches('[')
        .split(']')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The number before the last ` ms` of a line.
fn millis(line: &str) -> Option<u64> {
    let before = line.rsplit_once(" ms")?.0;
    before.rsplit(' ').next()?.parse().ok()
}

fn fetched(port: u16) -> bool {
    qemu_tests::http::get(port).is_ok_and(|body| body.contains("bench page"))
}

fn main() {
    let boots: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let image = TestImage::build("net-bench", &manifest());
    println!(
        "boot  online at (uptime)  DHCP→online  bridge+NAT  per-container network (ms)  QEMU start→page fetched (attempts)"
    );
    for n in 1..=boots {
        let port = free_port();
        let mut vm = Vm::boot_forwarding(&image, "", &[(port, 8080)]);
        let online = vm.wait_for("network online", Duration::from_secs(90));
        vm.wait_for_count("(veth bv", CONTAINERS, Duration::from_secs(90));
        let t = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let ok = fetched(port);
            if ok || t.elapsed() > Duration::from_secs(60) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let fetch = vm.elapsed();
        let console = vm.console();
        let line_of = |needle: &str| console.lines().find(|l| l.contains(needle)).unwrap_or("");
        let dhcp_start = stamp(line_of("DHCP started"));
        let online_at = stamp(&online);
        let bridge = millis(line_of("with NAT in"));
        let per: Vec<String> = console
            .lines()
            .filter(|l| l.contains("(veth bv"))
            .filter_map(millis)
            .map(|m| m.to_string())
            .collect();
        println!(
            "{n:>4}  {:>15} s  {:>8} ms  {:>7} ms  {:>27}  {:.0} ms ({attempts})",
            online_at.map_or("?".to_owned(), |s| format!("{s:.3}")),
            match (dhcp_start, online_at) {
                (Some(a), Some(b)) => format!("{:.0}", (b - a) * 1000.0),
                _ => "?".to_owned(),
            },
            bridge.map_or("?".to_owned(), |b| b.to_string()),
            per.join(" "),
            fetch.as_secs_f64() * 1000.0
        );
    }
}
