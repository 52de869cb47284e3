//! Reading the small JSON documents of an image store (`index.json`,
//! manifests, configs): bounded in size, checked against their digest
//! when one names them, parsed with serde.

use std::io::Read;

use serde::de::DeserializeOwned;

use super::digest::{find_mismatch, Checked, Expected, Mismatch};
use super::source::Location;
use super::OciError;

/// No JSON document of an image is larger than this (configs with a long
/// history are a few hundred KiB).
pub(crate) const MAX_JSON: u64 = 16 << 20;

/// The whole file, at most `limit` bytes, verified against `expected`.
pub(crate) fn read(
    location: &Location,
    expected: Option<Expected>,
    limit: u64,
) -> Result<Vec<u8>, OciError> {
    let mut reader = Checked::new(location.open()?, expected);
    let mut bytes = Vec::new();
    (&mut reader)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| match find_mismatch(&e) {
            Some(Mismatch::Digest { expected, actual }) => OciError::DigestMismatch {
                blob: location.to_string(),
                expected,
                actual,
            },
            Some(Mismatch::Size { expected, actual }) => OciError::SizeMismatch {
                blob: location.to_string(),
                expected,
                actual,
            },
            None => OciError::Io {
                step: "read",
                what: location.to_string(),
                source: e,
            },
        })?;
    if bytes.len() as u64 > limit {
        return Err(OciError::Format {
            image: location.to_string(),
            why: format!("larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

/// `bytes` parsed as `T`; `what` names the document in the error.
pub(crate) fn parse<T: DeserializeOwned>(
    bytes: &[u8],
    image: &str,
    what: &str,
) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|source| OciError::Json {
        image: image.to_owned(),
        what: what.to_owned(),
        source,
    })
}
