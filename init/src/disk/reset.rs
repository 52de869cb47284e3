//! `berth reset --state`: STATE emptied, as the image built it.
//!
//! The request is checked when it comes (STATE has a partition, the root
//! image's template is readable and fits it); the writing happens in the
//! shutdown, after the containers stopped and STATE was unmounted, right
//! before the reboot. The partition is opened `O_EXCL`, which the kernel
//! refuses while anything still has it mounted. The template's length
//! (the filesystem the image was built with, 64 MiB) is zeroed and its
//! non-zero blocks written; the rest of a grown partition is discarded
//! where the device supports it (its old contents are unreachable through
//! the new filesystem either way). The next boot finds a small ext4 in a
//! big partition and grows it, as after a power cut during the first
//! boot's grow.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

use berth_config::layout;
use berth_config::state_template::{self, TemplateError};

use super::grow::size;

/// A reset that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("this node has no STATE partition to reset")]
    NoState,
    #[error("read the STATE template {path}")]
    ReadTemplate {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the STATE template {path} is damaged")]
    Template {
        path: String,
        #[source]
        source: TemplateError,
    },
    #[error("open {device} for writing, alone (is it still mounted?)")]
    Open {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{device} ({}) is smaller than the empty filesystem ({})", size(*have), size(*need))]
    TooSmall {
        device: String,
        have: u64,
        need: u64,
    },
    #[error("{step} {device}")]
    Write {
        step: &'static str,
        device: String,
        #[source]
        source: std::io::Error,
    },
}

/// A checked reset, waiting for the shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    pub device: String,
    template: Vec<u8>,
}

impl Reset {
    /// Checks that STATE can be reset: `device` is its partition, and the
    /// template at `template_path` decodes.
    pub fn prepare(device: Option<&str>, template_path: &Path) -> Result<Reset, ResetError> {
        let device = device.ok_or(ResetError::NoState)?.to_owned();
        let path = template_path.display().to_string();
        let template = std::fs::read(template_path).map_err(|source| ResetError::ReadTemplate {
            path: path.clone(),
            source,
        })?;
        state_template::decode(&template)
            .map_err(|source| ResetError::Template { path, source })?;
        Ok(Reset { device, template })
    }

    /// The reset of the node's STATE partition `device` from the root
    /// image's template.
    pub fn for_node(device: Option<&str>) -> Result<Reset, ResetError> {
        Reset::prepare(device, Path::new(layout::STATE_TEMPLATE))
    }

    /// Writes the empty filesystem over the (unmounted) partition; returns
    /// what it did, for the console.
    pub fn carry_out(&self) -> Result<String, ResetError> {
        let t = Instant::now();
        let device = self.device.clone();
        let write = |step| {
            let device = device.clone();
            move |source| ResetError::Write {
                step,
                device,
                source,
            }
        };
        let template =
            state_template::decode(&self.template).map_err(|source| ResetError::Template {
                path: layout::STATE_TEMPLATE.to_owned(),
                source,
            })?;
        let mut dev = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_EXCL)
            .open(&self.device)
            .map_err(|source| ResetError::Open {
                device: device.clone(),
                source,
            })?;
        let have = dev.seek(SeekFrom::End(0)).map_err(write("measure"))?;
        if have < template.size {
            return Err(ResetError::TooSmall {
                device,
                have,
                need: template.size,
            });
        }
        zero(&dev, template.size).map_err(write("zero the start of"))?;
        for run in &template.runs {
            dev.write_all_at(run.bytes, run.offset)
                .map_err(write("write the empty filesystem to"))?;
        }
        dev.sync_all().map_err(write("sync"))?;
        let rest = have - template.size;
        let discarded = rest > 0 && crate::sys::block_discard(&dev, template.size, rest).is_ok();
        Ok(format!(
            "{} emptied: the image's ext4 of {} written ({} run(s)){} in {} ms; the next boot grows it",
            self.device,
            size(template.size),
            template.runs.len(),
            if discarded {
                format!(", the other {} discarded", size(rest))
            } else {
                String::new()
            },
            t.elapsed().as_millis()
        ))
    }
}

/// Zeroes the first `len` bytes of `dev`: with `BLKZEROOUT`, or by
/// writing zeroes where the device (or a file, in tests) has none.
fn zero(dev: &File, len: u64) -> std::io::Result<()> {
    if crate::sys::block_zero_out(dev, 0, len).is_ok() {
        return Ok(());
    }
    let chunk = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(chunk.len() as u64) as usize;
        dev.write_all_at(&chunk[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_writes_the_template_over_old_data() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut fs = vec![0u8; 64 * 1024];
        fs[1024..1030].copy_from_slice(b"ext4sb");
        fs[40_000] = 7;
        let template_path = tmp.path().join("state.template");
        std::fs::write(&template_path, state_template::encode(&fs)).expect("write");
        // A "partition" of 256 KiB full of old data.
        let part = tmp.path().join("part");
        std::fs::write(&part, vec![0xAAu8; 256 * 1024]).expect("write");
        let device = part.display().to_string();

        assert!(matches!(
            Reset::prepare(None, &template_path),
            Err(ResetError::NoState)
        ));
        let reset = Reset::prepare(Some(&device), &template_path).expect("prepare");
        let said = reset.carry_out().expect("carry out");
        assert!(
            said.contains("emptied: the image's ext4 of 64.0 KiB written (2 run(s))"),
            "{said}"
        );
        let after = std::fs::read(&part).expect("read");
        assert_eq!(
            &after[..fs.len()],
            &fs[..],
            "the start is the empty filesystem"
        );
        assert!(
            after[fs.len()..].iter().all(|b| *b == 0xAA),
            "a file is not discarded"
        );

        std::fs::write(&template_path, b"garbage").expect("write");
        let err = Reset::prepare(Some(&device), &template_path).expect_err("damaged");
        assert!(matches!(err, ResetError::Template { .. }), "{err}");
        std::fs::write(
            &template_path,
            state_template::encode(&vec![1u8; 512 * 1024]),
        )
        .expect("write");
        let err = Reset::prepare(Some(&device), &template_path)
            .expect("prepare")
            .carry_out()
            .expect_err("too small");
        assert!(
            err.to_string()
                .contains("is smaller than the empty filesystem"),
            "{err}"
        );
    }
}
