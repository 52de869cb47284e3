//! STATE, the node's persistent partition, at `/var/lib/berth`: found by
//! its GPT name (or the DPS `/var` type), grown to fill its disk on the
//! first boot ([`super::grow`]), and mounted `nodev,nosuid,noexec`. A node
//! without one — booted from a bare root image, or with a STATE that does
//! not mount — gets a tmpfs there and says so on every boot and in `berth
//! status`. STATE is never formatted by PID 1: the image builder made it,
//! and a filesystem that does not mount may still hold data someone wants.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use berth_config::layout::{self, disk};
use nix::mount::{mount, MsFlags};

use super::grow::{self, size, TableView};
use super::partitions::{self, Partition};

/// Where STATE is, for `berth status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// STATE is mounted from this device.
    Disk { device: String },
    /// A tmpfs, for this reason; `device` is the STATE partition that did
    /// not mount, if there is one.
    Memory { why: String, device: Option<String> },
}

impl State {
    /// `STATE /dev/vda4 (ext4): 8.0 GiB, 24.0 MiB used (1%)` or `in memory
    /// (tmpfs): no STATE partition`.
    pub fn status(&self) -> String {
        let usage = usage(Path::new(disk::STATE_MOUNT));
        match self {
            State::Disk { device } => format!("STATE {device} (ext4): {usage}"),
            State::Memory { why, .. } => format!("in memory (tmpfs, {usage}): {why}"),
        }
    }

    /// The STATE partition, mounted or not.
    pub fn device(&self) -> Option<&str> {
        match self {
            State::Disk { device } => Some(device),
            State::Memory { device, .. } => device.as_deref(),
        }
    }
}

/// `8.0 GiB, 24.0 MiB used (1%)` for the filesystem at `path`.
fn usage(path: &Path) -> String {
    match nix::sys::statvfs::statvfs(path) {
        Ok(s) => {
            let total = s.blocks() * s.fragment_size();
            let used = s.blocks().saturating_sub(s.blocks_free()) * s.fragment_size();
            let pct = (used * 100).checked_div(total).unwrap_or(0);
            format!("{}, {} used ({pct}%)", size(total), size(used))
        }
        Err(e) => format!("size unknown ({e})"),
    }
}

/// Growing or mounting STATE failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("open {disk}")]
    OpenDisk {
        disk: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read the partition table of {disk}")]
    ReadTable {
        disk: String,
        #[source]
        source: gptman::Error,
    },
    #[error("{disk} has no partition {number} in its table")]
    NoEntry { disk: String, number: u32 },
    #[error("grow the partition table of {disk}")]
    Plan {
        disk: String,
        #[source]
        source: grow::PlanError,
    },
    #[error("write the partition table of {disk}")]
    WriteTable {
        disk: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tell the kernel that {device} grew")]
    Announce {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read the ext4 superblock of {device}")]
    Superblock {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{device} holds no ext4 filesystem (bad superblock magic)")]
    NotExt4 { device: String },
    #[error("mount {device} (ext4) on {}", disk::STATE_MOUNT)]
    Mount {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("grow ext4 on {device} to {blocks} blocks")]
    Resize {
        device: String,
        blocks: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Finds, grows and mounts STATE, or mounts a tmpfs in its place; never
/// fails the boot.
pub fn setup() -> State {
    let parts = partitions::scan(Path::new("/sys/class/block")).unwrap_or_default();
    let found = match partitions::by_name(&parts, disk::STATE) {
        Ok(Some(p)) => Some(p.clone()),
        Ok(None) => {
            let var = disk::gpt_guid_bytes(disk::VAR_TYPE).unwrap_or_default();
            match partitions::by_type(&parts, &var).as_slice() {
                [one] => Some((*one).clone()),
                _ => None,
            }
        }
        Err(e) => return in_memory(format!("{e}"), None),
    };
    let Some(part) = found else {
        return in_memory(
            format!("no STATE partition ({})", partitions::describe(&parts)),
            None,
        );
    };
    let loaded = modload_ext4();
    if let Err(e) = grow_table(&part) {
        log::error!("STATE: {}", crate::fatal::chain(&e));
    }
    if let Err(e) = mount_state(&part) {
        let why = crate::fatal::chain(&e);
        log::error!("STATE: {why}{loaded}");
        return in_memory(
            format!("STATE {} did not mount: {why}", part.node()),
            Some(part.node()),
        );
    }
    if let Err(e) = grow_fs(&part) {
        log::error!("STATE: {}", crate::fatal::chain(&e));
    }
    let state = State::Disk {
        device: part.node(),
    };
    log::info!(
        "mounted {} on {} (nodev,nosuid,noexec)",
        state.status(),
        disk::STATE_MOUNT
    );
    state
}

/// Loads ext4 from the root image; an error is returned as text to add
/// to a mount failure (the mount then says what is missing).
fn modload_ext4() -> String {
    match crate::modload::modules_dir()
        .and_then(|d| crate::modload::load(&d, &[layout::STATE_FILESYSTEM]))
    {
        Ok(_) => String::new(),
        Err(e) => format!(" (loading ext4 failed: {})", crate::fatal::chain(&e)),
    }
}

fn in_memory(why: String, device: Option<String>) -> State {
    let flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(
        Some("tmpfs"),
        disk::STATE_MOUNT,
        Some("tmpfs"),
        flags,
        Some("mode=0755"),
    ) {
        log::error!("mount a tmpfs on {}: {e}", disk::STATE_MOUNT);
    }
    log::warn!(
        "{why}: {} is in memory, and nothing kept there outlives this boot",
        disk::STATE_MOUNT
    );
    State::Memory { why, device }
}

/// Step 1 and 2 of [`super::grow`]: the table spans the disk, STATE
/// reaches its end, and the kernel knows.
fn grow_table(part: &Partition) -> Result<(), StateError> {
    let disk_node = part.disk_node();
    let open = |source| StateError::OpenDisk {
        disk: disk_node.clone(),
        source,
    };
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk_node)
        .map_err(open)?;
    let disk_bytes = f.seek(SeekFrom::End(0)).map_err(open)?;
    let mut gpt = gptman::GPT::find_from(&mut f).map_err(|source| StateError::ReadTable {
        disk: disk_node.clone(),
        source,
    })?;
    let ss = gpt.sector_size;
    let entry = gpt
        .iter()
        .find(|(n, e)| *n == part.number && e.is_used())
        .map(|(_, e)| e.clone())
        .ok_or_else(|| StateError::NoEntry {
            disk: disk_node.clone(),
            number: part.number,
        })?;
    let next_start = gpt
        .iter()
        .filter(|(_, e)| e.is_used() && e.starting_lba > entry.starting_lba)
        .map(|(_, e)| e.starting_lba)
        .min();
    let h = &gpt.header;
    let entry_bytes =
        u64::from(h.number_of_partition_entries) * u64::from(h.size_of_partition_entry);
    let view = TableView {
        backup_lba: h.backup_lba,
        last_usable_lba: h.last_usable_lba,
        entry_sectors: entry_bytes.div_ceil(ss),
        state_start: entry.starting_lba,
        state_end: entry.ending_lba,
        next_start,
        align: (1 << 20) / ss,
    };
    let plan = grow::plan_table(&view, disk_bytes / ss).map_err(|source| StateError::Plan {
        disk: disk_node.clone(),
        source,
    })?;
    let mut end = entry.ending_lba;
    if let Some(plan) = plan {
        let start = Instant::now();
        write_table(&mut f, &mut gpt, part.number, plan).map_err(|source| {
            StateError::WriteTable {
                disk: disk_node.clone(),
                source,
            }
        })?;
        end = plan.state_end;
        log::info!(
            "STATE {}: partition table now spans {} of {}: STATE {} → {} ({} ms)",
            part.node(),
            size(disk_bytes),
            disk_node,
            size((entry.ending_lba + 1 - entry.starting_lba) * ss),
            size((end + 1 - entry.starting_lba) * ss),
            start.elapsed().as_millis()
        );
    }
    let length = (end + 1 - entry.starting_lba) * ss;
    if kernel_size(part) != Some(length) {
        crate::sys::resize_partition(&f, part.number, entry.starting_lba * ss, length).map_err(
            |source| StateError::Announce {
                device: part.node(),
                source,
            },
        )?;
    }
    Ok(())
}

/// The partition's size as the kernel sees it (sysfs counts 512-byte
/// sectors whatever the disk's sector size).
fn kernel_size(part: &Partition) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/sys/class/block/{}/size", part.dev)).ok()?;
    text.trim().parse::<u64>().ok().map(|s| s * 512)
}

/// Writes the grown table: the backup copy first, then the primary, then
/// the protective MBR (which covers the whole disk), each flushed.
fn write_table(
    f: &mut File,
    gpt: &mut gptman::GPT,
    number: u32,
    plan: grow::TablePlan,
) -> std::io::Result<()> {
    let to_io = |e: gptman::Error| std::io::Error::other(e.to_string());
    let ss = gpt.sector_size;
    gpt.header.backup_lba = plan.backup_lba;
    gpt.header.last_usable_lba = plan.last_usable_lba;
    gpt[number].ending_lba = plan.state_end;
    let entries: Vec<gptman::GPTPartitionEntry> = gpt.iter().map(|(_, e)| e.clone()).collect();
    let mut backup = gpt.header.clone();
    backup.primary_lba = plan.backup_lba;
    backup.backup_lba = gpt.header.primary_lba;
    backup.partition_entry_lba = plan.last_usable_lba + 1;
    backup.write_into(f, ss, &entries).map_err(to_io)?;
    f.flush()?;
    f.sync_data()?;
    gpt.header.write_into(f, ss, &entries).map_err(to_io)?;
    f.flush()?;
    f.sync_data()?;
    gptman::GPT::write_protective_mbr_into(f, ss).map_err(to_io)?;
    f.sync_data()
}

fn mount_state(part: &Partition) -> Result<(), StateError> {
    let device = part.node();
    if read_ext4(&device)?.needs_recovery {
        log::warn!(
            "STATE {device} was not unmounted cleanly (power cut?): the kernel replays its journal"
        );
    }
    mount(
        Some(device.as_str()),
        disk::STATE_MOUNT,
        Some("ext4"),
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| StateError::Mount {
        device,
        source: e.into(),
    })
}

fn read_ext4(device: &str) -> Result<grow::Ext4Size, StateError> {
    let mut sb = vec![0u8; grow::SUPERBLOCK_BYTES];
    File::open(device)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(grow::SUPERBLOCK_OFFSET))?;
            f.read_exact(&mut sb)
        })
        .map_err(|source| StateError::Superblock {
            device: device.to_owned(),
            source,
        })?;
    grow::parse_ext4_superblock(&sb).ok_or_else(|| StateError::NotExt4 {
        device: device.to_owned(),
    })
}

/// Step 3: the mounted ext4 grows to its partition.
fn grow_fs(part: &Partition) -> Result<(), StateError> {
    let device = part.node();
    let fs = read_ext4(&device)?;
    let Some(bytes) = kernel_size(part) else {
        return Ok(());
    };
    let Some(blocks) = grow::fs_target_blocks(fs, bytes) else {
        log::info!(
            "STATE {device}: ext4 fills its partition ({})",
            size(fs.bytes())
        );
        return Ok(());
    };
    let start = Instant::now();
    File::open(disk::STATE_MOUNT)
        .and_then(|dir| crate::sys::ext4_resize(&dir, blocks))
        .map_err(|source| StateError::Resize {
            device: device.clone(),
            blocks,
            source,
        })?;
    log::info!(
        "STATE {device}: ext4 grown from {} to {} in {} ms",
        size(fs.bytes()),
        size(blocks * fs.block_size),
        start.elapsed().as_millis()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts() {
        let eio = || std::io::Error::from_raw_os_error(libc::EIO);
        let rows = [
            (
                StateError::Mount {
                    device: "/dev/vda4".into(),
                    source: eio(),
                },
                "mount /dev/vda4 (ext4) on /var/lib/berth: Input/output error (os error 5)",
            ),
            (
                StateError::NotExt4 {
                    device: "/dev/vda4".into(),
                },
                "/dev/vda4 holds no ext4 filesystem (bad superblock magic)",
            ),
            (
                StateError::Plan {
                    disk: "/dev/vda".into(),
                    source: grow::PlanError::DiskSmaller {
                        disk_sectors: 100,
                        backup_lba: 200,
                    },
                },
                "grow the partition table of /dev/vda: the disk has 100 sectors, but its partition table ends at sector 200: the disk is smaller than the image written to it, or the table is damaged; leaving it alone",
            ),
        ];
        for (e, want) in rows {
            assert_eq!(crate::fatal::chain(&e), want);
        }
    }
}
