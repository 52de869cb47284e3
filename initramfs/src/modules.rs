//! Picking the kernel modules an image carries.
//!
//! depmod's index of the whole kernel (thousands of modules) is read with
//! the same `ModuleIndex` PID 1 uses at boot, asked for the load order of
//! the wanted modules (dependencies and soft dependencies first), and cut
//! down to just those: the image gets their `.ko` files and index files that
//! mention nothing else, so PID 1's loader sees a small, consistent world.

use std::path::{Path, PathBuf};

use berth_config::modules::{LoadStep, ModuleError, ModuleFiles, ModuleIndex};

/// depmod's files that PID 1's loader reads, in `lib/modules/KVER/`.
const INDEX_FILES: [&str; 4] = [
    "modules.dep",
    "modules.softdep",
    "modules.alias",
    "modules.builtin",
];

/// Packing modules failed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("read module index {path} (a kernel tree needs `depmod -b ROOT KVER`)")]
    ReadIndex {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse the module index in {dir}")]
    ParseIndex {
        dir: PathBuf,
        #[source]
        source: ModuleError,
    },
    #[error("resolve the load order of {names}")]
    LoadOrder {
        names: String,
        #[source]
        source: ModuleError,
    },
    #[error("module {name} is indexed but its file {path} is missing")]
    MissingFile { name: String, path: PathBuf },
}

/// The modules of one image and the index files describing exactly them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePack {
    /// In load order.
    pub steps: Vec<LoadStep>,
    /// (path relative to `lib/modules/KVER`, file on the build host).
    pub files: Vec<(PathBuf, PathBuf)>,
    /// Contents of `modules.dep`, `.softdep`, `.alias`, `.builtin`.
    pub index: [(&'static str, String); 4],
}

/// Reads depmod's index files from a kernel's `lib/modules/KVER`.
pub fn read_index(modules_dir: &Path) -> Result<ModuleIndex, PackError> {
    let read = |name: &str| {
        let path = modules_dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| PackError::ReadIndex { path, source })
    };
    let [dep, softdep, alias, builtin] = INDEX_FILES.map(read);
    let (dep, softdep, alias, builtin) = (dep?, softdep?, alias?, builtin?);
    let files = ModuleFiles {
        dep: &dep,
        softdep: &softdep,
        alias: &alias,
        builtin: &builtin,
    };
    ModuleIndex::parse(&files).map_err(|source| PackError::ParseIndex {
        dir: modules_dir.to_owned(),
        source,
    })
}

/// The files and index subset for `names` and everything they need.
pub fn pack(
    modules_dir: &Path,
    index: &ModuleIndex,
    names: &[&str],
) -> Result<ModulePack, PackError> {
    let steps = index
        .load_order(names)
        .map_err(|source| PackError::LoadOrder {
            names: names.join(", "),
            source,
        })?;
    let mut files = Vec::with_capacity(steps.len());
    for step in &steps {
        let host = modules_dir.join(&step.path);
        if !host.is_file() {
            return Err(PackError::MissingFile {
                name: step.name.clone(),
                path: host,
            });
        }
        files.push((PathBuf::from(&step.path), host));
    }
    let (dep, softdep, alias, builtin) = index.subset_files(&steps);
    let [d, s, a, b] = INDEX_FILES;
    Ok(ModulePack {
        steps,
        files,
        index: [(d, dep), (s, softdep), (a, alias), (b, builtin)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake kernel: erofs needs libcrc32c, which softly needs crc32c
    /// (an alias of crc32c_generic); overlay stands alone; a driver nobody
    /// asks for must not leak into the subset.
    fn fake_kernel() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [
            (
                "modules.dep",
                "kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko\n\
                 kernel/lib/libcrc32c.ko:\n\
                 kernel/crypto/crc32c_generic.ko:\n\
                 kernel/fs/overlayfs/overlay.ko:\n\
                 kernel/drivers/gpu/huge.ko: kernel/lib/libcrc32c.ko\n",
            ),
            (
                "modules.softdep",
                "# Soft dependencies\nsoftdep libcrc32c pre: crc32c\n",
            ),
            (
                "modules.alias",
                "# Aliases\nalias crc32c crc32c_generic\nalias pci:v1234* huge\n",
            ),
            ("modules.builtin", "kernel/drivers/virtio/virtio.ko\n"),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write index");
        }
        for ko in [
            "fs/erofs/erofs",
            "lib/libcrc32c",
            "crypto/crc32c_generic",
            "fs/overlayfs/overlay",
        ] {
            let path = dir.path().join(format!("kernel/{ko}.ko"));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, b"\x7fELF").expect("write ko");
        }
        dir
    }

    #[test]
    fn packs_dependencies_in_load_order() {
        let k = fake_kernel();
        let index = read_index(k.path()).expect("index");
        let pack = pack(k.path(), &index, &["erofs"]).expect("pack");
        let rel: Vec<_> = pack
            .files
            .iter()
            .map(|(r, _)| r.to_string_lossy().into_owned())
            .collect();
        let pos = |p: &str| {
            rel.iter()
                .position(|r| r == p)
                .unwrap_or_else(|| panic!("{p} missing in {rel:?}"))
        };
        assert!(pos("kernel/crypto/crc32c_generic.ko") < pos("kernel/lib/libcrc32c.ko"));
        assert!(pos("kernel/lib/libcrc32c.ko") < pos("kernel/fs/erofs/erofs.ko"));
        assert!(!rel
            .iter()
            .any(|r| r.contains("overlay") || r.contains("huge")));
        for (rel, host) in &pack.files {
            assert_eq!(host, &k.path().join(rel));
        }
        let dep = &pack.index[0];
        assert_eq!(dep.0, "modules.dep");
        assert!(dep
            .1
            .contains("kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko"));
        assert!(!dep.1.contains("huge"));
        assert!(
            !pack.index[2].1.contains("huge"),
            "alias subset: {}",
            pack.index[2].1
        );
    }

    #[test]
    fn unknown_module_is_an_error() {
        let k = fake_kernel();
        let index = read_index(k.path()).expect("index");
        let err = pack(k.path(), &index, &["nosuch"]).expect_err("unknown module");
        assert!(matches!(err, PackError::LoadOrder { .. }), "{err}");
    }

    #[test]
    fn indexed_but_missing_file_is_an_error() {
        let k = fake_kernel();
        std::fs::remove_file(k.path().join("kernel/fs/overlayfs/overlay.ko")).expect("rm");
        let index = read_index(k.path()).expect("index");
        let err = pack(k.path(), &index, &["overlay"]).expect_err("missing file");
        assert!(matches!(err, PackError::MissingFile { .. }), "{err}");
    }

    #[test]
    fn missing_index_names_depmod() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_index(dir.path()).expect_err("no index");
        assert!(err.to_string().contains("depmod"), "{err}");
    }
}
