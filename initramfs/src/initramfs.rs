//! The initramfs: a newc cpio, zstd-compressed, that the kernel unpacks
//! into its rootfs before running `/init` (stage 0).
//!
//! ```text
//! /init                     the static berth binary
//! /etc/initrd-release       its presence selects stage 0
//! /dev/console              5:1, so PID 1 has stdio before devtmpfs
//! /dev /proc /sys /run /sysroot
//! /lib/modules/KVER/        only what reaching the root needs
//! ```
//!
//! The tree is assembled in memory (host files are referenced, not read)
//! and written sorted by path, parents first, with one mtime: the same
//! inputs give the same bytes. Compressed with zstd at level
//! [`ZSTD_LEVEL`] (the host's `zstd`, deterministic for the same
//! version): a third of the size, which the ESP, the disk image and an
//! update download carry, for about a quarter of a second of decompression
//! under emulation (zstd decompresses several times faster than xz, and
//! its ratio here is close; level 19 would save 10% more for a build 15
//! times slower, paid by every image build).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use berth_config::layout;
use berth_config::modules::ModuleIndex;

use crate::cpio::{CpioError, CpioWriter};
use crate::kernel::Kernel;
use crate::modules::{self, ModulePack, PackError};
use crate::tool::{ToolError, ZSTD};

/// Building the initramfs failed.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("pack the stage-0 kernel modules")]
    Modules(#[source] PackError),
    #[error("create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write the initramfs {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: CpioError,
    },
    #[error("compress the initramfs {path}")]
    Compress {
        path: PathBuf,
        #[source]
        source: ToolError,
    },
}

/// zstd's level for the initramfs.
pub const ZSTD_LEVEL: u32 = 9;

/// One entry of an archive tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    HostFile { mode: u32, path: PathBuf },
    Symlink { target: String },
    CharDevice { mode: u32, major: u32, minor: u32 },
}

/// An archive's entries by path (relative, no leading `/`). Adding an
/// entry adds its missing parent folders (0755); `Path`'s ordering is by
/// component, so iterating yields every folder before its contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<PathBuf, Node>,
}

impl Tree {
    /// Adds (or replaces) `path`; a leading `/` is ignored.
    pub fn insert(&mut self, path: impl AsRef<Path>, node: Node) {
        let rel: PathBuf = path
            .as_ref()
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        let mut parent = rel.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            self.entries
                .entry(p.to_owned())
                .or_insert(Node::Dir { mode: 0o755 });
            parent = p.parent();
        }
        if !rel.as_os_str().is_empty() {
            self.entries.insert(rel, node);
        }
    }

    /// Paths in archive order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.keys().map(PathBuf::as_path)
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.entries.get(Path::new(path))
    }

    /// Writes the archive; returns the sink and the archive's length.
    pub fn write<W: Write>(&self, out: W, mtime: u64) -> Result<(W, u64), CpioError> {
        let mut w = CpioWriter::new(out, mtime);
        for (path, node) in &self.entries {
            let name = path.to_string_lossy();
            match node {
                Node::Dir { mode } => w.dir(&name, *mode)?,
                Node::File { mode, data } => w.file(&name, *mode, data)?,
                Node::HostFile { mode, path } => w.file_from_host(&name, *mode, path)?,
                Node::Symlink { target } => w.symlink(&name, target)?,
                Node::CharDevice { mode, major, minor } => {
                    w.char_device(&name, *mode, *major, *minor)?
                }
            }
        }
        w.finish()
    }
}

/// `/etc/initrd-release` (os-release(5) fields, like systemd's initrds).
pub fn initrd_release() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "NAME=\"berth initramfs\"\nID=berth\nVERSION_ID={version}\nPRETTY_NAME=\"berth {version} (initramfs)\"\n"
    )
}

/// The modules the initramfs carries: those stage 0 always loads, the
/// disk drivers, those it loads for a verified root (`berth.verity=`),
/// then those it loads early for stage 1 (STATE's filesystem among them
/// only when `state_first`).
pub fn stage0_module_names(state_first: bool) -> Vec<&'static str> {
    layout::stage0_all_modules(state_first)
}

/// The initramfs tree for `kernel`, with `berth` as `/init`, and the
/// stage-0 modules it carries (see [`stage0_module_names`]).
pub fn tree(
    kernel: &Kernel,
    index: &ModuleIndex,
    berth: &Path,
    state_first: bool,
) -> Result<(Tree, ModulePack), InitramfsError> {
    let pack = modules::pack(
        &kernel.modules_dir,
        index,
        &stage0_module_names(state_first),
    )
    .map_err(InitramfsError::Modules)?;
    let mut t = Tree::default();
    t.insert(
        "init",
        Node::HostFile {
            mode: 0o755,
            path: berth.to_owned(),
        },
    );
    t.insert(
        layout::INITRD_RELEASE,
        Node::File {
            mode: 0o644,
            data: initrd_release().into_bytes(),
        },
    );
    t.insert("dev", Node::Dir { mode: 0o755 });
    t.insert(
        "dev/console",
        Node::CharDevice {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    );
    for (dir, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("run", 0o755),
        (layout::SYSROOT, 0o755),
    ] {
        t.insert(dir, Node::Dir { mode });
    }
    let modules_dir = Path::new("lib/modules").join(&kernel.version);
    for (rel, host) in &pack.files {
        t.insert(
            modules_dir.join(rel),
            Node::HostFile {
                mode: 0o644,
                path: host.clone(),
            },
        );
    }
    for (name, text) in &pack.index {
        t.insert(
            modules_dir.join(name),
            Node::File {
                mode: 0o644,
                data: text.clone().into_bytes(),
            },
        );
    }
    Ok((t, pack))
}

/// Writes `tree` to `path`, compressed; returns the cpio's size and the
/// compressed size in bytes.
pub fn write(tree: &Tree, path: &Path, mtime: u64) -> Result<(u64, u64), InitramfsError> {
    let mut cpio = path.as_os_str().to_owned();
    cpio.push(".cpio");
    let cpio = PathBuf::from(cpio);
    let file = std::fs::File::create(&cpio).map_err(|source| InitramfsError::Create {
        path: cpio.clone(),
        source,
    })?;
    let (_, len) =
        tree.write(BufWriter::new(file), mtime)
            .map_err(|source| InitramfsError::Write {
                path: cpio.clone(),
                source,
            })?;
    let compressed = ZSTD.output(
        ZSTD.command()
            .arg(format!("-{ZSTD_LEVEL}"))
            .args(["-q", "-f", "--no-progress", "-o"])
            .arg(path)
            .arg(&cpio),
    );
    let _ = std::fs::remove_file(&cpio);
    compressed.map_err(|source| InitramfsError::Compress {
        path: path.to_owned(),
        source,
    })?;
    let compressed = std::fs::metadata(path).map_err(|source| InitramfsError::Create {
        path: path.to_owned(),
        source,
    })?;
    Ok((len, compressed.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::reader::parse;

    #[test]
    fn parents_come_first_and_are_implied() {
        let mut t = Tree::default();
        t.insert(
            "lib/modules/6.1/kernel/fs/erofs.ko",
            Node::File {
                mode: 0o644,
                data: vec![1],
            },
        );
        t.insert(
            "/init",
            Node::File {
                mode: 0o755,
                data: vec![],
            },
        );
        t.insert("lib-extra", Node::Dir { mode: 0o700 });
        t.insert(
            "dev/console",
            Node::CharDevice {
                mode: 0o600,
                major: 5,
                minor: 1,
            },
        );
        t.insert("dev", Node::Dir { mode: 0o711 });
        let paths: Vec<String> = t.paths().map(|p| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/6.1",
                "lib/modules/6.1/kernel",
                "lib/modules/6.1/kernel/fs",
                "lib/modules/6.1/kernel/fs/erofs.ko",
                "lib-extra",
            ]
        );
        // An explicit entry replaces the implied folder.
        assert_eq!(t.get("dev"), Some(&Node::Dir { mode: 0o711 }));
    }

    #[test]
    fn writes_a_parsable_archive() {
        let mut t = Tree::default();
        t.insert(
            layout::INITRD_RELEASE,
            Node::File {
                mode: 0o644,
                data: initrd_release().into_bytes(),
            },
        );
        t.insert(
            "dev/console",
            Node::CharDevice {
                mode: 0o600,
                major: 5,
                minor: 1,
            },
        );
        t.insert(
            "bin/sh",
            Node::Symlink {
                target: "busybox".into(),
            },
        );
        let (bytes, len) = t.write(Vec::new(), 0).expect("write");
        assert_eq!(bytes.len() as u64, len);
        let names: Vec<String> = parse(&bytes).into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "etc",
                "etc/initrd-release",
                "TRAILER!!!"
            ]
        );
        let (again, _) = t.write(Vec::new(), 0).expect("write");
        assert_eq!(bytes, again, "same tree, same bytes");
    }

    #[test]
    fn carries_the_verity_modules() {
        let names = stage0_module_names(false);
        for m in [
            "virtio_blk",
            "nvme",
            "ahci",
            "sd_mod",
            "erofs",
            "dm_mod",
            "dm_verity",
        ] {
            assert!(names.contains(&m), "{m} missing from {names:?}");
        }
    }

    #[test]
    fn initrd_release_is_os_release_shaped() {
        let text = initrd_release();
        assert!(text.starts_with("NAME=\"berth initramfs\"\n"));
        assert!(text.lines().all(|l| l.contains('=')));
    }
}
