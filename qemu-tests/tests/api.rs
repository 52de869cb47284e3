//! The control socket under QEMU, used the way an operator would: the
//! `berth` CLI inside a host container that the manifest gave the socket
//! (and the binary). Checks `status`, `logs`, `restart`, `stop`, `start`,
//! and malformed requests answered without harm.

use qemu_tests::{TestImage, Vm, BOOT};

#[test]
fn operator_commands_from_an_admin_container() {
    let image = TestImage::build(
        "api",
        r#"
[container.web]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo web says hello; echo web warns >&2; while :; do sleep 1 & wait; done"]

# Kept off the console; its log still records every line.
[container.quiet]
console = false
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", "echo psst from quiet"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 2
berth status | sed 's/^/status: /'
berth logs quiet | sed 's/^/quiet logs: /'
berth logs -n 5 web | sed 's/^/logs: /'
(timeout 3 berth logs -f -n 0 web | sed 's/^/follow: /') &
sleep 0.5
berth restart web | sed 's/^/restart: /'
sleep 3
berth stop web | sed 's/^/stop: /'
sleep 1
berth status --json | sed 's/^/json: /'
berth start web | sed 's/^/start: /'
berth logs nosuch; echo "logs nosuch exit $?"
berth --socket /nonexistent status; echo "no socket exit $?"
berth dmesg -n 3 | sed 's/^/dmesg: /'
echo done
"""]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | done", BOOT);
    let console = vm.console();
    let has = |needle: &str| assert!(console.contains(needle), "console lacks {needle:?}");
    // The status table: a header and one row per container.
    has("admin | status: NAME");
    let web_row = console
        .lines()
        .find(|l| l.contains("admin | status: web "))
        .expect("web row");
    assert!(
        web_row.contains(" workload ") && web_row.contains(" running "),
        "{web_row}"
    );
    // Logs keep the stream of each line.
    has("admin | logs: ");
    assert!(console
        .lines()
        .any(|l| l.contains("admin | logs:") && l.contains("web says hello")));
    assert!(console
        .lines()
        .any(|l| l.contains("admin | logs:") && l.contains("stderr") && l.contains("web warns")));
    // Restart through the API: web runs a second time.
    has("admin | restart: restarting web");
    // The follower saw the restarted run's line, and only that (-n 0).
    let followed: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("admin | follow:"))
        .collect();
    assert!(
        followed
            .iter()
            .any(|l| l.contains("stdout| web says hello")),
        "{followed:?}"
    );
    assert!(
        followed
            .iter()
            .all(|l| !l.contains("web says hello") || l.contains("stdout")),
        "{followed:?}"
    );
    assert!(
        console.matches("web | web says hello").count() >= 2,
        "web was not restarted"
    );
    has("admin | stop: stopping web");
    let json = console
        .lines()
        .find(|l| l.contains("admin | json:"))
        .expect("json status");
    assert!(
        json.contains("\"name\":\"web\"") && json.contains("\"state\":\"stopped\""),
        "{json}"
    );
    has("admin | start: web started");
    has("admin | logs nosuch exit 1");
    has("admin | no socket exit 3");
    has("admin | dmesg: ");
    // console = false: nothing on the console, everything in the log.
    assert!(
        !console.contains("quiet | psst"),
        "quiet's line reached the console"
    );
    assert!(console
        .lines()
        .any(|l| l.contains("admin | quiet logs:") && l.contains("psst from quiet")));
    // PID 1 is unharmed.
    assert!(vm.exited().is_none(), "the node went down");
}

#[test]
fn a_thousand_malformed_requests_leave_pid1_serving() {
    let image = TestImage::build(
        "malformed",
        r#"
[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 1
rss() { berth status --json | sed 's/.*"pid1_rss_kib":\\([0-9]*\\).*/\\1/'; }
flood() {
  printf 'not json\\n' | berth raw --repeat $1 >/dev/null; echo "garbage $?"
  printf '{"version":2,"op":"status"}\\n' | berth raw --repeat $1 >/dev/null; echo "version $?"
  head -c 70000 /dev/zero | tr '\\\\0' x | berth raw --repeat $1 >/dev/null; echo "oversized $?"
  printf '{"version":1,"op":"logs"}\\n' | berth raw --repeat $1 >/dev/null; echo "missing $?"
}
# A first round brings in the code and the allocator's working set; the
# thousand after it must not grow PID 1.
flood 10 | sed 's/^/warm-up /'
echo "rss before $(rss)"
flood 250
printf '{"version":1,"op":"status"' | berth raw | sed 's/^/unterminated: /'
echo "rss after $(rss)"
berth status >/dev/null; echo "status $?"
"""]
"#,
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("admin | status ", BOOT);
    let console = vm.console();
    for what in ["garbage", "version", "oversized", "missing"] {
        let line = format!("admin | {what} 0");
        assert!(
            console.contains(&line),
            "not every {what} request was answered"
        );
    }
    assert!(console.contains(
        "admin | unterminated: {\"version\":1,\"ok\":false,\"error\":{\"code\":\"bad-request\""
    ));
    assert!(
        console.contains("admin | status 0"),
        "PID 1 stopped answering"
    );
    let rss = |tag: &str| -> u64 {
        let line = console
            .lines()
            .find(|l| l.contains(&format!("admin | rss {tag} ")))
            .expect("rss line");
        line.rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    let (before, after) = (rss("before"), rss("after"));
    // Flat: whatever a request allocates is freed with its connection.
    assert!(
        after <= before + 256,
        "PID 1 RSS grew from {before} KiB to {after} KiB"
    );
}
