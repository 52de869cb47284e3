//! Phases under QEMU: onboot containers run in order to completion before
//! any service, a non-essential failure is logged and boot goes on, an
//! essential failure halts the boot (and PID 1 stays up), and onshutdown
//! containers run after the services stopped, in reverse order, on the way
//! down.

use std::time::Duration;

use qemu_tests::{assert_in_order, TestImage, Vm, BOOT};

#[test]
fn onboot_then_services_then_onshutdown() {
    let image = TestImage::build(
        "phases",
        r#"
[container.web]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo web up; while :; do sleep 1 & wait; done"]

[container.prepare]
phase = "onboot"
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo preparing; sleep 1; echo prepared"]

[container.optional]
phase = "onboot"
essential = false
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo optional step fails; exit 3"]

[container.db]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo db up; while :; do sleep 1 & wait; done"]

# Shows the run-once containers' states.
[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
after = ["db"]
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", "berth status | sed 's/^/status: /'; echo admin done"]

[container.flush]
phase = "onshutdown"
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo flushing"]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("web | web up", BOOT);
    vm.wait_for("db | db up", BOOT);
    vm.wait_for("admin | admin done", BOOT);
    let console = vm.console();
    // A non-essential onboot container that failed shows as failed, one
    // that succeeded as done.
    let row = |name: &str| {
        console
            .lines()
            .find(|l| l.contains(&format!("admin | status: {name} ")))
            .unwrap_or_else(|| panic!("no status row for {name}"))
            .to_owned()
    };
    assert!(row("optional").contains(" failed "), "{}", row("optional"));
    assert!(row("prepare").contains(" done "), "{}", row("prepare"));
    let order = [
        "prepare | preparing",
        "prepare | prepared",
        "onboot prepare exited with code 0",
        "optional | optional step fails",
        "onboot optional exited with code 3; not essential, boot goes on",
        "started web",
    ];
    assert_in_order(&console, &order);
    assert!(!console.contains("started flush"), "onshutdown ran at boot");

    // admin waits for db (`after`): were it still running, db would stop
    // after it, and web first.
    vm.wait_for("admin exited with code 0", BOOT);
    vm.monitor("system_powerdown");
    vm.wait_for("berth | powering off", BOOT);
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "qemu: {status}");
    let console = vm.console();
    // Services stop in reverse manifest order, then onshutdown runs.
    let down = [
        "stopping db:",
        "stopping web:",
        "shutdown: containers stopped",
        "flush | flushing",
        "onshutdown flush exited with code 0",
        "shutdown: unmount:",
    ];
    assert_in_order(&console, &down);
}

#[test]
fn essential_onboot_failure_halts_the_boot() {
    let image = TestImage::build(
        "halt",
        r#"
[container.check]
phase = "onboot"
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo disk check failed; exit 1"]

[container.web]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo web up"]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for(
        "boot halted: essential onboot container check exited with code 1; no service starts",
        BOOT,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(vm.exited().is_none(), "the node went down");
    let console = vm.console();
    assert!(
        !console.contains("started web"),
        "a service started after a halted boot"
    );
    assert!(!console.contains("Kernel panic"), "kernel panic");
}
