//! The layer store: regular files of each layer written once, then
//! hard-linked into every rootfs built from that layer.
//!
//! Layout: `<dir>/<layer digest hex>/<path in the layer>` holds the
//! layer's regular files with their final owner, mode and timestamp.
//! While a layer is read for the first time its files go to
//! `<hex>.partial/`; the folder is renamed to `<hex>` only once the
//! layer's digest has been verified, so a store folder never holds
//! unverified content, and a partial folder left by a failed run is
//! discarded. A later unpack of the same layer links to the existing
//! files and writes only what is missing (nothing, normally).
//!
//! Hard links share an inode, so `mkfs.erofs` stores each such file once
//! in the root image. Consequences for the caller: the store must be on
//! the same filesystem as the rootfs folders, outside the image tree, and
//! a file in a rootfs must never be modified in place (replace it), or
//! every rootfs sharing the layer would change.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::digest;
use super::OciError;
use crate::nofollow;

/// A folder of layer files shared by the rootfs folders of one build.
#[derive(Debug)]
pub struct LayerStore {
    dir: PathBuf,
    /// The timestamp and owner handling its files were made with.
    stamp: Option<(u64, bool)>,
}

impl LayerStore {
    /// A store in `dir` (created when missing). Use one store per build,
    /// on the rootfs folders' filesystem but outside the image tree.
    pub fn new(dir: impl Into<PathBuf>) -> Result<LayerStore, OciError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| OciError::Store {
            path: dir.clone(),
            why: format!("cannot create it: {e}"),
        })?;
        Ok(LayerStore { dir, stamp: None })
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts reading `layer_digest` into the store; its files will carry
    /// timestamp `epoch`, and the tar headers' owners if `owners_applied`.
    pub(crate) fn begin(
        &mut self,
        layer_digest: &str,
        epoch: u64,
        owners_applied: bool,
    ) -> Result<Staging, OciError> {
        let store_err = |why: String| OciError::Store {
            path: self.dir.clone(),
            why,
        };
        match self.stamp {
            Some(stamp) if stamp != (epoch, owners_applied) => {
                return Err(store_err(format!(
                    "used with timestamp {} before and {epoch} now; use one store per build",
                    stamp.0
                )))
            }
            _ => self.stamp = Some((epoch, owners_applied)),
        }
        let hex = digest::parse(layer_digest)
            .map_err(|why| store_err(format!("layer digest {layer_digest:?}: {why}")))?;
        let done = self.dir.join(hex);
        let partial = self.dir.join(format!("{hex}.partial"));
        nofollow::remove(&partial)
            .map_err(|e| store_err(format!("cannot remove {}: {e}", partial.display())))?;
        let reuse = matches!(nofollow::lstat(&done), Ok(Some(m)) if m.is_dir());
        Ok(Staging {
            done,
            partial,
            reuse,
            fresh: HashSet::new(),
        })
    }
}

/// One layer being read into the store.
#[derive(Debug)]
pub(crate) struct Staging {
    /// `<hex>`: the verified files of an earlier read.
    done: PathBuf,
    /// `<hex>.partial`: files written by this read.
    partial: PathBuf,
    /// `done` exists: link to its files.
    reuse: bool,
    /// Paths written to `partial` by this read.
    fresh: HashSet<PathBuf>,
}

impl Staging {
    /// The store's copy of the layer file `rel` of `size` bytes, when an
    /// earlier read left one.
    pub(crate) fn existing(&self, rel: &Path, size: u64) -> Option<PathBuf> {
        if !self.reuse || self.fresh.contains(rel) {
            return None;
        }
        let path = self.done.join(rel);
        match nofollow::lstat(&path) {
            Ok(Some(m)) if m.is_file() && m.len() == size => Some(path),
            _ => None,
        }
    }

    /// A new, empty store file for the layer file `rel` (mode 0600 until
    /// the caller sets the final one). A file the layer listed twice is
    /// replaced; a store file in the way of a folder is removed.
    pub(crate) fn create(&mut self, rel: &Path) -> Result<(PathBuf, File), (PathBuf, io::Error)> {
        let mut dir = self.partial.clone();
        let at = |p: &Path| {
            let p = p.to_owned();
            move |e| (p, e)
        };
        std::fs::create_dir_all(&dir).map_err(at(&dir))?;
        if let Some(parent) = rel.parent() {
            for part in parent.components() {
                dir.push(part);
                match nofollow::lstat(&dir).map_err(at(&dir))? {
                    Some(m) if m.is_dir() => continue,
                    Some(_) => nofollow::remove(&dir).map_err(at(&dir))?,
                    None => {}
                }
                std::fs::create_dir(&dir).map_err(at(&dir))?;
            }
        }
        let path = self.partial.join(rel);
        nofollow::remove(&path).map_err(at(&path))?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(at(&path))?;
        self.fresh.insert(rel.to_owned());
        Ok((path, file))
    }

    /// The layer was verified: keep what this read wrote.
    pub(crate) fn commit(self) -> Result<(), (PathBuf, io::Error)> {
        let partial_exists = matches!(nofollow::lstat(&self.partial), Ok(Some(_)));
        if self.reuse {
            // Files written again next to a complete copy: the rootfs
            // holds links to them; the store needs no second copy.
            return nofollow::remove(&self.partial).map_err(|e| (self.partial.clone(), e));
        }
        if partial_exists {
            std::fs::rename(&self.partial, &self.done).map_err(|e| (self.done.clone(), e))
        } else {
            std::fs::create_dir(&self.done).map_err(|e| (self.done.clone(), e))
        }
    }
}
