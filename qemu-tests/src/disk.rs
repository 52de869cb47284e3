//! Copies of a build's node disk that a test changes between boots: a
//! grown or damaged table, a zeroed superblock, another image's root
//! written into ROOT-A over a STATE that one boot already used (what a
//! whole-image update leaves).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestImage;

/// A sparse copy of `image`'s `disk.img` in `to`, with the kernel,
/// initramfs and root hash beside it, to boot with `opts.dir = to`.
pub fn copy_build(image: &TestImage, to: &Path) -> PathBuf {
    copy_boot_files(image, to);
    let disk = to.join("disk.img");
    let copied = Command::new("cp")
        .arg("--sparse=always")
        .arg(image.dir().join("disk.img"))
        .arg(&disk)
        .status()
        .expect("cp");
    assert!(copied.success(), "cp {}: {copied}", disk.display());
    disk
}

fn copy_boot_files(image: &TestImage, to: &Path) {
    for name in ["vmlinuz", "initramfs.img", "root.verity"] {
        std::fs::copy(image.dir().join(name), to.join(name))
            .unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
}

/// Where the partition named `name` starts in `disk`, in bytes (from
/// `sfdisk --dump`: `disk.img4 : start= N, size= …, name="STATE"`).
pub fn partition_start(disk: &Path, name: &str) -> u64 {
    let dump = Command::new("sfdisk")
        .arg("--dump")
        .arg(disk)
        .output()
        .expect("sfdisk --dump (apt-get install fdisk)");
    let text = String::from_utf8_lossy(&dump.stdout);
    let sector: u64 = text
        .lines()
        .find(|l| l.contains(&format!("name=\"{name}\"")))
        .and_then(|l| l.split("start=").nth(1))
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no partition {name} in\n{text}"));
    sector * 512
}

/// Puts `image`'s root (its `root.img`, EROFS and hash tree) into ROOT-A
/// of the node disk in `dir`, and its kernel, initramfs and root hash
/// beside it, leaving STATE as it is: the node boots the new image with
/// the old state.
pub fn install_root(image: &TestImage, dir: &Path) {
    use std::os::unix::fs::FileExt;
    let disk = dir.join("disk.img");
    let start = partition_start(&disk, "ROOT-A");
    let root = std::fs::read(image.dir().join("root.img")).expect("read root.img");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .expect("open the disk");
    file.write_all_at(&root, start).expect("write ROOT-A");
    file.sync_all().expect("sync the disk");
    copy_boot_files(image, dir);
}
