//! Writing the root image's staging tree with explicit modes.
//!
//! mkfs.erofs copies permission bits from the staging tree, so nothing in
//! it may depend on the builder's umask: every folder and file this module
//! creates gets the mode the image should have.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StagingError {
    let path = path.to_owned();
    move |source| StagingError::Io { step, path, source }
}

/// `mkdir -p` where every folder created gets mode 0755.
pub fn create_dirs(path: &Path) -> Result<(), StagingError> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dirs(parent)?;
    }
    std::fs::create_dir(path).map_err(io("create folder", path))?;
    set_mode(path, 0o755)
}

/// A folder with a specific mode (`/tmp` 1777, `/root` 0700).
pub fn dir(path: &Path, mode: u32) -> Result<(), StagingError> {
    create_dirs(path)?;
    set_mode(path, mode)
}

/// Writes a file (and its missing parent folders).
pub fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), StagingError> {
    create_parent(path)?;
    std::fs::write(path, contents).map_err(io("write", path))?;
    set_mode(path, mode)
}

/// Copies a host file in (and creates its missing parent folders).
pub fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), StagingError> {
    create_parent(to)?;
    std::fs::copy(from, to).map_err(io("copy into the image", from))?;
    set_mode(to, mode)
}

fn create_parent(path: &Path) -> Result<(), StagingError> {
    match path.parent() {
        Some(parent) => create_dirs(parent),
        None => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StagingError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io("set the mode of", path))
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
        let f = tmp.path().join("a/b/c.txt");
        write(&f, b"x", 0o600).expect("write");
        dir(&tmp.path().join("t"), 0o1777).expect("dir");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&tmp.path().join("a")), 0o755);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o755);
        assert_eq!(mode(&tmp.path().join("t")), 0o1777);
        std::fs::set_permissions(tmp.path().join("a"), std::fs::Permissions::from_mode(0o500))
            .expect("chmod");
        remove(&tmp.path().join("a")).expect("remove read-only tree");
        assert!(!tmp.path().join("a").exists());
        remove(&tmp.path().join("a")).expect("removing nothing is fine");
    }
}
