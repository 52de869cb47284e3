//! Named volumes: one folder per name under [`layout::VOLUMES`] on STATE,
//! made on first use and owned by the first container that uses it (its
//! process user, as the host sees it through a user namespace), kept
//! across container restarts, reboots and (later) updates. Containers
//! naming the same volume share it. The image builder put the bind mount
//! into the container's spec (`berth_oci::spec`); PID 1 makes the folder
//! before the launch.
//!
//! The volumes folder is a mount of its own, `nosuid,nodev` but not
//! `noexec` (programs may run from a volume, as from a Docker volume),
//! mode 0711: a user-namespaced container resolves its bind-mount source
//! as an unprivileged host user, who may pass through but not list it.
//!
//! Links: a container sees only the inside of its volumes, never the
//! folder they are in, but a host container given `/var/lib/berth` could
//! put a link where a volume should be. Each volume is opened relative to
//! the volumes folder with `O_NOFOLLOW`, created with `mkdirat` and
//! chowned through that descriptor, so PID 1 never follows a link out of
//! it: a volume that is a link (or a file) refuses the launch, naming it.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_config::layout;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{fchown, Gid, Uid};

/// Preparing a volume failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("open the volumes folder {}", layout::VOLUMES)]
    OpenRoot(#[source] std::io::Error),
    #[error("volume {name}: {} is not a folder (a link or a file was put there); refusing to mount it", path.display())]
    NotAFolder { name: String, path: PathBuf },
    #[error("volume {name}: {step} {}", path.display())]
    Io {
        name: String,
        step: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Makes the volumes folder and its own `nosuid,nodev` mount (stage 1,
/// after STATE is mounted). Errors are logged: containers without volumes
/// still start.
pub fn setup_root() {
    let root = Path::new(layout::VOLUMES);
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            log::error!(
                "{} is not a folder; volumes are unavailable",
                root.display()
            );
            return;
        }
        Err(_) => {
            if let Err(e) = std::fs::create_dir(root) {
                log::error!("create {}: {e}; volumes are unavailable", root.display());
                return;
            }
        }
    }
    if let Err(e) =
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o711))
    {
        log::warn!("chmod 0711 {}: {e}", root.display());
    }
    let bind = mount(
        Some(root),
        root,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .and_then(|()| {
        mount(
            None::<&str>,
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
    });
    if let Err(e) = bind {
        log::error!("mount {} nosuid,nodev: {e}", root.display());
    }
}

/// Makes (or checks) the volumes `names` for a container whose processes
/// run as host `uid`:`gid`; a volume made now is given to them. Runs on
/// the launcher thread, which never logs: returns a line per volume made.
pub fn prepare(names: &[String], uid: u32, gid: u32) -> Result<Vec<String>, VolumeError> {
    let mut made = Vec::new();
    if names.is_empty() {
        return Ok(made);
    }
    let root = open_dir(Path::new(layout::VOLUMES)).map_err(VolumeError::OpenRoot)?;
    for name in names {
        if prepare_one(&root, name, uid, gid)? {
            made.push(format!(
                "volume {name}: created {} for {uid}:{gid}",
                Path::new(layout::VOLUMES).join(name).display()
            ));
        }
    }
    Ok(made)
}

/// A folder, not through a link at its last component.
fn open_dir(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// Whether the volume was made now.
fn prepare_one(root: &File, name: &str, uid: u32, gid: u32) -> Result<bool, VolumeError> {
    let path = Path::new(layout::VOLUMES).join(name);
    let io = |step: &'static str| {
        let path = path.clone();
        move |source| VolumeError::Io {
            name: name.to_owned(),
            step,
            path,
            source,
        }
    };
    let c_name = CString::new(name).map_err(|_| VolumeError::NotAFolder {
        name: name.to_owned(),
        path: path.clone(),
    })?;
    let dirfd = Some(root.as_raw_fd());
    let created = match mkdirat(dirfd, c_name.as_c_str(), Mode::from_bits_truncate(0o755)) {
        Ok(()) => true,
        Err(nix::Error::EEXIST) => false,
        Err(e) => return Err(io("create")(e)),
    };
    let dir = match openat(
        dirfd,
        c_name.as_c_str(),
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::Error::ELOOP | nix::Error::ENOTDIR) => {
            return Err(VolumeError::NotAFolder {
                name: name.to_owned(),
                path,
            })
        }
        Err(e) => return Err(io("open")(e)),
    };
    let chowned = if created {
        fchown(dir, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
    } else {
        Ok(())
    };
    // nix 0.29 hands out raw descriptors: this one is ours to close.
    let _ = nix::unistd::close(dir);
    chowned.map_err(io("chown"))?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `prepare_one` against a temporary folder standing in for the
    /// volumes folder.
    fn prepare_in(root: &Path, name: &str) -> Result<bool, VolumeError> {
        let fd = open_dir(root).expect("open");
        prepare_one(
            &fd,
            name,
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    #[test]
    fn makes_keeps_and_refuses_links() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        // First use makes the folder; a second use keeps what is in it.
        assert!(prepare_in(tmp.path(), "data").expect("make"));
        std::fs::write(tmp.path().join("data/kept"), "x").expect("write");
        assert!(!prepare_in(tmp.path(), "data").expect("again"));
        assert!(tmp.path().join("data/kept").exists());
        // A link where a volume should be, to a folder elsewhere: refused,
        // and nothing is made or changed at its target.
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("evil")).expect("symlink");
        let err = prepare_in(tmp.path(), "evil").expect_err("a link");
        assert!(matches!(err, VolumeError::NotAFolder { .. }), "{err}");
        assert!(err.to_string().contains("is not a folder"), "{err}");
        // A dangling link: mkdirat must not create its target either.
        let target = outside.path().join("made-through-link");
        std::os::unix::fs::symlink(&target, tmp.path().join("dangling")).expect("symlink");
        prepare_in(tmp.path(), "dangling").expect_err("a dangling link");
        assert!(!target.exists(), "PID 1 created a folder through a link");
        // A file.
        std::fs::write(tmp.path().join("file"), "x").expect("write");
        prepare_in(tmp.path(), "file").expect_err("a file");
    }
}
