//! Named volumes on STATE (direct boot, `disk.img` under a persistent
//! overlay): what a container writes survives a reboot through the API;
//! two containers share a volume; a volume is made for, and owned by, the
//! container's user; a link put where a volume should be (by a host
//! container that has STATE) refuses the launch instead of mounting what
//! it points to; and a workload that fills STATE leaves the node's boot
//! log flowing; a `userns` container keeps its volume's owner when a
//! later image puts another container before it. See
//! docs/disk.md#volumes.

use qemu_tests::disk::{copy_build, install_root};
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

/// A user-namespaced workload with a volume, and (with `intruder`) another
/// one before it in the manifest, which shifts the range the image builder
/// plans for it. A host container shows the volume's owner as the node
/// sees it, and the range table, once the keeper is done.
fn userns_manifest(intruder: bool) -> String {
    let mut m = String::new();
    if intruder {
        m.push_str(
            r#"
[container.intruder]
rootfs = "@BUSYBOX@"
userns = true
restart = "never"
command = ["/bin/sh", "-c", "echo \"intruder: map $(awk '{print $1, $2, $3}' /proc/self/uid_map)\""]
"#,
        );
    }
    m.push_str(
        r#"
[container.keeper]
rootfs = "@BUSYBOX@"
userns = true
restart = "never"
volumes = ["data:/data"]
command = ["/bin/sh", "-c", """
echo "keeper: map $(awk '{print $1, $2, $3}' /proc/self/uid_map)"
[ -f /data/note ] && echo "keeper: found $(cat /data/note), owned by $(stat -c %u:%g /data/note)"
echo "kept" > /data/note.new && mv /data/note.new /data/note && sync && echo "keeper: wrote the note"
echo "keeper: done"
"""]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro", "/var/lib/berth:/state:ro"]
command = ["/bin/sh", "-c", """
until berth logs keeper | grep -q 'keeper: done'; do sleep 0.5; done
echo "node sees $(stat -c %u:%g /state/volumes/data/note)"
grep ' = ' /state/userns.toml | sed 's/^/table: /'
echo admin done
"""]
"#,
    );
    m
}

#[test]
fn a_userns_container_keeps_its_volume_when_an_image_puts_one_before_it() {
    let first = TestImage::build("userns-first", &userns_manifest(false));
    let second = TestImage::build("userns-second", &userns_manifest(true));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    copy_build(&first, &dir);
    let overlay = dir.join("node.qcow2");
    berth_image::qemu::create_overlay(&dir.join("disk.img"), &overlay, first.disk_bytes())
        .expect("make the overlay");

    let on_disk = dir.clone();
    let writes = overlay.clone();
    let mut vm = Vm::boot_opts(&first, move |opts, _| {
        opts.dir = on_disk;
        opts.writes = berth_image::qemu::Writes::Overlay(writes);
    });
    vm.wait_for("keeper | keeper: wrote the note", BOOT);
    vm.wait_for("admin | admin done", BOOT);
    let console = vm.console();
    assert!(console.contains("keeper | keeper: map 0 100000 65536"));
    assert!(console.contains("admin | node sees 100000:100000"));
    assert!(console.contains("admin | table: keeper = 100000"));
    assert!(console.contains(
        "userns: keeper holds host ids 100000-165535 from now on (recorded in /var/lib/berth/userns.toml)"
    ));
    vm.monitor("system_powerdown");
    assert!(vm.wait_exit(BOOT).success());
    drop(vm);

    // What the first boot wrote goes into the disk, then the second
    // image's root over ROOT-A, as an update would leave the node.
    let committed = std::process::Command::new("qemu-img")
        .arg("commit")
        .arg("-q")
        .arg(&overlay)
        .status()
        .expect("qemu-img commit");
    assert!(committed.success(), "qemu-img commit: {committed}");
    install_root(&second, &dir);

    let on_disk = dir.clone();
    let mut vm = Vm::boot_opts(&second, move |opts, _| opts.dir = on_disk);
    vm.wait_for("keeper | keeper: done", BOOT);
    vm.wait_for("admin | admin done", BOOT);
    let console = vm.console();
    // The builder planned the keeper's range after the intruder's; the
    // table gave it back its own, and the intruder the next free one.
    for line in [
        "userns: keeper keeps host ids 100000-165535 from /var/lib/berth/userns.toml (its image planned 165536-231071)",
        "userns: intruder gets host ids 165536-231071: 100000-165535, which its image planned, belong to keeper",
        "keeper | keeper: map 0 100000 65536",
        "intruder | intruder: map 0 165536 65536",
        "keeper | keeper: found kept, owned by 0:0",
        "keeper | keeper: wrote the note",
        "admin | node sees 100000:100000",
        "admin | table: intruder = 165536",
        "admin | table: keeper = 100000",
    ] {
        assert!(console.contains(line), "console lacks {line:?}");
    }
    vm.monitor("system_powerdown");
    vm.wait_exit(BOOT);
}
