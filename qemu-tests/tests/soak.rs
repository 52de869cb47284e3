//! Soak: 20 containers for two minutes, five of which exit at once on
//! every start and are restarted every second (backoff 1 s, crash-loop
//! protection off). PID 1's resident memory and open descriptors must stay
//! flat and no zombie may remain. An observer in the node's PID namespace
//! samples PID 1 from outside, each time with the crashers stopped so the
//! two samples compare like with like.

use std::time::Duration;

use qemu_tests::{TestImage, Vm, BOOT};

fn manifest() -> String {
    let mut m = String::new();
    for n in 0..15 {
        m.push_str(&format!(
            r#"
[container.steady{n}]
rootfs = "@BUSYBOX@"
console = false
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do echo tick; sleep 5 & wait; done"]
"#
        ));
    }
    for n in 0..5 {
        m.push_str(&format!(
            r#"
[container.crasher{n}]
rootfs = "@BUSYBOX@"
console = false
backoff-initial = "1s"
backoff-max = "1s"
crash-loop-starts = 0
command = ["/bin/sh", "-c", "echo crash; exit 3"]
"#
        ));
    }
    m.push_str(
        r#"
[container.observer]
kind = "host"
host-pid = true
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sample() {
  rss=$(grep VmRSS /proc/1/status | awk '{print $2}')
  fds=$(ls /proc/1/fd | wc -l)
  z=0
  for s in /proc/[0-9]*/stat; do
    st=$(cut -d')' -f2 "$s" 2>/dev/null | cut -d' ' -f2)
    [ "$st" = Z ] && z=$((z+1))
  done
  echo "sample $1: rss_kib=$rss fds=$fds zombies=$z"
}
crashers() { for n in 0 1 2 3 4; do berth $1 crasher$n > /dev/null; done; sleep 2; }
# PID 1 is compared with itself in the same situation (crashers stopped),
# so descriptors of a crasher that happens to run do not count.
sleep 15
crashers stop
sample first
crashers start
sleep 100
crashers stop
sample last
echo "starts: $(berth status | awk '/^crasher0 /{print $0}')"
echo observer done
"""]
"#,
    );
    m
}

/// (rss_kib, fds, zombies) of the sample line named `name`.
fn sample(console: &str, name: &str) -> (u64, u64, u64) {
    let line = console
        .lines()
        .find(|l| l.contains(&format!("observer | sample {name}:")))
        .unwrap_or_else(|| panic!("no sample {name}"));
    let field = |key: &str| -> u64 {
        line.split(&format!("{key}="))
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line}"))
    };
    (field("rss_kib"), field("fds"), field("zombies"))
}

#[test]
fn twenty_containers_with_five_crash_looping_for_two_minutes() {
    let image = TestImage::build("soak", &manifest());
    let mut vm = Vm::boot(&image);
    vm.wait_for("observer | observer done", BOOT + Duration::from_secs(150));
    let console = vm.console();
    let (rss0, fds0, _) = sample(&console, "first");
    let (rss1, fds1, zombies) = sample(&console, "last");
    // Crashers restart every second: about 100 restarts each in between.
    let restarts = console.matches("crasher0 exited").count();
    eprintln!(
        "PID 1: rss {rss0} → {rss1} KiB, fds {fds0} → {fds1}; crasher0 exited {restarts} times"
    );
    assert!(restarts >= 60, "crasher0 restarted only {restarts} times");
    assert!(
        fds1 <= fds0 + 4,
        "PID 1's descriptors grew: {fds0} → {fds1}"
    );
    assert!(rss1 <= rss0 + 1024, "PID 1's RSS grew: {rss0} → {rss1} KiB");
    assert_eq!(zombies, 0, "zombies remain");
}
