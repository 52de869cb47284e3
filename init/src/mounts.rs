//! Early mounts as data: each boot stage walks its table, skipping what is
//! already there (stage 0 moves `/proc`, `/sys` and `/dev` into the real
//! root before stage 1 runs), and logs what it mounted.

use std::path::Path;

use nix::mount::MsFlags;

use crate::os::{Os, RealOs};

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
    mount_table_with(&RealOs, table)
}

/// [`mount_table`] through `os`.
pub fn mount_table_with(os: &dyn Os, table: &[EarlyMount]) -> Result<usize, MountError> {
    let mut mounted = 0;
    for m in table {
        if is_mounted(os, m) {
            continue;
        }
        mount_one(os, m.source, m.target, m.fstype, m.flags, m.data)?;
        mounted += 1;
    }
    Ok(mounted)
}

/// Whether `m.target` already carries a filesystem of `m.magic` that is not
/// the filesystem of its parent (so a tmpfs `/run` on a tmpfs root counts
/// as unmounted only when it is the same device as `/`).
fn is_mounted(os: &dyn Os, m: &EarlyMount) -> bool {
    let target = Path::new(m.target);
    if os.fs_magic(target) != Some(m.magic) {
        return false;
    }
    let parent = target.parent().unwrap_or(Path::new("/"));
    match (os.device(target), os.device(parent)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Mounts one filesystem, creating the mount point if the parent is
/// writable (it is not on the read-only root: the image builder creates
/// every mount point there).
pub fn mount_one(
    os: &dyn Os,
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    if !os.exists(Path::new(target)) {
        os.mkdir(Path::new(target), 0o755)
            .map_err(|e| MountError::MountPoint(target.to_owned(), errno(&e)))?;
    }
    os.mount(source, target, fstype, flags, data)
        .map_err(|source| MountError::Mount {
            fstype: fstype.to_owned(),
            target: target.to_owned(),
            source,
        })
}

/// The errno of an I/O error, `EIO` for one that carries none.
pub fn errno(e: &std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;
    use crate::os::RecordingOs;

    /// erofs, the read-only root's filesystem.
    const EROFS: i64 = 0xE0F5_E1E2;

    const RUN: EarlyMount = EarlyMount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755"),
        magic: libc::TMPFS_MAGIC,
    };
    const MOUNT_RUN: &str = "mount tmpfs on /run (tmpfs) [nosuid,nodev] mode=0755";

    #[test]
    fn mount_table_mounts_only_what_is_not_mounted() {
        let tmpfs = libc::TMPFS_MAGIC;
        let cases: Vec<(&str, RecordingOs, &[&str])> = vec![
            (
                "mounted: the wanted magic on its own device",
                RecordingOs::new()
                    .path("/", EROFS, 1)
                    .path("/run", tmpfs, 2),
                &[],
            ),
            (
                "the wanted magic but the parent's device (tmpfs root)",
                RecordingOs::new()
                    .path("/", tmpfs, 1)
                    .path("/run", tmpfs, 1),
                &[MOUNT_RUN],
            ),
            (
                "a bare mount point on the root",
                RecordingOs::new()
                    .path("/", EROFS, 1)
                    .path("/run", EROFS, 1),
                &[MOUNT_RUN],
            ),
            (
                "another filesystem mounted there",
                RecordingOs::new()
                    .path("/", EROFS, 1)
                    .path("/run", libc::PROC_SUPER_MAGIC, 2),
                &[MOUNT_RUN],
            ),
            (
                "the parent cannot be stat'ed",
                RecordingOs::new().path("/run", tmpfs, 2),
                &[MOUNT_RUN],
            ),
            (
                "no mount point yet",
                RecordingOs::new().path("/", tmpfs, 1),
                &["mkdir /run 0755", MOUNT_RUN],
            ),
        ];
        for (name, os, want) in cases {
            let n = mount_table_with(&os, &[RUN]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(os.effects(), want, "{name}");
            assert_eq!(n, want.len().min(1), "{name}: count");
        }
    }

    /// Whether a target is mounted is asked of its filesystem and of its
    /// parent's device, without touching either.
    #[test]
    fn is_mounted_only_asks() {
        let os = RecordingOs::new()
            .path("/", EROFS, 1)
            .path("/run", libc::TMPFS_MAGIC, 2);
        assert!(is_mounted(&os, &RUN));
        assert_eq!(os.calls(), ["statfs /run", "stat /run", "stat /"]);
    }

    /// Stage 0 moved /proc, /sys and /dev into the real root: stage 1
    /// mounts the rest, in table order, with the table's flags and data.
    #[test]
    fn stage1_table_after_stage0() {
        let os = RecordingOs::new()
            .path("/", EROFS, 1)
            .path("/proc", libc::PROC_SUPER_MAGIC, 2)
            .path("/sys", libc::SYSFS_MAGIC, 3)
            .path("/dev", libc::TMPFS_MAGIC, 4)
            .path("/dev/pts", libc::TMPFS_MAGIC, 4)
            .path("/dev/shm", libc::TMPFS_MAGIC, 4)
            .path("/run", EROFS, 1)
            .path("/tmp", EROFS, 1)
            .path("/sys/fs/cgroup", libc::SYSFS_MAGIC, 3);
        assert_eq!(mount_table_with(&os, STAGE1).ok(), Some(5));
        assert_eq!(
            os.effects(),
            [
                "mount devpts on /dev/pts (devpts) [nosuid,noexec] mode=0620,ptmxmode=0666,gid=5",
                "mount shm on /dev/shm (tmpfs) [nosuid,nodev,noexec] mode=1777",
                "mount tmpfs on /run (tmpfs) [nosuid,nodev] mode=0755",
                "mount tmpfs on /tmp (tmpfs) [nosuid,nodev] mode=1777",
                "mount cgroup2 on /sys/fs/cgroup (cgroup2) [nosuid,nodev,noexec] nsdelegate",
            ]
        );
    }

    /// A boot with nothing mounted yet (stage 0's table on a bare
    /// initramfs): every entry, with the table's flags and data.
    #[test]
    fn stage0_table_on_bare_root() {
        let os = RecordingOs::new()
            .path("/", libc::TMPFS_MAGIC, 1)
            .path("/proc", libc::TMPFS_MAGIC, 1)
            .path("/sys", libc::TMPFS_MAGIC, 1);
        assert_eq!(mount_table_with(&os, STAGE0).ok(), Some(3));
        assert_eq!(
            os.effects(),
            [
                "mount proc on /proc (proc) [nosuid,nodev,noexec]",
                "mount sysfs on /sys (sysfs) [nosuid,nodev,noexec]",
                "mkdir /dev 0755",
                "mount devtmpfs on /dev (devtmpfs) [nosuid] mode=0755",
            ]
        );
    }

    #[test]
    fn mount_table_stops_at_the_first_failure() {
        let os = RecordingOs::new()
            .path("/", EROFS, 1)
            .path("/run", EROFS, 1)
            .path("/tmp", EROFS, 1)
            .fail("mount tmpfs on /run", Errno::EPERM);
        let tmp = EarlyMount {
            target: "/tmp",
            ..RUN
        };
        match mount_table_with(&os, &[RUN, tmp]) {
            Err(MountError::Mount {
                fstype,
                target,
                source,
            }) => {
                assert_eq!((fstype.as_str(), target.as_str()), ("tmpfs", "/run"));
                assert_eq!(source, Errno::EPERM);
            }
            other => panic!("want a mount error on /run, got {other:?}"),
        }
        assert_eq!(os.effects(), [MOUNT_RUN]);
    }

    #[test]
    fn mount_one_creates_a_missing_mount_point() {
        let os = RecordingOs::new().path("/run", libc::TMPFS_MAGIC, 2);
        mount_one(&os, "tmpfs", "/run/x", "tmpfs", MsFlags::empty(), None).expect("mount /run/x");
        assert_eq!(
            os.effects(),
            ["mkdir /run/x 0755", "mount tmpfs on /run/x (tmpfs)"]
        );
    }

    #[test]
    fn mount_one_keeps_an_existing_mount_point() {
        let os = RecordingOs::new().path("/srv", EROFS, 1);
        mount_one(&os, "tmpfs", "/srv", "tmpfs", MsFlags::empty(), None).expect("mount /srv");
        assert_eq!(os.effects(), ["mount tmpfs on /srv (tmpfs)"]);
    }

    #[test]
    fn mount_one_does_not_mount_without_a_mount_point() {
        let os = RecordingOs::new().fail("mkdir /srv", Errno::EROFS);
        match mount_one(&os, "tmpfs", "/srv", "tmpfs", MsFlags::empty(), None) {
            Err(MountError::MountPoint(path, errno)) => {
                assert_eq!((path.as_str(), errno), ("/srv", Errno::EROFS));
            }
            other => panic!("want a mount point error, got {other:?}"),
        }
        assert_eq!(os.effects(), ["mkdir /srv 0755"]);
    }
}
