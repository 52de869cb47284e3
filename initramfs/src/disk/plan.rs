//! Where each partition of `disk.img` goes and how big it is: a pure
//! function of the sizes of what goes in (see the sizes in [`super`]).

use berth_config::layout::disk;

pub const MIB: u64 = 1024 * 1024;
/// GPT's logical sector: 512 bytes, what virtio, NVMe and SATA disks in
/// QEMU and in clouds report.
pub const SECTOR: u64 = 512;
/// Every partition starts and ends on a MiB boundary (what fdisk and
/// systemd-repart do): aligned for any erase block or RAID stripe below.
pub const ALIGN: u64 = MIB;

/// The ESP's least size.
pub const ESP_MIN: u64 = 64 * MIB;
/// Room on the ESP beyond two slots' kernels and initramfs images:
/// systemd-boot, the entries, the FAT itself.
pub const ESP_MARGIN: u64 = 16 * MIB;
/// A root slot's least size.
pub const ROOT_MIN: u64 = 128 * MIB;
/// Sizes computed from the inputs are rounded up to this.
pub const ROUND: u64 = 16 * MIB;
/// STATE as built; PID 1 grows it into the rest of a bigger disk.
pub const STATE_SIZE: u64 = 64 * MIB;

/// The sizes of what goes onto the disk, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    pub kernel: u64,
    pub initramfs: u64,
    pub root_image: u64,
}

/// One partition of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based GPT entry number.
    pub number: u32,
    /// The GPT partition name (a [`disk`] constant).
    pub name: &'static str,
    /// The DPS type GUID, textual.
    pub type_guid: &'static str,
    /// First byte.
    pub start: u64,
    pub size: u64,
}

impl Partition {
    pub fn first_lba(&self) -> u64 {
        self.start / SECTOR
    }
    /// The last sector (inclusive, as GPT records it).
    pub fn last_lba(&self) -> u64 {
        (self.start + self.size) / SECTOR - 1
    }
}

/// The four partitions, and the whole disk's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub esp: Partition,
    pub root_a: Partition,
    pub root_b: Partition,
    pub state: Partition,
    /// The image's length: the partitions, plus a MiB ahead (protective
    /// MBR, primary GPT, alignment) and a MiB behind (backup GPT).
    pub disk_bytes: u64,
}

impl Plan {
    /// The partitions in table order.
    pub fn partitions(&self) -> [&Partition; 4] {
        [&self.esp, &self.root_a, &self.root_b, &self.state]
    }
}

fn round_up(bytes: u64, to: u64) -> u64 {
    bytes.div_ceil(to) * to
}

/// Two slots' kernels and initramfs images and a margin, at least
/// [`ESP_MIN`].
pub fn esp_size(kernel: u64, initramfs: u64) -> u64 {
    ESP_MIN.max(round_up(2 * (kernel + initramfs) + ESP_MARGIN, ROUND))
}

/// Twice the root image (an update may be bigger than what it replaces),
/// at least [`ROOT_MIN`].
pub fn root_slot_size(root_image: u64) -> u64 {
    ROOT_MIN.max(round_up(2 * root_image, ROUND))
}

/// ESP, ROOT-A, ROOT-B, STATE, one after the other from the first MiB.
pub fn plan(inputs: &Inputs) -> Plan {
    let root = root_slot_size(inputs.root_image);
    let mut next = ALIGN;
    let mut place = |number, name, type_guid, size| {
        let start = next;
        next += size;
        Partition {
            number,
            name,
            type_guid,
            start,
            size,
        }
    };
    let esp = place(
        1,
        disk::ESP,
        disk::ESP_TYPE,
        esp_size(inputs.kernel, inputs.initramfs),
    );
    let root_a = place(2, disk::ROOT_A, disk::ROOT_X86_64_TYPE, root);
    let root_b = place(3, disk::ROOT_B, disk::ROOT_X86_64_TYPE, root);
    let state = place(4, disk::STATE, disk::VAR_TYPE, STATE_SIZE);
    Plan {
        disk_bytes: state.start + state.size + ALIGN,
        esp,
        root_a,
        root_b,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_inputs() {
        // (kernel, initramfs, root image) → (ESP, root slot, disk), MiB
        let table: [([u64; 3], [u64; 3]); 6] = [
            ([0, 0, 0], [64, 128, 386]),
            ([8 * MIB, 12 * MIB, 30 * MIB], [64, 128, 386]),
            // 2 × 20.5 + 16 = 57 → 64
            ([8 * MIB, 12 * MIB + MIB / 2, 64 * MIB], [64, 128, 386]),
            // 2 × 30 + 16 = 76 → 80
            ([10 * MIB, 20 * MIB, 64 * MIB + 1], [80, 144, 434]),
            ([10 * MIB, 20 * MIB, 100 * MIB], [80, 208, 562]),
            ([10 * MIB, 40 * MIB, 512 * MIB], [128, 1024, 2242]),
        ];
        for ([kernel, initramfs, root_image], [esp, root, total]) in table {
            let p = plan(&Inputs {
                kernel,
                initramfs,
                root_image,
            });
            let sizes: Vec<u64> = p.partitions().iter().map(|p| p.size / MIB).collect();
            assert_eq!(
                sizes,
                [esp, root, root, 64],
                "{kernel} {initramfs} {root_image}"
            );
            assert_eq!(p.disk_bytes / MIB, total);
        }
    }

    #[test]
    fn partitions_are_aligned_contiguous_and_state_is_last() {
        let p = plan(&Inputs {
            kernel: 9 * MIB + 7,
            initramfs: 13 * MIB + 3,
            root_image: 77 * MIB + 5,
        });
        let names: Vec<&str> = p.partitions().iter().map(|p| p.name).collect();
        assert_eq!(names, ["ESP", "ROOT-A", "ROOT-B", "STATE"]);
        let numbers: Vec<u32> = p.partitions().iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        assert_eq!(p.esp.start, MIB);
        for pair in p.partitions().windows(2) {
            assert_eq!(pair[0].start + pair[0].size, pair[1].start);
        }
        for part in p.partitions() {
            assert_eq!(part.start % ALIGN, 0, "{}", part.name);
            assert_eq!(part.size % ALIGN, 0, "{}", part.name);
            assert_eq!(part.first_lba() * SECTOR, part.start);
            assert_eq!((part.last_lba() + 1) * SECTOR, part.start + part.size);
        }
        let state = &p.state;
        assert_eq!(state.start + state.size + MIB, p.disk_bytes);
        // The backup GPT (header and 128 entries: 33 sectors) fits behind.
        assert!(p.disk_bytes - (state.start + state.size) >= 33 * SECTOR);
        assert_eq!(p.root_b.type_guid, disk::ROOT_X86_64_TYPE);
    }
}
