//! Dependencies under QEMU: `after` orders starts, `requires` stops the
//! dependents of a container that went down and starts them again once it
//! is back.

use qemu_tests::{assert_in_order, position, TestImage, Vm, BOOT};

#[test]
fn requires_stops_and_restarts_dependents() {
    let image = TestImage::build(
        "deps",
        r#"
[container.web]
after = ["api"]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo web up; while :; do sleep 1 & wait; done"]

[container.api]
requires = ["db"]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'echo api stopping; exit 0' TERM; echo api up; while :; do sleep 1 & wait; done"]

[container.db]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo db up; sleep 3; echo db crashing; exit 1"]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("web | web up", BOOT);
    vm.wait_for("db | db crashing", BOOT);
    vm.wait_for("stopping api: it requires db, which went down", BOOT);
    vm.wait_for("api | api stopping", BOOT);
    vm.wait_for("starting api: what it requires is ready again", BOOT);
    // api's second run.
    let console = vm.wait_for_count("api | api up", 2, BOOT);
    // Start order follows the dependencies, not the manifest.
    assert!(
        position(&console, "started db") < position(&console, "started api"),
        "api before db"
    );
    assert!(
        position(&console, "started api") < position(&console, "started web"),
        "web before api"
    );
    // web only needed api to start first (after): it was not stopped.
    assert!(
        !console.contains("stopping web"),
        "web stopped though it only comes after api"
    );
}

/// `berth stop base` with top → mid → base (`requires`): the most
/// dependent goes first, and each is signalled only once the one above it
/// has exited; one line per stop.
#[test]
fn an_operator_stop_goes_down_a_requires_chain_one_at_a_time() {
    let image = TestImage::build(
        "chain",
        r#"
[container.top]
requires = ["mid"]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'sleep 1; exit 0' TERM; echo top up; while :; do sleep 1 & wait; done"]

[container.mid]
requires = ["base"]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'sleep 1; exit 0' TERM; echo mid up; while :; do sleep 1 & wait; done"]

[container.base]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'sleep 1; exit 0' TERM; echo base up; while :; do sleep 1 & wait; done"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
after = ["top"]
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
# Not as the container's PID 1 (sh would exec it): berth runs control
# verbs only when it is not a PID 1.
command = ["/bin/sh", "-c", "berth stop base | sed 's/^/admin: /'"]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | admin: stopping base", BOOT);
    vm.wait_for("base stopped:", BOOT);
    let console = vm.console();
    let order = [
        "stopping top: it requires base, which is stopping; SIGTERM",
        "top stopped:",
        "stopping mid: it requires base, which is stopping; SIGTERM",
        "mid stopped:",
        "stopping base: SIGTERM",
        "base stopped:",
    ];
    assert_in_order(&console, &order);
    assert_eq!(
        console.matches("stopping top").count(),
        1,
        "one line per stop"
    );
}
