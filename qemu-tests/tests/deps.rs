//! Dependencies under QEMU: `after` orders starts, `requires` stops the
//! dependents of a container that went down and starts them again once it
//! is back.

use qemu_tests::{position, TestImage, Vm, BOOT};

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
