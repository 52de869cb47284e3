//! What to do with one layer entry, decided from its header alone.
//!
//! Pure: [`plan`] turns the raw path, type and link name of a tar entry
//! into a [`Plan`] or refuses it. Paths are made relative to the rootfs:
//! `./` and empty components vanish, a leading `/` or any `..` is refused
//! (an escape, not something to clean up). The whiteout names of the OCI
//! layer spec are recognised here: `.wh..wh..opq` makes its folder opaque,
//! `.wh.NAME` deletes NAME, other `.wh..wh.` names (aufs bookkeeping) are
//! skipped. What depends on the filesystem (a parent that is a symlink, a
//! hard link target that does not exist) is checked by the unpacker.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

const OPAQUE: &str = ".wh..wh..opq";
const META_PREFIX: &str = ".wh..wh.";
const WHITEOUT_PREFIX: &str = ".wh.";

/// Which kind of device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Device {
    Char,
    Block,
}

/// The action for one entry. Paths are relative to the rootfs; the empty
/// path is the rootfs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing to do (pax global headers, aufs metadata).
    Skip,
    /// The rootfs folder's own entry (`./`): only its metadata applies.
    Root,
    /// Remove this path as lower layers left it.
    Whiteout(PathBuf),
    /// Remove what lower layers left inside this folder.
    Opaque(PathBuf),
    Dir(PathBuf),
    File(PathBuf),
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
    HardLink {
        path: PathBuf,
        target: PathBuf,
    },
    Fifo(PathBuf),
    Device {
        path: PathBuf,
        kind: Device,
    },
    /// A device node the policy leaves out: whatever lower layers left at
    /// the path goes, and nothing takes its place.
    DropDevice(PathBuf),
}

/// Why an entry is not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It would reach outside the rootfs.
    Escape(String),
    /// It is malformed or of a kind that cannot be applied.
    Bad(String),
}

/// `raw` as a path relative to the rootfs (empty for the rootfs itself).
pub(crate) fn relative(raw: &[u8], what: &str) -> Result<PathBuf, Refusal> {
    if raw.contains(&0) {
        return Err(Refusal::Bad(format!("{what} contains a NUL byte")));
    }
    if raw.starts_with(b"/") {
        return Err(Refusal::Escape(format!("{what} is absolute")));
    }
    let mut path = PathBuf::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Refusal::Escape(format!("{what} has a `..` component"))),
            name => path.push(OsStr::from_bytes(name)),
        }
    }
    Ok(path)
}

/// Decides what to do with an entry of type `kind` at `raw_path`, with
/// link name `link` (symlinks, hard links).
pub(crate) fn plan(
    raw_path: &[u8],
    kind: EntryType,
    link: Option<&[u8]>,
    allow_devices: bool,
) -> Result<Plan, Refusal> {
    if kind == EntryType::XGlobalHeader {
        return Ok(Plan::Skip);
    }
    let path = relative(raw_path, "the path")?;
    if let Some(plan) = whiteout(&path)? {
        return Ok(plan);
    }
    let is_root = path.as_os_str().is_empty();
    if is_root {
        return match kind {
            EntryType::Directory => Ok(Plan::Root),
            _ => Err(Refusal::Bad(
                "the rootfs itself can only be a folder".into(),
            )),
        };
    }
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Ok(Plan::File(path)),
        EntryType::Directory => Ok(Plan::Dir(path)),
        EntryType::Symlink => {
            let target = link.unwrap_or_default();
            if target.is_empty() || target.contains(&0) {
                return Err(Refusal::Bad(
                    "symlink with an empty or NUL-holding target".into(),
                ));
            }
            Ok(Plan::Symlink {
                path,
                target: PathBuf::from(OsStr::from_bytes(target)),
            })
        }
        EntryType::Link => {
            let target = relative(link.unwrap_or_default(), "the hard link target")?;
            if target.as_os_str().is_empty() {
                return Err(Refusal::Bad("hard link to the rootfs itself".into()));
            }
            if target == path {
                return Err(Refusal::Bad("hard link to itself".into()));
            }
            Ok(Plan::HardLink { path, target })
        }
        EntryType::Fifo => Ok(Plan::Fifo(path)),
        EntryType::Char | EntryType::Block if !allow_devices => Ok(Plan::DropDevice(path)),
        EntryType::Char => Ok(Plan::Device {
            path,
            kind: Device::Char,
        }),
        EntryType::Block => Ok(Plan::Device {
            path,
            kind: Device::Block,
        }),
        other => Err(Refusal::Bad(format!("unsupported entry type {other:?}"))),
    }
}

/// The whiteout plan when the path's last component is a whiteout name.
fn whiteout(path: &Path) -> Result<Option<Plan>, Refusal> {
    let Some(base) = path.file_name().and_then(OsStr::to_str) else {
        return Ok(None);
    };
    let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
    if base == OPAQUE {
        return Ok(Some(Plan::Opaque(parent)));
    }
    if base.starts_with(META_PREFIX) {
        return Ok(Some(Plan::Skip));
    }
    match base.strip_prefix(WHITEOUT_PREFIX) {
        None => Ok(None),
        Some("") | Some(".") => Err(Refusal::Bad(format!("whiteout of {base:?}"))),
        Some("..") => Err(Refusal::Escape("whiteout of `..`".into())),
        Some(name) => Ok(Some(Plan::Whiteout(parent.join(name)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn escape(why: &str) -> Result<Plan, Refusal> {
        Err(Refusal::Escape(why.into()))
    }

    fn bad(why: &str) -> Result<Plan, Refusal> {
        Err(Refusal::Bad(why.into()))
    }

    /// Path, type, link name, devices allowed, expected plan.
    type Row = (
        &'static str,
        EntryType,
        Option<&'static str>,
        bool,
        Result<Plan, Refusal>,
    );

    fn check_plans(rows: &[Row]) {
        for (raw, kind, link, devices, want) in rows {
            let got = plan(raw.as_bytes(), *kind, link.map(str::as_bytes), *devices);
            assert_eq!(&got, want, "{raw:?} {kind:?} {link:?}");
        }
    }

    #[test]
    fn path_plans() {
        use EntryType as T;
        check_plans(&[
            (
                "etc/passwd",
                T::Regular,
                None,
                false,
                Ok(Plan::File(p("etc/passwd"))),
            ),
            (
                "./etc/passwd",
                T::Regular,
                None,
                false,
                Ok(Plan::File(p("etc/passwd"))),
            ),
            (
                "etc//./x",
                T::Continuous,
                None,
                false,
                Ok(Plan::File(p("etc/x"))),
            ),
            ("etc/", T::Directory, None, false, Ok(Plan::Dir(p("etc")))),
            ("./", T::Directory, None, false, Ok(Plan::Root)),
            (".", T::Directory, None, false, Ok(Plan::Root)),
            (
                "./",
                T::Regular,
                None,
                false,
                bad("the rootfs itself can only be a folder"),
            ),
            (
                "/etc/passwd",
                T::Regular,
                None,
                false,
                escape("the path is absolute"),
            ),
            (
                "../x",
                T::Regular,
                None,
                false,
                escape("the path has a `..` component"),
            ),
            (
                "a/../../x",
                T::Regular,
                None,
                false,
                escape("the path has a `..` component"),
            ),
            (
                "a/..",
                T::Directory,
                None,
                false,
                escape("the path has a `..` component"),
            ),
        ]);
    }

    #[test]
    fn link_plans() {
        use EntryType as T;
        check_plans(&[
            (
                "bin/sh",
                T::Symlink,
                Some("/bin/busybox"),
                false,
                Ok(Plan::Symlink {
                    path: p("bin/sh"),
                    target: p("/bin/busybox"),
                }),
            ),
            (
                "a",
                T::Symlink,
                Some("../../.."),
                false,
                Ok(Plan::Symlink {
                    path: p("a"),
                    target: p("../../.."),
                }),
            ),
            (
                "a",
                T::Symlink,
                Some(""),
                false,
                bad("symlink with an empty or NUL-holding target"),
            ),
            (
                "bin/ls",
                T::Link,
                Some("./bin/busybox"),
                false,
                Ok(Plan::HardLink {
                    path: p("bin/ls"),
                    target: p("bin/busybox"),
                }),
            ),
            (
                "x",
                T::Link,
                Some("/etc/passwd"),
                false,
                escape("the hard link target is absolute"),
            ),
            (
                "x",
                T::Link,
                Some("../outside"),
                false,
                escape("the hard link target has a `..` component"),
            ),
            (
                "x",
                T::Link,
                Some("./"),
                false,
                bad("hard link to the rootfs itself"),
            ),
            ("x", T::Link, Some("x"), false, bad("hard link to itself")),
        ]);
    }

    #[test]
    fn fifo_and_device_plans() {
        use EntryType as T;
        check_plans(&[
            (
                "run/fifo",
                T::Fifo,
                None,
                false,
                Ok(Plan::Fifo(p("run/fifo"))),
            ),
            (
                "dev/null",
                T::Char,
                None,
                false,
                Ok(Plan::DropDevice(p("dev/null"))),
            ),
            (
                "dev/sda",
                T::Block,
                None,
                false,
                Ok(Plan::DropDevice(p("dev/sda"))),
            ),
            (
                "dev/null",
                T::Char,
                None,
                true,
                Ok(Plan::Device {
                    path: p("dev/null"),
                    kind: Device::Char,
                }),
            ),
            (
                "dev/sda",
                T::Block,
                None,
                true,
                Ok(Plan::Device {
                    path: p("dev/sda"),
                    kind: Device::Block,
                }),
            ),
        ]);
    }

    #[test]
    fn whiteout_and_other_plans() {
        use EntryType as T;
        check_plans(&[
            (
                "etc/.wh.motd",
                T::Regular,
                None,
                false,
                Ok(Plan::Whiteout(p("etc/motd"))),
            ),
            (
                ".wh.etc",
                T::Regular,
                None,
                false,
                Ok(Plan::Whiteout(p("etc"))),
            ),
            (
                "etc/.wh..wh..opq",
                T::Regular,
                None,
                false,
                Ok(Plan::Opaque(p("etc"))),
            ),
            (
                "./.wh..wh..opq",
                T::Regular,
                None,
                false,
                Ok(Plan::Opaque(p(""))),
            ),
            (
                ".wh..wh.plnk/1",
                T::Directory,
                None,
                false,
                Ok(Plan::Dir(p(".wh..wh.plnk/1"))),
            ),
            (".wh..wh.plnk", T::Directory, None, false, Ok(Plan::Skip)),
            (
                "etc/.wh.",
                T::Regular,
                None,
                false,
                bad("whiteout of \".wh.\""),
            ),
            (
                "etc/.wh..",
                T::Regular,
                None,
                false,
                bad("whiteout of \".wh..\""),
            ),
            (
                "etc/.wh...",
                T::Regular,
                None,
                false,
                escape("whiteout of `..`"),
            ),
            (
                "../.wh.x",
                T::Regular,
                None,
                false,
                escape("the path has a `..` component"),
            ),
            (
                "pax_global_header",
                T::XGlobalHeader,
                None,
                false,
                Ok(Plan::Skip),
            ),
            (
                "x",
                T::GNULongName,
                None,
                false,
                bad("unsupported entry type GNULongName"),
            ),
        ]);
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert_eq!(
            relative(b"a\0b", "the path"),
            Err(Refusal::Bad("the path contains a NUL byte".into()))
        );
    }
}
