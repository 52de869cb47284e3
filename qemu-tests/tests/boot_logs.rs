//! What survives a power cut: QEMU is killed (SIGKILL) while a container
//! appends records to a volume and fsyncs each; on the next boot every
//! record it reported fsynced is there, and `berth logs --boot -1` shows
//! the killed boot's last lines (direct boot, `disk.img` under a
//! persistent overlay). See docs/disk.md.

use std::time::Duration;

use qemu_tests::{TestImage, Vm, BOOT};

const MANIFEST: &str = r#"
[container.writer]
rootfs = "@BUSYBOX@"
volumes = ["data:/data"]
command = ["/bin/sh", "-c", """
last=$(tail -n 1 /data/log 2>/dev/null)
echo "found ${last:-nothing}"
i=${last#record }; i=${i:-0}
while :; do
  i=$((i+1))
  echo "record $i" >> /data/log
  sync /data/log
  echo "fsynced $i"
  sleep 0.1
done
"""]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 1
berth logs --boot -1 writer 2>&1 | tail -n 2 | sed 's/^/previous: /'
echo "previous lines: $(berth logs --boot -1 | grep -c .)"
echo "stage 0 kept: $(berth logs --boot -1 | grep -c -e 'starting stage 0' -e 'dm-verity: /dev/dm-0')"
echo done
"""]
"#;

/// The numbers of `writer | fsynced N` lines in `text`.
fn fsynced(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_once("writer | fsynced ").map(|(_, n)| n.trim()))
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn fsynced_records_and_the_boot_log_survive_a_power_cut() {
    let image = TestImage::build("power-cut", MANIFEST);
    let tmp = tempfile::tempdir().expect("tempdir");
    let overlay = tmp.path().join("node.qcow2");
    image.overlay(&overlay, image.disk_bytes());
    let boot = || Vm::boot_on_overlay(&image, &overlay);

    let mut vm = boot();
    vm.wait_for("writer | found nothing", BOOT);
    vm.wait_for("admin | previous: ", BOOT);
    vm.wait_for("writer | fsynced 30", BOOT);
    // Long enough for the boot log's once-a-second sync to pass line 30.
    std::thread::sleep(Duration::from_secs(3));
    let before = vm.console();
    vm.power_cut();
    let seen = fsynced(&before).into_iter().max().unwrap_or(0);
    assert!(seen >= 30, "{seen}");

    let mut vm = boot();
    let found = vm.wait_for("writer | found record ", BOOT);
    let kept: u64 = found
        .rsplit("found record ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{found}"));
    assert!(
        kept >= seen,
        "record {seen} was reported fsynced, the volume has up to {kept}"
    );
    assert!(vm.console().contains(
        "STATE /dev/vda4 was not unmounted cleanly (power cut?): the kernel replays its journal"
    ));
    vm.wait_for("admin | done", BOOT);
    let console = vm.console();
    let previous: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("admin | previous: "))
        .collect();
    let logged = fsynced(&previous.join("\n"));
    let last = logged.iter().copied().max().unwrap_or(0);
    assert!(
        (30..=seen).contains(&last),
        "the killed boot's last kept lines {previous:?} (line {seen} was on the console)"
    );
    let count = console
        .lines()
        .find_map(|l| {
            l.split_once("admin | previous lines: ")
                .map(|(_, n)| n.trim().to_owned())
        })
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(count > 30, "the previous boot kept {count} lines");
    // Stage 0's lines too (handed to stage 1 across the switch to the
    // real root).
    assert!(
        vm.console().contains("admin | stage 0 kept: 2"),
        "the previous boot's log lacks stage 0's lines"
    );
}
