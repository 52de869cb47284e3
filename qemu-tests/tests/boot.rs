//! Boots real images under QEMU (TCG) and checks what the serial console
//! shows: the path from the kernel to a container's first line, the
//! read-only root with its writable areas, exit reporting, and a bad
//! manifest that must not take PID 1 down.

use std::time::Duration;

use qemu_tests::{TestImage, Vm, BOOT};

#[test]
fn boots_to_a_containers_first_line() {
    let image = TestImage::build(
        "hello",
        r#"
[system]
hostname = "spine"

[container.hello]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo hello from $(hostname)"]
restart = "never"

# Not a shell: busybox ash itself ignores SIGQUIT, and its children with it.
[container.sigs]
rootfs = "@BUSYBOX@"
command = ["/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]
restart = "never"
"#,
    );
    let mut vm = Vm::boot(&image);
    let line = vm.wait_for("hello | hello from hello", BOOT);
    // Stamped with the time since boot, kernel style: "[   2.345] hello | …".
    assert!(line.starts_with('['), "no timestamp: {line:?}");
    vm.wait_for("berth | hello exited with code 0", BOOT);
    // A container starts with no ignored and no blocked signals, whatever
    // PID 1 (a Rust program, which ignores SIGPIPE) has.
    vm.wait_for("berth | sigs exited with code 0", BOOT);
    let console = vm.console();
    assert!(
        console.contains("sigs | SigBlk:\t0000000000000000"),
        "blocked signals leaked"
    );
    assert!(
        console.contains("sigs | SigIgn:\t0000000000000000"),
        "ignored signals leaked"
    );
    assert!(console.contains("starting stage 0"), "stage 0 did not log");
    assert!(console.contains("starting stage 1"), "stage 1 did not log");
}

#[test]
fn root_is_read_only_while_etc_and_tmp_are_writable() {
    // A host container sees the node's root through a bind mount.
    let image = TestImage::build(
        "rootfs",
        r#"
[system]
tmpfs = ["/var/cache"]
overlay = ["/var/lib"]

[container.probe]
kind = "host"
rootfs = "@BUSYBOX@"
mounts = ["/:/host"]
restart = "never"
command = ["/bin/sh", "-c", """
echo "os-release through the /etc overlay: $(grep ^ID= /host/etc/os-release)"
echo "cgroups under berth/system: $(ls /host/sys/fs/cgroup/berth/system | tr '\n' ' ')"
echo "workload controllers: $(cat /host/sys/fs/cgroup/berth/workloads/cgroup.subtree_control)"
echo "processes in berth/init: $(wc -l < /host/sys/fs/cgroup/berth/init/cgroup.procs)"
for d in / /usr /var /etc /tmp /var/cache /var/lib /run; do
  if touch /host$d/probe 2>/dev/null; then echo "probe $d writable"; else echo "probe $d read-only"; fi
done
"""]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("probe | probe /run", BOOT);
    let console = vm.console();
    for (path, want) in [
        ("/", "read-only"),
        ("/etc", "writable"),
        ("/tmp", "writable"),
        ("/run", "writable"),
    ] {
        let line = format!("probe | probe {path} {want}");
        assert!(console.contains(&line), "missing {line:?}");
    }
}

#[test]
fn exit_codes_and_signal_deaths_are_reported() {
    let image = TestImage::build(
        "exits",
        r#"
[container.three]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo about to fail; exit 3"]
restart = "never"

# The init of a PID namespace ignores signals sent from inside it
# (`kill -KILL $$` would do nothing), so the kernel must kill it: a CPU-time
# limit ends in SIGKILL once the hard limit is used up.
[container.killed]
kind = "host"
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo about to spin; ulimit -t 1; while :; do :; done"]
restart = "never"
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("berth | three exited with code 3", BOOT);
    vm.wait_for("berth | killed killed by signal SIGKILL (9)", BOOT);
    let console = vm.console();
    // The container's last words come before its exit line.
    let said = console
        .find("three | about to fail")
        .expect("three's output");
    let exit = console
        .find("three exited with code 3")
        .expect("three's exit");
    assert!(said < exit, "output after exit line");
}

#[test]
fn invalid_manifest_is_reported_and_pid1_stays_up() {
    let image = TestImage::build_unvalidated(
        "invalid",
        r#"
[system]
hostname = "-bad-"

[container.web]
rootfs = "@BUSYBOX@"
command = ["/bin/sh"]
restart = "sometimes"
colour = "blue"
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for(
        "manifest /etc/berth/manifest.toml is invalid (3 error(s))",
        BOOT,
    );
    vm.wait_for("manifest: system.hostname:", BOOT);
    vm.wait_for(
        "manifest: container.web.restart: unknown policy \"sometimes\"",
        BOOT,
    );
    vm.wait_for("manifest: container.web.colour: unknown key", BOOT);
    vm.wait_for("no containers to start", BOOT);
    // PID 1 must still be there: no kernel panic, QEMU still running.
    std::thread::sleep(Duration::from_secs(3));
    assert!(vm.exited().is_none(), "the guest went down");
    let console = vm.console();
    assert!(!console.contains("Kernel panic"), "kernel panic");
    assert!(!console.contains("panic at"), "berth panicked");
}

#[test]
fn fatal_boot_error_counts_down_and_carries_out_berth_panic() {
    let image = TestImage::build(
        "fatal",
        r#"
[container.never-starts]
rootfs = "@BUSYBOX@"
command = ["/bin/true"]
"#,
    );
    // No such disk: stage 0 gives up after a second and, as told, powers
    // the machine off (QEMU exits) instead of leaving it hanging.
    let mut vm = Vm::boot_with(
        &image,
        "berth.root=/dev/vdz berth.rootwait=1 berth.panic=poweroff berth.bogus=1",
    );
    vm.wait_for("unknown kernel option berth.bogus=1 ignored", BOOT);
    vm.wait_for(
        "fatal: find the root failed: root device /dev/vdz did not appear within 1.0 s",
        BOOT,
    );
    vm.wait_for("powering off in 5 s (berth.panic=)", BOOT);
    vm.wait_for("powering off in 1 s (berth.panic=)", BOOT);
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "qemu: {status}");
    assert!(!vm.console().contains("Kernel panic"), "PID 1 died instead");
}
