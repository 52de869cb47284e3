//! Growing STATE into the rest of its disk, as `growpart` and `resize2fs`
//! would: a disk image of a few hundred MiB written to an 8 GiB disk gets
//! an 8 GiB STATE on its first boot.
//!
//! Three steps, each checked against what the disk says now rather than
//! remembered, so a grow cut off by a power loss is finished by the next
//! boot:
//!
//! 1. **The partition table** ([`plan_table`]): the GPT's backup header
//!    moves to the disk's last sector, the last usable sector follows it,
//!    and STATE, when it is the last partition, is extended to the end (a
//!    whole number of alignment units). The backup copy is written first,
//!    then the primary: until the primary is written, the old table (and
//!    its old backup, which nothing has overwritten yet) still describes
//!    the disk.
//! 2. **The kernel's view**: the partition's new size is announced with
//!    `BLKPG_RESIZE_PARTITION`, which works while other partitions of the
//!    disk are in use (a re-read of the whole table would not).
//! 3. **The filesystem**: once mounted, ext4 is grown online to the
//!    partition's size with `EXT4_IOC_RESIZE_FS` ([`fs_target_blocks`]).

/// What the partition table says, in sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableView {
    pub backup_lba: u64,
    pub last_usable_lba: u64,
    /// Sectors the partition entry array takes (32 for 128 entries of
    /// 128 bytes in 512-byte sectors).
    pub entry_sectors: u64,
    pub state_start: u64,
    pub state_end: u64,
    /// Where the next partition after STATE starts, if there is one: STATE
    /// then grows only up to it.
    pub next_start: Option<u64>,
    /// Partition alignment in sectors (1 MiB).
    pub align: u64,
}

/// The table after the grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePlan {
    pub backup_lba: u64,
    pub last_usable_lba: u64,
    pub state_end: u64,
}

/// The table cannot be grown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the disk has {disk_sectors} sectors, but its partition table ends at sector {backup_lba}: the disk is smaller than the image written to it, or the table is damaged; leaving it alone")]
    DiskSmaller { disk_sectors: u64, backup_lba: u64 },
    #[error("STATE ends at sector {state_end}, past the table's last usable sector {last_usable_lba}; leaving it alone")]
    StateOutside {
        state_end: u64,
        last_usable_lba: u64,
    },
}

/// The table that spans a disk of `disk_sectors`, or `None` when `t`
/// already does and STATE already reaches as far as it can.
pub fn plan_table(t: &TableView, disk_sectors: u64) -> Result<Option<TablePlan>, PlanError> {
    let smaller = PlanError::DiskSmaller {
        disk_sectors,
        backup_lba: t.backup_lba,
    };
    if t.backup_lba >= disk_sectors {
        return Err(smaller);
    }
    if t.state_end > t.last_usable_lba {
        return Err(PlanError::StateOutside {
            state_end: t.state_end,
            last_usable_lba: t.last_usable_lba,
        });
    }
    let backup_lba = disk_sectors - 1;
    // The backup entry array sits just before the backup header.
    let Some(last_usable_lba) = backup_lba.checked_sub(t.entry_sectors + 1) else {
        return Err(smaller);
    };
    let limit = match t.next_start {
        Some(next) => next.saturating_sub(1).min(last_usable_lba),
        None => last_usable_lba,
    };
    let align = t.align.max(1);
    let size = (limit + 1).saturating_sub(t.state_start) / align * align;
    let state_end = (t.state_start + size).saturating_sub(1).max(t.state_end);
    let plan = TablePlan {
        backup_lba,
        last_usable_lba,
        state_end,
    };
    let unchanged = backup_lba == t.backup_lba
        && last_usable_lba == t.last_usable_lba
        && state_end == t.state_end;
    Ok((!unchanged).then_some(plan))
}

/// What an ext4 superblock says about the filesystem's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext4Size {
    pub block_size: u64,
    pub blocks: u64,
    /// `INCOMPAT_RECOVER`: not unmounted cleanly; the kernel replays the
    /// journal at the next mount.
    pub needs_recovery: bool,
}

impl Ext4Size {
    pub fn bytes(&self) -> u64 {
        self.block_size * self.blocks
    }
}

/// Bytes of an ext4 superblock: it starts at byte 1024 of the partition.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
pub const SUPERBLOCK_BYTES: usize = 1024;

/// Reads the size fields of an ext4 superblock (`s_blocks_count_lo` at
/// 0x04, `s_log_block_size` at 0x18, `s_magic` 0xEF53 at 0x38,
/// `s_feature_incompat` at 0x60 with `INCOMPAT_64BIT` 0x80,
/// `s_blocks_count_hi` at 0x150); `None` if it is not ext4.
pub fn parse_ext4_superblock(sb: &[u8]) -> Option<Ext4Size> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(sb.get(at..at + 4)?.try_into().ok()?))
    };
    let magic = u16::from_le_bytes(sb.get(0x38..0x3a)?.try_into().ok()?);
    if magic != 0xEF53 {
        return None;
    }
    let log = u32_at(0x18)?;
    if log > 6 {
        return None;
    }
    let incompat = u32_at(0x60)?;
    let mut blocks = u64::from(u32_at(0x04)?);
    if incompat & 0x80 != 0 {
        blocks |= u64::from(u32_at(0x150)?) << 32;
    }
    Some(Ext4Size {
        block_size: 1024 << log,
        blocks,
        needs_recovery: incompat & 0x4 != 0,
    })
}

/// The block count ext4 should grow to on a partition of
/// `partition_bytes`, or `None` when it fills it already (less than one
/// MiB to gain is not worth a resize).
pub fn fs_target_blocks(fs: Ext4Size, partition_bytes: u64) -> Option<u64> {
    let target = partition_bytes / fs.block_size;
    let gain = target.saturating_sub(fs.blocks) * fs.block_size;
    (gain >= 1 << 20).then_some(target)
}

/// `8.0 GiB`, `64.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 2048; // sectors

    /// A freshly built disk.img: 385 MiB, STATE the last 64 MiB.
    fn built() -> TableView {
        let disk = 385 * MIB;
        TableView {
            backup_lba: disk - 1,
            last_usable_lba: disk - 34,
            entry_sectors: 32,
            state_start: 320 * MIB,
            state_end: 384 * MIB - 1,
            next_start: None,
            align: MIB,
        }
    }

    #[test]
    fn table_plans() {
        let gib8 = 8 * 1024 * MIB;
        let grown = TablePlan {
            backup_lba: gib8 - 1,
            last_usable_lba: gib8 - 34,
            // The last whole MiB before the backup array.
            state_end: gib8 - MIB - 1,
        };
        let after = TableView {
            backup_lba: grown.backup_lba,
            last_usable_lba: grown.last_usable_lba,
            state_end: grown.state_end,
            ..built()
        };
        type Planned = Result<Option<TablePlan>, PlanError>;
        let rows: Vec<(&str, TableView, u64, Planned)> = vec![
            ("first boot on 8 GiB", built(), gib8, Ok(Some(grown))),
            ("second boot: nothing to do", after, gib8, Ok(None)),
            ("same size disk", built(), 385 * MIB, Ok(None)),
            (
                "table moved, STATE not yet extended (power cut)",
                TableView {
                    state_end: built().state_end,
                    ..after
                },
                gib8,
                Ok(Some(grown)),
            ),
            (
                "half a MiB more: STATE grows by whole MiBs only",
                built(),
                385 * MIB + 1024,
                Ok(Some(TablePlan {
                    backup_lba: 385 * MIB + 1023,
                    last_usable_lba: 385 * MIB + 990,
                    state_end: 385 * MIB - 1,
                })),
            ),
            (
                "a partition after STATE bounds it",
                TableView {
                    next_start: Some(400 * MIB),
                    ..built()
                },
                gib8,
                Ok(Some(TablePlan {
                    state_end: 400 * MIB - 1,
                    ..grown
                })),
            ),
            (
                "disk smaller than the image",
                built(),
                300 * MIB,
                Err(PlanError::DiskSmaller {
                    disk_sectors: 300 * MIB,
                    backup_lba: 385 * MIB - 1,
                }),
            ),
            (
                "STATE past the usable area",
                TableView {
                    state_end: 385 * MIB,
                    ..built()
                },
                gib8,
                Err(PlanError::StateOutside {
                    state_end: 385 * MIB,
                    last_usable_lba: 385 * MIB - 34,
                }),
            ),
        ];
        for (what, view, disk, want) in rows {
            assert_eq!(plan_table(&view, disk), want, "{what}");
        }
    }

    fn superblock(log: u32, lo: u32, hi: u32, incompat: u32) -> Vec<u8> {
        let mut sb = vec![0u8; SUPERBLOCK_BYTES];
        sb[0x04..0x08].copy_from_slice(&lo.to_le_bytes());
        sb[0x18..0x1c].copy_from_slice(&log.to_le_bytes());
        sb[0x38..0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        sb[0x60..0x64].copy_from_slice(&incompat.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&hi.to_le_bytes());
        sb
    }

    #[test]
    fn superblocks() {
        let rows: Vec<(Vec<u8>, Option<Ext4Size>)> = vec![
            (
                superblock(2, 16384, 0, 0x80),
                Some(Ext4Size {
                    block_size: 4096,
                    blocks: 16384,
                    needs_recovery: false,
                }),
            ),
            // The high half counts only with the 64bit feature; a journal
            // to replay (INCOMPAT_RECOVER).
            (
                superblock(2, 5, 1, 0x80 | 0x4),
                Some(Ext4Size {
                    block_size: 4096,
                    blocks: (1 << 32) + 5,
                    needs_recovery: true,
                }),
            ),
            (
                superblock(0, 65536, 1, 0),
                Some(Ext4Size {
                    block_size: 1024,
                    blocks: 65536,
                    needs_recovery: false,
                }),
            ),
            (vec![0u8; SUPERBLOCK_BYTES], None),
            (superblock(9, 1, 0, 0), None),
            (vec![0u8; 16], None),
        ];
        for (sb, want) in rows {
            assert_eq!(parse_ext4_superblock(&sb), want);
        }
    }

    #[test]
    fn fs_targets() {
        let fs = Ext4Size {
            block_size: 4096,
            blocks: 16384,
            needs_recovery: false,
        };
        let rows = [
            (64 << 20, None),
            ((64 << 20) + (512 << 10), None),
            (65 << 20, Some(16640)),
            (8 << 30, Some(2 * 1024 * 1024)),
            // A partition smaller than the filesystem: never shrink.
            (32 << 20, None),
        ];
        for (bytes, want) in rows {
            assert_eq!(fs_target_blocks(fs, bytes), want, "{bytes}");
        }
    }

    #[test]
    fn sizes() {
        for (bytes, want) in [
            (512, "512 B"),
            (64 << 20, "64.0 MiB"),
            ((8 << 30) - (1 << 20), "8.0 GiB"),
            (1536 << 10, "1.5 MiB"),
        ] {
            assert_eq!(size(bytes), want);
        }
    }
}
