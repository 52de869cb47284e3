//! Writing the root image's staging tree (and `busybox-rootfs` folders)
//! with explicit modes, never through a symlink.
//!
//! mkfs.erofs copies permission bits from the staging tree, so nothing in
//! it may depend on the builder's umask: every folder and file this module
//! creates gets the mode the image should have.
//!
//! A [`Tree`] is a folder being filled: every path written into it is
//! relative, with plain components only, and reached with
//! [`nofollow::parents`], so a symlink in the way (a `busybox-rootfs`
//! folder whose `etc` points at the build host's) is an error naming it
//! rather than a write on the build host. The last component is replaced,
//! not followed or written in place.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::nofollow::{self, WalkError};

/// Writing into the staging tree failed.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{link} is a symlink, which the builder never follows{}",
        writing(path, link)
    )]
    Symlink { path: PathBuf, link: PathBuf },
    #[error("write {path}: {other} exists and is not a {want}")]
    NotA {
        path: PathBuf,
        other: PathBuf,
        want: &'static str,
    },
    #[error("write {path} in {root}: expected a relative path without `.` or `..`")]
    NotRelative { root: PathBuf, path: PathBuf },
}

/// " (writing PATH)" when the symlink is a parent of what was written.
fn writing(path: &Path, link: &Path) -> String {
    if path == link {
        String::new()
    } else {
        format!(" (writing {})", path.display())
    }
}

/// A new file at `host`, private until its final mode is set; fails if
/// anything (a symlink included) is already there.
fn create_new(host: &Path) -> Result<std::fs::File, StagingError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(host)
        .map_err(io("create", host))
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StagingError {
    let path = path.to_owned();
    move |source| StagingError::Io { step, path, source }
}

/// `mkdir -p` where every folder created gets mode 0755. For the output
/// folders the operator names (symlinks there are the operator's); write
/// inside them with a [`Tree`].
pub fn create_dirs(path: &Path) -> Result<(), StagingError> {
    // `Path::new("new").parent()` is `Some("")`: the current folder.
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dirs(parent)?;
    }
    std::fs::create_dir(path).map_err(io("create folder", path))?;
    set_mode(path, 0o755)
}

/// A folder with a specific mode (`/tmp` 1777, `/root` 0700); see
/// [`create_dirs`].
pub fn dir(path: &Path, mode: u32) -> Result<(), StagingError> {
    create_dirs(path)?;
    set_mode(path, mode)
}

/// A folder being filled by the builder; see the module's doc.
#[derive(Debug, Clone, Copy)]
pub struct Tree<'a> {
    root: &'a Path,
}

impl<'a> Tree<'a> {
    /// Writes go below `root`, which must exist.
    pub fn new(root: &'a Path) -> Tree<'a> {
        Tree { root }
    }

    pub fn root(&self) -> &'a Path {
        self.root
    }

    /// `root/rel` after checking that `rel` is plain and that its parents
    /// are real folders (missing ones are created, mode 0755).
    fn parents(&self, rel: &Path) -> Result<PathBuf, StagingError> {
        let host = self.root.join(rel);
        let plain = rel.components().count() > 0
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(StagingError::NotRelative {
                root: self.root.to_owned(),
                path: rel.to_owned(),
            });
        }
        nofollow::parents(self.root, rel, true, &mut Vec::new()).map_err(|e| match e {
            WalkError::Symlink(link) => StagingError::Symlink {
                path: host.clone(),
                link: self.root.join(link),
            },
            WalkError::NotDir(other) => StagingError::NotA {
                path: host.clone(),
                other: self.root.join(other),
                want: "folder",
            },
            WalkError::Io(at, source) => io("create folder", &self.root.join(at))(source),
        })?;
        Ok(host)
    }

    /// `root/rel` with its parents checked, and nothing at it any more
    /// unless it is a folder (returned as `true`).
    fn make_room(&self, rel: &Path) -> Result<(PathBuf, bool), StagingError> {
        let host = self.parents(rel)?;
        match nofollow::lstat(&host).map_err(io("check", &host))? {
            None => Ok((host, false)),
            Some(m) if m.is_dir() => Ok((host, true)),
            Some(_) => {
                std::fs::remove_file(&host).map_err(io("replace", &host))?;
                Ok((host, false))
            }
        }
    }

    /// `mkdir -p root/rel`; folders already there keep their mode.
    pub fn create_dirs(&self, rel: &Path) -> Result<PathBuf, StagingError> {
        let host = self.parents(rel)?;
        match nofollow::lstat(&host).map_err(io("check", &host))? {
            Some(m) if m.is_dir() => Ok(host),
            Some(m) if m.file_type().is_symlink() => Err(StagingError::Symlink {
                path: host.clone(),
                link: host,
            }),
            Some(_) => Err(StagingError::NotA {
                path: host.clone(),
                other: host,
                want: "folder",
            }),
            None => {
                std::fs::create_dir(&host).map_err(io("create folder", &host))?;
                set_mode(&host, 0o755)?;
                Ok(host)
            }
        }
    }

    /// A folder with a specific mode, made or fixed.
    pub fn dir(&self, rel: &Path, mode: u32) -> Result<(), StagingError> {
        let host = self.create_dirs(rel)?;
        set_mode(&host, mode)
    }

    /// Writes a file (and its missing parent folders), replacing what was
    /// there.
    pub fn write(&self, rel: &Path, contents: &[u8], mode: u32) -> Result<(), StagingError> {
        let host = self.new_file(rel)?;
        let mut file = create_new(&host)?;
        file.write_all(contents).map_err(io("write", &host))?;
        set_mode(&host, mode)
    }

    /// Copies a host file in (and creates its missing parent folders).
    pub fn copy(&self, from: &Path, rel: &Path, mode: u32) -> Result<(), StagingError> {
        let host = self.new_file(rel)?;
        let mut src = std::fs::File::open(from).map_err(io("copy into the image", from))?;
        let mut file = create_new(&host)?;
        std::io::copy(&mut src, &mut file).map_err(io("copy into the image", from))?;
        set_mode(&host, mode)
    }

    /// A symlink at `rel` to `target`, replacing what was there.
    pub fn symlink(&self, target: &Path, rel: &Path) -> Result<(), StagingError> {
        let host = self.new_file(rel)?;
        std::os::unix::fs::symlink(target, &host).map_err(io("create the symlink", &host))
    }

    /// A hard link at `rel` to the tree's file `existing`.
    pub fn hard_link(&self, existing: &Path, rel: &Path) -> Result<(), StagingError> {
        let from = self.parents(existing)?;
        let host = self.new_file(rel)?;
        // `link(2)` does not follow a symlink named as the target.
        std::fs::hard_link(&from, &host).map_err(io("hard-link", &host))
    }

    /// Room for a new non-folder entry at `rel`.
    fn new_file(&self, rel: &Path) -> Result<PathBuf, StagingError> {
        match self.make_room(rel)? {
            (host, false) => Ok(host),
            (host, true) => Err(StagingError::NotA {
                path: host.clone(),
                other: host,
                want: "file",
            }),
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StagingError> {
    nofollow::chmod(path, mode).map_err(io("set the mode of", path))
}

/// Removes a staging tree, first making its folders writable: a copied
/// rootfs may hold read-only folders, which a non-root builder could not
/// empty otherwise.
pub fn remove(path: &Path) -> Result<(), StagingError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    make_writable(path);
    std::fs::remove_dir_all(path).map_err(io("remove", path))
}

fn make_writable(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    // Best effort: whatever still fails shows up in remove_dir_all's error.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_do_not_depend_on_umask() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = Tree::new(tmp.path());
        tree.write(Path::new("a/b/c.txt"), b"x", 0o600)
            .expect("write");
        tree.dir(Path::new("t"), 0o1777).expect("dir");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode(&tmp.path().join("a/b/c.txt")), 0o600);
        assert_eq!(mode(&tmp.path().join("a")), 0o755);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o755);
        assert_eq!(mode(&tmp.path().join("t")), 0o1777);
        std::fs::set_permissions(tmp.path().join("a"), std::fs::Permissions::from_mode(0o500))
            .expect("chmod");
        remove(&tmp.path().join("a")).expect("remove read-only tree");
        assert!(!tmp.path().join("a").exists());
        remove(&tmp.path().join("a")).expect("removing nothing is fine");
    }

    #[test]
    fn tree_writes_replace_and_never_follow() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        let host = tmp.path().join("host");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::create_dir_all(&host).expect("mkdir");
        std::fs::write(host.join("passwd"), b"host").expect("write");
        std::os::unix::fs::symlink(&host, root.join("etc")).expect("symlink");
        std::os::unix::fs::symlink(host.join("passwd"), root.join("passwd")).expect("symlink");
        let tree = Tree::new(&root);

        // A symlink among the parents, or as the folder itself: refused,
        // naming it.
        for result in [
            tree.write(Path::new("etc/passwd"), b"x", 0o644),
            tree.dir(Path::new("etc"), 0o755),
            tree.create_dirs(Path::new("etc/sub")).map(drop),
        ] {
            let err = result.expect_err("through a symlink");
            assert!(matches!(err, StagingError::Symlink { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains(&root.join("etc").display().to_string()),
                "{err}"
            );
        }
        // A symlink as the file: replaced, not followed.
        tree.write(Path::new("passwd"), b"image", 0o644)
            .expect("replace");
        assert_eq!(std::fs::read(root.join("passwd")).expect("read"), b"image");
        tree.symlink(Path::new("busybox"), Path::new("passwd"))
            .expect("relink");
        assert_eq!(std::fs::read(host.join("passwd")).expect("read"), b"host");
        assert_eq!(std::fs::read_dir(&host).expect("list").count(), 1);
        for bad in ["", "../x", "/x", "./x"] {
            let err = tree.write(Path::new(bad), b"", 0o644).expect_err(bad);
            assert!(
                matches!(err, StagingError::NotRelative { .. }),
                "{bad}: {err}"
            );
        }
    }
}
