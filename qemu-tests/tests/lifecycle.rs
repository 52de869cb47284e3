//! Lifecycle under QEMU: restarts by policy with the backoff schedule, and
//! orderly shutdown from every usual trigger (ctrl-alt-del, the ACPI power
//! button, busybox `poweroff` from a container), including a container that
//! ignores its stop signal.

use std::time::Duration;

use qemu_tests::{TestImage, Vm, BOOT};

/// The guest uptime stamp of a console line: `[   4.843] …` → 4.843 s.
fn stamp(line: &str) -> f64 {
    line.trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stamp in {line:?}"))
}

/// A container that stops at once and politely on SIGTERM.
const POLITE: &str =
    r#"trap 'echo got SIGTERM; exit 0' TERM; echo ready; while :; do sleep 1 & wait; done"#;

#[test]
fn crashing_always_container_restarts_with_growing_delays() {
    let image = TestImage::build(
        "backoff",
        r#"
[container.crash]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo run; exit 1"]
restart = "always"
# Off here, so the schedule can be followed past five starts.
crash-loop-starts = 0
"#,
    );
    let mut vm = Vm::boot(&image);
    // Five restarts: 100, 200, 400, 800, 1600 ms.
    vm.wait_for("restarting in 1600 ms (restart 5, restart = always)", BOOT);
    vm.wait_for("restart 6,", BOOT);
    let console = vm.console();
    let lines: Vec<&str> = console.lines().collect();
    let mut exits = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let Some(rest) = line.split("berth | crash exited with code 1 after ").nth(1) else {
            continue;
        };
        let delay: u64 = rest
            .split("restarting in ")
            .nth(1)
            .and_then(|r| r.split(" ms").next())
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no delay in {line:?}"));
        // The next start of crash must come no earlier than the delay.
        let next_start = lines[k..]
            .iter()
            .find(|l| l.contains("berth | started crash"))
            .map(|l| stamp(l));
        exits.push((stamp(line), delay, next_start));
    }
    let delays: Vec<u64> = exits.iter().map(|e| e.1).collect();
    assert_eq!(&delays[..6], &[100, 200, 400, 800, 1600, 3200], "schedule");
    for (exit_at, delay, next) in exits.iter().take(5) {
        let next = next.expect("a restart after each scheduled delay");
        assert!(
            next - exit_at >= *delay as f64 / 1000.0 - 0.002,
            "restarted {:.3} s after the exit, delay was {delay} ms",
            next - exit_at
        );
    }
    assert!(
        console.matches("crash | run").count() >= 6,
        "each start ran the command"
    );
}

#[test]
fn crash_looping_container_fails_after_exactly_its_limit() {
    let image = TestImage::build(
        "crashloop",
        r#"
[container.loopy]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo run; exit 1"]
restart = "always"
crash-loop-starts = 4
crash-loop-window = "60s"

# Clears the failed state through the API once it was reached.
[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", "until berth status | grep -q ' failed '; do sleep 1; done; sleep 5; berth status | grep loopy | sed 's/^/status: /'; berth restart loopy"]
"#,
    );
    let mut vm = Vm::boot(&image);
    let failed = vm.wait_for("loopy is crash-looping", BOOT);
    assert!(
        failed.contains("(4 starts within 60.000 s): failed, not restarting"),
        "{failed}"
    );
    // Nothing more happens: the backoff would have restarted it within
    // 1.6 s; give it well over that.
    std::thread::sleep(Duration::from_secs(5));
    let console = vm.console();
    assert_eq!(
        console.matches("berth | started loopy").count(),
        4,
        "starts"
    );
    assert_eq!(console.matches("loopy | run").count(), 4, "runs");
}

#[test]
fn on_failure_and_never_policies() {
    let image = TestImage::build(
        "policies",
        r#"
[container.fine]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo fine; exit 0"]
restart = "on-failure"

[container.failing]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo failing; exit 1"]
restart = "on-failure"

[container.once]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo once; exit 1"]
restart = "never"
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("fine exited with code 0 after", BOOT);
    vm.wait_for("once exited with code 1 after", BOOT);
    // failing is restarted: its third start means two restarts happened.
    vm.wait_for(
        "restarting in 200 ms (restart 2, restart = on-failure)",
        BOOT,
    );
    vm.wait_for("failing | failing", BOOT);
    let console = vm.console();
    let fine = console
        .lines()
        .find(|l| l.contains("fine exited with code 0"))
        .expect("fine's exit");
    assert!(
        fine.ends_with("not restarting (restart = on-failure)"),
        "{fine}"
    );
    let once = console
        .lines()
        .find(|l| l.contains("once exited with code 1"))
        .expect("once's exit");
    assert!(once.ends_with("not restarting (restart = never)"), "{once}");
    assert_eq!(
        console.matches("started fine").count(),
        1,
        "on-failure restarted after exit 0"
    );
    assert_eq!(
        console.matches("started once").count(),
        1,
        "never restarted"
    );
    assert!(
        console.matches("started failing").count() >= 2,
        "on-failure did not restart after exit 1"
    );
}

#[test]
fn ctrl_alt_del_reboots_after_the_container_saw_sigterm() {
    let image = TestImage::build(
        "cad",
        &format!(
            r#"
[container.svc]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "{POLITE}"]
"#
        ),
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("svc | ready", BOOT);
    vm.monitor("sendkey ctrl-alt-delete");
    vm.wait_for("received SIGINT: reboot requested", BOOT);
    vm.wait_for("svc | got SIGTERM", BOOT);
    vm.wait_for("svc stopped: exited with code 0", BOOT);
    vm.wait_for("berth | rebooting", BOOT);
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "qemu: {status}");
}

#[test]
fn power_button_powers_off_and_a_stubborn_container_is_killed() {
    let image = TestImage::build(
        "powerdown",
        &format!(
            r#"
[container.polite]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "{POLITE}"]

[container.stubborn]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap '' TERM; echo ignoring SIGTERM; while :; do sleep 1; done"]
stop-grace = "2s"
"#
        ),
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("watching the power button", BOOT);
    vm.wait_for("polite | ready", BOOT);
    vm.wait_for("stubborn | ignoring SIGTERM", BOOT);
    vm.monitor("system_powerdown");
    vm.wait_for("power button pressed: poweroff requested", BOOT);
    vm.wait_for("polite | got SIGTERM", BOOT);
    vm.wait_for("stubborn did not stop within 2.000 s: SIGKILL", BOOT);
    vm.wait_for("stubborn stopped: killed by signal SIGKILL (9)", BOOT);
    vm.wait_for("shutdown: unmount:", BOOT);
    vm.wait_for("berth | powering off", BOOT);
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "qemu: {status}");
}

#[test]
fn busybox_poweroff_from_a_host_pid_container() {
    let image = TestImage::build(
        "bbpoweroff",
        r#"
[container.operator]
kind = "host"
host-pid = true
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", "echo \"PID 1 here is $(cat /proc/1/comm)\"; poweroff"]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("operator | PID 1 here is init", BOOT);
    vm.wait_for("received SIGUSR2: poweroff requested", BOOT);
    vm.wait_for("berth | powering off", BOOT);
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "qemu: {status}");
}
