//! Boot stage 0, in the initramfs: just enough to find, mount and enter the
//! real root. Each step is a named function that logs what it did.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_config::cmdline::KernelCmdline;
use berth_config::layout;
use nix::mount::{mount, MsFlags};

use crate::fatal::Fatal;
use crate::{modload, mounts, switch_root};

/// Runs stage 0; returns only on failure (success execs stage 1).
pub fn run(cmdline: &KernelCmdline) -> Fatal {
    let dir = match modload::modules_dir() {
        Ok(d) => d,
        Err(e) => return Fatal::new("find kernel modules", e),
    };
    if let Err(e) = modload::load(&dir, layout::STAGE0_MODULES) {
        return Fatal::new("load stage 0 modules", e);
    }
    if let Err(e) = wait_for_device(&cmdline.root, cmdline.root_wait) {
        return Fatal::msg("wait for the root device", e);
    }
    if let Err(e) = mount_root(&cmdline.root, cmdline.rootfstype.as_deref()) {
        return Fatal::msg("mount the root image", e);
    }
    log::info!("switching to the real root");
    let err = switch_root::switch_root(layout::SYSROOT, "/sbin/init");
    Fatal::new("switch root", err)
}

/// Mounts the API filesystems stage 0 needs.
pub fn early_mounts() -> Result<(), mounts::MountError> {
    mounts::mount_table(mounts::STAGE0).map(|_| ())
}

/// Polls for the root device node, which devtmpfs creates when the driver
/// probes the disk, with a deadline.
fn wait_for_device(dev: &str, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    while !Path::new(dev).exists() {
        if start.elapsed() >= limit {
            return Err(format!(
                "root device {dev} did not appear within {:.1} s (berth.root=, berth.rootwait=)",
                limit.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    log::info!(
        "root device {dev} present after {} ms",
        start.elapsed().as_millis()
    );
    Ok(())
}

/// Mounts the root image read-only at the sysroot, detecting EROFS or
/// squashfs by their superblock magic unless `berth.rootfstype=` names it.
fn mount_root(dev: &str, fstype: Option<&str>) -> Result<(), String> {
    let fstype = match fstype {
        Some(t) => t.to_owned(),
        None => detect_fstype(dev)?,
    };
    mount(
        Some(dev),
        layout::SYSROOT,
        Some(fstype.as_str()),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| {
        format!(
            "mount {dev} ({fstype}) read-only on {}: {e}",
            layout::SYSROOT
        )
    })?;
    log::info!("mounted root {dev} ({fstype}) read-only");
    Ok(())
}

/// EROFS: magic 0xE0F5E1E2 (little endian) at byte 1024; squashfs: "hsqs"
/// at byte 0.
fn detect_fstype(dev: &str) -> Result<String, String> {
    let mut head = vec![0u8; 1028];
    let mut f = std::fs::File::open(dev).map_err(|e| format!("open {dev}: {e}"))?;
    f.read_exact(&mut head)
        .map_err(|e| format!("read the superblock of {dev}: {e}"))?;
    fstype_from_magic(&head).ok_or_else(|| format!("{dev} holds neither EROFS nor squashfs"))
}

/// The filesystem type named by the first 1028 bytes of a device.
pub fn fstype_from_magic(head: &[u8]) -> Option<String> {
    if head.get(..4) == Some(b"hsqs") {
        return Some("squashfs".into());
    }
    if head.get(1024..1028) == Some(&0xE0F5_E1E2u32.to_le_bytes()[..]) {
        return Some("erofs".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_table() {
        let mut erofs = vec![0u8; 1028];
        erofs[1024..].copy_from_slice(&[0xe2, 0xe1, 0xf5, 0xe0]);
        let mut squash = vec![0u8; 1028];
        squash[..4].copy_from_slice(b"hsqs");
        let table: &[(&[u8], Option<&str>)] = &[
            (&erofs, Some("erofs")),
            (&squash, Some("squashfs")),
            (&[0u8; 1028], None),
            (b"hs", None),
        ];
        for (head, want) in table {
            assert_eq!(fstype_from_magic(head).as_deref(), *want);
        }
    }
}
