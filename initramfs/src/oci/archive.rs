//! Resolving an image in a `docker save` archive.
//!
//! The archive's `manifest.json` lists images as `{Config, RepoTags,
//! Layers}` with member names; one is chosen by tag
//! ([`super::select::choose_entry`]). The config member is checked against
//! the digest its name carries (`<hex>.json` in the legacy format,
//! `blobs/sha256/<hex>` since Docker 25); layers, plain or gzip tars, are
//! checked against the config's `rootfs.diff_ids` (digests of the
//! uncompressed tars), in order.
//!
//! An archive without `manifest.json` but with `index.json` (an OCI layout
//! tarred up, e.g. `skopeo copy … oci-archive:`) is read as a layout.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use super::blob::{self, MAX_JSON};
use super::digest::{self, Expected};
use super::layer::{Check, Layer};
use super::select::choose_entry;
use super::source::{Source, TarIndex};
use super::{check_platform, layout, Image, OciError};

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// The image of the archive at `path` tagged `tag` (or its only image).
pub(crate) fn resolve(path: &Path, image: &str, tag: Option<&str>) -> Result<Image, OciError> {
    let index = TarIndex::read(path)?;
    if index.lookup("manifest.json").is_some() {
        return docker(&index, image, tag);
    }
    if index.lookup("index.json").is_some() {
        return layout::resolve(&Source::Tar(index), image, tag);
    }
    Err(OciError::Format {
        image: image.into(),
        why: "neither manifest.json (docker save) nor index.json (OCI layout) in the archive"
            .into(),
    })
}

fn missing(image: &str, what: String) -> OciError {
    OciError::Format {
        image: image.into(),
        why: format!("{what} is missing from the archive"),
    }
}

fn docker(index: &TarIndex, image: &str, tag: Option<&str>) -> Result<Image, OciError> {
    let manifest = index
        .lookup("manifest.json")
        .ok_or_else(|| missing(image, "manifest.json".into()))?;
    let entries: Vec<Entry> = blob::parse(
        &blob::read(&manifest, None, MAX_JSON)?,
        image,
        "manifest.json",
    )?;
    let tags: Vec<Vec<String>> = entries
        .iter()
        .map(|e| e.repo_tags.clone().unwrap_or_default())
        .collect();
    let chosen = choose_entry(&tags, tag).map_err(|r| r.into_error(image, tag))?;
    let entry = &entries[chosen];

    let config_file = index
        .lookup(&entry.config)
        .ok_or_else(|| missing(image, format!("config {}", entry.config)))?;
    let expected = digest_in_name(&entry.config).map(|digest| Expected { digest, size: None });
    let config_bytes = blob::read(&config_file, expected, MAX_JSON)?;
    let config: ImageConfiguration =
        blob::parse(&config_bytes, image, &format!("config {}", entry.config))?;
    check_platform(image, &config)?;

    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(OciError::Format {
            image: image.into(),
            why: format!(
                "manifest.json lists {} layers, the config's rootfs.diff_ids {}",
                entry.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(name, diff_id)| {
            digest::parse(diff_id).map_err(|why| OciError::BadDigest {
                image: image.into(),
                digest: diff_id.clone(),
                why,
            })?;
            let location = index
                .lookup(name)
                .ok_or_else(|| missing(image, format!("layer {name}")))?;
            Ok(Layer {
                digest: diff_id.clone(),
                media_type: String::new(),
                size: location.known_size(),
                location,
                check: Check::DiffId,
            })
        })
        .collect::<Result<Vec<_>, OciError>>()?;
    Ok(Image {
        reference: image.into(),
        config_digest: digest::of(&config_bytes),
        config,
        layers,
    })
}

/// The digest a config member's name carries: `<hex>.json` (legacy) or
/// `blobs/sha256/<hex>`.
fn digest_in_name(name: &str) -> Option<String> {
    let file = name.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    let digest = format!("sha256:{hex}");
    digest::parse(&digest).is_ok().then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_digests_from_names() {
        let hex = "ab".repeat(32);
        let rows = [
            (format!("{hex}.json"), Some(format!("sha256:{hex}"))),
            (format!("blobs/sha256/{hex}"), Some(format!("sha256:{hex}"))),
            ("config.json".to_owned(), None),
            (format!("{}.json", &hex[1..]), None),
        ];
        for (name, want) in rows {
            assert_eq!(digest_in_name(&name), want, "{name}");
        }
    }
}
