//! A workload must not starve the node: under an output flood (one
//! container running `yes`, one writing a 100 MB line without a newline,
//! one whose health check runs `yes`)
//! `berth status` answers, a bystander's lines reach the console and the
//! power button powers the node off.

use std::time::Duration;

use qemu_tests::flood::{bystander_delays, manifest, status_latencies};
use qemu_tests::{tools_rootfs, TestImage, Vm, BOOT};

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

/// One workload takes every inotify instance and as many open files as it
/// can (twelve processes holding 4096 each, more than a 512 MiB node's
/// default `fs.file-max`); a second workload started after it must still
/// open a file, make a pipe and get an inotify instance.
#[test]
fn a_workload_hoarding_files_and_inotify_leaves_room_for_another() {
    let manifest = r#"
[container.hoarder]
rootfs = "@TOOLS@"
restart = "never"
health = { exec = ["/bin/test", "-f", "/tmp/hoarded"], interval = "1s", timeout = "5s", retries = 100 }
command = ["/bin/sh", "-c", '''
echo "hoarder: file-max $(cat /proc/sys/fs/file-max), inotify instances $(cat /proc/sys/fs/inotify/max_user_instances)"
inotify-hold 300 wait > /tmp/held &
until [ -s /tmp/held ]; do sleep 1; done
echo "hoarder: $(cat /tmp/held) inotify instances"
i=0
while [ $i -lt 12 ]; do
  sh -c 'ulimit -n 4096; f=10; while [ $f -lt 4090 ]; do eval "exec $f</dev/null" 2>/dev/null || break; f=$((f+1)); done; touch /tmp/h.$$; exec sleep 100000' &
  i=$((i+1))
done
until [ $(ls /tmp/h.* 2>/dev/null | wc -l) -ge 12 ]; do sleep 1; done
echo "hoarder: file-nr $(cat /proc/sys/fs/file-nr)"
touch /tmp/hoarded
echo hoarding done
while :; do sleep 1; done
''']

[container.second]
rootfs = "@TOOLS@"
restart = "never"
after = ["hoarder"]
command = ["/bin/sh", "-c", '''
echo x > /tmp/f && cat /tmp/f > /dev/null && echo "second: file ok"
echo y | cat > /dev/null && echo "second: pipe ok"
inotify-hold 1 > /dev/null && echo "second: inotify ok"
echo second done
''']
"#;
    let manifest = manifest.replace("@TOOLS@", &tools_rootfs().display().to_string());
    let image = TestImage::build("hoard", &manifest);
    let mut vm = Vm::boot(&image);
    vm.wait_for("hoarder | hoarding done", BOOT + Duration::from_secs(180));
    vm.wait_for("second | second done", BOOT);
    let console = vm.console();
    for line in ["second: file ok", "second: pipe ok", "second: inotify ok"] {
        assert!(
            console.contains(&format!("second | {line}")),
            "{line} missing"
        );
    }
    // The hoarder really took more than the kernel's defaults would give
    // all containers together.
    let instances: u32 = console
        .lines()
        .find_map(|l| {
            l.split("hoarder | hoarder: ")
                .nth(1)?
                .strip_suffix(" inotify instances")
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("hoarder's inotify count");
    assert!(instances > 128, "{instances} inotify instances");
    let open: u64 = console
        .lines()
        .find_map(|l| l.split("hoarder | hoarder: file-nr ").nth(1))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .expect("file-nr");
    assert!(open > 12 * 4000, "{open} files open");
}

/// Two workloads without a memory limit fill their tmpfs layers (`/tmp`,
/// `/dev/shm`, the writable root); the node keeps its reserve: a host
/// container can still take 48 MiB and PID 1 answers.
#[test]
fn workloads_filling_tmpfs_leave_the_node_its_reserve() {
    let filler = r#"
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", '''
echo "filler: memory.max $(cat /sys/fs/cgroup/memory.max)"
for d in /tmp /dev/shm /; do dd if=/dev/zero of=$d/fill bs=1M count=100 2>/dev/null; done
echo "filler: filled"
touch /tmp/filled
while :; do sleep 1; done
''']
"#;
    let manifest = format!(
        r#"
[container.filler1]
{filler}
[container.filler2]
{filler}
[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", '''
# Until both filled up (or one was OOM-killed trying: at most 60 s).
n=0
until berth logs filler1 | grep -q 'filler: filled' && berth logs filler2 | grep -q 'filler: filled'; do
  n=$((n+1)); [ $n -gt 60 ] && break; sleep 1
done
sleep 2
dd if=/dev/zero of=/tmp/x bs=1M count=48 2>/dev/null && echo "admin: wrote $(($(stat -c %s /tmp/x) / 1048576)) MiB"
berth status > /dev/null && echo "admin: status answered"
echo admin done
''']
"#
    );
    let image = TestImage::build("reserve", &manifest);
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | admin done", BOOT + Duration::from_secs(180));
    let console = vm.console();
    assert!(
        console.contains("admin | admin: wrote 48 MiB"),
        "the node lost its reserve"
    );
    assert!(console.contains("admin | admin: status answered"));
    // A workload without `memory` runs under the default share.
    let max = console
        .lines()
        .find_map(|l| l.split("filler1 | filler: memory.max ").nth(1))
        .expect("filler's memory.max");
    assert_ne!(max.trim(), "max", "no default memory limit");
}
