//! The root image: a read-only EROFS filesystem that stage 0 mounts and
//! switches to.
//!
//! ```text
//! /sbin/init                       the static berth binary (stage 1)
//! /usr/lib/berth/bin/berth         the same file (hard link), for `init = true`
//! /etc/berth/manifest.toml         the manifest, byte for byte as given
//! /etc/os-release
//! /lib/modules/KVER/               stage-1 modules + their depmod subset
//! /usr/lib/berth/containers/NAME/  one OCI bundle per container
//! /proc /sys /dev /run /tmp /var /root /mnt   empty mount points
//! ```
//!
//! The tree is staged on disk and handed to `mkfs.erofs` with fixed
//! timestamps, owners and UUID, so the same inputs give the same image.
//! EROFS over squashfs: it is what the design asks for, it is in Debian's
//! kernel as a module, and it reads with less CPU at boot.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use berth_config::layout;
use berth_config::modules::{ModuleError, ModuleIndex};
use berth_config::Manifest;

use crate::bundle::{self, BundleError, Bundled};
use crate::folder_store::{FolderError, FolderStore};
use crate::kernel::Kernel;
use crate::modules::{self, ModulePack, PackError};
use crate::oci::LayerStore;
use crate::staging::{self, StagingError, Tree};
use crate::tool::{ToolError, MKFS_EROFS};

/// Modules every image carries for stage 1 beyond `STAGE1_MODULES` and
/// `BRIDGE_MODULES`: container networking (veth, bridge, nf_tables), verified roots, the
/// ACPI power button and its input events (clean poweroff from QEMU or a
/// cloud), squashfs images, and ext4 for the STATE partition.
pub const DEFAULT_MODULES: &[&str] = &[
    "veth",
    "bridge",
    "nf_tables",
    "dm_verity",
    "button",
    "evdev",
    "squashfs",
    "ext4",
];

/// Empty folders of the root, as (path, mode). `/tmp` keeps its sticky bit
/// in case nothing is mounted on it.
const MOUNT_POINTS: &[(&str, u32)] = &[
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("run", 0o755),
    ("tmp", 0o1777),
    ("var", 0o755),
    ("var/lib", 0o755),
    ("var/lib/berth", 0o755),
    ("root", 0o700),
    ("mnt", 0o755),
];

/// Building the root image failed.
#[derive(Debug, thiserror::Error)]
pub enum RootImageError {
    #[error("stage the root image")]
    Staging(#[from] StagingError),
    #[error("system.modules: kernel {kernel} has no module {}", quoted(names))]
    UnknownModules { names: Vec<String>, kernel: String },
    #[error("system.modules: module {name:?} cannot be loaded from kernel {kernel}")]
    ManifestModule {
        name: String,
        kernel: String,
        #[source]
        source: ModuleError,
    },
    #[error("create the image layer store")]
    LayerStore(#[source] Box<crate::oci::OciError>),
    #[error("create the rootfs folder store")]
    FolderStore(#[source] FolderError),
    #[error("pack the stage-1 kernel modules")]
    Modules(#[source] PackError),
    #[error("bundle container {name}")]
    Bundle {
        name: String,
        #[source]
        source: BundleError,
    },
    #[error("make the EROFS image {image}")]
    Mkfs {
        image: PathBuf,
        #[source]
        source: ToolError,
    },
}

/// What goes into the root image.
#[derive(Debug)]
pub struct RootInputs<'a> {
    /// The manifest file's text, written into the image unchanged.
    pub manifest_text: &'a str,
    /// The parsed manifest; `None` when it is invalid and the build was
    /// told to go on (the image then boots into PID 1's error report).
    pub manifest: Option<&'a Manifest>,
    /// Relative container `rootfs` paths are relative to this folder.
    pub manifest_dir: &'a Path,
    pub kernel: &'a Kernel,
    pub index: &'a ModuleIndex,
    /// The static berth binary.
    pub berth: &'a Path,
    /// SOURCE_DATE_EPOCH: the time of files unpacked from images.
    pub epoch: u64,
}

/// What staging put into the root image, for the build report.
#[derive(Debug)]
pub struct RootStaged {
    pub modules: ModulePack,
    /// (container name, what bundling it skipped), in manifest order.
    pub bundles: Vec<(String, Bundled)>,
}

/// The stage-1 module names: `STAGE1_MODULES`, the defaults, then the
/// manifest's, each once.
pub fn stage1_module_names(manifest: Option<&Manifest>) -> Vec<&str> {
    let extra = manifest
        .map(|m| m.system.modules.as_slice())
        .unwrap_or_default();
    let mut names: Vec<&str> = Vec::new();
    let all = layout::STAGE1_MODULES
        .iter()
        .chain(layout::BRIDGE_MODULES)
        .chain(DEFAULT_MODULES)
        .copied()
        .chain(extra.iter().map(String::as_str));
    for name in all {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Fills `root` (an empty folder) with the root image's tree.
pub fn stage(root: &Path, inputs: &RootInputs<'_>) -> Result<RootStaged, RootImageError> {
    staging::dir(root, 0o755)?;
    let tree = Tree::new(root);
    tree.copy(inputs.berth, Path::new("sbin/init"), 0o755)?;
    // The same binary for containers with `init = true`, as a hard link:
    // mkfs.erofs stores it once.
    let bin = Path::new(layout::BERTH_BIN_DIR.trim_start_matches('/')).join("berth");
    tree.hard_link(Path::new("sbin/init"), &bin)?;
    let manifest_path = Path::new(layout::MANIFEST.trim_start_matches('/'));
    tree.write(manifest_path, inputs.manifest_text.as_bytes(), 0o644)?;
    tree.write(Path::new("etc/os-release"), os_release().as_bytes(), 0o644)?;
    for (dir, mode) in MOUNT_POINTS {
        tree.dir(Path::new(dir), *mode)?;
    }
    // The manifest's writable paths are mounted over at boot, so they must
    // exist in the read-only image (possibly empty).
    if let Some(m) = inputs.manifest {
        for path in m.system.tmpfs.iter().chain(&m.system.overlay) {
            tree.create_dirs(Path::new(path.trim_start_matches('/')))?;
        }
    }

    let modules = stage_modules(root, inputs)?;

    let bundles_dir = tree.create_dirs(Path::new(layout::BUNDLES.trim_start_matches('/')))?;
    // Layers are unpacked, and folders copied, once, next to the tree (hard links need the same
    // filesystem) but outside it, and linked into each container's rootfs.
    let store_dir = root.with_file_name("layers");
    let mut images = bundle::Images {
        store: LayerStore::new(&store_dir).map_err(|e| RootImageError::LayerStore(Box::new(e)))?,
        folders: FolderStore::new(root.with_file_name("folders"))
            .map_err(RootImageError::FolderStore)?,
        epoch: inputs.epoch,
    };
    let mut bundles = Vec::new();
    for container in inputs
        .manifest
        .map(|m| m.containers.as_slice())
        .unwrap_or_default()
    {
        let bundled = bundle::bundle(container, inputs.manifest_dir, &bundles_dir, &mut images)
            .map_err(|source| RootImageError::Bundle {
                name: container.name.clone(),
                source,
            })?;
        bundles.push((container.name.clone(), bundled));
    }
    Ok(RootStaged { modules, bundles })
}

fn stage_modules(root: &Path, inputs: &RootInputs<'_>) -> Result<ModulePack, RootImageError> {
    // Check the manifest's modules one by one first, so unknown names are
    // reported together and against the manifest key rather than as a
    // kernel problem.
    let mut unknown = Vec::new();
    for name in inputs
        .manifest
        .map(|m| m.system.modules.as_slice())
        .unwrap_or_default()
    {
        match inputs.index.load_order(&[name.as_str()]) {
            Ok(_) => {}
            Err(ModuleError::Unknown(_)) => unknown.push(name.clone()),
            Err(source) => {
                return Err(RootImageError::ManifestModule {
                    name: name.clone(),
                    kernel: inputs.kernel.version.clone(),
                    source,
                })
            }
        }
    }
    if !unknown.is_empty() {
        return Err(RootImageError::UnknownModules {
            names: unknown,
            kernel: inputs.kernel.version.clone(),
        });
    }
    let names = stage1_module_names(inputs.manifest);
    let pack = modules::pack(&inputs.kernel.modules_dir, inputs.index, &names)
        .map_err(RootImageError::Modules)?;
    let tree = Tree::new(root);
    let dir = Path::new("lib/modules").join(&inputs.kernel.version);
    for (rel, host) in &pack.files {
        tree.copy(host, &dir.join(rel), 0o644)?;
    }
    for (name, text) in &pack.index {
        tree.write(&dir.join(name), text.as_bytes(), 0o644)?;
    }
    Ok(pack)
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `/etc/os-release` of the root image (os-release(5)).
pub fn os_release() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!("NAME=berth\nID=berth\nVERSION_ID={version}\nPRETTY_NAME=\"berth {version}\"\n")
}

/// How mkfs.erofs is asked to build the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErofsOptions {
    /// Stamped on every inode and as the build time (SOURCE_DATE_EPOCH).
    pub timestamp: u64,
    pub uuid: String,
    /// A compressor mkfs.erofs knows (`lz4hc`), or none.
    pub compression: Option<&'static str>,
}

/// The compressor to use for a kernel built with `config`: lz4hc output is
/// plain LZ4, which every kernel with `CONFIG_EROFS_FS_ZIP` decompresses
/// (LZMA needs `CONFIG_EROFS_FS_ZIP_LZMA`, which Debian 12 leaves off).
pub fn erofs_compression(kernel_config: &str) -> Option<&'static str> {
    kernel_config
        .lines()
        .any(|l| l.trim() == "CONFIG_EROFS_FS_ZIP=y")
        .then_some("lz4hc")
}

/// The largest compressed cluster: 64 KiB (the default is one 4 KiB
/// block) shrinks the example's root image by about 15%; a page read
/// decompresses at most that much, which LZ4 does in well under a
/// millisecond even under emulation. Big clusters need Linux 5.13.
pub const PCLUSTER_BYTES: u32 = 65536;

/// mkfs.erofs's arguments (erofs-utils 1.5, Debian 12): the compressor at
/// its highest level (12), [`PCLUSTER_BYTES`] clusters. `-x-1` leaves out
/// extended attributes: the staging copy carries none of the containers'
/// and must not pick up the build host's (SELinux labels). Owners are the
/// staging tree's: root for everything the builder wrote, the image's for
/// files unpacked from OCI layers (see [`make_image`] for non-root builds).
pub fn mkfs_args(opts: &ErofsOptions, image: &Path, tree: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--quiet".into(), "-x-1".into()];
    args.push(format!("-T{}", opts.timestamp).into());
    args.push(format!("-U{}", opts.uuid).into());
    if let Some(c) = opts.compression {
        args.push(format!("-z{c},12").into());
        args.push(format!("-C{PCLUSTER_BYTES}").into());
    }
    args.push(image.into());
    args.push(tree.into());
    args
}

/// Runs mkfs.erofs on the staged tree. A builder that is not root owns the
/// whole staging tree (it could not chown), so there `--all-root` makes
/// every file root's, as a root build would.
pub fn make_image(tree: &Path, image: &Path, opts: &ErofsOptions) -> Result<(), RootImageError> {
    let mut cmd = MKFS_EROFS.command();
    if !nix::unistd::geteuid().is_root() {
        cmd.arg("--all-root");
    }
    MKFS_EROFS
        .output(cmd.args(mkfs_args(opts, image, tree)))
        .map(|_| ())
        .map_err(|source| RootImageError::Mkfs {
            image: image.to_owned(),
            source,
        })
}

/// A filesystem UUID derived from the image's inputs, so rebuilding the
/// same inputs gives the same image while different images differ. A
/// 128-bit FNV-1a hash shaped as an RFC 9562 version-8 (custom) UUID; it
/// needs to be stable, not secret.
pub fn derived_uuid(parts: &[&[u8]]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for part in parts {
        // The length ahead of each part keeps ("ab", "c") apart from ("a", "bc").
        for &b in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            h ^= u128::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    let mut b = h.to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_follows_kernel_config() {
        let debian =
            "CONFIG_EROFS_FS=m\nCONFIG_EROFS_FS_ZIP=y\n# CONFIG_EROFS_FS_ZIP_LZMA is not set\n";
        assert_eq!(erofs_compression(debian), Some("lz4hc"));
        assert_eq!(
            erofs_compression("CONFIG_EROFS_FS=m\n# CONFIG_EROFS_FS_ZIP is not set\n"),
            None
        );
        assert_eq!(erofs_compression(""), None);
    }

    #[test]
    fn mkfs_command_line() {
        let opts = ErofsOptions {
            timestamp: 1_700_000_000,
            uuid: "u".into(),
            compression: Some("lz4hc"),
        };
        let args = mkfs_args(&opts, Path::new("/o/root.img"), Path::new("/o/tree"));
        let want = [
            "--quiet",
            "-x-1",
            "-T1700000000",
            "-Uu",
            "-zlz4hc,12",
            "-C65536",
            "/o/root.img",
            "/o/tree",
        ];
        assert_eq!(args, want.map(OsString::from));
        let plain = mkfs_args(
            &ErofsOptions {
                compression: None,
                ..opts
            },
            Path::new("i"),
            Path::new("t"),
        );
        assert!(!plain.iter().any(|a| a.to_string_lossy().starts_with("-z")));
    }

    #[test]
    fn uuid_is_stable_and_well_formed() {
        let a = derived_uuid(&[b"manifest", b"6.1.0-56-amd64"]);
        assert_eq!(a, derived_uuid(&[b"manifest", b"6.1.0-56-amd64"]));
        assert_ne!(a, derived_uuid(&[b"manifes", b"t6.1.0-56-amd64"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8", "version nibble of {a}");
        assert!(
            matches!(&a[19..20], "8" | "9" | "a" | "b"),
            "variant of {a}"
        );
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn module_names_are_stage1_defaults_then_manifest() {
        let mut m = Manifest::default();
        m.system.modules = vec!["wireguard".into(), "veth".into(), "overlay".into()];
        let names = stage1_module_names(Some(&m));
        // STAGE1_MODULES first, then the bridge modules and the defaults
        // not already named, then the manifest's, each once.
        let mut want: Vec<&str> = layout::STAGE1_MODULES.to_vec();
        for d in layout::BRIDGE_MODULES.iter().chain(DEFAULT_MODULES) {
            if !want.contains(d) {
                want.push(d);
            }
        }
        let without_manifest = want.clone();
        want.push("wireguard");
        assert_eq!(names, want);
        assert_eq!(stage1_module_names(None), without_manifest);
    }

    #[test]
    fn os_release_names_berth() {
        let text = os_release();
        assert!(text.contains("\nID=berth\n"));
        assert!(text.starts_with("NAME=berth\n"));
        assert!(text.contains(&format!("VERSION_ID={}\n", env!("CARGO_PKG_VERSION"))));
    }
}
