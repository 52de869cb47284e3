//! Control API benchmark under QEMU (TCG). Prints figures; asserts nothing.
//!
//! Boots 20 workload containers plus an admin host container, then from
//! the admin container: PID 1's RSS as `berth status` reports it, and the
//! round-trip time of a `status` request (100 requests over one `berth
//! raw` process, timed with the node's `/proc/uptime`, so the client's own
//! start-up is paid once), and of the whole `berth status` command.
//!
//! Usage: cargo run --release -p qemu-tests --bin api-bench

use std::fmt::Write;
use std::time::Duration;

use qemu_tests::{TestImage, Vm};

fn main() {
    let mut manifest = String::new();
    for n in 1..=20 {
        let _ = write!(
            manifest,
            "[container.w{n:02}]\nrootfs = \"@BUSYBOX@\"\ncommand = [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; echo up; while :; do sleep 3600 & wait; done\"]\n\n"
        );
    }
    manifest.push_str(
        r#"[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 3
berth status --json | sed 's/.*"pid1_rss_kib":\\([0-9]*\\).*/rss \\1/'
berth status | grep -c ' running ' | sed 's/^/running /'
t0=$(cut -d' ' -f1 /proc/uptime)
printf '{"version":1,"op":"status"}\\n' | berth raw --repeat 100 >/dev/null 2>&1
t1=$(cut -d' ' -f1 /proc/uptime)
for i in 1 2 3 4 5 6 7 8 9 10; do berth status >/dev/null; done
t2=$(cut -d' ' -f1 /proc/uptime)
echo "times $t0 $t1 $t2"
"""]
"#,
    );
    let image = TestImage::build("api-bench", &manifest);
    let mut vm = Vm::boot(&image);
    let times = vm.wait_for("admin | times ", Duration::from_secs(180));
    let console = vm.console();
    let find = |tag: &str| {
        console
            .lines()
            .find(|l| l.contains(&format!("admin | {tag} ")))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("?")
            .to_owned()
    };
    let t: Vec<f64> = times
        .split_whitespace()
        .rev()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    println!("containers running (status): {}", find("running"));
    println!("PID 1 RSS with 21 containers: {} KiB", find("rss"));
    if let [t2, t1, t0] = t[..] {
        println!(
            "status round trip (100 over one connection each, one client process): {:.2} ms",
            (t1 - t0) * 1000.0 / 100.0
        );
        println!(
            "`berth status` command, client start-up included (10 runs): {:.1} ms",
            (t2 - t1) * 1000.0 / 10.0
        );
    }
}
