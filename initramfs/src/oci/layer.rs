//! A layer of a resolved image and the verified tar stream it opens to.
//!
//! The stream is a stack of readers:
//!
//! ```text
//! blob file ─ Checked (blob digest + size) ─ counter ─ Decoder ─ Checked (diff_id)
//! ```
//!
//! An OCI layer is checked against its descriptor below the decoder (the
//! digest names the compressed blob); a docker-archive layer against the
//! config's `rootfs.diff_ids` above it (the digest of the uncompressed
//! tar). The counter sees compressed bytes, for progress. A check only
//! fires at end of stream, and the tar parser stops at the end-of-archive
//! blocks, so [`LayerReader::finish`] reads both ends to their end.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::compression::Decoder;
use super::digest::{find_mismatch, Checked, Expected, Mismatch};
use super::source::Location;
use super::OciError;

/// What a layer's digest is the digest of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The blob as stored (OCI); its exact size is known too.
    Blob { size: u64 },
    /// The uncompressed tar (docker archives: `rootfs.diff_ids`).
    DiffId,
}

/// One layer of an [`super::Image`], not yet read.
#[derive(Debug, Clone)]
pub struct Layer {
    /// `sha256:<hex>`: the compressed blob's digest for OCI layouts, the
    /// diff_id for docker archives. Stable, and the layer store's key.
    pub digest: String,
    /// The descriptor's media type (empty for docker archives).
    pub media_type: String,
    /// Bytes stored (compressed) when known, for progress.
    pub size: Option<u64>,
    pub(crate) location: Location,
    pub(crate) check: Check,
}

impl Layer {
    /// Opens the layer as an uncompressed tar stream, verified as it is
    /// read (call [`LayerReader::finish`] after the last entry).
    pub fn open(&self) -> Result<LayerReader, OciError> {
        let raw = self.location.open()?;
        let (below, above) = match self.check {
            Check::Blob { size } => (Some(self.expected(Some(size))), None),
            Check::DiffId => (None, Some(self.expected(None))),
        };
        let read = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: Checked::new(raw, below),
            read: Arc::clone(&read),
        };
        let decoder = Decoder::new(counted).map_err(|e| self.read_error(e))?;
        Ok(LayerReader {
            stream: Checked::new(decoder, above),
            read,
            layer: self.clone(),
        })
    }

    fn expected(&self, size: Option<u64>) -> Expected {
        Expected {
            digest: self.digest.clone(),
            size,
        }
    }

    /// An error met while reading this layer, as an [`OciError`]: a digest
    /// or size mismatch when that is what it is.
    pub(crate) fn read_error(&self, e: io::Error) -> OciError {
        let blob = match self.check {
            Check::Blob { .. } => self.location.to_string(),
            Check::DiffId => format!("{} (uncompressed, diff_id)", self.location),
        };
        match find_mismatch(&e) {
            Some(Mismatch::Digest { expected, actual }) => OciError::DigestMismatch {
                blob,
                expected,
                actual,
            },
            Some(Mismatch::Size { expected, actual }) => OciError::SizeMismatch {
                blob,
                expected,
                actual,
            },
            None => OciError::ReadLayer {
                layer: self.digest.clone(),
                source: e,
            },
        }
    }
}

/// Counts the bytes that pass (shared with whoever reports progress).
#[derive(Debug)]
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Stream = Checked<Decoder<Counted<Checked<Box<dyn Read>>>>>;

/// The uncompressed tar stream of a [`Layer`].
pub struct LayerReader {
    stream: Stream,
    read: Arc<AtomicU64>,
    layer: Layer,
}

impl std::fmt::Debug for LayerReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerReader")
            .field("layer", &self.layer.digest)
            .field("read", &self.read.load(Ordering::Relaxed))
            .finish()
    }
}

impl LayerReader {
    /// A handle on the number of stored (compressed) bytes read so far.
    pub fn counter(&self) -> ReadCounter {
        ReadCounter(Arc::clone(&self.read))
    }

    /// Reads what is left of the stream, below and above the decoder, so
    /// that both digest checks run; fails if either does not match.
    pub fn finish(self) -> Result<(), OciError> {
        let LayerReader {
            mut stream, layer, ..
        } = self;
        io::copy(&mut stream, &mut io::sink()).map_err(|e| layer.read_error(e))?;
        let mut raw = stream.into_inner().into_inner();
        io::copy(&mut raw, &mut io::sink()).map_err(|e| layer.read_error(e))?;
        Ok(())
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

/// Stored bytes read so far from a [`LayerReader`].
#[derive(Debug, Clone)]
pub struct ReadCounter(Arc<AtomicU64>);

impl ReadCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
