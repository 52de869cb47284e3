//! The empty STATE filesystem, kept in the root image so that `berth
//! reset --state` can put it back without a mkfs on the node.
//!
//! The image builder makes STATE with `mkfs.ext4` into a file of its own;
//! only a few dozen of its 4 KiB blocks are not zero (superblock, group
//! descriptors, bitmaps, `/`, `lost+found`, the journal's superblock). The
//! template keeps those blocks and the filesystem's size:
//!
//! ```text
//! "berth-state-template\n"        magic
//! u64 le                          size of the filesystem in bytes
//! u32 le                          number of runs
//! per run: u64 le offset, u32 le length, the bytes
//! ```
//!
//! Runs are in increasing order, do not overlap and lie inside the size.
//! Whoever restores it zeroes the first `size` bytes and writes the runs:
//! the zeroes matter (the journal is assumed empty, the inode tables
//! zeroed).

/// The first bytes of a template.
pub const MAGIC: &[u8] = b"berth-state-template\n";
/// The block size the encoder looks at.
const BLOCK: usize = 4096;

/// A run of bytes that are not all zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run<'a> {
    pub offset: u64,
    pub bytes: &'a [u8],
}

/// A decoded template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<'a> {
    /// The filesystem's size in bytes.
    pub size: u64,
    pub runs: Vec<Run<'a>>,
}

/// A template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("not a STATE template (bad magic)")]
    Magic,
    #[error("the template ends early, in {0}")]
    Short(&'static str),
    #[error("run {index} at {offset} (+{len}) is out of order or beyond the size {size}")]
    BadRun {
        index: u32,
        offset: u64,
        len: u64,
        size: u64,
    },
    #[error("{0} bytes after the last run")]
    Trailing(usize),
}

/// The template of `image` (a whole filesystem image): every 4 KiB block
/// that is not all zero, neighbours merged into one run.
pub fn encode(image: &[u8]) -> Vec<u8> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, block) in image.chunks(BLOCK).enumerate() {
        if block.iter().all(|b| *b == 0) {
            continue;
        }
        let start = i * BLOCK;
        match runs.last_mut() {
            Some((s, len)) if *s + *len == start => *len += block.len(),
            _ => runs.push((start, block.len())),
        }
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(image.len() as u64).to_le_bytes());
    out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    for (start, len) in runs {
        out.extend_from_slice(&(start as u64).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&image[start..start + len]);
    }
    out
}

/// Reads a template, checking every run.
pub fn decode(data: &[u8]) -> Result<Template<'_>, TemplateError> {
    let rest = data.strip_prefix(MAGIC).ok_or(TemplateError::Magic)?;
    let mut r = Reader(rest);
    let size = r.u64("the size")?;
    let count = r.u32("the run count")?;
    let mut runs = Vec::new();
    let mut end = 0u64;
    for index in 0..count {
        let offset = r.u64("a run's offset")?;
        let len = u64::from(r.u32("a run's length")?);
        let bad = TemplateError::BadRun {
            index,
            offset,
            len,
            size,
        };
        if offset < end || offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(bad);
        }
        let bytes = r.take(len, "a run's bytes")?;
        end = offset + len;
        runs.push(Run { offset, bytes });
    }
    if !r.0.is_empty() {
        return Err(TemplateError::Trailing(r.0.len()));
    }
    Ok(Template { size, runs })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], TemplateError> {
        let n = usize::try_from(n).map_err(|_| TemplateError::Short(what))?;
        if self.0.len() < n {
            return Err(TemplateError::Short(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, TemplateError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, TemplateError> {
        let b = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a template's runs over zeroes, as a reset does.
    fn restore(t: &Template<'_>) -> Vec<u8> {
        let mut image = vec![0u8; usize::try_from(t.size).expect("size")];
        for run in &t.runs {
            let at = usize::try_from(run.offset).expect("offset");
            image[at..at + run.bytes.len()].copy_from_slice(run.bytes);
        }
        image
    }

    #[test]
    fn keeps_only_what_is_not_zero_and_restores_it_exactly() {
        let mut image = vec![0u8; 64 * BLOCK + 100];
        image[5] = 1; // block 0
        image[BLOCK + 7] = 2; // block 1, merged with 0
        image[10 * BLOCK] = 3; // a run of its own
        image[64 * BLOCK + 99] = 4; // the short last block
        let data = encode(&image);
        let t = decode(&data).expect("decode");
        assert_eq!(t.size, image.len() as u64);
        let runs: Vec<(u64, usize)> = t.runs.iter().map(|r| (r.offset, r.bytes.len())).collect();
        assert_eq!(
            runs,
            [
                (0, 2 * BLOCK),
                (10 * BLOCK as u64, BLOCK),
                (64 * BLOCK as u64, 100)
            ]
        );
        assert_eq!(restore(&t), image);
        let empty = encode(&[0u8; 3 * BLOCK]);
        assert_eq!(decode(&empty).expect("empty").runs, []);
    }

    #[test]
    fn damaged_templates_are_refused_with_a_reason() {
        let mut image = vec![0u8; 4 * BLOCK];
        image[0] = 1;
        image[2 * BLOCK] = 1;
        let good = encode(&image);
        assert_eq!(decode(b"not a template"), Err(TemplateError::Magic));
        assert_eq!(
            decode(&good[..good.len() - 1]),
            Err(TemplateError::Short("a run's bytes"))
        );
        assert_eq!(
            decode(&good[..MAGIC.len() + 3]),
            Err(TemplateError::Short("the size"))
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(TemplateError::Trailing(1)));
        // The size shrunk below the last run.
        let mut small = good.clone();
        small[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&(2 * BLOCK as u64).to_le_bytes());
        assert!(matches!(
            decode(&small),
            Err(TemplateError::BadRun { index: 1, .. })
        ));
        // The second run moved before the first one's end.
        let second = MAGIC.len() + 12 + 12 + BLOCK;
        let mut overlap = good;
        overlap[second..second + 8].copy_from_slice(&100u64.to_le_bytes());
        assert!(matches!(
            decode(&overlap),
            Err(TemplateError::BadRun { index: 1, .. })
        ));
    }
}
