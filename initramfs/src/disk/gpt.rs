//! The partition table of `disk.img`: a protective MBR and a GPT (primary
//! after the MBR, backup in the last sectors), written with gptman from a
//! [`Plan`]. Partition names are the layout's constants, which PID 1
//! matches on; types are the Discoverable Partitions Specification's.

use std::fs::File;

use gptman::{GPTPartitionEntry, GPT};

use super::guid::{Guid, GuidError};
use super::plan::{Plan, ALIGN, SECTOR};

/// Writing the partition table failed.
#[derive(Debug, thiserror::Error)]
pub enum GptError {
    #[error("parse the type GUID of partition {name}")]
    TypeGuid {
        name: &'static str,
        #[source]
        source: GuidError,
    },
    #[error("{step}")]
    Gptman {
        step: &'static str,
        #[source]
        source: gptman::Error,
    },
}

fn gptman(step: &'static str) -> impl FnOnce(gptman::Error) -> GptError {
    move |source| GptError::Gptman { step, source }
}

/// Writes the protective MBR and both GPT copies for `plan` into `file`
/// (already `plan.disk_bytes` long). `guid(purpose)` gives the disk's
/// (`"disk"`) and each partition's (its name) unique GUID.
pub fn write(file: &mut File, plan: &Plan, guid: impl Fn(&str) -> Guid) -> Result<(), GptError> {
    let mut gpt = GPT::new_from(file, SECTOR, guid("disk").to_gpt_bytes())
        .map_err(gptman("make the GPT header"))?;
    gpt.align = ALIGN / SECTOR;
    for part in plan.partitions() {
        let type_guid = Guid::parse(part.type_guid).map_err(|source| GptError::TypeGuid {
            name: part.name,
            source,
        })?;
        gpt[part.number] = GPTPartitionEntry {
            partition_type_guid: type_guid.to_gpt_bytes(),
            unique_partition_guid: guid(part.name).to_gpt_bytes(),
            starting_lba: part.first_lba(),
            ending_lba: part.last_lba(),
            attribute_bits: 0,
            partition_name: part.name.into(),
        };
    }
    gpt.write_into(file).map_err(gptman("write the GPT"))?;
    GPT::write_protective_mbr_into(file, SECTOR).map_err(gptman("write the protective MBR"))
}
