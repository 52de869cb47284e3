//! Writing into `disk.img` without allocating zeros: the image is made
//! with `set_len` (one hole) and only blocks holding something are
//! written, so a 400 MiB disk with 40 MiB of content takes 40 MiB on the
//! builder's disk, and `cp --sparse`, `qemu-img convert` and `bmaptool`
//! skip the rest.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};

/// The granularity of the zero check: the page and filesystem block size.
pub const BLOCK: usize = 4096;
static ZEROS: [u8; BLOCK] = [0; BLOCK];
/// How much is read at a time.
const CHUNK: usize = 1024 * 1024;

/// Writes `data` at byte `offset` of `file`, skipping all-zero
/// [`BLOCK`]s (`data` is taken to start block-aligned); runs of non-zero
/// blocks are written with one call each. Returns the bytes written.
pub fn write_at(file: &File, offset: u64, data: &[u8]) -> io::Result<u64> {
    let mut written = 0u64;
    let mut run: Option<usize> = None;
    let blocks = data.len().div_ceil(BLOCK);
    for i in 0..=blocks {
        let zero = i == blocks || {
            let block = &data[i * BLOCK..((i + 1) * BLOCK).min(data.len())];
            // A comparison of slices is one memcmp, fast in debug builds
            // too (which the tests and `cargo run` use).
            block == &ZEROS[..block.len()]
        };
        match (zero, run) {
            (false, None) => run = Some(i * BLOCK),
            (true, Some(from)) => {
                let to = (i * BLOCK).min(data.len());
                file.write_all_at(&data[from..to], offset + from as u64)?;
                written += (to - from) as u64;
                run = None;
            }
            _ => {}
        }
    }
    Ok(written)
}

/// Copies all of `from` to byte `offset` of `file`, sparsely; returns the
/// bytes copied (zeros included).
pub fn copy_into(from: &mut impl Read, file: &File, offset: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    loop {
        let n = read_full(from, &mut buf)?;
        if n == 0 {
            return Ok(at);
        }
        write_at(file, offset + at, &buf[..n])?;
        at += n as u64;
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(from: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The bytes `file` takes on disk (`st_blocks` × 512).
pub fn allocated(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_blocks_are_skipped() {
        // (non-zero blocks of a 6-block input, bytes written)
        let table: [(&[usize], u64); 5] = [
            (&[], 0),
            (&[0], 4096),
            (&[5], 4096),
            (&[1, 2, 4], 3 * 4096),
            (&[0, 1, 2, 3, 4, 5], 6 * 4096),
        ];
        for (nonzero, want) in table {
            let tmp = tempfile::tempfile().expect("tempfile");
            tmp.set_len(1 << 20).expect("set_len");
            let mut data = vec![0u8; 6 * BLOCK];
            for &b in nonzero {
                data[b * BLOCK + 17] = 0xa5;
            }
            assert_eq!(write_at(&tmp, 8 * 4096, &data).expect("write"), want);
            let mut back = vec![0u8; data.len()];
            tmp.read_exact_at(&mut back, 8 * 4096).expect("read");
            assert_eq!(back, data, "{nonzero:?}");
        }
    }

    #[test]
    fn copy_keeps_a_partial_last_block_and_stays_sparse() {
        let tmp = tempfile::tempfile().expect("tempfile");
        tmp.set_len(8 << 20).expect("set_len");
        let mut data = vec![0u8; 3 * CHUNK + 100];
        data[CHUNK + 5] = 1;
        *data.last_mut().expect("non-empty") = 2;
        let n = copy_into(&mut data.as_slice(), &tmp, 4096).expect("copy");
        assert_eq!(n, data.len() as u64);
        let mut back = vec![0u8; data.len()];
        tmp.read_exact_at(&mut back, 4096).expect("read");
        assert_eq!(back, data);
        // Two blocks written; a filesystem without holes would say 8 MiB.
        let used = allocated(&tmp).expect("stat");
        assert!(used <= 64 * 1024, "{used} bytes allocated");
    }
}
