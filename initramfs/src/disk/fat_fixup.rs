//! Repairs the two flaws fatfs 0.3.6 (the last release) leaves in the
//! folders it makes on FAT32, found by `fsck.fat` and fixed upstream only
//! after that release (rafalh/rust-fatfs#117, pull requests #99 and #100):
//!
//! - with long names on (the `alloc` feature, which `loader.conf` and
//!   `initramfs.img` need), `create_dir` writes a long-name record before
//!   `.` and before `..`, but `.` and `..` must be a folder's first two
//!   records. Here `.` and `..` move to slots 0 and 1 and the two slots
//!   after them are marked free (`0xe5`), as a deleted file's are.
//! - the `..` of a folder in the root names the root's cluster, where FAT32
//!   wants 0.
//!
//! It walks the volume's folders from the root, and changes nothing on a
//! volume without those flaws, so it can run after every write.

/// A directory record's size.
const RECORD: usize = 32;
/// The attribute byte of a long-name record.
const LONG_NAME: u8 = 0x0f;
const DIRECTORY: u8 = 0x10;
const FREE: u8 = 0xe5;
const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";

/// A FAT32 volume's geometry, from its boot sector.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    fat_start: usize,
    data_start: usize,
    cluster_bytes: usize,
    root_cluster: u32,
}

fn u16_at(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Geometry {
    fn read(image: &[u8]) -> Option<Geometry> {
        if image.len() < 512 {
            return None;
        }
        let sector = u16_at(image, 11);
        let per_cluster = usize::from(image[13]);
        let reserved = u16_at(image, 14);
        let fats = usize::from(image[16]);
        let fat_sectors = usize::try_from(u32_at(image, 36)).ok()?;
        Some(Geometry {
            fat_start: reserved * sector,
            data_start: (reserved + fats * fat_sectors) * sector,
            cluster_bytes: per_cluster * sector,
            root_cluster: u32_at(image, 44),
        })
    }

    /// Byte offset of `cluster`'s data, if it is inside `len` bytes.
    fn offset(&self, cluster: u32, len: usize) -> Option<usize> {
        let index = usize::try_from(cluster.checked_sub(2)?).ok()?;
        let at = self
            .data_start
            .checked_add(index.checked_mul(self.cluster_bytes)?)?;
        (at.checked_add(self.cluster_bytes)? <= len).then_some(at)
    }

    /// The clusters of the chain starting at `first` (at most `limit`).
    fn chain(&self, image: &[u8], first: u32, limit: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut c = first;
        while (2..0x0fff_fff8).contains(&c) && out.len() < limit {
            out.push(c);
            let at = self.fat_start + 4 * c as usize;
            if at + 4 > image.len() {
                break;
            }
            c = u32_at(image, at) & 0x0fff_ffff;
        }
        out
    }
}

/// Fixes every folder of the FAT32 volume in `image`; returns how many
/// records it changed.
pub fn fix_directories(image: &mut [u8]) -> usize {
    let Some(geo) = Geometry::read(image) else {
        return 0;
    };
    let limit = image.len() / geo.cluster_bytes.max(1);
    let mut changed = 0;
    // (first cluster of a folder, whether its parent is the root, whether
    // it is the root)
    let mut todo = vec![(geo.root_cluster, false, true)];
    let mut seen = std::collections::HashSet::new();
    while let Some((first, parent_is_root, is_root)) = todo.pop() {
        // A cycle (a damaged volume) ends the walk.
        if !seen.insert(first) {
            continue;
        }
        if !is_root {
            changed += fix_dots(image, &geo, first, parent_is_root);
        }
        for cluster in geo.chain(image, first, limit) {
            let Some(at) = geo.offset(cluster, image.len()) else {
                break;
            };
            for record in image[at..at + geo.cluster_bytes].chunks(RECORD) {
                match (record[0], record[11]) {
                    (0, _) => break,
                    (FREE, _) | (_, LONG_NAME) => continue,
                    (b'.', _) => continue,
                    (_, attr) if attr & DIRECTORY != 0 => {
                        let hi = u32::from(u16::from_le_bytes([record[20], record[21]]));
                        let lo = u32::from(u16::from_le_bytes([record[26], record[27]]));
                        todo.push(((hi << 16) | lo, is_root, false));
                    }
                    _ => {}
                }
            }
        }
    }
    changed
}

/// Puts `.` and `..` first in the folder starting at `cluster`, and
/// points a root child's `..` at cluster 0.
fn fix_dots(image: &mut [u8], geo: &Geometry, cluster: u32, parent_is_root: bool) -> usize {
    let Some(at) = geo.offset(cluster, image.len()) else {
        return 0;
    };
    if geo.cluster_bytes < 4 * RECORD {
        return 0;
    }
    let slot = |i: usize| at + i * RECORD;
    let name = |image: &[u8], i: usize| image[slot(i)..slot(i) + 11].to_vec();
    let mut changed = 0;
    let misplaced = image[slot(0) + 11] == LONG_NAME
        && name(image, 1) == DOT
        && image[slot(2) + 11] == LONG_NAME
        && name(image, 3) == DOTDOT;
    if misplaced {
        image.copy_within(slot(1)..slot(2), slot(0));
        image.copy_within(slot(3)..slot(4), slot(1));
        image[slot(2)] = FREE;
        image[slot(3)] = FREE;
        changed += 4;
    }
    if parent_is_root && name(image, 1) == DOTDOT {
        let dotdot = slot(1);
        let cluster_fields = [dotdot + 20, dotdot + 21, dotdot + 26, dotdot + 27];
        if cluster_fields.iter().any(|&i| image[i] != 0) {
            for i in cluster_fields {
                image[i] = 0;
            }
            changed += 1;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::esp;
    use std::io::Cursor;

    /// The first four records of folder `path`'s first cluster, and that
    /// cluster.
    fn head(image: &[u8], path: &[&str]) -> (Vec<[u8; RECORD]>, u32) {
        let geo = Geometry::read(image).expect("FAT32");
        let mut cluster = geo.root_cluster;
        for name in path {
            let at = geo.offset(cluster, image.len()).expect("in the image");
            let record = image[at..at + geo.cluster_bytes]
                .chunks(RECORD)
                .find(|r| r[11] != LONG_NAME && r[..11].starts_with(name.as_bytes()))
                .unwrap_or_else(|| panic!("no {name}"));
            let hi = u32::from(u16::from_le_bytes([record[20], record[21]]));
            let lo = u32::from(u16::from_le_bytes([record[26], record[27]]));
            cluster = (hi << 16) | lo;
        }
        let at = geo.offset(cluster, image.len()).expect("in the image");
        let records = (0..4)
            .map(|i| {
                let mut r = [0u8; RECORD];
                r.copy_from_slice(&image[at + i * RECORD..at + (i + 1) * RECORD]);
                r
            })
            .collect();
        (records, cluster)
    }

    fn cluster_of(record: &[u8; RECORD]) -> u32 {
        (u32::from(u16::from_le_bytes([record[20], record[21]])) << 16)
            | u32::from(u16::from_le_bytes([record[26], record[27]]))
    }

    #[test]
    fn dots_come_first_and_a_root_childs_dotdot_is_zero() {
        let mut image = Cursor::new(vec![0u8; 64 << 20]);
        esp::format(&mut image, 64 << 20, 7).expect("format");
        {
            let fs = esp::open(&mut image, 0).expect("open");
            fs.root_dir()
                .create_dir("OUTER")
                .and_then(|d| d.create_dir("INNER"))
                .expect("create folders");
        }
        let mut image = image.into_inner();
        // fatfs 0.3.6 as released: a long-name record ahead of `.`. When
        // this fails, fatfs stopped doing that and this module can go.
        let (before, _) = head(&image, &["OUTER"]);
        assert_eq!(before[0][11], LONG_NAME, "fatfs fixed: drop fat_fixup");

        assert!(fix_directories(&mut image) > 0);
        // (path, its parent's cluster as `..` must name it; None: the root)
        let (_, outer) = head(&image, &["OUTER"]);
        for (path, parent) in [(&["OUTER"][..], None), (&["OUTER", "INNER"], Some(outer))] {
            let (records, own) = head(&image, path);
            assert_eq!(&records[0][..11], DOT, "{path:?}");
            assert_eq!(cluster_of(&records[0]), own, "{path:?}");
            assert_eq!(&records[1][..11], DOTDOT, "{path:?}");
            assert_eq!(cluster_of(&records[1]), parent.unwrap_or(0), "{path:?}");
            assert_eq!((records[2][0], records[3][0]), (FREE, FREE), "{path:?}");
        }
        assert_eq!(
            fix_directories(&mut image),
            0,
            "a second pass changes nothing"
        );
    }
}
