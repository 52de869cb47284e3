//! GUIDs of the node disk: parsing the Discoverable Partitions
//! Specification's textual type GUIDs, deriving the disk's own GUIDs from
//! the build's content, and the byte order GPT stores them in.
//!
//! A GUID is written `c12a7328-f81f-11d2-ba4b-00a0c93ec93b`, but GPT (and
//! UEFI generally) stores its first three fields little-endian and the last
//! two as written ("mixed-endian"): the ESP type is on disk as
//! `28 73 2a c1 1f f8 d2 11 ba 4b 00 a0 c9 3e c9 3b`. gptman takes and
//! returns these on-disk bytes, so every GUID goes through
//! [`Guid::to_gpt_bytes`] on its way in.
//!
//! Derived GUIDs are the first 16 bytes of sha256(seed, purpose) with the
//! RFC 9562 version 8 ("custom") and variant bits set: the same build
//! inputs give the same disk, byte for byte, and two different builds (or
//! two purposes in one build) get different GUIDs.

use std::fmt;

use berth_config::layout::disk;
use sha2::{Digest, Sha256};

/// A GUID in its textual (big-endian) byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid([u8; 16]);

/// A GUID's text was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse GUID {text:?}: expected 8-4-4-4-12 hex digits")]
pub struct GuidError {
    pub text: String,
}

/// Lengths of the dash-separated groups of a GUID's text.
const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];

impl Guid {
    /// Parses `8-4-4-4-12` hex digits (either case).
    pub fn parse(text: &str) -> Result<Guid, GuidError> {
        disk::parse_guid(text).map(Guid).ok_or_else(|| GuidError {
            text: text.to_owned(),
        })
    }

    /// A GUID for `purpose` (a partition name, `disk`, …) derived from
    /// `seed` (what identifies the build's content).
    pub fn derive(seed: &[u8], purpose: &str) -> Guid {
        let mut h = Sha256::new();
        // Lengths first, so ("ab", "c") and ("a", "bc") differ.
        h.update((seed.len() as u64).to_le_bytes());
        h.update(seed);
        h.update((purpose.len() as u64).to_le_bytes());
        h.update(purpose.as_bytes());
        let digest = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }

    /// The bytes as GPT stores them: the first three fields byte-swapped.
    pub fn to_gpt_bytes(self) -> [u8; 16] {
        disk::to_gpt_order(self.0)
    }

    /// The inverse of [`Guid::to_gpt_bytes`].
    pub fn from_gpt_bytes(bytes: [u8; 16]) -> Guid {
        // The swap is its own inverse.
        Guid(Guid(bytes).to_gpt_bytes())
    }

    /// The bytes in textual order.
    pub fn bytes(self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut at = 0;
        for (i, len) in GROUPS.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            for b in &self.0[at..at + len / 2] {
                write!(f, "{b:02x}")?;
            }
            at += len / 2;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_config::layout::disk;

    #[test]
    fn dps_types_in_gpt_byte_order() {
        // (text, on-disk bytes): the ESP's is in the UEFI specification;
        // the others follow the same rule (`sfdisk --dump` of a built
        // disk.img shows all three as written in the layout).
        let table: [(&str, [u8; 16]); 3] = [
            (
                disk::ESP_TYPE,
                [
                    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9,
                    0x3e, 0xc9, 0x3b,
                ],
            ),
            (
                disk::ROOT_X86_64_TYPE,
                [
                    0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb, 0xca, 0xf9,
                    0x84, 0xb7, 0x09,
                ],
            ),
            (
                disk::VAR_TYPE,
                [
                    0x16, 0xb0, 0x21, 0x4d, 0x34, 0xb5, 0xc2, 0x45, 0xa9, 0xfb, 0x5c, 0x16, 0xe0,
                    0x91, 0xfd, 0x2d,
                ],
            ),
        ];
        for (text, on_disk) in table {
            let guid = Guid::parse(text).expect(text);
            assert_eq!(guid.to_gpt_bytes(), on_disk, "{text}");
            assert_eq!(Guid::from_gpt_bytes(on_disk), guid, "{text}");
            assert_eq!(guid.to_string(), text);
        }
    }

    #[test]
    fn parse_rejects_malformed_text() {
        for bad in [
            "",
            "c12a7328f81f11d2ba4b00a0c93ec93b",
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93",
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93bb",
            "c12a7328-f81f-11d2-ba4b00-a0c93ec93b",
            "g12a7328-f81f-11d2-ba4b-00a0c93ec93b",
            "+12a7328-f81f-11d2-ba4b-00a0c93ec93b",
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93b-",
        ] {
            assert!(Guid::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
                .expect("upper case")
                .to_string(),
            disk::ESP_TYPE
        );
    }

    #[test]
    fn derived_guids_are_stable_distinct_and_version_8() {
        let a = Guid::derive(b"root hash", "ROOT-A");
        assert_eq!(a, Guid::derive(b"root hash", "ROOT-A"));
        assert_ne!(a, Guid::derive(b"root hash", "ROOT-B"));
        assert_ne!(a, Guid::derive(b"other root", "ROOT-A"));
        assert_ne!(
            Guid::derive(b"ab", "c"),
            Guid::derive(b"a", "bc"),
            "lengths keep parts apart"
        );
        let text = a.to_string();
        assert_eq!(&text[14..15], "8", "version nibble of {text}");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
        assert_eq!(Guid::parse(&text), Ok(a));
    }
}
