//! Boot stage 0, in the initramfs: just enough to find, verify, mount and
//! enter the real root. Each step is a named function that logs what it
//! did.
//!
//! With `berth.verity=ROOTHASH` the root is mounted through a dm-verity
//! device (`verity.rs` reads the superblocks and builds the table, `dm.rs`
//! creates the device). The stage-1 binary is not read ahead of the exec:
//! its pages are verified as they are first used, and a block dm-verity
//! rejects there is a fatal error naming it (PID 1's SIGBUS handler,
//! `fatal::catch_bus_errors`); the scrub reads the rest once the
//! containers run. Without the option the disk is mounted as it is, with a
//! warning on every boot. A read error while mounting
//! is fatal either way.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_config::cmdline::{KernelCmdline, RootVerity};
use berth_config::layout::{self, disk};
use nix::mount::{mount, MsFlags};

use crate::disk::drivers;
use crate::disk::partitions::{self, FindError, Partition};
use crate::fatal::Fatal;
use crate::verity::{self, VerityError, VerityTarget};
use crate::{dm, modload, mounts, switch_root};

/// A step of stage 0 failed (the module loads and the switch have errors
/// of their own).
#[derive(Debug, thiserror::Error)]
pub enum Stage0Error {
    #[error(
        "berth.verity= is not a root hash (64 hex digits); refusing to mount the root unverified"
    )]
    InvalidRootHash,
    #[error(
        "root device {device} did not appear within {:.1} s (berth.root=, berth.rootwait=)",
        limit.as_secs_f64()
    )]
    DeviceMissing { device: String, limit: Duration },
    #[error("no partition named {name} appeared within {:.1} s (found {found}; berth.slot=, berth.root=, berth.rootwait=)", limit.as_secs_f64())]
    NoRootPartition {
        name: String,
        limit: Duration,
        found: String,
    },
    #[error("look for the root partition")]
    FindRoot(#[source] FindError),
    #[error("open {device}")]
    OpenDevice {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read the filesystem superblock of {device}")]
    ReadSuperblock {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{device} holds neither EROFS nor squashfs")]
    UnknownFilesystem { device: String },
    #[error("find where the filesystem on {device} ends")]
    FilesystemEnd {
        device: String,
        #[source]
        source: VerityError,
    },
    #[error("{device} ends before its dm-verity superblock at byte {offset} (the image was built with --no-verity?)")]
    NoVeritySuperblock { device: String, offset: u64 },
    #[error("read the dm-verity superblock of {device} at byte {offset}")]
    ReadVeritySuperblock {
        device: String,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("check the dm-verity superblock of {device}")]
    VeritySuperblock {
        device: String,
        #[source]
        source: VerityError,
    },
    #[error("create the dm-verity device {}", layout::VERITY_DEVICE)]
    CreateVerityDevice(#[source] dm::DmError),
    #[error("mount {device} ({fstype}) read-only on {}", layout::SYSROOT)]
    MountRoot {
        device: String,
        fstype: String,
        #[source]
        source: std::io::Error,
    },
}

/// The console line of every boot without `berth.verity=`.
pub const UNVERIFIED_WARNING: &str =
    "WARNING: root image not verified (no berth.verity=): built with --no-verity?";

/// The device stage 0 mounts, and how to name it in messages.
#[derive(Debug)]
struct RootDevice {
    node: String,
    /// `/dev/dm-0 (dm-verity over /dev/vda)` or just the node.
    label: String,
}

/// Runs stage 0; returns only on failure (success execs stage 1).
pub fn run(cmdline: &KernelCmdline) -> Fatal {
    let root_hash = match &cmdline.verity {
        RootVerity::Off => None,
        RootVerity::RootHash(hash) => Some(hash.as_str()),
        RootVerity::Invalid => return Fatal::new("set up dm-verity", Stage0Error::InvalidRootHash),
    };
    let dir = match modload::modules_dir() {
        Ok(d) => d,
        Err(e) => return Fatal::new("find kernel modules", e),
    };
    // The filesystem and dm-verity modules (and stage 1's, see
    // `stage0_early_modules`) load while the disk drivers probe their
    // devices: neither needs the other. If no thread can be
    // made, they load one after the other.
    let load_filesystems = || -> Result<(), Fatal> {
        modload::load(&dir, layout::STAGE0_MODULES)
            .map_err(|e| Fatal::new("load stage 0 modules", e))?;
        if root_hash.is_some() {
            modload::load(&dir, layout::STAGE0_VERITY_MODULES)
                .map_err(|e| Fatal::new("load the dm-verity modules", e))?;
        }
        // Stage 1's own modules, while the disk drivers mostly wait;
        // stage 1 asks again and reports what is still missing.
        // ext4 is here only when STATE is mounted before the first
        // container (the image builder decides).
        let state_first = modload::carries(&dir, layout::STATE_FILESYSTEM);
        if let Err(e) = modload::load(&dir, &layout::stage0_early_modules(state_first)) {
            log::debug!("stage 0: early modules: {}", crate::fatal::chain(&e));
        }
        Ok(())
    };
    let loaded = std::thread::scope(|scope| {
        let filesystems = std::thread::Builder::new()
            .name("stage0-modules".into())
            .spawn_scoped(scope, load_filesystems);
        let disks = load_disk_drivers(&dir).map_err(|e| Fatal::new("load the disk drivers", e));
        let filesystems = match filesystems {
            // PID 1's panic hook never returns, so a join error cannot
            // reach here; it is mapped all the same.
            Ok(thread) => thread.join().unwrap_or_else(|_| {
                Err(Fatal::msg(
                    "load stage 0 modules",
                    "the loading thread panicked",
                ))
            }),
            Err(e) => {
                log::debug!("stage 0: no thread for the module loads ({e}); loading them now");
                load_filesystems()
            }
        };
        disks.and(filesystems)
    });
    if let Err(fatal) = loaded {
        return fatal;
    }
    let root_dev = match find_root(cmdline) {
        Ok(dev) => dev,
        Err(e) => return Fatal::new("find the root", e),
    };
    let root = match root_hash {
        Some(hash) => match open_verified(&root_dev, hash) {
            Ok(root) => root,
            Err(e) => return Fatal::new("set up dm-verity", e),
        },
        None => {
            crate::console::console().line("berth", UNVERIFIED_WARNING);
            RootDevice {
                node: root_dev.clone(),
                label: root_dev,
            }
        }
    };
    if let Err(e) = mount_root(&root, cmdline.rootfstype.as_deref()) {
        return Fatal::new("mount the root image", e);
    }
    log::info!("switching to the real root");
    let err = switch_root::switch_root(layout::SYSROOT, "/sbin/init");
    Fatal::new("switch root", err)
}

/// Loads the drivers of the disk controllers present on the PCI bus.
fn load_disk_drivers(dir: &Path) -> Result<(), modload::ModLoadError> {
    let start = Instant::now();
    let drivers = drivers::drivers_for(&drivers::pci_functions(Path::new(PCI_DEVICES)));
    let mut names: Vec<&str> = Vec::new();
    for d in &drivers {
        names.extend_from_slice(d.modules);
    }
    modload::load(dir, &names)?;
    let list: Vec<&str> = drivers.iter().map(|d| d.name).collect();
    log::info!(
        "disk drivers: {} ({} ms)",
        if list.is_empty() {
            "none for the controllers present".to_owned()
        } else {
            list.join(", ")
        },
        start.elapsed().as_millis()
    );
    Ok(())
}

const PCI_DEVICES: &str = "/sys/bus/pci/devices";
const CLASS_BLOCK: &str = "/sys/class/block";

/// The root device: `berth.root=` when given, else the partition named
/// for the slot (`ROOT-A`), else the one unnamed partition of the DPS
/// root type, waiting up to `berth.rootwait=` for the disk to appear.
fn find_root(cmdline: &KernelCmdline) -> Result<String, Stage0Error> {
    if let Some(dev) = &cmdline.root {
        wait_for_device(dev, cmdline.root_wait)?;
        return Ok(dev.clone());
    }
    let name = disk::root_name(cmdline.slot);
    let root_type = disk::gpt_guid_bytes(disk::ROOT_X86_64_TYPE).unwrap_or_default();
    let start = Instant::now();
    let mut seen: Vec<Partition> = Vec::new();
    loop {
        let parts = partitions::scan(Path::new(CLASS_BLOCK)).map_err(Stage0Error::FindRoot)?;
        if let Some(p) = partitions::by_name(&parts, name).map_err(Stage0Error::FindRoot)? {
            log::info!(
                "root: {} ({name}) on {} after {} ms",
                p.node(),
                p.disk_node(),
                start.elapsed().as_millis()
            );
            return Ok(p.node());
        }
        if parts != seen {
            let typed: Vec<&Partition> = partitions::by_type(&parts, &root_type)
                .into_iter()
                .filter(|p| p.name.is_none())
                .collect();
            if let [one] = typed.as_slice() {
                log::info!(
                    "root: {} (no partition is named {name}; the one unnamed root partition) after {} ms",
                    one.node(),
                    start.elapsed().as_millis()
                );
                return Ok(one.node());
            }
            seen = parts;
        }
        if start.elapsed() >= cmdline.root_wait {
            return Err(Stage0Error::NoRootPartition {
                name: name.to_owned(),
                limit: cmdline.root_wait,
                found: partitions::describe(&seen),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the superblocks of `dev`, creates the dm-verity device over it
/// and returns its node.
fn open_verified(dev: &str, root_hash: &str) -> Result<RootDevice, Stage0Error> {
    let start = Instant::now();
    let mut f = File::open(dev).map_err(|source| Stage0Error::OpenDevice {
        device: dev.to_owned(),
        source,
    })?;
    let mut head = vec![0u8; verity::FS_HEAD_BYTES];
    f.read_exact(&mut head)
        .map_err(|source| Stage0Error::ReadSuperblock {
            device: dev.to_owned(),
            source,
        })?;
    let data_end = verity::fs_data_end(&head).map_err(|source| Stage0Error::FilesystemEnd {
        device: dev.to_owned(),
        source,
    })?;
    let mut sb = vec![0u8; verity::SUPERBLOCK_BYTES];
    let read = f
        .seek(SeekFrom::Start(data_end))
        .and_then(|_| f.read_exact(&mut sb));
    match read {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Stage0Error::NoVeritySuperblock {
                device: dev.to_owned(),
                offset: data_end,
            })
        }
        Err(source) => {
            return Err(Stage0Error::ReadVeritySuperblock {
                device: dev.to_owned(),
                offset: data_end,
                source,
            })
        }
    }
    let bad_superblock = |source| Stage0Error::VeritySuperblock {
        device: dev.to_owned(),
        source,
    };
    let sb = verity::parse_superblock(&sb, data_end).map_err(bad_superblock)?;
    let target = VerityTarget::new(dev, root_hash, data_end, &sb).map_err(bad_superblock)?;
    log::debug!("dm-verity table: {}", target.table_line());
    let mut ctl = dm::KernelControl::open().map_err(Stage0Error::CreateVerityDevice)?;
    let table = [dm::Target {
        start: 0,
        sectors: target.sectors(),
        kind: "verity".into(),
        params: target.params(),
    }];
    let devno = dm::create_readonly(&mut ctl, layout::VERITY_DEVICE, &table)
        .map_err(Stage0Error::CreateVerityDevice)?;
    let node =
        dm::block_node(layout::VERITY_DEVICE, devno).map_err(Stage0Error::CreateVerityDevice)?;
    // What udev would do; only for people looking around.
    let link = Path::new("/dev/mapper").join(layout::VERITY_DEVICE);
    let _ = std::os::unix::fs::symlink(
        Path::new("..").join(node.file_name().unwrap_or_default()),
        link,
    );
    let node = node.display().to_string();
    log::info!(
        "dm-verity: {node} ({}) verifies {dev}: {:.1} MiB, root hash {}…, in {} ms",
        layout::VERITY_DEVICE,
        data_end as f64 / (1024.0 * 1024.0),
        &root_hash[..12.min(root_hash.len())],
        start.elapsed().as_millis()
    );
    Ok(RootDevice {
        label: format!("{node} (dm-verity over {dev})"),
        node,
    })
}

/// Mounts the API filesystems stage 0 needs.
pub fn early_mounts() -> Result<(), mounts::MountError> {
    mounts::mount_table(mounts::STAGE0).map(|_| ())
}

/// Polls for the root device node, which devtmpfs creates when the driver
/// probes the disk, with a deadline.
fn wait_for_device(dev: &str, limit: Duration) -> Result<(), Stage0Error> {
    let start = Instant::now();
    while !Path::new(dev).exists() {
        if start.elapsed() >= limit {
            return Err(Stage0Error::DeviceMissing {
                device: dev.to_owned(),
                limit,
            });
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
fn mount_root(root: &RootDevice, fstype: Option<&str>) -> Result<(), Stage0Error> {
    let (dev, label) = (root.node.as_str(), root.label.as_str());
    let fstype = match fstype {
        Some(t) => t.to_owned(),
        None => detect_fstype(dev, label)?,
    };
    mount(
        Some(dev),
        layout::SYSROOT,
        Some(fstype.as_str()),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| Stage0Error::MountRoot {
        device: label.to_owned(),
        fstype: fstype.clone(),
        source: e.into(),
    })?;
    log::info!("mounted root {label} ({fstype}) read-only");
    Ok(())
}

/// EROFS: magic 0xE0F5E1E2 (little endian) at byte 1024; squashfs: "hsqs"
/// at byte 0.
fn detect_fstype(dev: &str, label: &str) -> Result<String, Stage0Error> {
    let mut head = vec![0u8; 1028];
    let mut f = File::open(dev).map_err(|source| Stage0Error::OpenDevice {
        device: label.to_owned(),
        source,
    })?;
    f.read_exact(&mut head)
        .map_err(|source| Stage0Error::ReadSuperblock {
            device: label.to_owned(),
            source,
        })?;
    fstype_from_magic(&head).ok_or_else(|| Stage0Error::UnknownFilesystem {
        device: label.to_owned(),
    })
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
    use crate::fatal::chain;

    #[test]
    fn error_texts() {
        let eio = || std::io::Error::from_raw_os_error(libc::EIO);
        let table = [
            (
                Stage0Error::DeviceMissing {
                    device: "/dev/vdz".into(),
                    limit: Duration::from_secs(1),
                },
                "root device /dev/vdz did not appear within 1.0 s (berth.root=, berth.rootwait=)",
            ),
            (
                Stage0Error::NoRootPartition {
                    name: "ROOT-B".into(),
                    limit: Duration::from_secs(10),
                    found: "vda1 (ESP), vda2 (ROOT-A)".into(),
                },
                "no partition named ROOT-B appeared within 10.0 s (found vda1 (ESP), vda2 (ROOT-A); berth.slot=, berth.root=, berth.rootwait=)",
            ),
            (
                Stage0Error::NoVeritySuperblock {
                    device: "/dev/vda".into(),
                    offset: 4096,
                },
                "/dev/vda ends before its dm-verity superblock at byte 4096 (the image was built with --no-verity?)",
            ),
            (
                Stage0Error::FilesystemEnd {
                    device: "/dev/vda".into(),
                    source: VerityError::UnknownFilesystem,
                },
                "find where the filesystem on /dev/vda ends: neither EROFS nor squashfs: cannot tell where the data ends",
            ),
            (
                Stage0Error::MountRoot {
                    device: "/dev/vda".into(),
                    fstype: "erofs".into(),
                    source: eio(),
                },
                "mount /dev/vda (erofs) read-only on /sysroot: Input/output error (os error 5)",
            ),
        ];
        for (error, want) in table {
            assert_eq!(chain(&error), want);
        }
    }

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
