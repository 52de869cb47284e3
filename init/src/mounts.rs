//! Early mounts as data: each boot stage walks its table, skipping what is
//! already there (stage 0 moves `/proc`, `/sys` and `/dev` into the real
//! root before stage 1 runs), and logs what it mounted.

use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, FsType};

/// One filesystem to mount.
#[derive(Debug, Clone, Copy)]
pub struct EarlyMount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MsFlags,
    pub data: Option<&'static str>,
    /// statfs magic of a mounted instance, to skip mounting twice.
    pub magic: i64,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

const PROC: EarlyMount = EarlyMount {
    source: "proc",
    target: "/proc",
    fstype: "proc",
    flags: NOSUID_NODEV_NOEXEC,
    data: None,
    magic: libc::PROC_SUPER_MAGIC,
};
const SYS: EarlyMount = EarlyMount {
    source: "sysfs",
    target: "/sys",
    fstype: "sysfs",
    flags: NOSUID_NODEV_NOEXEC,
    data: None,
    magic: libc::SYSFS_MAGIC,
};
const DEV: EarlyMount = EarlyMount {
    source: "devtmpfs",
    target: "/dev",
    fstype: "devtmpfs",
    flags: MsFlags::MS_NOSUID,
    data: Some("mode=0755"),
    magic: libc::TMPFS_MAGIC,
};

/// Stage 0: what module loading, device discovery and the console need.
pub const STAGE0: &[EarlyMount] = &[PROC, SYS, DEV];

/// Stage 1: the API filesystems again (a no-op after stage 0 moved them),
/// then the writable tmpfs areas and cgroup2.
pub const STAGE1: &[EarlyMount] = &[
    PROC,
    SYS,
    DEV,
    EarlyMount {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("mode=0620,ptmxmode=0666,gid=5"),
        magic: libc::DEVPTS_SUPER_MAGIC,
    },
    EarlyMount {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: Some("mode=1777"),
        magic: libc::TMPFS_MAGIC,
    },
    EarlyMount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755"),
        magic: libc::TMPFS_MAGIC,
    },
    EarlyMount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
        magic: libc::TMPFS_MAGIC,
    },
    EarlyMount {
        source: "cgroup2",
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC,
        data: Some("nsdelegate"),
        magic: libc::CGROUP2_SUPER_MAGIC,
    },
];

/// A mount in a table failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("create mount point {0}")]
    MountPoint(String, #[source] nix::Error),
    #[error("mount {fstype} on {target}")]
    Mount {
        fstype: String,
        target: String,
        #[source]
        source: nix::Error,
    },
}

/// Mounts each entry of `table` that is not mounted yet; returns how many
/// it mounted.
pub fn mount_table(table: &[EarlyMount]) -> Result<usize, MountError> {
    let mut mounted = 0;
    for m in table {
        if is_mounted(m) {
            continue;
        }
        mount_one(m.source, m.target, m.fstype, m.flags, m.data)?;
        mounted += 1;
    }
    Ok(mounted)
}

/// Whether `m.target` already carries a filesystem of `m.magic` that is not
/// the filesystem of its parent (so a tmpfs `/run` on a tmpfs root counts
/// as unmounted only when it is the same device as `/`).
fn is_mounted(m: &EarlyMount) -> bool {
    let Ok(fs) = statfs(m.target) else {
        return false;
    };
    if fs.filesystem_type() != FsType(m.magic as _) {
        return false;
    }
    let parent = Path::new(m.target).parent().unwrap_or(Path::new("/"));
    match (nix::sys::stat::stat(m.target), nix::sys::stat::stat(parent)) {
        (Ok(a), Ok(b)) => a.st_dev != b.st_dev,
        _ => false,
    }
}

/// Mounts one filesystem, creating the mount point if the parent is
/// writable (it is not on the read-only root: the image builder creates
/// every mount point there).
pub fn mount_one(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    if !Path::new(target).exists() {
        nix::unistd::mkdir(target, Mode::from_bits_truncate(0o755))
            .map_err(|e| MountError::MountPoint(target.to_owned(), e))?;
    }
    mount(Some(source), target, Some(fstype), flags, data).map_err(|source| MountError::Mount {
        fstype: fstype.to_owned(),
        target: target.to_owned(),
        source,
    })
}
