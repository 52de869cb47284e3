//! The node disk: `disk.img` boots by itself under UEFI (OVMF and
//! systemd-boot) and grows STATE into a larger disk on its first boot,
//! then finds it grown; it boots as an NVMe disk; and a grow cut off
//! after the partition table was written is finished on the next boot
//! (here on a SATA disk); a STATE that does not mount leaves the node up
//! in memory until `berth reset --state` empties it, and the boot after
//! grows the fresh filesystem. See docs/disk.md.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_image::qemu::{create_overlay, Boot, Interface, Writes};
use qemu_tests::disk::{copy_build, partition_start};
use qemu_tests::{TestImage, Vm, BOOT};

/// Under UEFI the firmware and the boot loader come first: about 20 s
/// more under TCG.
const UEFI_BOOT: Duration = Duration::from_secs(180);
const GIB: u64 = 1 << 30;

/// A host container that prints `berth status` once the node is up.
const STATUS_MANIFEST: &str = r#"
[container.hello]
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", "echo hello from the disk, booted with $(cat /proc/cmdline)"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", "sleep 1; berth status | sed 's/^/status: /'; echo done"]
"#;

/// The `state:` line of the admin container's `berth status`.
fn status_state(vm: &mut Vm) -> String {
    vm.wait_for("admin | done", BOOT);
    vm.console()
        .lines()
        .find(|l| l.contains("admin | status: state: "))
        .unwrap_or_else(|| panic!("berth status printed no state line"))
        .to_owned()
}

fn power_off(vm: &mut Vm) {
    vm.monitor("system_powerdown");
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "QEMU exit {status:?}");
}

#[test]
fn uefi_boot_grows_state_on_the_first_boot_only() {
    let image = TestImage::build("disk-uefi", STATUS_MANIFEST);
    let tmp = tempfile::tempdir().expect("tempdir");
    let overlay = tmp.path().join("node.qcow2");
    let vars = tmp.path().join("vars.fd");
    create_overlay(&image.dir().join("disk.img"), &overlay, 8 * GIB)
        .unwrap_or_else(|e| panic!("create the overlay: {e}"));
    let boot = |image: &TestImage| {
        let (overlay, vars) = (overlay.clone(), vars.clone());
        Vm::boot_opts(image, move |opts, _| {
            opts.boot = Boot::Uefi { vars };
            opts.writes = Writes::Overlay(overlay);
        })
    };

    let mut vm = boot(&image);
    let grown = vm.wait_for("STATE /dev/vda4: ext4 grown from 64.0 MiB to ", UEFI_BOOT);
    // 8 GiB less the ESP, the two root slots and the table's last MiB.
    assert!(
        grown.contains(" to 7.") && grown.contains(" GiB in "),
        "{grown}"
    );
    let console = vm.console();
    let table = console
        .lines()
        .find(|l| l.contains("partition table now spans 8.0 GiB of /dev/vda"))
        .unwrap_or_else(|| panic!("no line about the partition table"));
    assert!(table.contains("STATE 64.0 MiB → 7."), "{table}");
    // The boot went through OVMF and systemd-boot's entry (which nobody
    // at the console can edit): slot A, verified, found by name.
    assert!(console.contains("BdsDxe: starting"), "OVMF's boot line");
    let hello = vm.wait_for("hello | hello from the disk", BOOT);
    assert!(hello.contains("berth.slot=a"), "{hello}");
    assert!(hello.contains("berth.verity="), "{hello}");
    assert!(!hello.contains("berth.root="), "{hello}");
    assert!(console.contains("root: /dev/vda2 (ROOT-A) on /dev/vda"));
    assert!(console.contains("dm-verity: /dev/dm-0 (berth-root) verifies /dev/vda2"));
    let state = status_state(&mut vm);
    assert!(
        state.contains("state: STATE /dev/vda4 (ext4): 7."),
        "{state}"
    );
    assert!(state.contains(" GiB, "), "{state}");
    power_off(&mut vm);

    let mut vm = boot(&image);
    vm.wait_for("STATE /dev/vda4: ext4 fills its partition (7.", UEFI_BOOT);
    let state = status_state(&mut vm);
    assert!(
        state.contains("state: STATE /dev/vda4 (ext4): 7."),
        "{state}"
    );
    let console = vm.console();
    assert!(!console.contains("partition table now spans"), "grew twice");
    assert!(!console.contains("ext4 grown"), "grew twice");
    power_off(&mut vm);
}

#[test]
fn the_disk_boots_as_nvme() {
    let image = TestImage::build("disk-nvme", STATUS_MANIFEST);
    let mut vm = Vm::boot_opts(&image, |opts, _| opts.interface = Interface::Nvme);
    vm.wait_for("hello | hello from the disk", BOOT);
    let state = status_state(&mut vm);
    assert!(
        state.contains("state: STATE /dev/nvme0n1p4 (ext4): "),
        "{state}"
    );
    let console = vm.console();
    assert!(
        console.contains("disk drivers: virtio, NVMe"),
        "virtio for the NIC"
    );
    assert!(console.contains("root: /dev/nvme0n1p2 (ROOT-A) on /dev/nvme0n1"));
    // The built disk is as big as its table: nothing to grow.
    assert!(console.contains("STATE /dev/nvme0n1p4: ext4 fills its partition (64.0 MiB)"));
}

/// Runs `sfdisk` with `args` on `disk`, feeding it `input`.
fn sfdisk(disk: &Path, args: &[&str], input: &str) {
    use std::io::Write;
    let mut child = Command::new("sfdisk")
        .args(args)
        .arg(disk)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run sfdisk (apt-get install fdisk)");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write to sfdisk");
    }
    let status = child.wait().expect("wait for sfdisk");
    assert!(status.success(), "sfdisk {args:?}: {status}");
}

#[test]
fn a_grow_cut_off_after_the_table_is_finished_on_the_next_boot() {
    let image = TestImage::build("disk-resume", STATUS_MANIFEST);
    // A copy of the build on a 2 GiB disk whose table was already grown,
    // as a power cut between the table and the filesystem leaves it.
    let tmp = tempfile::tempdir().expect("tempdir");
    let disk = copy_build(&image, tmp.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .and_then(|f| f.set_len(2 * GIB))
        .expect("grow the copy to 2 GiB");
    sfdisk(&disk, &["--quiet", "--relocate", "gpt-bak-std"], "");
    sfdisk(&disk, &["--quiet", "--no-reread", "-N", "4"], ", +\n");

    let dir = tmp.path().to_owned();
    let mut vm = Vm::boot_opts(&image, move |opts, _| {
        opts.dir = dir;
        opts.interface = Interface::Sata;
    });
    let grown = vm.wait_for("STATE /dev/sda4: ext4 grown from 64.0 MiB to ", BOOT);
    let console = vm.console();
    assert!(console.contains("disk drivers: virtio, SATA (AHCI)"));
    assert!(console.contains("root: /dev/sda2 (ROOT-A) on /dev/sda"));
    assert!(
        !console.contains("partition table now spans"),
        "the table was grown already: {grown}"
    );
    let state = status_state(&mut vm);
    assert!(state.contains("state: STATE /dev/sda4 (ext4): "), "{state}");
    assert!(state.contains(" GiB, "), "STATE is still small: {state}");
}

/// As [`STATUS_MANIFEST`], and the admin container asks for `berth reset
/// --state` when the kernel command line says `reset_state_test=1`.
const RESET_MANIFEST: &str = r#"
[container.hello]
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", "echo hello from the disk"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 1
berth status | sed 's/^/status: /'
echo done
if grep -q reset_state_test=1 /proc/cmdline; then berth reset --state 2>&1 | sed 's/^/reset: /'; fi
"""]
"#;

#[test]
fn a_state_that_does_not_mount_leaves_the_node_running_in_memory_until_reset() {
    let image = TestImage::build("disk-zeroed", RESET_MANIFEST);
    let tmp = tempfile::tempdir().expect("tempdir");
    let disk = copy_build(&image, tmp.path());
    let start = partition_start(&disk, "STATE");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&disk)
            .expect("open the copy");
        f.write_all_at(&[0u8; 1024], start + 1024)
            .expect("zero the superblock");
    }
    // On a 2 GiB disk: the first boot grows the table, not the filesystem.
    let overlay = tmp.path().join("node.qcow2");
    create_overlay(&disk, &overlay, 2 * GIB).expect("make the overlay");
    let boot = |cmdline: &'static str| {
        let (dir, overlay) = (tmp.path().to_owned(), overlay.clone());
        Vm::boot_opts(&image, move |opts, _| {
            opts.dir = dir;
            opts.writes = Writes::Overlay(overlay);
            opts.extra_cmdline = cmdline.into();
        })
    };

    let mut vm = boot("reset_state_test=1");
    vm.wait_for("hello | hello from the disk", BOOT);
    let state = status_state(&mut vm);
    assert!(
        state.contains("in memory (tmpfs, ")
            && state.contains(
                "STATE /dev/vda4 did not mount: /dev/vda4 holds no ext4 filesystem (bad superblock magic)"
            ),
        "{state}"
    );
    assert!(vm
        .console()
        .contains("/var/lib/berth is in memory, and nothing kept there outlives this boot"));
    // Never formatted by itself: emptied when root asks, then rebooted.
    vm.wait_for(
        "admin | reset: stopping every container, then emptying STATE /dev/vda4 and rebooting",
        BOOT,
    );
    let done = vm.wait_for(
        "shutdown: reset STATE: /dev/vda4 emptied: the image's ext4 of 64.0 MiB written",
        BOOT,
    );
    assert!(done.contains("the next boot grows it"), "{done}");
    eprintln!("{done}");
    assert!(vm.wait_exit(BOOT).success());
    drop(vm);

    let mut vm = boot("");
    let grown = vm.wait_for("STATE /dev/vda4: ext4 grown from 64.0 MiB to ", BOOT);
    let state = status_state(&mut vm);
    assert!(state.contains("state: STATE /dev/vda4 (ext4): "), "{state}");
    assert!(
        state.contains(" GiB, "),
        "STATE is still small: {state} ({grown})"
    );
    assert!(
        !vm.console().contains("in memory"),
        "STATE did not mount after the reset"
    );
    power_off(&mut vm);
}
