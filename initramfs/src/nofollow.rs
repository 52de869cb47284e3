//! Filesystem steps inside a rootfs that never follow a symlink.
//!
//! An image may plant symlinks anywhere (`etc -> /host/etc`), so nothing
//! done on its behalf may resolve one: before anything is created at
//! `root/rel`, every parent of `rel` is checked with `lstat` to be a real
//! folder ([`parents`]); the last component is then created with calls
//! that do not follow it (`mkdir`, `symlink`, `link` without
//! `AT_SYMLINK_FOLLOW`, `mknod`, `open(O_CREAT|O_EXCL)`), and its metadata
//! set with `lchown` and `utimensat(AT_SYMLINK_NOFOLLOW)`; `chmod` is only
//! used on what `lstat` says is not a symlink. The unpacker is the only
//! writer of the tree while it runs, so a check stays true until the step
//! it guards.
//!
//! [`resolve_in_root`] and [`create_dir_in_root`] are the places that do
//! follow symlinks, the way the container will: with the rootfs as `/`, so
//! `..` and absolute targets stay inside. They are for mount points, which
//! the runtime resolves the same way; what the builder writes for itself
//! goes through [`parents`] instead.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

/// Symlinks followed by [`resolve_in_root`] before giving up (Linux's
/// `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Why the parents of a path cannot be used.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// This parent (relative to the root) is a symlink.
    Symlink(PathBuf),
    /// This parent is neither a folder nor a symlink.
    NotDir(PathBuf),
    Io(PathBuf, io::Error),
}

/// `lstat`, with "does not exist" as `None`.
pub(crate) fn lstat(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks that every proper ancestor of `rel` under `root` is a real
/// folder. A missing one is created (mode 0755, listed in `created`) when
/// `create` is set; otherwise the walk stops there with `Ok(false)`.
pub(crate) fn parents(
    root: &Path,
    rel: &Path,
    create: bool,
    created: &mut Vec<PathBuf>,
) -> Result<bool, WalkError> {
    let Some(parent) = rel.parent() else {
        return Ok(true);
    };
    let mut prefix = PathBuf::new();
    for part in parent.components() {
        prefix.push(part);
        let host = root.join(&prefix);
        match lstat(&host) {
            Ok(Some(m)) if m.is_dir() => {}
            Ok(Some(m)) if m.file_type().is_symlink() => return Err(WalkError::Symlink(prefix)),
            Ok(Some(_)) => return Err(WalkError::NotDir(prefix)),
            Ok(None) if create => {
                std::fs::create_dir(&host)
                    .and_then(|()| chmod(&host, 0o755))
                    .map_err(|e| WalkError::Io(prefix.clone(), e))?;
                created.push(prefix.clone());
            }
            Ok(None) => return Ok(false),
            Err(e) => return Err(WalkError::Io(prefix, e)),
        }
    }
    Ok(true)
}

/// Removes whatever is at `path` (a folder with its content); nothing
/// there is fine. Symlinks are removed, not followed.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match lstat(path)? {
        None => Ok(()),
        Some(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Some(_) => std::fs::remove_file(path),
    }
}

/// `chmod` of something that is not a symlink (`chmod` would follow one).
pub(crate) fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    match lstat(path)? {
        Some(m) if m.file_type().is_symlink() => {
            Err(io::Error::other("refusing to chmod a symlink"))
        }
        _ => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)),
    }
}

/// `lchown`.
pub(crate) fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Sets access and modification times of `path` itself to `epoch`.
pub(crate) fn set_times(path: &Path, epoch: u64) -> io::Result<()> {
    let secs = i64::try_from(epoch).map_err(|_| io::Error::other("timestamp out of range"))?;
    let t = TimeSpec::new(secs, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

/// Every real folder under `root` (relative, `root` itself as the empty
/// path), children before their parent; symlinks are not entered.
pub(crate) fn folders_bottom_up(root: &Path) -> io::Result<Vec<PathBuf>> {
    fn walk(root: &Path, rel: PathBuf, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for child in std::fs::read_dir(root.join(&rel))? {
            let child = child?;
            if child.file_type()?.is_dir() {
                walk(root, rel.join(child.file_name()), out)?;
            }
        }
        out.push(rel);
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, PathBuf::new(), &mut out)?;
    Ok(out)
}

/// Where `path` leads inside `root` when `root` is `/`: symlinks are
/// followed with absolute targets and `..` kept inside `root`, as the
/// kernel does in a chroot. `None` when a component is missing or not a
/// folder; the result is never a symlink.
pub(crate) fn resolve_in_root(root: &Path, path: &Path) -> io::Result<Option<PathBuf>> {
    walk_in_root(root, path, false)
}

/// `mkdir -p path` in a chroot at `root`: resolves `path` as
/// [`resolve_in_root`] does and creates each missing folder (mode 0755),
/// a dangling symlink's target too, as the runtime would when it creates
/// a mount point. Returns the folder's path on the host: every component
/// below `root` is a real folder, so writing into it follows no symlink.
/// Fails, naming the component, on something that is not a folder and on
/// a symlink loop.
pub(crate) fn create_dir_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    match walk_in_root(root, path, true)? {
        Some(dir) => Ok(dir),
        None => Err(io::Error::other(format!("/{} is missing", path.display()))),
    }
}

/// The walk behind [`resolve_in_root`] and [`create_dir_in_root`].
/// `resolved` only ever holds components that `lstat` said are real
/// folders (or, as the last one when not creating, any non-symlink), so
/// `root.join(resolved)` never goes through a symlink on the host.
fn walk_in_root(root: &Path, path: &Path, create: bool) -> io::Result<Option<PathBuf>> {
    let mut pending: Vec<PathBuf> = components_reversed(path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        let name = match part.components().next() {
            Some(Component::Normal(name)) => name.to_owned(),
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            Some(Component::RootDir) => {
                resolved = PathBuf::new();
                continue;
            }
            _ => continue,
        };
        let next = resolved.join(&name);
        let host = root.join(&next);
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                std::fs::create_dir(&host)
                    .and_then(|()| chmod(&host, 0o755))
                    .map_err(|e| at(&next, "create", e))?;
                resolved = next;
                continue;
            }
            Err(e)
                if !create
                    && matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(at(&next, "check", e)),
        };
        if !meta.file_type().is_symlink() {
            if create && !meta.is_dir() {
                return Err(io::Error::other(format!(
                    "/{} exists and is not a folder",
                    next.display()
                )));
            }
            resolved = next;
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(io::Error::other(format!(
                "too many levels of symbolic links at /{}",
                next.display()
            )));
        }
        // An absolute target starts with `RootDir`, which resets `resolved`.
        let target = std::fs::read_link(&host).map_err(|e| at(&next, "read the link", e))?;
        pending.extend(components_reversed(&target));
    }
    Ok(Some(root.join(resolved)))
}

/// An error of `step` on `/rel`, keeping its kind.
fn at(rel: &Path, step: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{step} /{}: {e}", rel.display()))
}

fn components_reversed(path: &Path) -> Vec<PathBuf> {
    path.components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect()
}
