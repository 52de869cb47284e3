//! Layer compression: which layer media types are understood, and a
//! decoder chosen from the stream's first bytes.
//!
//! The media type only says whether something is a layer at all; the
//! compression is detected from magic numbers (gzip `1f 8b`, zstd
//! `28 b5 2f fd`, anything else is a plain tar), because docker archives
//! carry no media types and some tools label layers loosely. gzip streams
//! may hold several members and zstd streams several frames (zstd:chunked
//! adds skippable frames); both are read to the end so that the blob's
//! digest covers every byte.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression announced by a stream's first bytes.
pub(crate) fn detect(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Whether a descriptor's media type names a filesystem layer this
/// importer reads (OCI tar, tar+gzip, tar+zstd, their non-distributable
/// forms, and Docker's rootfs diffs).
pub(crate) fn is_layer_media_type(media_type: &str) -> bool {
    let oci = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
    ];
    let docker = [
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ];
    oci.iter()
        .any(|base| [*base, &format!("{base}+gzip"), &format!("{base}+zstd")].contains(&media_type))
        || docker.contains(&media_type)
}

/// The stream with its first bytes read back in front of it.
type Prefixed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// A decompressing reader over a layer blob.
pub(crate) enum Decoder<R: Read> {
    Plain(Prefixed<R>),
    Gzip(MultiGzDecoder<Prefixed<R>>),
    Zstd(Box<ZstdFrames<Prefixed<R>>>),
}

impl<R: Read> std::fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Decoder::Plain(_) => "plain",
            Decoder::Gzip(_) => "gzip",
            Decoder::Zstd(_) => "zstd",
        };
        f.debug_tuple("Decoder").field(&kind).finish()
    }
}

impl<R: Read> Decoder<R> {
    /// Peeks at the magic number and picks the decoder.
    pub(crate) fn new(mut raw: R) -> io::Result<Decoder<R>> {
        let mut magic = Vec::with_capacity(4);
        (&mut raw).take(4).read_to_end(&mut magic)?;
        let kind = detect(&magic);
        let stream = io::Cursor::new(magic).chain(raw);
        Ok(match kind {
            Compression::None => Decoder::Plain(stream),
            Compression::Gzip => Decoder::Gzip(MultiGzDecoder::new(stream)),
            Compression::Zstd => Decoder::Zstd(Box::new(ZstdFrames::new(stream))),
        })
    }

    /// The compressed stream underneath (to read what is left of it).
    pub(crate) fn into_inner(self) -> R {
        let chain = match self {
            Decoder::Plain(s) => s,
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(z) => z.source.into_inner(),
        };
        chain.into_inner().1
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(s) => s.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(z) => z.read(buf),
        }
    }
}

/// Decodes every zstd frame of a stream, skipping skippable frames
/// (ruzstd's `StreamingDecoder` stops after the first frame).
pub(crate) struct ZstdFrames<R: Read> {
    source: BufReader<R>,
    decoder: FrameDecoder,
    /// A frame is being decoded (its header was read).
    in_frame: bool,
}

impl<R: Read> ZstdFrames<R> {
    fn new(source: R) -> ZstdFrames<R> {
        ZstdFrames {
            source: BufReader::new(source),
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Starts the next data frame; false at end of stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                    if skipped != u64::from(length) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "zstd: truncated skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                let want = buf.len() - self.decoder.can_collect();
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(want))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_finished() {
                self.in_frame = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn magic_numbers() {
        let rows: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b, 8, 0], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
            (&[0x28, 0xb5, 0x2f], Compression::None),
            (b"etc/", Compression::None),
            (&[], Compression::None),
        ];
        for (magic, want) in rows {
            assert_eq!(detect(magic), *want, "{magic:02x?}");
        }
    }

    #[test]
    fn media_types() {
        let rows = [
            ("application/vnd.oci.image.layer.v1.tar", true),
            ("application/vnd.oci.image.layer.v1.tar+gzip", true),
            ("application/vnd.oci.image.layer.v1.tar+zstd", true),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                true,
            ),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", true),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                true,
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                false,
            ),
            ("application/vnd.oci.image.config.v1+json", false),
            ("application/vnd.in-toto+json", false),
        ];
        for (media_type, want) in rows {
            assert_eq!(is_layer_media_type(media_type), want, "{media_type}");
        }
    }

    fn decode(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut d = Decoder::new(blob).expect("decoder");
        d.read_to_end(&mut out).expect("decode");
        let mut rest = Vec::new();
        d.into_inner().read_to_end(&mut rest).expect("rest");
        assert!(rest.is_empty(), "decoder left {} bytes", rest.len());
        out
    }

    #[test]
    fn decodes_every_member_and_frame() {
        assert_eq!(decode(b"plain tar"), b"plain tar");

        let mut gz = Vec::new();
        for part in [&b"first "[..], b"second"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).expect("gzip");
            gz.extend(e.finish().expect("gzip"));
        }
        assert_eq!(decode(&gz), b"first second");

        let level = ruzstd::encoding::CompressionLevel::Fastest;
        let mut zst = ruzstd::encoding::compress_to_vec(&b"one "[..], level);
        // A skippable frame (magic 0x184D2A50, 3 bytes) between data frames.
        zst.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        zst.extend(ruzstd::encoding::compress_to_vec(&b"two"[..], level));
        assert_eq!(decode(&zst), b"one two");
    }
}
