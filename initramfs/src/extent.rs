//! Where a file's bytes lie in an EROFS image, from `dump.erofs -e
//! --path=PATH` (erofs-utils 1.5): for tests that corrupt one file of a
//! built `root.img` and expect dm-verity to refuse it.
//!
//! Offsets are from the start of the image, which is also the start of
//! `root.img` (the verity data area begins at byte 0). A small file is
//! often stored inline, in the same 4 KiB block as its inode and other
//! inodes, so corrupting it may break more than that one file; a file of
//! more than 4 KiB that does not compress well gets blocks of its own. A
//! compressed file's extent is its compressed data: corrupting any byte of
//! it is still caught when the file is read.

use std::path::{Path, PathBuf};

use crate::tool::{ToolError, DUMP_EROFS};

/// One extent as dump.erofs prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Offset within the file.
    pub logical: u64,
    pub logical_len: u64,
    /// Offset within the image.
    pub physical: u64,
    pub physical_len: u64,
}

/// dump.erofs could not be run.
#[derive(Debug, thiserror::Error)]
#[error("list the extents of {path} in {image}")]
pub struct ExtentError {
    image: PathBuf,
    path: String,
    #[source]
    source: ToolError,
}

/// Parses the extent table of `dump.erofs -e` (`  0:  0..  26 |  26 :
/// 204256..  204282 |  26`). Lines of another shape are skipped.
pub fn parse_extents(output: &str) -> Vec<Extent> {
    let range = |s: &str| -> Option<u64> {
        let (start, _end) = s.trim().split_once("..")?;
        start.trim().parse().ok()
    };
    output
        .lines()
        .filter_map(|line| {
            let (index, rest) = line.split_once(':')?;
            index.trim().parse::<u64>().ok()?;
            let (logical, rest) = rest.split_once('|')?;
            let (logical_len, rest) = rest.split_once(':')?;
            let (physical, physical_len) = rest.split_once('|')?;
            Some(Extent {
                logical: range(logical)?,
                logical_len: logical_len.trim().parse().ok()?,
                physical: range(physical)?,
                physical_len: physical_len.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The extents of `path` (absolute, inside the image) in `image`; empty
/// for a path the image does not have, or an empty file.
pub fn file_extents(image: &Path, path: &str) -> Result<Vec<Extent>, ExtentError> {
    let out = DUMP_EROFS
        .output(
            DUMP_EROFS
                .command()
                .arg("-e")
                .arg(format!("--path={path}"))
                .arg(image),
        )
        .map_err(|source| ExtentError {
            image: image.to_owned(),
            path: path.to_owned(),
            source,
        })?;
    Ok(parse_extents(&out))
}

/// `(offset, length)` in `image` of the first stored bytes of `path`.
pub fn file_extent(image: &Path, path: &str) -> Result<Option<(u64, u64)>, ExtentError> {
    Ok(file_extents(image, path)?
        .first()
        .map(|e| (e.physical, e.physical_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dump_erofs() {
        let out = "File : /big\nSize: 200000  On-disk size: 200000  regular file\nNID: 6272   Links: 1   Layout: 2   Compression ratio: 100.00%\n\n Ext:   logical offset   |  length :     physical offset    |  length\n   0:        0..  196608 |  196608 :       4096..    200704 |  196608\n   1:   196608..  200000 |    3392 :     200736..    204128 |    3392\n/big: 2 extents found\n";
        assert_eq!(
            parse_extents(out),
            [
                Extent {
                    logical: 0,
                    logical_len: 196_608,
                    physical: 4096,
                    physical_len: 196_608
                },
                Extent {
                    logical: 196_608,
                    logical_len: 3392,
                    physical: 200_736,
                    physical_len: 3392
                },
            ]
        );
        assert_eq!(parse_extents("<E> erofs: read inode failed @ /x\n"), []);
        assert_eq!(parse_extents(""), []);
    }

    #[test]
    fn finds_a_file_in_a_real_image() {
        let have = |p: &str| {
            ["/usr/sbin", "/usr/bin"]
                .iter()
                .any(|d| Path::new(d).join(p).is_file())
        };
        if !have("dump.erofs") || !have("mkfs.erofs") {
            eprintln!("skipped: needs erofs-utils");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).expect("mkdir");
        let text = "unique-manifest-bytes-7f3a\n";
        std::fs::write(tree.join("etc/m.toml"), text).expect("write");
        let img = tmp.path().join("img");
        let opts = crate::rootimg::ErofsOptions {
            timestamp: 0,
            uuid: "aaaaaaaa-bbbb-8ccc-9ddd-eeeeeeeeeeee".into(),
            compression: None,
        };
        crate::rootimg::make_image(&tree, &img, &opts).expect("mkfs.erofs");
        let (offset, len) = file_extent(&img, "/etc/m.toml")
            .expect("dump.erofs")
            .expect("the file is there");
        let bytes = std::fs::read(&img).expect("read");
        assert_eq!(
            &bytes[offset as usize..(offset + len) as usize],
            text.as_bytes()
        );
        assert_eq!(file_extent(&img, "/etc/none").expect("dump.erofs"), None);
    }
}
