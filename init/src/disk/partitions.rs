//! Finding the node's partitions: by GPT partition name from
//! `/sys/class/block/*/uevent` (`PARTNAME=`, which the kernel fills in
//! from the GPT entry), or by partition type, read from the disk's GPT
//! (the type is not in sysfs). Whatever the disk is — virtio (`vda2`),
//! NVMe (`nvme0n1p2`), SATA (`sda2`) — the names come from the kernel.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// A partition the kernel knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The kernel's name, also its `/dev` node: `vda4`, `nvme0n1p4`.
    pub dev: String,
    /// The whole disk holding it: `vda`, `nvme0n1`.
    pub disk: String,
    /// Its number in the partition table (1-based).
    pub number: u32,
    /// The GPT partition name, if it has one.
    pub name: Option<String>,
}

impl Partition {
    pub fn node(&self) -> String {
        format!("/dev/{}", self.dev)
    }
    pub fn disk_node(&self) -> String {
        format!("/dev/{}", self.disk)
    }
}

/// Finding a partition failed.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("{} partitions are named {name}: {}; say which with berth.root=", devices.len(), devices.join(", "))]
    Ambiguous { name: String, devices: Vec<String> },
    #[error("read {path}")]
    Sysfs {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The partitions under `class_block` (`/sys/class/block`), sorted by
/// device name.
pub fn scan(class_block: &Path) -> Result<Vec<Partition>, FindError> {
    let sysfs = |source| FindError::Sysfs {
        path: class_block.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(class_block).map_err(sysfs)? {
        let entry = entry.map_err(sysfs)?;
        let dir = entry.path();
        // Only partitions have a `partition` file; a disk that vanished
        // while we looked is simply skipped.
        if !dir.join("partition").exists() {
            continue;
        }
        let Ok(uevent) = std::fs::read_to_string(dir.join("uevent")) else {
            continue;
        };
        // The link resolves to …/block/vda/vda4: the parent is the disk.
        let Ok(real) = std::fs::canonicalize(&dir) else {
            continue;
        };
        let disk = real
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        if let (Some(disk), Some(p)) = (disk, parse_uevent(&uevent)) {
            found.push(Partition { disk, ..p });
        }
    }
    found.sort_by(|a, b| a.dev.cmp(&b.dev));
    Ok(found)
}

/// A partition's `uevent` (`DEVNAME=vda4`, `PARTN=4`, `PARTNAME=STATE`);
/// the disk is left empty for the caller.
pub fn parse_uevent(text: &str) -> Option<Partition> {
    let mut dev = None;
    let mut number = None;
    let mut name = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("DEVNAME", v)) => dev = Some(v.to_owned()),
            Some(("PARTN", v)) => number = v.parse().ok(),
            Some(("PARTNAME", v)) if !v.is_empty() => name = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(Partition {
        dev: dev?,
        disk: String::new(),
        number: number?,
        name,
    })
}

/// The one partition named `name`: `None` if there is none, an error if
/// there are several (two berth disks in one machine: guessing could boot
/// the wrong one).
pub fn by_name<'a>(parts: &'a [Partition], name: &str) -> Result<Option<&'a Partition>, FindError> {
    let matches: Vec<&Partition> = parts
        .iter()
        .filter(|p| p.name.as_deref() == Some(name))
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(FindError::Ambiguous {
            name: name.to_owned(),
            devices: many.iter().map(|p| p.node()).collect(),
        }),
    }
}

/// The partitions whose GPT type is `type_guid` (on-disk bytes), reading
/// the GPT of every disk that has partitions. Disks whose table cannot be
/// read (MBR, unreadable) are skipped.
pub fn by_type<'a>(parts: &'a [Partition], type_guid: &[u8; 16]) -> Vec<&'a Partition> {
    let mut types: BTreeMap<&str, BTreeMap<u32, [u8; 16]>> = BTreeMap::new();
    for p in parts {
        if !types.contains_key(p.disk.as_str()) {
            types.insert(&p.disk, read_types(&p.disk_node()).unwrap_or_default());
        }
    }
    parts
        .iter()
        .filter(|p| {
            types
                .get(p.disk.as_str())
                .and_then(|t| t.get(&p.number))
                .is_some_and(|t| t == type_guid)
        })
        .collect()
}

/// Partition number → type GUID of the GPT on `disk`.
fn read_types(disk: &str) -> Option<BTreeMap<u32, [u8; 16]>> {
    let mut f = File::open(disk).ok()?;
    let gpt = gptman::GPT::find_from(&mut f).ok()?;
    Some(
        gpt.iter()
            .filter(|(_, e)| e.is_used())
            .map(|(n, e)| (n, e.partition_type_guid))
            .collect(),
    )
}

/// `vda1 (ESP), vda2 (ROOT-A), sda1`: what there is, for error messages.
pub fn describe(parts: &[Partition]) -> String {
    if parts.is_empty() {
        return "no partitions".to_owned();
    }
    parts
        .iter()
        .map(|p| match &p.name {
            Some(n) => format!("{} ({n})", p.dev),
            None => p.dev.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(dev: &str, disk: &str, number: u32, name: Option<&str>) -> Partition {
        Partition {
            dev: dev.into(),
            disk: disk.into(),
            number,
            name: name.map(Into::into),
        }
    }

    #[test]
    fn uevents() {
        let rows: &[(&str, Option<Partition>)] = &[
            (
                "MAJOR=254\nMINOR=4\nDEVNAME=vda4\nDEVTYPE=partition\nDISKSEQ=9\nPARTN=4\nPARTNAME=STATE\n",
                Some(part("vda4", "", 4, Some("STATE"))),
            ),
            (
                "DEVNAME=nvme0n1p2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=ROOT-A\n",
                Some(part("nvme0n1p2", "", 2, Some("ROOT-A"))),
            ),
            // An MBR partition: no name.
            (
                "DEVNAME=sda1\nDEVTYPE=partition\nPARTN=1\n",
                Some(part("sda1", "", 1, None)),
            ),
            ("DEVNAME=sda1\nPARTN=1\nPARTNAME=\n", Some(part("sda1", "", 1, None))),
            // A whole disk.
            ("MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n", None),
            ("DEVNAME=vda1\nPARTN=x\n", None),
        ];
        for (text, want) in rows {
            assert_eq!(parse_uevent(text).as_ref(), want.as_ref(), "{text:?}");
        }
    }

    #[test]
    fn names() {
        let one = [
            part("vda1", "vda", 1, Some("ESP")),
            part("vda2", "vda", 2, Some("ROOT-A")),
            part("vda3", "vda", 3, Some("ROOT-B")),
        ];
        assert_eq!(by_name(&one, "ROOT-A").ok().flatten(), Some(&one[1]));
        assert_eq!(by_name(&one, "STATE").ok().flatten(), None);
        let two = [one[1].clone(), part("vdb2", "vdb", 2, Some("ROOT-A"))];
        let err = by_name(&two, "ROOT-A").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("2 partitions are named ROOT-A: /dev/vda2, /dev/vdb2; say which with berth.root=")
        );
        assert_eq!(describe(&one[..2]), "vda1 (ESP), vda2 (ROOT-A)");
        assert_eq!(describe(&[]), "no partitions");
    }
}
