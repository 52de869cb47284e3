//! Content digests: parsing them strictly and checking blobs against them
//! while they stream by.
//!
//! A digest names a file (`blobs/sha256/<hex>`, a layer store folder), so
//! only `sha256:` followed by exactly 64 lower-case hex digits is accepted:
//! nothing that could hold `/`, `..` or be empty. [`Checked`] hashes what
//! passes through it and, at end of stream, compares digest and size; a
//! blob longer than announced fails as soon as the excess is read. The
//! failure travels as an [`std::io::Error`] through whatever reads the
//! stream (decompressors, the tar parser) and is recovered with
//! [`find_mismatch`].

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// The only algorithm accepted.
const PREFIX: &str = "sha256:";

/// The hex part of a `sha256:<64 hex>` digest, or why it is not one.
pub(crate) fn parse(digest: &str) -> Result<&str, &'static str> {
    let hex = digest
        .strip_prefix(PREFIX)
        .ok_or("only sha256 digests are supported")?;
    if hex.len() != 64 {
        return Err("a sha256 digest has 64 hex digits");
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("a sha256 digest has only lower-case hex digits");
    }
    Ok(hex)
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn of(bytes: &[u8]) -> String {
    format!("{PREFIX}{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a stream must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    /// `sha256:<hex>`.
    pub digest: String,
    /// The exact length, when the descriptor gives one.
    pub size: Option<u64>,
}

/// A stream did not match its [`Expected`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Mismatch {
    #[error("digest is {actual}, expected {expected}")]
    Digest { expected: String, actual: String },
    #[error("size is {actual} bytes, expected {expected}")]
    Size { expected: u64, actual: String },
}

/// A reader that checks what it passes through against an [`Expected`]
/// (or passes it through unchecked when there is none).
#[derive(Debug)]
pub(crate) struct Checked<R> {
    inner: R,
    expected: Option<Expected>,
    hasher: Sha256,
    read: u64,
    /// Set at end of stream: `Ok` once verified, the mismatch otherwise.
    outcome: Option<Result<(), Mismatch>>,
}

impl<R: Read> Checked<R> {
    pub(crate) fn new(inner: R, expected: Option<Expected>) -> Checked<R> {
        Checked {
            inner,
            expected,
            hasher: Sha256::new(),
            read: 0,
            outcome: None,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&mut self, m: Mismatch) -> io::Error {
        self.outcome = Some(Err(m.clone()));
        io::Error::new(io::ErrorKind::InvalidData, m)
    }

    fn verify(&mut self) -> io::Result<()> {
        let Some(expected) = self.expected.clone() else {
            return Ok(());
        };
        if let Some(size) = expected.size {
            if self.read != size {
                let actual = self.read.to_string();
                return Err(self.fail(Mismatch::Size {
                    expected: size,
                    actual,
                }));
            }
        }
        let actual = format!(
            "{PREFIX}{}",
            hex(&std::mem::take(&mut self.hasher).finalize())
        );
        if actual != expected.digest {
            return Err(self.fail(Mismatch::Digest {
                expected: expected.digest,
                actual,
            }));
        }
        self.outcome = Some(Ok(()));
        Ok(())
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.outcome {
            Some(Ok(())) => return self.inner.read(buf),
            Some(Err(m)) => return Err(io::Error::new(io::ErrorKind::InvalidData, m.clone())),
            None => {}
        }
        let n = self.inner.read(buf)?;
        if self.expected.is_none() {
            return Ok(n);
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if let Some(size) = self.expected.as_ref().and_then(|e| e.size) {
            if self.read > size {
                return Err(self.fail(Mismatch::Size {
                    expected: size,
                    actual: format!("more than {size}"),
                }));
            }
        }
        if n == 0 && !buf.is_empty() {
            self.verify()?;
        }
        Ok(n)
    }
}

/// The [`Mismatch`] somewhere in an I/O error's chain (wrapped by a
/// decompressor or the tar parser), if that is what it is.
pub(crate) fn find_mismatch(e: &io::Error) -> Option<Mismatch> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    // Bounded: error chains are short; this only guards against cycles.
    for _ in 0..16 {
        let err = cur?;
        if let Some(m) = err.downcast_ref::<Mismatch>() {
            return Some(m.clone());
        }
        // `io::Error::source` skips the error it wraps; `get_ref` does not.
        cur = match err.downcast_ref::<io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn digests() {
        let rows: &[(&str, Result<&str, &str>)] = &[
            (HELLO, Ok(&HELLO[7..])),
            ("sha512:abcd", Err("only sha256")),
            ("2cf24dba", Err("only sha256")),
            ("sha256:", Err("64 hex digits")),
            ("sha256:../../../../etc/passwd", Err("64 hex digits")),
            (
                "sha256:../../../../../../../../../../../../../../../../../../../../../x",
                Err("lower-case hex"),
            ),
            (
                "sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
                Err("lower-case hex"),
            ),
            (
                "sha256:/cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                Err("lower-case hex"),
            ),
        ];
        for (text, want) in rows {
            match (parse(text), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{text}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{text}: {got}"),
                (got, _) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(of(b"hello"), HELLO);
    }

    fn check(data: &[u8], digest: &str, size: Option<u64>) -> io::Result<Vec<u8>> {
        let expected = Expected {
            digest: digest.to_owned(),
            size,
        };
        let mut out = Vec::new();
        Checked::new(data, Some(expected)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn checked_streams() {
        let mismatch = |r: io::Result<Vec<u8>>| find_mismatch(&r.expect_err("must fail"));
        assert_eq!(check(b"hello", HELLO, Some(5)).expect("ok"), b"hello");
        assert_eq!(check(b"hello", HELLO, None).expect("ok"), b"hello");
        assert_eq!(
            mismatch(check(b"hellO", HELLO, Some(5))),
            Some(Mismatch::Digest {
                expected: HELLO.into(),
                actual: of(b"hellO")
            })
        );
        assert_eq!(
            mismatch(check(b"hello", HELLO, Some(4))),
            Some(Mismatch::Size {
                expected: 4,
                actual: "more than 4".into()
            })
        );
        assert_eq!(
            mismatch(check(b"hello", HELLO, Some(6))),
            Some(Mismatch::Size {
                expected: 6,
                actual: "5".into()
            })
        );
        // Unchecked streams pass through.
        let mut out = Vec::new();
        Checked::new(&b"x"[..], None)
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, b"x");
    }

    #[test]
    fn mismatch_found_through_wrapping() {
        let inner = io::Error::new(
            io::ErrorKind::InvalidData,
            Mismatch::Size {
                expected: 1,
                actual: "2".into(),
            },
        );
        let wrapped = io::Error::other(inner);
        assert!(find_mismatch(&wrapped).is_some());
        assert!(find_mismatch(&io::Error::other("plain")).is_none());
    }
}
