//! Applying one layer entry to the rootfs, after [`plan`] accepted it.
//!
//! Every step first checks the entry's parents with
//! [`nofollow::parents`] (a symlink there is an escape), clears the way
//! (whatever a lower layer left at the path goes, except a folder that a
//! folder entry merges into) and creates the entry without following a
//! symlink. Regular files are written to (or found in) the layer store
//! with their final owner, mode and timestamp and hard-linked in. Owners
//! come from the tar header when running as root; modes keep
//! setuid/setgid/sticky; timestamps are the policy's epoch.

use std::collections::BTreeMap;
use std::fs::{File, FileTimes};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::entry::{plan, Device, Plan, Refusal};
use super::meter::Meter;
use super::store::Staging;
use super::unpack::{Owners, Policy, UnpackReport};
use super::whiteout::{self, Written};
use super::{Layer, OciError};
use crate::nofollow::{self, WalkError};

/// Copy buffer for file contents.
const CHUNK: usize = 256 << 10;

/// The owner and mode of an entry, from its header.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The layer being applied.
#[derive(Debug)]
pub(crate) struct LayerCtx<'l> {
    pub layer: &'l Layer,
    pub staging: Staging,
    pub written: Written,
}

impl LayerCtx<'_> {
    fn escape(&self, path: &Path, why: impl Into<String>) -> OciError {
        OciError::Escape {
            layer: self.layer.digest.clone(),
            path: path.display().to_string(),
            why: why.into(),
        }
    }

    fn bad(&self, path: &Path, why: impl Into<String>) -> OciError {
        OciError::BadEntry {
            layer: self.layer.digest.clone(),
            path: path.display().to_string(),
            why: why.into(),
        }
    }

    fn io(&self, step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OciError {
        let layer = self.layer.digest.clone();
        let path = path.to_owned();
        move |source| OciError::Unpack {
            layer,
            step,
            path,
            source,
        }
    }

    fn walk_error(&self, dest: &Path, path: &Path, e: WalkError) -> OciError {
        match e {
            WalkError::Symlink(p) => {
                self.escape(path, format!("its parent {} is a symlink", p.display()))
            }
            WalkError::NotDir(p) => {
                self.bad(path, format!("its parent {} is not a folder", p.display()))
            }
            WalkError::Io(p, source) => self.io("check", &dest.join(p))(source),
        }
    }
}

/// Applies entries to one rootfs; lives for the whole unpack.
#[derive(Debug)]
pub(crate) struct Applier<'a> {
    pub dest: &'a Path,
    pub policy: &'a Policy,
    pub owners: Owners,
    pub report: UnpackReport,
    /// Folder modes from the headers, set after the last layer.
    pub dir_modes: BTreeMap<PathBuf, u32>,
}

impl Applier<'_> {
    /// Applies one tar entry.
    pub(crate) fn entry<R: Read>(
        &mut self,
        cx: &mut LayerCtx<'_>,
        entry: &mut tar::Entry<'_, R>,
        meter: &mut Meter<'_>,
    ) -> Result<(), OciError> {
        let raw = entry.path_bytes().into_owned();
        let shown = PathBuf::from(String::from_utf8_lossy(&raw).into_owned());
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let kind = entry.header().entry_type();
        let plan =
            plan(&raw, kind, link.as_deref(), self.policy.allow_devices).map_err(|r| match r {
                Refusal::Escape(why) => cx.escape(&shown, why),
                Refusal::Bad(why) => cx.bad(&shown, why),
            })?;
        if plan == Plan::Skip {
            return Ok(());
        }
        self.count_xattrs(cx, entry, &shown)?;
        self.report.entries += 1;
        match plan {
            Plan::Skip => Ok(()),
            Plan::Root => {
                let meta = meta(cx, entry, &shown)?;
                self.set_owner(cx, self.dest, meta)?;
                self.dir_modes.insert(PathBuf::new(), meta.mode);
                Ok(())
            }
            Plan::Whiteout(rel) => self.whiteout(cx, &rel, &shown, false),
            Plan::Opaque(rel) => self.whiteout(cx, &rel, &shown, true),
            Plan::Dir(rel) => {
                let meta = meta(cx, entry, &shown)?;
                let host = self.dest.join(&rel);
                if !self.make_room(cx, &rel, true)? {
                    std::fs::create_dir(&host).map_err(cx.io("create the folder", &host))?;
                }
                self.set_owner(cx, &host, meta)?;
                self.dir_modes.insert(rel.clone(), meta.mode);
                cx.written.insert(&rel);
                Ok(())
            }
            Plan::File(rel) => {
                let meta = meta(cx, entry, &shown)?;
                refuse_holes(cx, entry, &shown)?;
                self.file(cx, &rel, meta, entry, meter)
            }
            Plan::Symlink { path, target } => {
                let meta = meta(cx, entry, &shown)?;
                self.make_room(cx, &path, false)?;
                let host = self.dest.join(&path);
                std::os::unix::fs::symlink(&target, &host)
                    .map_err(cx.io("create the symlink", &host))?;
                self.set_owner(cx, &host, meta)?;
                nofollow::set_times(&host, self.policy.epoch)
                    .map_err(cx.io("set the timestamp of", &host))?;
                cx.written.insert(&path);
                Ok(())
            }
            Plan::HardLink { path, target } => self.hard_link(cx, &path, &target),
            Plan::Fifo(rel) => {
                let meta = meta(cx, entry, &shown)?;
                self.node(cx, &rel, SFlag::S_IFIFO, 0, meta)
            }
            Plan::Device { path, kind } => {
                let meta = meta(cx, entry, &shown)?;
                let header = entry.header();
                let number = |n: io::Result<Option<u32>>| n.ok().flatten().unwrap_or(0);
                let dev = makedev(
                    u64::from(number(header.device_major())),
                    u64::from(number(header.device_minor())),
                );
                let flag = match kind {
                    Device::Char => SFlag::S_IFCHR,
                    Device::Block => SFlag::S_IFBLK,
                };
                self.node(cx, &path, flag, dev, meta)
            }
            Plan::DropDevice(rel) => {
                self.make_room(cx, &rel, false)?;
                self.report.devices_dropped += 1;
                self.report.device_example.get_or_insert(rel);
                Ok(())
            }
        }
    }

    /// Extended attributes are not kept; count them for the report.
    fn count_xattrs<R: Read>(
        &mut self,
        cx: &LayerCtx<'_>,
        entry: &mut tar::Entry<'_, R>,
        shown: &Path,
    ) -> Result<(), OciError> {
        let bad = |e: io::Error| cx.bad(shown, format!("unreadable pax header: {e}"));
        if let Some(extensions) = entry.pax_extensions().map_err(bad)? {
            for ext in extensions {
                let key = ext.map_err(bad)?.key_bytes();
                if key.starts_with(b"SCHILY.xattr.") || key.starts_with(b"LIBARCHIVE.xattr.") {
                    self.report.xattrs_skipped += 1;
                }
            }
        }
        Ok(())
    }

    /// Checks (and creates) the parents of `rel`, then removes what is at
    /// `rel` unless it is a folder and `keep_dir` is set. True when a
    /// folder was kept.
    fn make_room(
        &mut self,
        cx: &LayerCtx<'_>,
        rel: &Path,
        keep_dir: bool,
    ) -> Result<bool, OciError> {
        let mut created = Vec::new();
        nofollow::parents(self.dest, rel, true, &mut created)
            .map_err(|e| cx.walk_error(self.dest, rel, e))?;
        if self.owners == Owners::Apply {
            for dir in &created {
                let host = self.dest.join(dir);
                nofollow::chown(&host, 0, 0).map_err(cx.io("set the owner of", &host))?;
            }
        }
        let host = self.dest.join(rel);
        match nofollow::lstat(&host).map_err(cx.io("check", &host))? {
            None => Ok(false),
            Some(m) if m.is_dir() && keep_dir => Ok(true),
            Some(_) => {
                nofollow::remove(&host).map_err(cx.io("remove", &host))?;
                self.forget(rel);
                Ok(false)
            }
        }
    }

    /// Drops the recorded modes of `rel` and everything below it.
    fn forget(&mut self, rel: &Path) {
        let below: Vec<PathBuf> = self
            .dir_modes
            .range(rel.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(rel))
            .map(|(p, _)| p.clone())
            .collect();
        for p in below {
            self.dir_modes.remove(&p);
        }
    }

    /// `lchown` to the header's owner when running as root; otherwise
    /// count an owner that differs from the builder's.
    fn set_owner(&mut self, cx: &LayerCtx<'_>, host: &Path, meta: Meta) -> Result<(), OciError> {
        if self.owner_applies(meta) {
            nofollow::chown(host, meta.uid, meta.gid).map_err(cx.io("set the owner of", host))?;
        }
        Ok(())
    }

    fn owner_applies(&mut self, meta: Meta) -> bool {
        match self.owners {
            Owners::Apply => true,
            Owners::Keep { uid, gid } => {
                if (meta.uid, meta.gid) != (uid, gid) {
                    self.report.not_owned += 1;
                }
                false
            }
        }
    }

    /// A regular file: from the store (written now or by an earlier
    /// unpack), hard-linked into the rootfs.
    fn file<R: Read>(
        &mut self,
        cx: &mut LayerCtx<'_>,
        rel: &Path,
        meta: Meta,
        entry: &mut tar::Entry<'_, R>,
        meter: &mut Meter<'_>,
    ) -> Result<(), OciError> {
        self.make_room(cx, rel, false)?;
        let size = entry.size();
        let stored = match cx.staging.existing(rel, size) {
            Some(path) => {
                self.owner_applies(meta);
                self.report.bytes_linked += size;
                path
            }
            None => {
                let (path, mut file) = cx
                    .staging
                    .create(rel)
                    .map_err(|(p, e)| cx.io("create the layer store file", &p)(e))?;
                copy(cx, entry, &mut file, &path, meter)?;
                self.finish_file(cx, &file, &path, meta)?;
                self.report.bytes_written += size;
                path
            }
        };
        let host = self.dest.join(rel);
        std::fs::hard_link(&stored, &host).map_err(|e| {
            let step = if e.raw_os_error() == Some(nix::libc::EXDEV) {
                "link from the layer store (it must be on the rootfs's filesystem)"
            } else {
                "link from the layer store"
            };
            cx.io(step, &host)(e)
        })?;
        cx.written.insert(rel);
        self.report.files += 1;
        Ok(())
    }

    /// Owner (first: `chown` clears setuid), mode and timestamp of a new
    /// store file, through its open handle.
    fn finish_file(
        &mut self,
        cx: &LayerCtx<'_>,
        file: &File,
        path: &Path,
        meta: Meta,
    ) -> Result<(), OciError> {
        if self.owner_applies(meta) {
            std::os::unix::fs::fchown(file, Some(meta.uid), Some(meta.gid))
                .map_err(cx.io("set the owner of", path))?;
        }
        file.set_permissions(std::fs::Permissions::from_mode(meta.mode))
            .map_err(cx.io("set the mode of", path))?;
        let t = UNIX_EPOCH + Duration::from_secs(self.policy.epoch);
        file.set_times(FileTimes::new().set_accessed(t).set_modified(t))
            .map_err(cx.io("set the timestamp of", path))
    }

    fn hard_link(
        &mut self,
        cx: &mut LayerCtx<'_>,
        rel: &Path,
        target: &Path,
    ) -> Result<(), OciError> {
        let missing = || {
            cx.escape(
                rel,
                format!(
                    "hard link target {} does not exist in the rootfs",
                    target.display()
                ),
            )
        };
        match nofollow::parents(self.dest, target, false, &mut Vec::new()) {
            Ok(true) => {}
            Ok(false) | Err(WalkError::NotDir(_)) => return Err(missing()),
            Err(WalkError::Symlink(p)) => {
                return Err(cx.escape(
                    rel,
                    format!(
                        "hard link target {} goes through the symlink {}",
                        target.display(),
                        p.display()
                    ),
                ))
            }
            Err(e) => return Err(cx.walk_error(self.dest, target, e)),
        }
        let target_host = self.dest.join(target);
        match nofollow::lstat(&target_host).map_err(cx.io("check", &target_host))? {
            None => return Err(missing()),
            Some(m) if m.is_dir() => return Err(cx.bad(rel, "hard link to a folder")),
            Some(_) => {}
        }
        self.make_room(cx, rel, false)?;
        let host = self.dest.join(rel);
        // `link(2)` does not follow a symlink named as the target.
        std::fs::hard_link(&target_host, &host).map_err(cx.io("create the hard link", &host))?;
        cx.written.insert(rel);
        Ok(())
    }

    /// A fifo or device node.
    fn node(
        &mut self,
        cx: &mut LayerCtx<'_>,
        rel: &Path,
        kind: SFlag,
        dev: u64,
        meta: Meta,
    ) -> Result<(), OciError> {
        self.make_room(cx, rel, false)?;
        let host = self.dest.join(rel);
        mknod(
            &host,
            kind,
            Mode::from_bits_truncate(meta.mode & 0o777),
            dev,
        )
        .map_err(|e| cx.io("create the node", &host)(io::Error::from(e)))?;
        self.set_owner(cx, &host, meta)?;
        nofollow::chmod(&host, meta.mode).map_err(cx.io("set the mode of", &host))?;
        nofollow::set_times(&host, self.policy.epoch)
            .map_err(cx.io("set the timestamp of", &host))?;
        cx.written.insert(rel);
        Ok(())
    }

    /// `.wh.NAME` (prune `rel`) or `.wh..wh..opq` (prune the children of
    /// the folder `rel`).
    fn whiteout(
        &mut self,
        cx: &mut LayerCtx<'_>,
        rel: &Path,
        shown: &Path,
        opaque: bool,
    ) -> Result<(), OciError> {
        self.report.whiteouts += 1;
        // The marker's own parents: `rel`'s for a whiteout, `rel` and its
        // parents for an opaque folder.
        let marker = if opaque {
            rel.join("marker")
        } else {
            rel.to_owned()
        };
        match nofollow::parents(self.dest, &marker, false, &mut Vec::new()) {
            Ok(true) => {}
            Ok(false) | Err(WalkError::NotDir(_)) => return Ok(()),
            Err(e) => return Err(cx.walk_error(self.dest, shown, e)),
        }
        let removed = if opaque {
            whiteout::prune_children(self.dest, rel, &cx.written)
        } else {
            whiteout::prune(self.dest, rel, &cx.written)
        }
        .map_err(cx.io("apply the whiteout at", &self.dest.join(rel)))?;
        for path in removed {
            self.forget(&path);
        }
        Ok(())
    }
}

/// Owner and mode from the header.
fn meta<R: Read>(
    cx: &LayerCtx<'_>,
    entry: &tar::Entry<'_, R>,
    shown: &Path,
) -> Result<Meta, OciError> {
    let header = entry.header();
    let field = |v: io::Result<u64>, what: &str| {
        v.ok()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| cx.bad(shown, format!("unreadable or too large {what}")))
    };
    Ok(Meta {
        mode: header
            .mode()
            .map_err(|e| cx.bad(shown, format!("unreadable mode: {e}")))?
            & 0o7777,
        uid: field(header.uid(), "uid")?,
        gid: field(header.gid(), "gid")?,
    })
}

/// Refuses a GNU sparse file with holes. The tar reader hands the holes
/// over as zeros, which would be written out in full: a header of a few
/// hundred bytes could claim terabytes (found by the `oci_layer` fuzz
/// target). Image tools do not write sparse layers, so none is supported.
fn refuse_holes<R: Read>(
    cx: &LayerCtx<'_>,
    entry: &tar::Entry<'_, R>,
    shown: &Path,
) -> Result<(), OciError> {
    if entry.header().entry_type() != tar::EntryType::GNUSparse {
        return Ok(());
    }
    // The size field is what the archive stores (`Header::size` would
    // answer the file's length, as the entry does).
    let stored = entry.header().entry_size().unwrap_or(0);
    match entry.size().saturating_sub(stored) {
        0 => Ok(()),
        holes => Err(cx.bad(
            shown,
            format!("sparse file with {holes} bytes of holes (sparse files are not supported)"),
        )),
    }
}

/// Copies an entry's content into a store file, reporting progress.
fn copy<R: Read>(
    cx: &LayerCtx<'_>,
    entry: &mut tar::Entry<'_, R>,
    file: &mut File,
    path: &Path,
    meter: &mut Meter<'_>,
) -> Result<(), OciError> {
    let mut buf = vec![
        0;
        usize::try_from(entry.size())
            .unwrap_or(CHUNK)
            .clamp(1, CHUNK)
    ];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cx.layer.read_error(e)),
        };
        file.write_all(&buf[..n]).map_err(cx.io("write", path))?;
        meter.tick();
    }
}
