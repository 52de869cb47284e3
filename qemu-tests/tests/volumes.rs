//! Named volumes on STATE (direct boot, `disk.img` under a persistent
//! overlay): what a container writes survives a reboot through the API;
//! two containers share a volume; a volume is made for, and owned by, the
//! container's user; a link put where a volume should be (by a host
//! container that has STATE) refuses the launch instead of mounting what
//! it points to; and a workload that fills STATE leaves the node's boot
//! log flowing. See docs/disk.md#volumes.

use qemu_tests::{TestImage, Vm, BOOT};

const MANIFEST: &str = r#"
# Fills STATE (after a clean start each boot): the node's own lines must
# still reach its boot log, in the blocks ext4 keeps for it.
[container.filler]
rootfs = "@BUSYBOX@"
restart = "never"
volumes = ["fill:/fill"]
command = ["/bin/sh", "-c", """
rm -f /fill/big
sleep 2
dd if=/dev/zero of=/fill/big bs=1M 2>/dev/null
echo "disk full: $(df -k /fill | tail -n 1)"
sleep 1
echo "filler still here"
"""]

# Runs first: puts a link to the node's /etc where the volume "evil"
# would be made.
[container.attacker]
kind = "host"
phase = "onboot"
rootfs = "@BUSYBOX@"
mounts = ["/var/lib/berth:/state"]
command = ["/bin/sh", "-c", "mkdir -p /state/volumes; [ -e /state/volumes/evil ] || ln -s /etc /state/volumes/evil; echo planted"]

[container.writer]
rootfs = "@BUSYBOX@"
user = "1234:1234"
restart = "never"
volumes = ["data:/data"]
command = ["/bin/sh", "-c", """
n=$(cat /data/count 2>/dev/null || echo 0)
n=$((n+1))
echo $n > /data/count.new && mv /data/count.new /data/count && sync
echo "boot $n: owner $(stat -c %u:%g /data)"
"""]

[container.reader]
rootfs = "@BUSYBOX@"
restart = "never"
volumes = ["data:/shared:ro"]
command = ["/bin/sh", "-c", """
sleep 2
echo "reader sees $(cat /shared/count)"
touch /shared/nope 2>/dev/null && echo "reader wrote" || echo "reader cannot write"
"""]

[container.victim]
rootfs = "@BUSYBOX@"
restart = "never"
volumes = ["evil:/x"]
command = ["/bin/sh", "-c", "echo victim ran; ls /x"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
volumes = ["data:/data:ro"]
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 4
if [ "$(cat /data/count)" = 1 ]; then sleep 2; echo rebooting; berth reboot; fi
berth logs --boot -1 | grep -E 'filler still here|admin [|] rebooting' | sed 's/^/kept: /'
echo done
"""]
"#;

#[test]
fn volumes_outlive_a_reboot_are_shared_and_refuse_links() {
    let image = TestImage::build("volumes", MANIFEST);
    let tmp = tempfile::tempdir().expect("tempdir");
    let overlay = tmp.path().join("node.qcow2");
    image.overlay(&overlay, image.disk_bytes());
    let boot = || Vm::boot_on_overlay(&image, &overlay);

    let mut vm = boot();
    let line = vm.wait_for("writer | boot 1: owner ", BOOT);
    assert!(line.contains("owner 1234:1234"), "{line}");
    vm.wait_for("reader | reader sees 1", BOOT);
    vm.wait_for("reader | reader cannot write", BOOT);
    let full = vm.wait_for("filler | disk full: ", BOOT);
    vm.wait_for("filler | filler still here", BOOT);
    vm.wait_for("admin | rebooting", BOOT);
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "QEMU exit {status:?} (a reboot ends it)");
    let console = vm.console();
    assert!(console.contains("attacker | planted"));
    assert!(
        console.contains(
            "volume evil: /var/lib/berth/volumes/evil is not a folder (a link or a file was put there); refusing to mount it"
        ),
        "the victim's launch should fail naming the link"
    );
    assert!(!console.contains("victim ran"), "mounted through a link");
    assert!(console.contains("volume data: created /var/lib/berth/volumes/data for 1234:1234"));

    let mut vm = boot();
    vm.wait_for("writer | boot 2: owner 1234:1234", BOOT);
    vm.wait_for("reader | reader sees 2", BOOT);
    vm.wait_for("admin | done", BOOT);
    let console = vm.console();
    assert!(
        !console.contains("volume data: created"),
        "the volume was made again"
    );
    // The previous boot's log kept the lines printed after STATE was full
    // ({full}).
    for kept in ["filler | filler still here", "admin | rebooting"] {
        assert!(
            console
                .lines()
                .any(|l| l.contains("admin | kept: ") && l.contains(kept)),
            "the boot log lost {kept:?} once STATE was full ({full})"
        );
    }
    vm.monitor("system_powerdown");
    vm.wait_exit(BOOT);
}
