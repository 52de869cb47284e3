//! Unpacking an image's layers into a rootfs folder.
//!
//! Layers are applied in order to an empty folder ([`unpack`]); each entry
//! goes through [`super::entry::plan`] (pure checks) and then
//! [`super::apply`] (filesystem steps that never follow a symlink).
//! Regular files go through the [`LayerStore`] and are hard-linked in.
//! After the last layer one pass over the tree sets folder modes (kept
//! until then so that a read-only folder does not block later layers for
//! a non-root builder) and stamps every folder with the policy's epoch
//! (adding and removing entries changed their timestamps).
//!
//! A failed unpack leaves `dest` half-written: the caller removes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::apply::{Applier, LayerCtx};
use super::meter::Meter;
use super::store::LayerStore;
use super::whiteout::Written;
use super::{Image, Layer, OciError};
use crate::nofollow;

/// What an unpack may do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Timestamp of every file and folder (SOURCE_DATE_EPOCH).
    pub epoch: u64,
    /// Create character and block device nodes (host containers); when
    /// false (workloads) they are left out and counted in
    /// [`UnpackReport::devices_dropped`]: a workload gets its own `/dev`.
    pub allow_devices: bool,
}

/// Where a layer is in its unpacking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Start,
    /// Sent every few MiB of stored (compressed) bytes.
    Reading,
    Done,
}

/// A progress report: layer `layer` (0-based) of `layers`, `read` stored
/// bytes of `total` (when known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub layer: usize,
    pub layers: usize,
    pub stage: Stage,
    pub read: u64,
    pub total: Option<u64>,
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Layers applied.
    pub layers: usize,
    /// Entries applied (whiteouts included, skipped headers not).
    pub entries: u64,
    /// Regular files (each a hard link to the layer store).
    pub files: u64,
    /// Bytes of regular files written to the layer store.
    pub bytes_written: u64,
    /// Bytes of regular files linked from an earlier unpack's store files.
    pub bytes_linked: u64,
    /// Whiteout and opaque markers applied.
    pub whiteouts: u64,
    /// Entries whose owner from the tar header was not applied because
    /// the builder is not root (they belong to the builder instead).
    pub not_owned: u64,
    /// Extended attributes (`SCHILY.xattr.*`, e.g. file capabilities)
    /// left out.
    pub xattrs_skipped: u64,
    /// Character and block device nodes left out (the policy does not
    /// allow them), and the first one's path, for the build's warning.
    pub devices_dropped: u64,
    pub device_example: Option<PathBuf>,
}

/// How owners from tar headers are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owners {
    /// Running as root: `chown` to the header's uid and gid.
    Apply,
    /// Not root: everything belongs to this uid and gid; differing
    /// headers are counted in [`UnpackReport::not_owned`].
    Keep { uid: u32, gid: u32 },
}

impl Owners {
    pub(crate) fn of_process() -> Owners {
        let uid = nix::unistd::geteuid();
        if uid.is_root() {
            Owners::Apply
        } else {
            Owners::Keep {
                uid: uid.as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            }
        }
    }
}

/// Applies `image`'s layers, in order, to the empty folder `dest`,
/// writing regular files through `store`. `progress` hears about each
/// layer's start and end and every few MiB read.
pub fn unpack(
    image: &Image,
    dest: &Path,
    store: &mut LayerStore,
    policy: &Policy,
    progress: &mut dyn FnMut(Progress),
) -> Result<UnpackReport, OciError> {
    unpack_with(image, dest, store, policy, Owners::of_process(), progress)
}

/// [`unpack`] with the owner handling given (tests act as non-root).
pub(crate) fn unpack_with(
    image: &Image,
    dest: &Path,
    store: &mut LayerStore,
    policy: &Policy,
    owners: Owners,
    progress: &mut dyn FnMut(Progress),
) -> Result<UnpackReport, OciError> {
    check_dest(dest)?;
    let mut applier = Applier {
        dest,
        policy,
        owners,
        report: UnpackReport::default(),
        dir_modes: BTreeMap::new(),
    };
    for (index, layer) in image.layers.iter().enumerate() {
        let mut meter = Meter::new(index, image.layers.len(), layer.size, progress);
        apply_layer(&mut applier, layer, store, &mut meter)?;
    }
    finish_folders(dest, &applier.dir_modes, policy.epoch)?;
    Ok(applier.report)
}

fn check_dest(dest: &Path) -> Result<(), OciError> {
    let why = match nofollow::lstat(dest) {
        Ok(Some(m)) if m.is_dir() => {
            match std::fs::read_dir(dest).map(|mut d| d.next().is_none()) {
                Ok(true) => return Ok(()),
                Ok(false) => "it is not empty".to_owned(),
                Err(e) => format!("cannot list it: {e}"),
            }
        }
        Ok(Some(_)) => "it is not a folder".to_owned(),
        Ok(None) => "it does not exist".to_owned(),
        Err(e) => format!("cannot stat it: {e}"),
    };
    Err(OciError::Dest {
        path: dest.to_owned(),
        why,
    })
}

fn apply_layer(
    applier: &mut Applier<'_>,
    layer: &Layer,
    store: &mut LayerStore,
    meter: &mut Meter<'_>,
) -> Result<(), OciError> {
    let staging = store.begin(
        &layer.digest,
        applier.policy.epoch,
        applier.owners == Owners::Apply,
    )?;
    let mut reader = layer.open()?;
    meter.start(reader.counter());
    let mut cx = LayerCtx {
        layer,
        staging,
        written: Written::default(),
    };
    {
        let mut archive = tar::Archive::new(&mut reader);
        let entries = archive.entries().map_err(|e| layer.read_error(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| layer.read_error(e))?;
            applier.entry(&mut cx, &mut entry, meter)?;
            meter.tick();
        }
    }
    reader.finish()?;
    cx.staging
        .commit()
        .map_err(|(path, source)| OciError::Unpack {
            layer: layer.digest.clone(),
            step: "keep the verified layer files in",
            path,
            source,
        })?;
    applier.report.layers += 1;
    meter.done();
    Ok(())
}

/// Sets the recorded folder modes and stamps every folder, children first.
fn finish_folders(dest: &Path, modes: &BTreeMap<PathBuf, u32>, epoch: u64) -> Result<(), OciError> {
    let err = |step, path: &Path| {
        let path = path.to_owned();
        move |source| OciError::Finish { step, path, source }
    };
    for rel in nofollow::folders_bottom_up(dest).map_err(err("list the folders of", dest))? {
        let host = dest.join(&rel);
        if let Some(&mode) = modes.get(&rel) {
            nofollow::chmod(&host, mode).map_err(err("set the mode of", &host))?;
        }
        nofollow::set_times(&host, epoch).map_err(err("set the timestamp of", &host))?;
    }
    Ok(())
}
