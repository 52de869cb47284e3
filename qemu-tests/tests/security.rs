//! The attack suite: from inside default workload containers, every
//! escape a container OS must stop is tried, each attack's result is
//! printed and checked, and afterwards PID 1 still answers `berth status`,
//! the node's host name is unchanged and the other containers still run.

use qemu_tests::{TestImage, Vm, BOOT};
use std::time::Duration;

/// `try NAME CMD…`: runs an attack and prints `ATTACK NAME: blocked: why`
/// or `ATTACK NAME: SUCCEEDED: output`.
const TRY: &str = r#"try() {
  name=$1; shift
  if out=$("$@" 2>&1); then
    echo "ATTACK $name: SUCCEEDED: $out" | head -c 300; echo
  else
    echo "ATTACK $name: blocked: $(echo "$out" | head -c 200)"
  fi
}"#;

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
@TRY@
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
try arp-spoof arping -c 1 -U -s 10.88.0.1 -I eth0 10.88.0.1
try fill-tmp sh -c 'dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1'
echo "tmp fill size: $(ls -l /tmp/fill | awk '{print $5}')"
echo "visible processes: $(ls -d /proc/[0-9]* | wc -l)"
echo "net: CapEff $(grep CapEff /proc/self/status | cut -f2), ping_group_range $(tr '\t' ' ' < /proc/sys/net/ipv4/ping_group_range), accept_ra $(cat /proc/sys/net/ipv6/conf/eth0/accept_ra)"
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

# Stops every process that enters it (its health check) before that one
# runs: PID 1 kills them at their limit and goes on. Its CPU bound slows
# what enters it as much as itself.
[container.stopper]
rootfs = "@BUSYBOX@"
cpus = 0.25
health = { exec = ["/bin/true"], interval = "2s", timeout = "5s", retries = 100 }
command = ["/bin/sh", "-c", "while :; do kill -STOP -1 2>/dev/null; done"]

# Ends every second and is started again: launches and reaping go on.
[container.ticker]
rootfs = "@BUSYBOX@"
restart = "always"
backoff-initial = "500ms"
backoff-max = "500ms"
crash-loop-starts = 1000
command = ["/bin/sh", "-c", "echo tick; sleep 1"]

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

/// PID 1's line when it kills the stopper's stopped health check.
const STOPPED_PROBE_KILLED: &str =
    "exec of /bin/true in stopper: not under way after 10 s; killed its process(es)";

#[test]
fn attacks_from_a_workload_fail_and_the_node_stays_healthy() {
    let image = TestImage::build("attacks", &MANIFEST.replace("@TRY@", TRY));
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | admin done", BOOT + Duration::from_secs(120));
    vm.wait_for(STOPPED_PROBE_KILLED, BOOT + Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(5));
    let console = vm.console();
    // The stopper's probe was stopped and killed at its limit, and the
    // ticker ran again since: launches and reaping did not stall.
    let killed = console
        .lines()
        .position(|l| l.contains(STOPPED_PROBE_KILLED))
        .expect("the stopped probe's line");
    let ticks = console
        .lines()
        .skip(killed)
        .filter(|l| l.contains("ticker | tick"))
        .count();
    assert!(
        ticks >= 2,
        "{ticks} ticks after the stopped probe was killed"
    );
    // Its next probes are refused for a while instead of held again.
    assert!(
        console.contains("(a container can stop what enters it); no exec into stopper for 60 s"),
        "no refusal announced"
    );
    assert!(
        console.contains("health probe of stopper did not start: stopper stopped the last process that entered it; no exec into it for another "),
        "no probe refused"
    );
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
        "arp-spoof",
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
    // No raw sockets (NET_RAW, bit 13, is not held), ICMP echo sockets
    // for every group, no router advertisements on eth0.
    let net = console
        .lines()
        .find_map(|l| l.split("attacker | net: ").nth(1))
        .expect("net line");
    let caps = net
        .split_whitespace()
        .nth(1)
        .and_then(|h| u64::from_str_radix(h.trim_end_matches(','), 16).ok())
        .expect("CapEff");
    assert_eq!(caps & (1 << 13), 0, "CAP_NET_RAW held: {net}");
    assert!(
        net.contains("ping_group_range 0 2147483647, accept_ra 0"),
        "{net}"
    );
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

/// The attacks a process that enters a running container tries: each must
/// be stopped by the container's own confinement (seccomp filter,
/// capabilities, the device cgroup), which every process berth starts there
/// (`berth exec`, exec health checks) must carry. Prints the process's
/// confinement fields and one `ATTACK name: …` line per attack.
const ENTERING_ATTACKS: &str = r#"
@TRY@
grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status
try mknod-disk mknod /tmp/vda-$$ b 254 0
try mknod-input mknod /tmp/ev-$$ c 13 64
try unshare-user unshare -U true
try unshare-net unshare -n true
try mount mount -t tmpfs none /mnt
try read-root-disk sh -c 'head -c 16 /dev/vda > /dev/null'
echo attacks done
"#;

/// What a process in the `userns` container `mapped` prints of itself: its
/// id map, ids and bounding set, and whether it could change a file of the
/// node's root (no quotes: it goes into a shell's `-c '…'`).
const MAPPED_CHECK: &str = "echo map $(cat /proc/self/uid_map); echo ids $(id -u):$(id -g) groups $(id -G); grep CapBnd /proc/self/status; if touch /bin/busybox 2>/dev/null; then echo node-file: CHANGED; else echo node-file: refused; fi";

/// Names of the attacks in [`ENTERING_ATTACKS`].
const ENTERING_NAMES: [&str; 6] = [
    "mknod-disk",
    "mknod-input",
    "unshare-user",
    "unshare-net",
    "mount",
    "read-root-disk",
];

const ENTERING_MANIFEST: &str = r#"
# Rewrites its own health-check program into the attack; the probe's report
# comes back through a file in the container's /tmp.
[container.probed]
rootfs = "@BUSYBOX@"
health = { exec = ["/bin/sh", "/tmp/check.sh"], interval = "1s", timeout = "20s", retries = 100 }
command = ["/bin/sh", "-c", '''
cat > /tmp/check.sh <<'END'
( @ATTACKS@ ) > /tmp/report.new 2>&1
mv /tmp/report.new /tmp/report
END
n=0
until [ -f /tmp/report ]; do n=$((n+1)); [ $n -gt 120 ] && break; sleep 1; done
sed 's/^/probe: /' /tmp/report
echo probe report done
while :; do sleep 1; done
''']

# A workload with a user and an open-files limit: `berth exec` must run
# with both.
[container.plain]
rootfs = "@BUSYBOX@"
user = "1000:1000"
rlimits = { nofile = 777 }
command = ["/bin/sh", "-c", "while :; do sleep 1; done"]

# A workload in its own user namespace: what enters it (`berth exec`, its
# probe) must enter that namespace too and be its root, not the node's.
# /bin/busybox belongs to the node's root, so only the node's root may
# change it; the check prints the same lines for each of the three.
[container.mapped]
rootfs = "@BUSYBOX@"
userns = true
health = { exec = ["/bin/sh", "-c", "(@MAPPED@) > /tmp/probe.new 2>&1; mv /tmp/probe.new /tmp/probe"], interval = "1s", timeout = "20s", retries = 100 }
command = ["/bin/sh", "-c", '''
(@MAPPED@) | sed 's/^/self: /'
n=0
until [ -f /tmp/probe ]; do n=$((n+1)); [ $n -gt 120 ] && break; sleep 1; done
sed 's/^/probe: /' /tmp/probe
echo mapped done
while :; do sleep 1; done
''']

# A host container (not privileged) given node devices by bind mounts: the
# device cgroup still refuses to open them.
[container.devices]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/dev/vda:/tmp/vda", "/dev/mem:/tmp/mem", "/dev/input:/tmp/input"]
command = ["/bin/sh", "-c", '''
@TRY@
try bound-disk sh -c 'head -c 16 /tmp/vda > /dev/null'
try bound-mem sh -c 'head -c 16 /tmp/mem > /dev/null'
try power-button sh -c 'for e in /tmp/input/event*; do printf x > "$e" || exit 1; done'
echo devices done
''']

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", '''
sleep 3
cat > /tmp/attacks.sh <<'END'
@ATTACKS@
END
berth exec probed -- /bin/sh -c "$(cat /tmp/attacks.sh)" | sed 's/^/exec: /'
berth exec mapped -- /bin/sh -c '@MAPPED@' | sed 's/^/mapped exec: /'
berth exec plain -- /bin/sh -c 'echo "plain: uid $(id -u):$(id -g) nofile $(ulimit -n) $(grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status | tr "\t\n" "  ")"'
echo admin done
''']
"#;

#[test]
fn processes_that_enter_a_container_keep_its_confinement() {
    let manifest = ENTERING_MANIFEST
        .replace("@ATTACKS@", ENTERING_ATTACKS)
        .replace("@TRY@", TRY)
        .replace("@MAPPED@", MAPPED_CHECK);
    let image = TestImage::build("entering", &manifest);
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | admin done", BOOT + Duration::from_secs(60));
    vm.wait_for("probed | probe report done", BOOT + Duration::from_secs(60));
    vm.wait_for("devices | devices done", BOOT);
    vm.wait_for("mapped | mapped done", BOOT + Duration::from_secs(60));
    let console = vm.console();
    entering_a_user_namespace(&console);
    for (source, prefix) in [("admin", "exec: "), ("probed", "probe: ")] {
        let lines: Vec<&str> = console
            .lines()
            .filter_map(|l| l.split_once(&format!("{source} | {prefix}")))
            .map(|(_, rest)| rest)
            .collect();
        let field = |name: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(|v| v.trim())
                .unwrap_or_else(|| panic!("{source}: no {name} line in {lines:?}"))
        };
        assert_eq!(
            field("Seccomp"),
            "2",
            "{source}: not under a seccomp filter"
        );
        assert_eq!(field("NoNewPrivs"), "1", "{source}");
        assert_ne!(
            field("CapEff"),
            "000001ffffffffff",
            "{source}: every capability"
        );
        for name in ENTERING_NAMES {
            let line = lines
                .iter()
                .find(|l| l.starts_with(&format!("ATTACK {name}:")))
                .unwrap_or_else(|| panic!("{source}: attack {name} did not report: {lines:?}"));
            assert!(line.contains(": blocked"), "{source}: {line}");
        }
        assert!(lines.contains(&"attacks done"), "{source}: {lines:?}");
    }
    // The device cgroup refuses (EPERM), not the mount's flags (EACCES).
    for name in ["bound-disk", "bound-mem", "power-button"] {
        let line = console
            .lines()
            .find(|l| l.contains(&format!("devices | ATTACK {name}:")))
            .unwrap_or_else(|| panic!("attack {name} did not report"));
        assert!(
            line.contains(": blocked") && line.contains("Operation not permitted"),
            "{line}"
        );
    }
    assert!(!console.contains("SUCCEEDED"), "an attack succeeded");
    // exec runs as the container's user, with its limits and filter.
    let plain = console
        .lines()
        .find(|l| l.contains("admin | plain: "))
        .expect("plain's exec line");
    assert!(
        plain.contains("uid 1000:1000 nofile 777 NoNewPrivs: 1 Seccomp: 2"),
        "{plain}"
    );
    // The scrub announces its start once.
    assert_eq!(
        console
            .lines()
            .filter(|l| l.contains("dm-verity scrub of") && l.contains(" started "))
            .count(),
        1,
        "scrub start lines"
    );
}

/// The probe and `berth exec` of the `userns` container `mapped` print
/// what its own process prints: the same id map, ids and bounding set,
/// and the node root's file refused.
fn entering_a_user_namespace(console: &str) {
    let lines = |source: &str, prefix: &str| -> Vec<String> {
        let marker = format!("{source} | {prefix}");
        console
            .lines()
            .filter_map(|l| l.split_once(marker.as_str()))
            .map(|(_, rest)| rest.trim().to_owned())
            .collect()
    };
    let own = lines("mapped", "self: ");
    assert_eq!(own.len(), 4, "mapped's own lines: {own:?}");
    assert!(
        own[0].starts_with("map 0 ") && own[0] != "map 0 0 4294967295",
        "{own:?}"
    );
    assert_eq!(own[3], "node-file: refused", "{own:?}");
    for (source, prefix) in [("mapped", "probe: "), ("admin", "mapped exec: ")] {
        assert_eq!(lines(source, prefix), own, "{source} {prefix}");
    }
}
