//! The folder store: each `rootfs` folder of the manifest copied once per
//! build, then linked into every container rootfs that names it.
//!
//! Layout: `<dir>/<n>/` is the copy of the n-th distinct folder (by its
//! canonical path). Copying ([`copy_tree`]) keeps symlinks and permission
//! bits, makes everything the builder's, and leaves out device nodes,
//! fifos and sockets (listed for the build's warning). Linking gives the
//! container's rootfs folders of its own (mount points are added per
//! container) and a hard link to every file and symlink of the copy, so
//! mkfs.erofs stores each of them once however many containers use the
//! folder: 2000 containers on one busybox folder cost 2000 sets of
//! folders and directory entries, not 2000 copies of busybox.
//!
//! As with the OCI layer store (`oci/store.rs`), the store must be on the
//! rootfs folders' filesystem, outside the image tree, and a file in a
//! rootfs must never be modified in place (replace it): it is the file
//! of every container sharing the folder.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copying or linking a folder failed.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FolderError {
    let path = path.to_owned();
    move |source| FolderError::Io { step, path, source }
}

/// What putting a folder into one rootfs did, for the build report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderReport {
    /// The folder as the manifest names it (resolved against its folder).
    pub source: PathBuf,
    /// Regular files linked into the rootfs.
    pub files: u64,
    /// Bytes of regular files copied into the store for this container
    /// (the first one to name the folder).
    pub bytes_written: u64,
    /// Bytes of regular files linked from a copy made for another one.
    pub bytes_linked: u64,
    /// What the copy left out (device nodes, fifos, sockets): listed for
    /// the container that made the copy only, so that the build warns once
    /// per folder.
    pub left_out: Vec<PathBuf>,
}

/// Copies of the build's rootfs folders; see the module's doc.
#[derive(Debug)]
pub struct FolderStore {
    dir: PathBuf,
    /// Canonical source folder → its copy.
    copies: HashMap<PathBuf, PathBuf>,
}

impl FolderStore {
    /// A store in `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Result<FolderStore, FolderError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io("create the folder store", &dir))?;
        Ok(FolderStore {
            dir,
            copies: HashMap::new(),
        })
    }

    /// Fills `rootfs` (which must not exist yet) with the folder `source`:
    /// copied into the store the first time, linked from there each time.
    pub fn link(&mut self, source: &Path, rootfs: &Path) -> Result<FolderReport, FolderError> {
        let key = std::fs::canonicalize(source).map_err(io("resolve", source))?;
        let mut report = FolderReport {
            source: source.to_owned(),
            ..FolderReport::default()
        };
        let (copy, fresh) = match self.copies.get(&key) {
            Some(copy) => (copy.clone(), false),
            None => {
                let copy = self.dir.join(self.copies.len().to_string());
                copy_tree(source, &copy, &mut report.left_out)?;
                self.copies.insert(key, copy.clone());
                (copy, true)
            }
        };
        if let Some(parent) = rootfs.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        let mut bytes = 0;
        link_tree(&copy, rootfs, &mut report.files, &mut bytes)?;
        if fresh {
            report.bytes_written = bytes;
        } else {
            report.bytes_linked = bytes;
        }
        Ok(report)
    }
}

/// Copies the tree at `from` to `to` (which must not exist yet), keeping
/// symlinks and permission bits; what is neither a file, a folder nor a
/// symlink is listed in `skipped`. A folder's mode is set after its
/// contents are copied, so read-only folders can be copied too.
pub fn copy_tree(from: &Path, to: &Path, skipped: &mut Vec<PathBuf>) -> Result<(), FolderError> {
    let meta = std::fs::symlink_metadata(from).map_err(io("read", from))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(from).map_err(io("read the link", from))?;
        symlink(target, to).map_err(io("create the symlink", to))?;
    } else if kind.is_dir() {
        std::fs::create_dir(to).map_err(io("create", to))?;
        for name in sorted_names(from)? {
            copy_tree(&from.join(&name), &to.join(&name), skipped)?;
        }
        set_mode(to, meta.permissions().mode())?;
    } else if kind.is_file() {
        std::fs::copy(from, to).map_err(io("copy", from))?;
        set_mode(to, meta.permissions().mode())?;
    } else {
        skipped.push(from.to_owned());
    }
    Ok(())
}

/// Recreates the folders of the copy `from` at `to` and hard-links its
/// files and symlinks (`link(2)` does not follow a symlink); counts the
/// regular files and their bytes.
fn link_tree(from: &Path, to: &Path, files: &mut u64, bytes: &mut u64) -> Result<(), FolderError> {
    let meta = std::fs::symlink_metadata(from).map_err(io("read", from))?;
    if meta.is_dir() {
        std::fs::create_dir(to).map_err(io("create", to))?;
        for name in sorted_names(from)? {
            link_tree(&from.join(&name), &to.join(&name), files, bytes)?;
        }
        return set_mode(to, meta.permissions().mode());
    }
    std::fs::hard_link(from, to).map_err(io("link from the folder store", to))?;
    if meta.is_file() {
        *files += 1;
        *bytes += meta.len();
    }
    Ok(())
}

fn sorted_names(dir: &Path) -> Result<Vec<std::ffi::OsString>, FolderError> {
    let mut names = std::fs::read_dir(dir)
        .and_then(|d| {
            d.map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()
        })
        .map_err(io("list", dir))?;
    names.sort();
    Ok(names)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), FolderError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(io("set the mode of", path))
}
