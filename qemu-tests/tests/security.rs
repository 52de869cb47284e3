//! The attack suite: from inside default workload containers, every
//! escape a container OS must stop is tried, each attack's result is
//! printed and checked, and afterwards PID 1 still answers `berth status`,
//! the node's host name is unchanged and the other containers still run.

use qemu_tests::{TestImage, Vm, BOOT};
use std::time::Duration;

const MANIFEST: &str = r#"
[system]
hostname = "fortress"

# Runs alongside the attacks and must keep running.
[container.bystander]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]

[container.attacker]
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", """
try() {
  name=$1; shift
  if out=$("$@" 2>&1); then
    echo "ATTACK $name: SUCCEEDED: $out" | head -c 300; echo
  else
    echo "ATTACK $name: blocked: $(echo "$out" | head -c 200)"
  fi
}
try mount mount -t tmpfs none /mnt
try remount-root mount -o remount,rw /
try unshare-mount unshare -m true
try unshare-net unshare -n true
try unshare-user unshare -U true
try load-module insmod /bin/busybox
try reboot reboot -f
try sysrq sh -c 'echo b > /proc/sysrq-trigger'
try read-dev-mem sh -c 'head -c 16 /dev/mem > /dev/null'
try read-root-disk sh -c 'head -c 16 /dev/vda > /dev/null'
try read-root-disk-mknod sh -c 'mknod /tmp/vda b 254 0 && head -c 16 /tmp/vda > /dev/null'
try control-socket sh -c 'ls /run/berth/control.sock'
try hostname hostname evil
try signal-outside sh -c 'n=0; for p in $(seq 1 2000); do [ -d /proc/$p ] && continue; kill -0 $p 2>/dev/null && n=$((n+1)); done; [ $n -gt 0 ]'
try sysctl sh -c 'echo 1 > /proc/sys/kernel/sysrq'
try fill-tmp sh -c 'dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1'
echo "tmp fill size: $(ls -l /tmp/fill | awk '{print $5}')"
echo "visible processes: $(ls -d /proc/[0-9]* | wc -l)"
echo "attacks done"
"""]

# A fork bomb, stopped by the pids limit.
[container.bomb]
rootfs = "@BUSYBOX@"
restart = "never"
pids = 64
command = ["/bin/sh", "-c", """
sleep 8 & s=$!
f() { f | f & }
f &
wait $s
read cur < /sys/fs/cgroup/pids.current
read max < /sys/fs/cgroup/pids.max
echo "bomb: pids.current $cur of max $max"
kill -9 -1
"""]

# A memory hog, OOM-killed inside its own cgroup and restarted by policy.
[container.hog]
rootfs = "@BUSYBOX@"
restart = "on-failure"
memory = "32MiB"
backoff-initial = "1s"
crash-loop-starts = 3
# dd is the container's init: the OOM kill ends the run.
command = ["/bin/sh", "-c", "echo hog run; exec dd if=/dev/zero of=/dev/null bs=96M count=1"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
n=0
until berth logs attacker | grep -q 'attacks done'; do
  n=$((n+1)); [ $n -gt 120 ] && break; sleep 1
done
sleep 10
berth status | sed 's/^/status: /'
echo "node hostname: $(hostname)"
echo admin done
"""]
"#;

#[test]
fn attacks_from_a_workload_fail_and_the_node_stays_healthy() {
    let image = TestImage::build("attacks", MANIFEST);
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | admin done", BOOT + Duration::from_secs(120));
    let console = vm.console();
    let attacks: Vec<&str> = console.lines().filter(|l| l.contains("ATTACK ")).collect();
    let expected = [
        "mount",
        "remount-root",
        "unshare-mount",
        "unshare-net",
        "unshare-user",
        "load-module",
        "reboot",
        "sysrq",
        "read-dev-mem",
        "read-root-disk",
        "read-root-disk-mknod",
        "control-socket",
        "hostname",
        "signal-outside",
        "sysctl",
        "fill-tmp",
    ];
    for name in expected {
        let line = attacks
            .iter()
            .find(|l| l.contains(&format!("ATTACK {name}:")))
            .unwrap_or_else(|| panic!("attack {name} did not report"));
        assert!(line.contains(": blocked"), "{line}");
    }
    assert!(!console.contains("SUCCEEDED"), "an attack succeeded");
    // The tmpfs filled up to its bound (64 MiB), not beyond.
    let fill = console
        .lines()
        .find_map(|l| l.split("tmp fill size: ").nth(1))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .expect("tmp fill size");
    assert!(fill <= 64 * 1024 * 1024, "tmpfs grew to {fill} bytes");
    // Only the attacker's own processes are visible.
    let visible = console
        .lines()
        .find_map(|l| l.split("visible processes: ").nth(1))
        .and_then(|s| s.trim().parse::<u32>().ok())
        .expect("visible processes");
    assert!(visible <= 6, "{visible} processes visible");
    // The fork bomb hit its pids limit.
    let bomb = console
        .lines()
        .find(|l| l.contains("bomb: pids.current"))
        .expect("bomb report");
    assert!(bomb.contains("of max 64"), "{bomb}");
    // The hog was OOM-killed (SIGKILL) and restarted by policy.
    assert!(
        console.matches("hog | hog run").count() >= 2,
        "hog not restarted"
    );
    assert!(console
        .lines()
        .any(|l| l.contains("hog") && l.contains("SIGKILL")));
    // PID 1 answers, the node keeps its name, the bystander still runs.
    assert!(console.contains("admin | node hostname: fortress"));
    let row = console
        .lines()
        .find(|l| l.contains("admin | status: bystander "))
        .expect("status row of bystander");
    assert!(row.contains(" running "), "{row}");
}

#[test]
fn user_and_user_namespace_settings_take_effect() {
    let image = TestImage::build(
        "users",
        r#"
[container.plain]
rootfs = "@BUSYBOX@"
restart = "never"
user = "1000:1000"
command = ["/bin/sh", "-c", "echo \"plain: $(id -u):$(id -g)\"; touch /tmp/x && echo 'plain: tmp writable'"]

[container.mapped]
rootfs = "@BUSYBOX@"
restart = "never"
userns = true
command = ["/bin/sh", "-c", """
echo "mapped: id $(id -u) map $(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
echo "mapped: busybox owner $(stat -c %u /bin/busybox)"
touch /x && echo 'mapped: root layer writable'
echo mapped done
"""]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("mapped | mapped done", BOOT);
    let console = vm.console();
    let has = |needle: &str| assert!(console.contains(needle), "console lacks {needle:?}");
    has("plain | plain: 1000:1000");
    has("plain | plain: tmp writable");
    // Container root is host id 100000 + 65536 × its index (1).
    has("mapped | mapped: id 0 map 0 165536 65536");
    // Image files owned by host root show as the overflow id inside.
    has("mapped | mapped: busybox owner 65534");
    // The writable layer belongs to the mapped root.
    has("mapped | mapped: root layer writable");
}
