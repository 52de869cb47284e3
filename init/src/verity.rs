//! dm-verity for the root image, the pure half: where the filesystem ends,
//! what the verity superblock behind it says, and the device-mapper table
//! that turns both into a verified block device.
//!
//! The image the builder writes (`berth-image build`, see
//! `docs/verity.md`) is one file, one disk:
//!
//! ```text
//! 0                         data_end            data_end + 4096
//! | EROFS image, padded to 4 KiB | verity superblock | hash tree ... |
//! ```
//!
//! Stage 0 knows only the root hash (`berth.verity=`). It reads the
//! filesystem superblock at the start of the disk to learn where the data
//! ends ([`fs_data_end`]), the 512-byte verity superblock at that offset
//! ([`parse_superblock`]: salt, block sizes, data block count), checks the
//! two agree, and builds the `verity` target line ([`VerityTarget`]) that
//! `dm.rs` loads. None of this is trusted: a forged superblock only yields
//! a table whose hash tree does not match the root hash, and the kernel
//! then fails every read. The superblock layout is cryptsetup's
//! (`lib/verity/verity.c`, `struct verity_sb`), the table is the kernel's
//! (Documentation/admin-guide/device-mapper/verity.rst).

/// Bytes of the verity superblock at the start of the hash area.
pub const SUPERBLOCK_BYTES: usize = 512;
/// `signature` of `struct verity_sb`.
pub const SUPERBLOCK_MAGIC: &[u8; 8] = b"verity\0\0";
/// The builder's (and cryptsetup's default) block size; the data end is
/// rounded up to it, since that is where the builder puts the superblock.
pub const BLOCK: u64 = 4096;
/// How much of the start of the disk [`fs_data_end`] wants.
pub const FS_HEAD_BYTES: usize = 4096;

const EROFS_MAGIC: u32 = 0xE0F5_E1E2;
const EROFS_SB: usize = 1024;
/// The longest salt `struct verity_sb` holds.
const MAX_SALT: usize = 256;

/// The image on the root device is not one stage 0 can verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerityError {
    #[error("the first {got} bytes of the device are too few to find the filesystem's size")]
    ShortHead { got: usize },
    #[error("neither EROFS nor squashfs: cannot tell where the data ends")]
    UnknownFilesystem,
    #[error("EROFS block size 2^{0} is not supported")]
    ErofsBlockSize(u8),
    #[error("no dm-verity superblock at byte {offset} (the image was built with --no-verity?)")]
    NoSuperblock { offset: u64 },
    #[error("dm-verity superblock version {0} is not supported (expected 1)")]
    Version(u32),
    #[error("dm-verity hash type {0} is not supported (expected 1)")]
    HashType(u32),
    #[error("dm-verity hash algorithm {0:?} is not supported (expected sha256)")]
    Algorithm(String),
    #[error("dm-verity {which} block size {size} is not a power of two from 512 to 4096")]
    BlockSize { which: &'static str, size: u32 },
    #[error("dm-verity salt of {0} bytes is longer than 256")]
    Salt(u16),
    #[error("the dm-verity superblock covers {verity} bytes of data but the filesystem ends at {filesystem}")]
    SizeMismatch { verity: u64, filesystem: u64 },
}

/// `struct verity_sb`, the fields the table needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub version: u32,
    pub hash_type: u32,
    pub uuid: [u8; 16],
    pub algorithm: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Vec<u8>,
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

/// Where the filesystem at the start of a device ends, rounded up to
/// [`BLOCK`]: EROFS `blocks << blkszbits` (superblock at byte 1024),
/// squashfs `bytes_used` (byte 40). `head` is the first
/// [`FS_HEAD_BYTES`] of the device.
pub fn fs_data_end(head: &[u8]) -> Result<u64, VerityError> {
    if head.len() < EROFS_SB + 40 {
        return Err(VerityError::ShortHead { got: head.len() });
    }
    if head[..4] == *b"hsqs" {
        return Ok(round_up(le64(head, 40), BLOCK));
    }
    if le32(head, EROFS_SB) == EROFS_MAGIC {
        let blkszbits = head[EROFS_SB + 12];
        if !(9..=16).contains(&blkszbits) {
            return Err(VerityError::ErofsBlockSize(blkszbits));
        }
        let blocks = u64::from(le32(head, EROFS_SB + 36));
        return Ok(round_up(blocks << blkszbits, BLOCK));
    }
    Err(VerityError::UnknownFilesystem)
}

/// Parses the 512-byte verity superblock found at byte `offset` (the
/// offset only names the place in errors).
pub fn parse_superblock(b: &[u8], offset: u64) -> Result<Superblock, VerityError> {
    if b.len() < SUPERBLOCK_BYTES || b[..8] != *SUPERBLOCK_MAGIC {
        return Err(VerityError::NoSuperblock { offset });
    }
    let version = le32(b, 8);
    if version != 1 {
        return Err(VerityError::Version(version));
    }
    let hash_type = le32(b, 12);
    if hash_type != 1 {
        return Err(VerityError::HashType(hash_type));
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[16..32]);
    let name = &b[32..64];
    let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
    let algorithm = String::from_utf8_lossy(name).into_owned();
    if algorithm != "sha256" {
        return Err(VerityError::Algorithm(algorithm));
    }
    let block_size = |which, at| {
        let size = le32(b, at);
        if size.is_power_of_two() && (512..=BLOCK as u32).contains(&size) {
            Ok(size)
        } else {
            Err(VerityError::BlockSize { which, size })
        }
    };
    let data_block_size = block_size("data", 64)?;
    let hash_block_size = block_size("hash", 68)?;
    let data_blocks = le64(b, 72);
    let salt_size = u16::from_le_bytes([b[80], b[81]]);
    if usize::from(salt_size) > MAX_SALT {
        return Err(VerityError::Salt(salt_size));
    }
    Ok(Superblock {
        version,
        hash_type,
        uuid,
        algorithm,
        data_block_size,
        hash_block_size,
        data_blocks,
        salt: b[88..88 + usize::from(salt_size)].to_vec(),
    })
}

/// One `verity` target over the whole data area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityTarget {
    /// Data and hash device (the same disk).
    pub device: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    /// First hash block, in hash blocks from the start of the device: the
    /// block after the superblock.
    pub hash_start_block: u64,
    pub algorithm: String,
    pub root_hash: String,
    pub salt: Vec<u8>,
}

impl VerityTarget {
    /// The target for `device`, whose filesystem ends at `data_end` where
    /// the superblock `sb` was found, checked against each other.
    pub fn new(
        device: &str,
        root_hash: &str,
        data_end: u64,
        sb: &Superblock,
    ) -> Result<VerityTarget, VerityError> {
        let covered = sb.data_blocks * u64::from(sb.data_block_size);
        if covered != data_end {
            return Err(VerityError::SizeMismatch {
                verity: covered,
                filesystem: data_end,
            });
        }
        // cryptsetup's VERITY_hash_offset_block(): the hash tree starts at
        // the first hash block after the superblock.
        let hash_block = u64::from(sb.hash_block_size);
        let hash_start_block = (data_end + SUPERBLOCK_BYTES as u64).div_ceil(hash_block);
        Ok(VerityTarget {
            device: device.to_owned(),
            data_block_size: sb.data_block_size,
            hash_block_size: sb.hash_block_size,
            data_blocks: sb.data_blocks,
            hash_start_block,
            algorithm: sb.algorithm.clone(),
            root_hash: root_hash.to_owned(),
            salt: sb.salt.clone(),
        })
    }

    /// Length of the verified device in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.data_blocks * u64::from(self.data_block_size) / 512
    }

    /// The target's parameters, as `DM_TABLE_LOAD` takes them: version 1,
    /// data device, hash device, block sizes, data blocks, hash start,
    /// algorithm, root hash, salt (`-` for none).
    pub fn params(&self) -> String {
        let salt = if self.salt.is_empty() {
            "-".to_owned()
        } else {
            hex(&self.salt)
        };
        format!(
            "1 {dev} {dev} {} {} {} {} {} {} {salt}",
            self.data_block_size,
            self.hash_block_size,
            self.data_blocks,
            self.hash_start_block,
            self.algorithm,
            self.root_hash,
            dev = self.device,
        )
    }

    /// The whole table line, as `dmsetup table` prints it.
    pub fn table_line(&self) -> String {
        format!("0 {} verity {}", self.sectors(), self.params())
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "4bd5902c7f765f14cca1871176470d5c78c75c18b85a763584632993d49a5fcd";

    fn erofs_head(blkszbits: u8, blocks: u32) -> Vec<u8> {
        let mut h = vec![0u8; FS_HEAD_BYTES];
        h[EROFS_SB..EROFS_SB + 4].copy_from_slice(&EROFS_MAGIC.to_le_bytes());
        h[EROFS_SB + 12] = blkszbits;
        h[EROFS_SB + 36..EROFS_SB + 40].copy_from_slice(&blocks.to_le_bytes());
        h
    }

    fn squashfs_head(bytes_used: u64) -> Vec<u8> {
        let mut h = vec![0u8; FS_HEAD_BYTES];
        h[..4].copy_from_slice(b"hsqs");
        h[40..48].copy_from_slice(&bytes_used.to_le_bytes());
        h
    }

    /// A superblock as `veritysetup format` writes it.
    fn superblock(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = vec![0u8; SUPERBLOCK_BYTES];
        b[..8].copy_from_slice(SUPERBLOCK_MAGIC);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&1u32.to_le_bytes());
        b[16..32].copy_from_slice(&[0xaa; 16]);
        b[32..38].copy_from_slice(b"sha256");
        b[64..68].copy_from_slice(&4096u32.to_le_bytes());
        b[68..72].copy_from_slice(&4096u32.to_le_bytes());
        b[72..80].copy_from_slice(&50u64.to_le_bytes());
        b[80..82].copy_from_slice(&32u16.to_le_bytes());
        for (i, s) in b[88..120].iter_mut().enumerate() {
            *s = i as u8;
        }
        edit(&mut b);
        b
    }

    #[test]
    fn data_end_table() {
        let cases: Vec<(&str, Vec<u8>, Result<u64, VerityError>)> = vec![
            ("erofs 4k", erofs_head(12, 50), Ok(204_800)),
            (
                "erofs 512-byte blocks rounded up",
                erofs_head(9, 3),
                Ok(4096),
            ),
            ("erofs empty", erofs_head(12, 0), Ok(0)),
            (
                "erofs absurd block size",
                erofs_head(40, 1),
                Err(VerityError::ErofsBlockSize(40)),
            ),
            ("squashfs rounded up", squashfs_head(4097), Ok(8192)),
            ("squashfs aligned", squashfs_head(8192), Ok(8192)),
            (
                "zeros",
                vec![0u8; 4096],
                Err(VerityError::UnknownFilesystem),
            ),
            (
                "short",
                vec![0u8; 100],
                Err(VerityError::ShortHead { got: 100 }),
            ),
        ];
        for (name, head, want) in cases {
            assert_eq!(fs_data_end(&head), want, "{name}");
        }
    }

    #[test]
    fn superblock_table() {
        let good = Superblock {
            version: 1,
            hash_type: 1,
            uuid: [0xaa; 16],
            algorithm: "sha256".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 50,
            salt: (0..32).collect(),
        };
        let no_sb = Err(VerityError::NoSuperblock { offset: 7 });
        let cases: Vec<(&str, Vec<u8>, Result<Superblock, VerityError>)> = vec![
            ("veritysetup's", superblock(|_| {}), Ok(good.clone())),
            (
                "no salt",
                superblock(|b| b[80..82].copy_from_slice(&0u16.to_le_bytes())),
                Ok(Superblock {
                    salt: Vec::new(),
                    ..good.clone()
                }),
            ),
            ("zeros", vec![0u8; 512], no_sb.clone()),
            ("short", superblock(|b| b.truncate(100)), no_sb.clone()),
            (
                "version 2",
                superblock(|b| b[8] = 2),
                Err(VerityError::Version(2)),
            ),
            (
                "chrome os hash type",
                superblock(|b| b[12] = 0),
                Err(VerityError::HashType(0)),
            ),
            (
                "sha1",
                superblock(|b| b[32..38].copy_from_slice(b"sha1\0\0")),
                Err(VerityError::Algorithm("sha1".into())),
            ),
            (
                "data block 1000",
                superblock(|b| b[64..68].copy_from_slice(&1000u32.to_le_bytes())),
                Err(VerityError::BlockSize {
                    which: "data",
                    size: 1000,
                }),
            ),
            (
                "hash block 64k",
                superblock(|b| b[68..72].copy_from_slice(&65536u32.to_le_bytes())),
                Err(VerityError::BlockSize {
                    which: "hash",
                    size: 65536,
                }),
            ),
            (
                "salt too long",
                superblock(|b| b[80..82].copy_from_slice(&300u16.to_le_bytes())),
                Err(VerityError::Salt(300)),
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(parse_superblock(&bytes, 7), want, "{name}");
        }
    }

    #[test]
    fn table_lines() {
        let sb = parse_superblock(&superblock(|_| {}), 204_800).expect("superblock");
        let salt = hex(&sb.salt);
        let t = VerityTarget::new("/dev/vda", ROOT, 204_800, &sb).expect("target");
        assert_eq!(t.sectors(), 400);
        assert_eq!(t.hash_start_block, 51);
        assert_eq!(
            t.table_line(),
            format!("0 400 verity 1 /dev/vda /dev/vda 4096 4096 50 51 sha256 {ROOT} {salt}")
        );
        let unsalted = VerityTarget {
            salt: Vec::new(),
            ..t.clone()
        };
        assert!(unsalted.params().ends_with(&format!("{ROOT} -")));
        // 1 KiB hash blocks: the superblock takes the first of them.
        let small = Superblock {
            hash_block_size: 1024,
            ..sb.clone()
        };
        let t = VerityTarget::new("/dev/vda", ROOT, 204_800, &small).expect("target");
        assert_eq!(t.hash_start_block, 201);
        assert_eq!(
            VerityTarget::new("/dev/vda", ROOT, 208_896, &sb),
            Err(VerityError::SizeMismatch {
                verity: 204_800,
                filesystem: 208_896
            })
        );
    }

    /// Cross-check with cryptsetup: the superblock `veritysetup format`
    /// writes parses to what it was told, and the table names the hash
    /// start `veritysetup` itself would use.
    #[test]
    fn reads_what_veritysetup_writes() {
        let Some(veritysetup) = ["/usr/sbin/veritysetup", "/sbin/veritysetup"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            eprintln!("skipped: veritysetup not installed (apt-get install cryptsetup-bin)");
            return;
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        let img = tmp.path().join("img");
        // A fake 3-block EROFS image.
        let mut data = erofs_head(12, 3);
        data.resize(3 * 4096, 0x5a);
        std::fs::write(&img, &data).expect("write");
        let salt = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let out = std::process::Command::new(veritysetup)
            .arg("format")
            .args([
                "--hash=sha256",
                "--data-block-size=4096",
                "--hash-block-size=4096",
            ])
            .args(["--data-blocks=3", "--hash-offset=12288"])
            .arg(format!("--salt={salt}"))
            .args([&img, &img])
            .output()
            .expect("run veritysetup");
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let root = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .map(str::trim)
            .expect("root hash line");
        let bytes = std::fs::read(&img).expect("read");
        let end = fs_data_end(&bytes[..FS_HEAD_BYTES]).expect("data end");
        assert_eq!(end, 12288);
        let sb = parse_superblock(&bytes[end as usize..], end).expect("superblock");
        assert_eq!(sb.data_blocks, 3);
        assert_eq!(hex(&sb.salt), salt);
        let t = VerityTarget::new("/dev/vda", root, end, &sb).expect("target");
        assert_eq!(
            t.table_line(),
            format!("0 24 verity 1 /dev/vda /dev/vda 4096 4096 3 4 sha256 {root} {salt}")
        );
        // The tree (one hash block for three data blocks) is right behind
        // the superblock: the block the table names.
        assert_eq!(bytes.len() as u64, (t.hash_start_block + 1) * 4096);
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            VerityError::NoSuperblock { offset: 4096 }.to_string(),
            "no dm-verity superblock at byte 4096 (the image was built with --no-verity?)"
        );
    }
}
