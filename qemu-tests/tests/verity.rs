//! The dm-verity protected root: a root image with one flipped byte in the
//! manifest (which boot reads) refuses to boot, naming dm-verity; a flipped
//! byte in a file nothing reads at boot is found by PID 1's scrub, which
//! reports it on the console and in `berth status`.
//!
//! Both flip bytes in `root.img` and boot it alone as the root disk
//! (`Disk::RootImage`, `berth.root=/dev/vda`): `disk.img` holds its own
//! copy of the root, which the corruption does not reach.

use std::path::Path;
use std::time::Duration;

use berth_image::extent::file_extent;
use berth_image::qemu::Disk;
use qemu_tests::{TestImage, Vm, BOOT};

/// Boots `root.img` alone, with `cmdline` appended.
fn boot_root_image(image: &TestImage, cmdline: &str) -> Vm {
    Vm::boot_opts(image, |opts, _| {
        opts.disk = Disk::RootImage;
        opts.extra_cmdline = cmdline.to_owned();
    })
}

/// XORs one byte in the middle of `path`'s data inside `dir/root.img`.
fn corrupt(dir: &Path, path: &str) {
    let image = dir.join("root.img");
    let (offset, len) = file_extent(&image, path)
        .unwrap_or_else(|e| panic!("find {path} in {}: {e}", image.display()))
        .unwrap_or_else(|| panic!("{path} is not in {}", image.display()));
    let mut bytes = std::fs::read(&image).expect("read root.img");
    let at = usize::try_from(offset + len / 2).expect("offset fits");
    bytes[at] ^= 0x5a;
    std::fs::write(&image, bytes).expect("write root.img");
}

fn kernel_version(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("kernel-version")).expect("kernel-version");
    text.lines()
        .find_map(|l| l.strip_prefix("KERNEL_VERSION="))
        .expect("KERNEL_VERSION=")
        .to_owned()
}

#[test]
fn a_corrupted_manifest_block_stops_the_boot() {
    let image = TestImage::build(
        "verity-manifest",
        r#"
[container.never]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo this must not run"]
"#,
    );
    assert!(
        image.dir().join("root.verity").exists(),
        "images are verified by default"
    );
    corrupt(&image.dir(), "/etc/berth/manifest.toml");
    let mut vm = boot_root_image(&image, "berth.panic=poweroff");
    let status = vm.wait_exit(BOOT);
    let console = vm.console();
    assert!(
        console.contains("device-mapper: verity"),
        "the kernel's dm-verity message is missing"
    );
    let fatal = console
        .lines()
        .find(|l| l.contains("fatal") && l.contains("dm-verity"))
        .unwrap_or_else(|| panic!("no fatal line naming dm-verity (exit {status:?})"));
    assert!(fatal.contains("/dev/dm-0"), "{fatal}");
    assert!(!console.contains("this must not run"));
}

#[test]
fn the_scrub_finds_corruption_nothing_reads_at_boot() {
    let image = TestImage::build(
        "verity-scrub",
        r#"
[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
n=0
until berth status | grep -q '^root: CORRUPT'; do
  n=$((n+1)); [ $n -gt 90 ] && break; sleep 1
done
berth status | grep -E '^(root|state):' | sed 's/^/status: /'
"""]
"#,
    );
    // squashfs.ko is in every image and loaded only when a manifest asks.
    let module = format!(
        "/lib/modules/{}/kernel/fs/squashfs/squashfs.ko",
        kernel_version(&image.dir())
    );
    corrupt(&image.dir(), &module);
    let mut vm = boot_root_image(&image, "");
    let line = vm.wait_for("CORRUPT block", BOOT + Duration::from_secs(60));
    assert!(line.contains("dm-verity scrub of /dev/dm-0"), "{line}");
    let status = vm.wait_for("admin | status: root:", BOOT);
    assert!(status.contains("CORRUPT"), "{status}");
    // A bare root image has no STATE partition: /var/lib/berth is a
    // tmpfs, and both the boot and `berth status` say so.
    let state = vm.wait_for("admin | status: state:", BOOT);
    assert!(
        state.contains("in memory (tmpfs, ")
            && state.contains("): no STATE partition (no partitions)"),
        "{state}"
    );
    assert!(vm
        .console()
        .contains("no STATE partition (no partitions): /var/lib/berth is in memory, and nothing kept there outlives this boot"));
}
