//! Which disk drivers stage 0 loads: those whose PCI functions are
//! present (`/sys/bus/pci/devices/*/{vendor,class}`), so a virtio node
//! does not wait for the NVMe and SATA stacks to load. Without a readable
//! PCI bus every driver is loaded, as a generic initramfs would.

use std::path::Path;

use berth_config::layout::{DiskDriver, PciMatch, STAGE0_DISK_DRIVERS};

/// One PCI function: (vendor, class with subclass and interface).
pub type PciFunction = (u16, u32);

/// The PCI functions under `devices` (`/sys/bus/pci/devices`); empty if
/// the folder cannot be read.
pub fn pci_functions(devices: &Path) -> Vec<PciFunction> {
    let Ok(dir) = std::fs::read_dir(devices) else {
        return Vec::new();
    };
    let hex = |path: &Path| -> Option<u32> {
        let text = std::fs::read_to_string(path).ok()?;
        u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
    };
    let mut found: Vec<PciFunction> = dir
        .flatten()
        .filter_map(|e| {
            let vendor = u16::try_from(hex(&e.path().join("vendor"))?).ok()?;
            Some((vendor, hex(&e.path().join("class"))?))
        })
        .collect();
    found.sort_unstable();
    found
}

/// The drivers for `functions`, in table order; all of them when no
/// function is known.
pub fn drivers_for(functions: &[PciFunction]) -> Vec<&'static DiskDriver> {
    if functions.is_empty() {
        return STAGE0_DISK_DRIVERS.iter().collect();
    }
    STAGE0_DISK_DRIVERS
        .iter()
        .filter(|d| {
            functions.iter().any(|&(vendor, class)| match d.matches {
                PciMatch::Vendor(v) => v == vendor,
                PciMatch::Class(c) => c == class,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_by_function() {
        let names =
            |f: &[PciFunction]| -> Vec<&str> { drivers_for(f).iter().map(|d| d.name).collect() };
        // QEMU's i440fx host bridge, ISA bridge, IDE and ACPI functions.
        let chipset = [
            (0x8086, 0x06_00_00),
            (0x8086, 0x06_01_00),
            (0x8086, 0x01_01_80),
            (0x8086, 0x06_80_00),
        ];
        let with = |extra: &[PciFunction]| {
            let mut all = chipset.to_vec();
            all.extend_from_slice(extra);
            all
        };
        let rows: Vec<(Vec<PciFunction>, Vec<&str>)> = vec![
            // virtio-blk and virtio-net.
            (
                with(&[(0x1af4, 0x01_00_00), (0x1af4, 0x02_00_00)]),
                vec!["virtio"],
            ),
            // An NVMe disk and a virtio NIC: virtio_pci is needed anyway.
            (
                with(&[(0x1b36, 0x01_08_02), (0x1af4, 0x02_00_00)]),
                vec!["virtio", "NVMe"],
            ),
            // An ICH9 AHCI controller, an e1000 NIC.
            (
                with(&[(0x8086, 0x01_06_01), (0x8086, 0x02_00_00)]),
                vec!["SATA (AHCI)"],
            ),
            // Nothing we drive: nothing to load (the wait then names what
            // was found).
            (chipset.to_vec(), vec![]),
            // No PCI bus readable: everything.
            (vec![], vec!["virtio", "NVMe", "SATA (AHCI)"]),
        ];
        for (functions, want) in rows {
            assert_eq!(names(&functions), want, "{functions:x?}");
        }
    }

    #[test]
    fn reads_sysfs_shaped_folders() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for (name, vendor, class) in [
            ("0000:00:04.0", "0x1af4\n", "0x010000\n"),
            ("0000:00:05.0", "0x1b36\n", "0x010802\n"),
        ] {
            let dir = tmp.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            std::fs::write(dir.join("vendor"), vendor).expect("write");
            std::fs::write(dir.join("class"), class).expect("write");
        }
        // A function whose files vanished is skipped.
        std::fs::create_dir(tmp.path().join("0000:00:06.0")).expect("mkdir");
        assert_eq!(
            pci_functions(tmp.path()),
            vec![(0x1af4, 0x01_00_00), (0x1b36, 0x01_08_02)]
        );
        assert_eq!(pci_functions(&tmp.path().join("none")), vec![]);
    }
}
