//! Importing OCI images into container rootfs folders.
//!
//! A container's `image` (an OCI image layout, or a `docker save`
//! archive; see [`berth_config::image`]) becomes a rootfs folder in the
//! root image, plus defaults for its process. Three steps:
//!
//! 1. **Resolve** ([`open`]): read the store's index, pick the image by
//!    tag and platform (linux/amd64), read and verify its manifest and
//!    config. Layers are only located. `layout.rs` reads OCI layouts,
//!    `archive.rs` docker archives; every blob is checked against its
//!    sha256 digest and size as it streams by (`digest.rs`).
//! 2. **Unpack** ([`unpack()`]): apply the layers in order to an empty
//!    folder, handling whiteouts, refusing anything that would escape the
//!    folder (`entry.rs`, `crate::nofollow`), writing regular files once per
//!    layer into a [`LayerStore`] and hard-linking them in, so that
//!    containers sharing a layer share its files' inodes (and mkfs.erofs
//!    stores them once).
//! 3. **Defaults** ([`ImageDefaults`], [`resolve_user`]): entrypoint, cmd,
//!    env, workdir, user, ports and stop signal from the config; the user
//!    resolved through the unpacked rootfs's `/etc/passwd`.
//!
//! Not kept: extended attributes (file capabilities among them; counted
//! in [`UnpackReport::xattrs_skipped`]), original timestamps (everything
//! gets [`Policy::epoch`]), and owners when the builder is not root
//! ([`UnpackReport::not_owned`]). Refused, besides escapes: GNU sparse
//! files with holes, which would be written out in full.
//!
//! `fuzz` (compiled for tests and with the `fuzzing` feature only) holds
//! the checks of the `oci_layer` and `oci_layout` fuzz targets and their
//! stable replay tests.

mod apply;
mod archive;
mod blob;
mod compression;
mod config;
mod digest;
mod entry;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod layer;
mod layout;
mod meter;
mod select;
mod source;
mod store;
mod unpack;
mod user;
mod whiteout;

#[cfg(test)]
pub(crate) mod tests;

use berth_config::image::{ImageFormat, ImageRef};
use oci_spec::image::ImageConfiguration;

pub use config::ImageDefaults;
pub use error::OciError;
pub use layer::{Layer, LayerReader, ReadCounter};
pub use select::{ARCH, OS};
pub use store::LayerStore;
pub use unpack::{unpack, Policy, Progress, Stage, UnpackReport};
pub use user::resolve_user;

/// A resolved image: its config and its layers, bottom first.
#[derive(Debug, Clone)]
pub struct Image {
    /// The reference it was opened from (`oci:PATH:TAG`).
    pub reference: String,
    /// `sha256:<hex>` of the config: the image ID.
    pub config_digest: String,
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

/// Resolves `image` (its `path` already made absolute or relative to the
/// working folder by the caller).
pub fn open(image: &ImageRef) -> Result<Image, OciError> {
    let name = image.to_string();
    let tag = image.tag.as_deref();
    match image.format {
        ImageFormat::Oci if image.path.is_dir() => {
            layout::resolve(&source::Source::Dir(image.path.clone()), &name, tag)
        }
        ImageFormat::Oci => {
            let index = source::TarIndex::read(&image.path)?;
            layout::resolve(&source::Source::Tar(index), &name, tag)
        }
        ImageFormat::DockerArchive => archive::resolve(&image.path, &name, tag),
    }
}

/// Refuses a config for another OS or architecture (an empty field is
/// given the benefit of the doubt).
fn check_platform(image: &str, config: &ImageConfiguration) -> Result<(), OciError> {
    let os = config.os().to_string();
    let arch = config.architecture().to_string();
    if (os.is_empty() || os == OS) && (arch.is_empty() || arch == ARCH) {
        return Ok(());
    }
    Err(OciError::Platform {
        image: image.into(),
        want: format!("{OS}/{ARCH}"),
        found: format!("{os}/{arch}"),
    })
}
