//! Resolving an image in an OCI image layout (image-spec `image-layout.md`),
//! from a folder or from a tar archive of one.
//!
//! `oci-layout` must declare version 1.0.0; `index.json` lists manifests,
//! one is chosen by tag and platform ([`super::select`]); a chosen image
//! index (multi-platform image) is followed to the linux/amd64 manifest.
//! Every blob is read from `blobs/sha256/<hex>` and checked against its
//! descriptor's digest and size; the digest is validated before it becomes
//! a path. Layers are only located here, and read when unpacked.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::blob::{self, MAX_JSON};
use super::compression::is_layer_media_type;
use super::digest::{self, Expected};
use super::layer::{Check, Layer};
use super::select::{choose_descriptor, pick_platform};
use super::source::{Location, Source};
use super::{check_platform, Image, OciError};

/// Image indexes may nest; real ones nest once.
const MAX_NESTING: usize = 4;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// The image of `source` tagged `tag` (or its only image); `image` names
/// the store in errors and becomes [`Image::reference`].
pub(crate) fn resolve(source: &Source, image: &str, tag: Option<&str>) -> Result<Image, OciError> {
    check_version(source, image)?;
    let index_file = top_file(source, image, "index.json")?;
    let index: ImageIndex = blob::parse(
        &blob::read(&index_file, None, MAX_JSON)?,
        image,
        "index.json",
    )?;
    let top = choose_descriptor(index.manifests(), tag).map_err(|r| r.into_error(image, tag))?;
    let manifest = follow(source, image, top, tag)?;

    let config_desc = manifest.config();
    let config_type = config_desc.media_type().to_string();
    if !CONFIG_TYPES.contains(&config_type.as_str()) {
        return Err(OciError::MediaType {
            image: image.into(),
            what: "the config".into(),
            media_type: config_type,
        });
    }
    let config: ImageConfiguration =
        blob::parse(&read_blob(source, image, config_desc)?, image, "the config")?;
    check_platform(image, &config)?;

    let layers = manifest
        .layers()
        .iter()
        .map(|d| layer(source, image, d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Image {
        reference: image.into(),
        config_digest: config_desc.digest().to_string(),
        config,
        layers,
    })
}

/// `oci-layout` says `{"imageLayoutVersion": "1.0.0"}`.
fn check_version(source: &Source, image: &str) -> Result<(), OciError> {
    let file = top_file(source, image, "oci-layout")?;
    let json: serde_json::Value =
        blob::parse(&blob::read(&file, None, MAX_JSON)?, image, "oci-layout")?;
    match json.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some("1.0.0") => Ok(()),
        other => Err(OciError::Format {
            image: image.into(),
            why: format!("oci-layout has imageLayoutVersion {other:?}, expected \"1.0.0\""),
        }),
    }
}

fn top_file(source: &Source, image: &str, name: &str) -> Result<Location, OciError> {
    source.locate(name).ok_or_else(|| OciError::Format {
        image: image.into(),
        why: format!("not an OCI image layout (no {name})"),
    })
}

/// Follows image indexes from `desc` down to one manifest.
fn follow(
    source: &Source,
    image: &str,
    desc: &Descriptor,
    tag: Option<&str>,
) -> Result<ImageManifest, OciError> {
    let mut desc = desc.clone();
    for _ in 0..MAX_NESTING {
        let media_type = desc.media_type().to_string();
        if MANIFEST_TYPES.contains(&media_type.as_str()) {
            return blob::parse(&read_blob(source, image, &desc)?, image, "the manifest");
        }
        if !INDEX_TYPES.contains(&media_type.as_str()) {
            return Err(OciError::MediaType {
                image: image.into(),
                what: format!("manifest {}", desc.digest()),
                media_type,
            });
        }
        let index: ImageIndex =
            blob::parse(&read_blob(source, image, &desc)?, image, "an image index")?;
        let manifests: Vec<&Descriptor> = index.manifests().iter().collect();
        desc = pick_platform(&manifests)
            .map_err(|r| r.into_error(image, tag))?
            .clone();
    }
    Err(OciError::Format {
        image: image.into(),
        why: format!("image indexes nested more than {MAX_NESTING} deep"),
    })
}

/// Where the blob `digest` lives, after checking that it is a digest.
fn blob_location(source: &Source, image: &str, digest: &str) -> Result<Location, OciError> {
    let hex = digest::parse(digest).map_err(|why| OciError::BadDigest {
        image: image.into(),
        digest: digest.into(),
        why,
    })?;
    let name = format!("blobs/sha256/{hex}");
    source.locate(&name).ok_or_else(|| OciError::Format {
        image: image.into(),
        why: format!("blob {digest} is missing ({name})"),
    })
}

/// A JSON blob, verified.
fn read_blob(source: &Source, image: &str, desc: &Descriptor) -> Result<Vec<u8>, OciError> {
    let digest = desc.digest().to_string();
    let location = blob_location(source, image, &digest)?;
    if desc.size() > MAX_JSON {
        return Err(OciError::Format {
            image: image.into(),
            why: format!(
                "blob {digest} is {} bytes, more than a JSON document may be",
                desc.size()
            ),
        });
    }
    let expected = Expected {
        digest,
        size: Some(desc.size()),
    };
    blob::read(&location, Some(expected), MAX_JSON)
}

fn layer(source: &Source, image: &str, desc: &Descriptor) -> Result<Layer, OciError> {
    let media_type = desc.media_type().to_string();
    let digest = desc.digest().to_string();
    if !is_layer_media_type(&media_type) {
        return Err(OciError::MediaType {
            image: image.into(),
            what: format!("layer {digest}"),
            media_type,
        });
    }
    Ok(Layer {
        location: blob_location(source, image, &digest)?,
        digest,
        media_type,
        size: Some(desc.size()),
        check: Check::Blob { size: desc.size() },
    })
}
