//! Tests of the oci module against fixtures built in code: OCI layouts
//! and docker archives written to temporary folders, unpacked for real
//! (as root here: owners are applied).

mod escape;
pub(crate) mod fixture;
mod resolve;
mod store;
mod unpack;
mod user;
mod whiteout;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_config::image::{ImageFormat, ImageRef};

use super::unpack::{unpack_with, Owners};
use super::{open, Image, LayerStore, OciError, Policy, UnpackReport};
use fixture::{oci_layout, Comp, OciImage};

/// A temporary folder holding layouts, rootfs folders and a layer store.
pub struct Scene {
    pub tmp: tempfile::TempDir,
}

impl Scene {
    pub fn new() -> Scene {
        Scene {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// An OCI layout `name` with one image tagged `t` of these layers,
    /// opened.
    pub fn image(&self, name: &str, layers: Vec<Vec<u8>>) -> Image {
        self.image_comp(name, layers.into_iter().map(|t| (t, Comp::Plain)).collect())
    }

    pub fn image_comp(&self, name: &str, layers: Vec<(Vec<u8>, Comp)>) -> Image {
        let layout = self.path(name);
        oci_layout(&layout, &[OciImage::new(Some("t"), layers)]);
        open(&oci_ref(&layout, Some("t"))).expect("open the fixture image")
    }

    /// A new, empty folder.
    pub fn dest(&self, name: &str) -> PathBuf {
        let dest = self.path(name);
        std::fs::create_dir_all(&dest).expect("dest");
        dest
    }

    pub fn unpack(
        &self,
        image: &Image,
        dest: &Path,
        policy: &Policy,
    ) -> Result<UnpackReport, OciError> {
        let mut store = LayerStore::new(self.path("store")).expect("store");
        unpack_with(image, dest, &mut store, policy, Owners::Apply, &mut |_| {})
    }
}

pub fn oci_ref(path: &Path, tag: Option<&str>) -> ImageRef {
    ImageRef {
        format: ImageFormat::Oci,
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
    }
}

pub fn docker_ref(path: &Path, tag: Option<&str>) -> ImageRef {
    ImageRef {
        format: ImageFormat::DockerArchive,
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn lmeta(path: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Every path under `root` (relative, sorted), symlinks not followed.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(root.join(rel)).expect("read_dir") {
            let e = e.expect("entry");
            let child = rel.join(e.file_name());
            out.push(child.display().to_string());
            if e.file_type().expect("type").is_dir() {
                walk(root, &child, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out);
    out.sort();
    out
}

pub fn inode(path: &Path) -> u64 {
    lmeta(path).ino()
}
