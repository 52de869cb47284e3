//! Health checks under QEMU: a TCP check gates readiness (a dependent
//! starts only after it passes), an exec check that starts failing gets
//! a hung service killed and restarted by its policy, and `berth exec`
//! runs a command inside a container.

use qemu_tests::{position, TestImage, Vm, BOOT};

#[test]
fn health_checks_gate_readiness_and_restart_a_hung_service() {
    let image = TestImage::build(
        "health",
        r#"
# Listens only after 2 s: its dependent must wait for the TCP check.
[container.db]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo db warming up; sleep 2; echo db listening; exec httpd -f -p 5432 -h /tmp"]
health = { tcp = 5432, interval = "500ms", timeout = "1s", retries = 3, start-period = "10s" }

[container.app]
after = ["db"]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo app up; while :; do sleep 1 & wait; done"]

# Healthy while /tmp/alive exists; "hangs" (removes it) after 3 s.
[container.hang]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "touch /tmp/alive; echo hang starts; sleep 3; rm /tmp/alive; echo hang hangs; while :; do sleep 1; done"]
health = { exec = ["/bin/test", "-f", "/tmp/alive"], interval = "500ms", timeout = "2s", retries = 2 }

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 4
berth exec app -- /bin/sh -c 'echo inside $(hostname); exit 7'; echo "exec exit $?"
berth status | sed 's/^/status: /'
"""]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("db is ready (health check passed)", BOOT);
    vm.wait_for("app | app up", BOOT);
    vm.wait_for("hang is unhealthy", BOOT);
    vm.wait_for_count("hang | hang starts", 2, BOOT);
    vm.wait_for("admin | exec exit 7", BOOT);
    vm.wait_for("admin | status: hang", BOOT);
    let console = vm.console();
    // app waited for db's TCP check, not just for db's process.
    assert!(
        position(&console, "db | db listening") < position(&console, "db is ready"),
        "ready before listening"
    );
    assert!(
        position(&console, "db is ready") < position(&console, "started app"),
        "app started before db was ready"
    );
    // The hung service was killed and restarted under its policy.
    assert!(position(&console, "hang | hang hangs") < position(&console, "hang is unhealthy"));
    let killed = console
        .lines()
        .find(|l| l.contains("hang killed by signal SIGKILL (9)"))
        .expect("hang killed");
    assert!(killed.contains("restarting in"), "{killed}");
    // berth exec ran inside app (its hostname) and passed the exit code on.
    assert!(console.contains("admin | inside app"), "exec output");
    let db_row = console
        .lines()
        .find(|l| l.contains("admin | status: db "))
        .expect("db row");
    assert!(db_row.trim_end().ends_with("healthy"), "{db_row}");
}
