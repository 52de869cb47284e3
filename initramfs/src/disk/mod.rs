//! `disk.img`: the whole node disk, ready to write to a drive or hand to
//! a cloud — GPT, the EFI system partition with systemd-boot, two root
//! slots and the persistent state.
//!
//! ```text
//! byte 0     protective MBR, primary GPT                        1 MiB
//! 1 ESP      vfat: systemd-boot, loader.conf, berth-a.conf,     64 MiB, or 2 × (kernel + initramfs)
//!            berth/a/{vmlinuz,initramfs.img}                    + 16 MiB rounded up to 16 MiB
//! 2 ROOT-A   root.img: EROFS, then its dm-verity hash tree      128 MiB, or 2 × root.img
//! 3 ROOT-B   empty: where an update goes                        rounded up to 16 MiB (each)
//! 4 STATE    ext4 "berth-state", /var/lib/berth                 64 MiB; PID 1 grows it to the disk's end
//!            backup GPT                                         1 MiB
//! ```
//!
//! Sizes leave room for the future: the ESP holds both slots' kernels and
//! initramfs images, a root slot twice the current root image, so an
//! update to a bigger one still fits. STATE is last so PID 1 can grow it
//! into whatever lies behind it on a bigger disk. Partitions are found by
//! their GPT names ([`berth_config::layout::disk`]), never by number or
//! device path; their types follow the Discoverable Partitions
//! Specification (ESP, root x86-64, `/var`).
//!
//! Made without loop devices, mounts or root: the file is created at its
//! full length (a hole) and only the bytes that carry something are
//! written — root.img at ROOT-A's offset ([`sparse`]), the ESP built in
//! memory with fatfs ([`esp`]), STATE copied from the filesystem
//! [`make_state`] made before the root image (whose template the root
//! image carries, for `berth reset --state`), the tables by gptman
//! ([`gpt`]). The example's 386 MiB
//! disk takes about what its content does.
//!
//! Reproducible: the disk GUID, each partition's unique GUID and the
//! ESP's volume ID are derived ([`guid`]) from what identifies the root
//! image (its dm-verity root hash, or the sha256 of `root.img` when
//! unverified); STATE's UUID and hash seed from the root image's inputs
//! (it is made first); timestamps are `SOURCE_DATE_EPOCH`.

pub mod esp;
pub mod fat_fixup;
pub mod gpt;
pub mod guid;
pub mod plan;
pub mod sparse;
pub mod state;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::tool::{ToolError, QEMU_IMG};
use esp::{EspError, SlotFiles};
use gpt::GptError;
use guid::Guid;
use plan::Partition;
use state::{StateError, StateFs};

/// The kernel command line every boot of a node starts with: console on
/// the first UART, a quiet kernel (berth logs its own steps; `quiet`
/// still lets errors through, such as dm-verity's `data block N is
/// corrupted`), reboot at once on a panic (under QEMU's `-no-reboot`,
/// QEMU exits instead of hanging).
pub const BASE_CMDLINE: &str = "console=ttyS0 quiet panic=-1";

/// What goes onto the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInputs<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    /// `root.img`, with its hash tree when verified.
    pub root_image: &'a Path,
    /// The STATE filesystem, made by [`make_state`] (its template is in
    /// the root image).
    pub state_image: &'a Path,
    /// The dm-verity root hash, `None` for a `--no-verity` build.
    pub root_hash: Option<&'a str>,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: u64,
    /// systemd-boot's EFI binary, normally [`esp::SYSTEMD_BOOT`].
    pub boot_loader: &'a Path,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReport {
    /// The image's length.
    pub bytes: u64,
    /// What it takes on the builder's disk (it is sparse).
    pub allocated: u64,
    pub partitions: Vec<Partition>,
}

/// Making the disk image failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("make the EFI system partition")]
    Esp(#[from] EspError),
    #[error("make the STATE partition")]
    State(#[from] StateError),
    #[error("write the partition table of {path}")]
    Gpt {
        path: PathBuf,
        #[source]
        source: GptError,
    },
    #[error("convert {path} to qcow2")]
    Qcow2 {
        path: PathBuf,
        #[source]
        source: ToolError,
    },
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DiskError {
    let path = path.to_owned();
    move |source| DiskError::Io { step, path, source }
}

/// The kernel command line of `slot`'s boot entry.
pub fn boot_options(slot: char, root_hash: Option<&str>) -> String {
    let mut line = format!("{BASE_CMDLINE} berth.slot={slot}");
    if let Some(hash) = root_hash {
        line.push_str(" berth.verity=");
        line.push_str(hash);
    }
    line
}

/// Writes `image` (replacing it) from `inputs`.
pub fn write(image: &Path, inputs: &DiskInputs<'_>) -> Result<DiskReport, DiskError> {
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.len())
            .map_err(io("measure", p))
    };
    let plan = plan::plan(&plan::Inputs {
        kernel: size(inputs.kernel)?,
        initramfs: size(inputs.initramfs)?,
        root_image: size(inputs.root_image)?,
    });
    let seed = seed(inputs)?;
    let guid = |purpose: &str| Guid::derive(&seed, purpose);

    let mut file = File::create(image).map_err(io("create", image))?;
    file.set_len(plan.disk_bytes).map_err(io("size", image))?;

    let mut from = File::open(inputs.root_image).map_err(io("open", inputs.root_image))?;
    sparse::copy_into(&mut from, &file, plan.root_a.start)
        .map_err(io("copy the root image into", image))?;

    let volume_id = u32::from_le_bytes({
        let b = guid("esp-volume-id").bytes();
        [b[0], b[1], b[2], b[3]]
    });
    let slot = SlotFiles {
        slot: 'a',
        kernel: inputs.kernel,
        initramfs: inputs.initramfs,
        options: boot_options('a', inputs.root_hash),
    };
    let esp = esp::make(
        plan.esp.size,
        volume_id,
        inputs.epoch,
        inputs.boot_loader,
        &slot,
    )?;
    sparse::write_at(&file, plan.esp.start, &esp).map_err(io("write the ESP into", image))?;
    drop(esp);

    let mut from = File::open(inputs.state_image).map_err(io("open", inputs.state_image))?;
    sparse::copy_into(&mut from, &file, plan.state.start)
        .map_err(io("copy the STATE filesystem into", image))?;

    gpt::write(&mut file, &plan, guid).map_err(|source| DiskError::Gpt {
        path: image.to_owned(),
        source,
    })?;
    Ok(DiskReport {
        bytes: plan.disk_bytes,
        allocated: sparse::allocated(&file).map_err(io("measure", image))?,
        partitions: plan.partitions().map(Partition::clone).to_vec(),
    })
}

/// Makes the STATE filesystem ([`plan::STATE_SIZE`]) as the file
/// `state_image`, its UUID and hash seed derived from `seed`, and returns
/// its template ([`berth_config::state_template`]) for the root image.
/// STATE is made before the root image, which carries the template, so
/// its identity cannot come from the root hash as the disk's GUIDs do;
/// `seed` stands for everything the root image is made from.
pub fn make_state(
    state_image: &Path,
    seed: &[u8],
    epoch: u64,
    work_dir: &Path,
) -> Result<Vec<u8>, DiskError> {
    let file = File::create(state_image).map_err(io("create", state_image))?;
    file.set_len(plan::STATE_SIZE)
        .map_err(io("size", state_image))?;
    drop(file);
    let fs = StateFs {
        uuid: Guid::derive(seed, "state-uuid"),
        hash_seed: Guid::derive(seed, "state-hash-seed"),
        epoch,
    };
    state::make(state_image, 0, plan::STATE_SIZE, &fs, work_dir)?;
    let bytes = std::fs::read(state_image).map_err(io("read", state_image))?;
    Ok(berth_config::state_template::encode(&bytes))
}

/// What the derived GUIDs are derived from: the root image's identity.
fn seed(inputs: &DiskInputs<'_>) -> Result<Vec<u8>, DiskError> {
    if let Some(hash) = inputs.root_hash {
        return Ok(format!("verity:{hash}").into_bytes());
    }
    let path = inputs.root_image;
    let mut file = File::open(path).map_err(io("open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let mut seed = b"sha256:".to_vec();
    seed.extend_from_slice(&h.finalize());
    Ok(seed)
}

/// Writes `qcow2` from the raw `image` (`qemu-img convert`); returns its
/// size.
pub fn convert_qcow2(image: &Path, qcow2: &Path) -> Result<u64, DiskError> {
    let mut cmd = QEMU_IMG.command();
    cmd.args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(image)
        .arg(qcow2);
    QEMU_IMG
        .output(&mut cmd)
        .map_err(|source| DiskError::Qcow2 {
            path: image.to_owned(),
            source,
        })?;
    std::fs::metadata(qcow2)
        .map(|m| m.len())
        .map_err(io("measure", qcow2))
}

#[cfg(test)]
mod tests;
