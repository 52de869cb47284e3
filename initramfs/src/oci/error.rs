//! The one error type of the [`crate::oci`] module. Every message names
//! the image, blob, layer or path being worked on, so a build log line is
//! enough to find the culprit.

use std::path::PathBuf;

/// Importing an image failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file of the image store could not be opened or read.
    #[error("{step} {what}")]
    Io {
        step: &'static str,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The image store is not what its format says it is.
    #[error("{image}: {why}")]
    Format { image: String, why: String },
    /// A JSON document of the image could not be parsed.
    #[error("{image}: parse {what}")]
    Json {
        image: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// No image carries the requested tag.
    #[error("{image}: no image tagged {tag:?} (available: {available})")]
    NoSuchTag {
        image: String,
        tag: String,
        available: String,
    },
    /// No tag was given and the store holds more than one image.
    #[error("{image}: holds {count} images, name one with a tag (available: {available})")]
    Ambiguous {
        image: String,
        count: usize,
        available: String,
    },
    /// The image (or every image of a multi-platform index) is for another
    /// platform.
    #[error("{image}: no {want} image (found: {found})")]
    Platform {
        image: String,
        want: String,
        found: String,
    },
    /// A digest is not `sha256:` and 64 lower-case hex digits.
    #[error("{image}: bad digest {digest:?}: {why}")]
    BadDigest {
        image: String,
        digest: String,
        why: &'static str,
    },
    /// A blob's content does not hash to the digest that names it.
    #[error("blob {blob}: digest is {actual}, expected {expected}")]
    DigestMismatch {
        blob: String,
        expected: String,
        actual: String,
    },
    /// A blob is not as long as its descriptor says.
    #[error("blob {blob}: size is {actual} bytes, expected {expected}")]
    SizeMismatch {
        blob: String,
        expected: u64,
        actual: String,
    },
    /// A manifest, config or layer of a kind this importer does not read.
    #[error("{image}: {what} has unsupported media type {media_type}")]
    MediaType {
        image: String,
        what: String,
        media_type: String,
    },
    /// Reading or decompressing a layer's tar stream failed.
    #[error("read layer {layer}")]
    ReadLayer {
        layer: String,
        #[source]
        source: std::io::Error,
    },
    /// A layer entry would write outside the rootfs.
    #[error("unpack layer {layer}: refuse {path:?}: {why}")]
    Escape {
        layer: String,
        path: String,
        why: String,
    },
    /// A layer entry that cannot be applied (unknown type, a file where a
    /// folder is needed).
    #[error("unpack layer {layer}: bad entry {path:?}: {why}")]
    BadEntry {
        layer: String,
        path: String,
        why: String,
    },
    /// Creating something in the rootfs or the layer store failed.
    #[error("unpack layer {layer}: {step} {path}")]
    Unpack {
        layer: String,
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The last pass over the rootfs (folder modes and timestamps) failed.
    #[error("finish the rootfs: {step} {path}")]
    Finish {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The destination cannot receive an image.
    #[error("unpack into {path}: {why}")]
    Dest { path: PathBuf, why: String },
    /// The layer store cannot be used as asked.
    #[error("layer store {path}: {why}")]
    Store { path: PathBuf, why: String },
    /// An image user that the rootfs cannot resolve.
    #[error("resolve user {user:?}: {why}")]
    User { user: String, why: String },
}
