//! The persistent disk of `berth-image run`: a qcow2 overlay
//! `DIR/node.qcow2` over the built `disk.img`, so the node's STATE
//! survives between runs while the built disk stays as built, and the
//! machine's UEFI variable store `DIR/node-vars.fd` beside it.
//!
//! The overlay may be bigger than `disk.img` (8 GiB by default): that is
//! the bigger disk PID 1 grows STATE into on first boot. An overlay over
//! a base that changed underneath it is garbage (its clusters describe
//! the old disk), so when `disk.img` is newer than the overlay, both the
//! overlay and the variable store are made afresh, and the runner says so.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::QemuError;
use crate::build::DISK_IMAGE;
use crate::tool::QEMU_IMG;

pub const NODE_OVERLAY: &str = "node.qcow2";
pub const NODE_VARS: &str = "node-vars.fd";

/// What to do with an existing overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayAction {
    Keep,
    /// There is none yet.
    Create,
    /// `--fresh`.
    RecreateAsked,
    /// `disk.img` was rebuilt after the overlay was last written.
    RecreateBaseChanged,
}

/// Decides from the two files' modification times (`None`: no overlay).
pub fn overlay_action(
    base_modified: SystemTime,
    overlay_modified: Option<SystemTime>,
    fresh: bool,
) -> OverlayAction {
    match overlay_modified {
        None => OverlayAction::Create,
        Some(_) if fresh => OverlayAction::RecreateAsked,
        Some(overlay) if base_modified > overlay => OverlayAction::RecreateBaseChanged,
        Some(_) => OverlayAction::Keep,
    }
}

/// A size: a number of bytes, or of KiB, MiB, GiB, TiB with a `K`, `M`,
/// `G`, `T` suffix (as qemu-img takes them).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift).filter(|&b| b > 0)
}

/// `qemu-img create -f qcow2 -F raw -b BASE OVERLAY SIZE`, replacing
/// `overlay`. `base` is recorded as an absolute path, so the overlay
/// works from any folder; `size` must not be below the base's.
pub fn create_overlay(base: &Path, overlay: &Path, size: u64) -> Result<(), QemuError> {
    let io = |step, path: &Path| {
        let path = path.to_owned();
        move |source| QemuError::Io { step, path, source }
    };
    let base = std::path::absolute(base).map_err(io("resolve", base))?;
    let base_bytes = std::fs::metadata(&base)
        .map_err(io("measure", &base))?
        .len();
    if size < base_bytes {
        return Err(QemuError::DiskSize {
            size,
            base,
            base_bytes,
        });
    }
    match std::fs::remove_file(overlay) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("remove the old overlay", overlay)(e))
        }
        _ => {}
    }
    let mut cmd = QEMU_IMG.command();
    cmd.args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&base)
        .arg(overlay)
        .arg(size.to_string());
    QEMU_IMG
        .output(&mut cmd)
        .map_err(|source| QemuError::Overlay {
            overlay: overlay.to_owned(),
            base: base.clone(),
            source,
        })?;
    Ok(())
}

/// The persistent disk of a run in `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDisk {
    pub overlay: PathBuf,
    /// The UEFI variable store: removed with a recreated overlay, copied
    /// afresh by [`super::prepare`].
    pub vars: PathBuf,
    /// A line for the operator when the overlay was made.
    pub note: Option<String>,
}

/// Makes `DIR/node.qcow2` (`size` bytes) when missing, asked (`fresh`)
/// or stale.
pub fn prepare_node(dir: &Path, size: u64, fresh: bool) -> Result<NodeDisk, QemuError> {
    let base = dir.join(DISK_IMAGE);
    let overlay = dir.join(NODE_OVERLAY);
    let vars = dir.join(NODE_VARS);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified());
    let base_modified = modified(&base).map_err(|source| QemuError::Io {
        step: "read the age of",
        path: base.clone(),
        source,
    })?;
    let action = overlay_action(base_modified, modified(&overlay).ok(), fresh);
    let why = match action {
        OverlayAction::Keep => None,
        OverlayAction::Create => Some("made"),
        OverlayAction::RecreateAsked => Some("made afresh (--fresh)"),
        OverlayAction::RecreateBaseChanged => {
            Some("made afresh: disk.img was rebuilt, and an overlay over a changed disk is garbage")
        }
    };
    let note = match why {
        None => None,
        Some(why) => {
            create_overlay(&base, &overlay, size)?;
            match std::fs::remove_file(&vars) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(QemuError::Io {
                        step: "remove the old UEFI variables",
                        path: vars,
                        source: e,
                    })
                }
                _ => {}
            }
            Some(format!(
                "{} {why}: a {} disk over {DISK_IMAGE}, which stays as built",
                overlay.display(),
                crate::progress::size(size)
            ))
        }
    };
    Ok(NodeDisk {
        overlay,
        vars,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn when_to_remake_the_overlay() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let later = t + Duration::from_secs(1);
        // (base modified, overlay modified, --fresh, action)
        let table = [
            (t, None, false, OverlayAction::Create),
            (t, None, true, OverlayAction::Create),
            (t, Some(later), false, OverlayAction::Keep),
            (t, Some(t), false, OverlayAction::Keep),
            (t, Some(later), true, OverlayAction::RecreateAsked),
            (later, Some(t), false, OverlayAction::RecreateBaseChanged),
            (later, Some(t), true, OverlayAction::RecreateAsked),
        ];
        for (base, overlay, fresh, want) in table {
            assert_eq!(
                overlay_action(base, overlay, fresh),
                want,
                "{overlay:?} {fresh}"
            );
        }
    }

    #[test]
    fn sizes() {
        // (text, bytes)
        let table = [
            ("8G", Some(8u64 << 30)),
            ("8g", Some(8 << 30)),
            ("512M", Some(512 << 20)),
            ("1T", Some(1 << 40)),
            ("64K", Some(64 << 10)),
            ("4096", Some(4096)),
            ("0", None),
            ("0G", None),
            ("G", None),
            ("", None),
            ("8GB", None),
            ("-8G", None),
            ("8X", None),
            ("99999999999T", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
    }

    #[test]
    fn overlay_over_disk_img() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().join(DISK_IMAGE);
        std::fs::File::create(&base)
            .and_then(|f| f.set_len(4 << 20))
            .expect("base");
        let node = prepare_node(tmp.path(), 64 << 20, false).expect("create");
        assert!(
            node.note.as_deref().is_some_and(|n| n.contains("made")),
            "{node:?}"
        );
        let info = QEMU_IMG
            .output(
                QEMU_IMG
                    .command()
                    .args(["info", "--output=json"])
                    .arg(&node.overlay),
            )
            .expect("qemu-img info");
        assert!(info.contains("\"virtual-size\": 67108864"), "{info}");
        assert!(
            info.contains(&format!("\"backing-filename\": \"{}\"", base.display())),
            "{info}"
        );
        std::fs::write(&node.vars, "vars").expect("vars");
        assert_eq!(
            prepare_node(tmp.path(), 64 << 20, false)
                .expect("keep")
                .note,
            None
        );
        assert!(node.vars.exists(), "kept with the overlay");
        let again = prepare_node(tmp.path(), 64 << 20, true).expect("fresh");
        assert!(again.note.is_some_and(|n| n.contains("--fresh")));
        assert!(!node.vars.exists(), "a new machine gets new variables");
        let err = prepare_node(tmp.path(), 1 << 20, true).expect_err("too small");
        assert!(err.to_string().contains("smaller than"), "{err}");
    }
}
