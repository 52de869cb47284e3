//! `berth-image build`: a manifest in, a bootable set of files out.
//!
//! ```text
//! OUT/vmlinuz          Debian's kernel, copied
//! OUT/initramfs.img    stage 0 (newc cpio)
//! OUT/root.img         the root image (EROFS), then its dm-verity hash tree
//! OUT/root.verity      ROOT_HASH=…, DATA_BYTES=…, HASH_OFFSET=…, SALT=…, UUID=…
//! OUT/kernel-version   KERNEL_VERSION=…, KERNEL_PACKAGE=…, KERNEL_PACKAGE_VERSION=…
//! OUT/disk.img         the node disk: GPT, ESP with systemd-boot, ROOT-A (root.img),
//!                      ROOT-B (empty), STATE (ext4) — see [`crate::disk`]
//! OUT/disk.qcow2       the same as qcow2, with `--qcow2` (clouds, libvirt)
//! ```
//!
//! `root.img` stays beside `disk.img`: it is what an update writes into
//! the inactive slot, and what the dm-verity tests corrupt.
//!
//! `--no-verity` (`BuildOptions::verity` false) leaves out the hash tree
//! and `root.verity` (an old one is removed), and the node then boots with
//! a warning.
//!
//! The manifest is validated before anything slow happens. Everything is
//! made in `OUT/.staging` and renamed into place at the end, so a failed
//! build leaves the previous artifacts alone instead of a mix of old and
//! new; the staging folder is removed either way.

use std::fmt;
use std::path::{Path, PathBuf};

use berth_config::{Manifest, ManifestErrors};

use crate::berth_binary::{self, BinaryError};
use crate::disk::{self, DiskError, DiskInputs, DiskReport};
use crate::initramfs::{self, InitramfsError};
use crate::kernel::{self, Kernel, KernelError};
use crate::modules::{self, PackError};
use crate::progress::{self, Step};
use crate::rootimg::{self, ErofsOptions, RootImageError, RootInputs};
use crate::staging::{self, StagingError};
use crate::verity::{self, VerityError, VerityInfo};

pub const VMLINUZ: &str = "vmlinuz";
pub const INITRAMFS: &str = "initramfs.img";
pub const ROOT_IMAGE: &str = "root.img";
pub const KERNEL_VERSION: &str = "kernel-version";
pub const ROOT_VERITY: &str = "root.verity";
pub const DISK_IMAGE: &str = "disk.img";
/// STATE's filesystem while the build runs (copied into `disk.img`).
const STATE_IMAGE: &str = "state.img";
pub const DISK_QCOW2: &str = "disk.qcow2";

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    pub manifest: PathBuf,
    pub out: PathBuf,
    /// Build even from an invalid manifest: it goes into the image as text
    /// (for testing how PID 1 reports it), without container bundles.
    pub skip_validation: bool,
    /// Timestamp of every file in both images (SOURCE_DATE_EPOCH).
    pub source_date_epoch: u64,
    /// Append a dm-verity hash tree and write `root.verity` (the default;
    /// `--no-verity` turns it off).
    pub verity: bool,
    /// Also write `disk.qcow2` (`--qcow2`).
    pub qcow2: bool,
}

impl BuildOptions {
    /// Validating, verified, with `SOURCE_DATE_EPOCH` 0.
    pub fn new(manifest: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        BuildOptions {
            manifest: manifest.into(),
            out: out.into(),
            skip_validation: false,
            source_date_epoch: 0,
            verity: true,
            qcow2: false,
        }
    }
}

/// The kernel and berth binary an image is built from. Resolving them is
/// the slow part (download, cargo); VM tests resolve once and build many
/// images with [`build_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub kernel: Kernel,
    pub berth: PathBuf,
}

/// A build's artifacts and figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub out: PathBuf,
    pub kernel: Kernel,
    pub berth: PathBuf,
    pub vmlinuz_bytes: u64,
    pub initramfs_bytes: u64,
    /// The initramfs's cpio before compression.
    pub initramfs_cpio_bytes: u64,
    pub root_bytes: u64,
    /// The root image's compressor, if any.
    pub compression: Option<&'static str>,
    /// The dm-verity figures, `None` when built with `--no-verity`.
    pub verity: Option<VerityInfo>,
    /// `disk.img`'s size, allocation and partitions.
    pub disk: DiskReport,
    /// `disk.qcow2`'s size, when asked for.
    pub qcow2_bytes: Option<u64>,
    /// Modules in each image, in load order.
    pub stage0_modules: Vec<String>,
    pub stage1_modules: Vec<String>,
    /// Bundled containers, in manifest order.
    pub containers: Vec<String>,
    /// What each container's content is (`folder`, or the image and how
    /// much of it was written and shared), in manifest order.
    pub contents: Vec<(String, String)>,
    /// Things the operator should know that did not stop the build.
    pub warnings: Vec<String>,
}

impl BuildReport {
    pub fn vmlinuz(&self) -> PathBuf {
        self.out.join(VMLINUZ)
    }
    pub fn initramfs(&self) -> PathBuf {
        self.out.join(INITRAMFS)
    }
    pub fn root_image(&self) -> PathBuf {
        self.out.join(ROOT_IMAGE)
    }
    pub fn disk_image(&self) -> PathBuf {
        self.out.join(DISK_IMAGE)
    }
}

/// Building failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("read manifest {path}")]
    ReadManifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("validate manifest {path} ({} error(s); --skip-validation builds anyway)", errors.0.len())]
    InvalidManifest {
        path: PathBuf,
        #[source]
        errors: ManifestErrors,
    },
    #[error("{field}: {}: {why}", path.display())]
    ApiCa {
        field: String,
        path: PathBuf,
        why: String,
    },
    #[error("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")]
    SourceDateEpoch { value: String },
    #[error("get the kernel")]
    Kernel(#[from] KernelError),
    #[error("get the berth binary")]
    Binary(#[from] BinaryError),
    #[error("read the module index of kernel {version}")]
    ModuleIndex {
        version: String,
        #[source]
        source: PackError,
    },
    #[error("build the root image")]
    RootImage(#[from] RootImageError),
    #[error("protect the root image with dm-verity (--no-verity skips this)")]
    Verity(#[from] VerityError),
    #[error("build the initramfs")]
    Initramfs(#[from] InitramfsError),
    #[error("make the disk image")]
    Disk(#[from] DiskError),
    #[error("prepare the output folder")]
    Staging(#[from] StagingError),
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_owned();
    move |source| BuildError::Io { step, path, source }
}

/// `SOURCE_DATE_EPOCH` from the environment, 0 when unset
/// (reproducible-builds.org/specs/source-date-epoch).
pub fn source_date_epoch_from_env() -> Result<u64, BuildError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| BuildError::SourceDateEpoch { value }),
    }
}

/// The manifest as read: its text, and the parse result.
struct Loaded {
    text: String,
    manifest: Option<Manifest>,
    warnings: Vec<String>,
}

fn load(opts: &BuildOptions) -> Result<Loaded, BuildError> {
    let text =
        std::fs::read_to_string(&opts.manifest).map_err(|source| BuildError::ReadManifest {
            path: opts.manifest.clone(),
            source,
        })?;
    match Manifest::parse(&text) {
        Ok(manifest) => Ok(Loaded {
            text,
            manifest: Some(manifest),
            warnings: Vec::new(),
        }),
        Err(errors) if opts.skip_validation => {
            let mut warnings = vec![format!(
                "manifest {} is invalid; built without containers as asked:",
                opts.manifest.display()
            )];
            warnings.extend(errors.0.iter().map(|e| format!("  {e}")));
            Ok(Loaded {
                text,
                manifest: None,
                warnings,
            })
        }
        Err(errors) => Err(BuildError::InvalidManifest {
            path: opts.manifest.clone(),
            errors,
        }),
    }
}

/// Resolves the kernel (cache or download) and the berth binary (build).
pub fn resolve_inputs() -> Result<Inputs, BuildError> {
    let kernel = kernel::kernel()?;
    let berth = berth_binary::berth_binary()?;
    Ok(Inputs { kernel, berth })
}

/// Whether STATE is mounted before the first container: then ext4 goes
/// into the initramfs, for stage 0 to load early.
fn state_first(manifest: Option<&Manifest>) -> bool {
    manifest.is_some_and(|m| {
        berth_config::state_use::needed_before_containers(m, &|p| p.to_owned()).is_some()
    })
}

/// Validates the manifest, resolves the inputs and builds.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    let loaded = load(opts)?;
    let inputs = resolve_inputs()?;
    build_loaded(opts, loaded, &inputs)
}

/// Builds with inputs resolved earlier.
pub fn build_with(opts: &BuildOptions, inputs: &Inputs) -> Result<BuildReport, BuildError> {
    let loaded = load(opts)?;
    build_loaded(opts, loaded, inputs)
}

fn build_loaded(
    opts: &BuildOptions,
    loaded: Loaded,
    inputs: &Inputs,
) -> Result<BuildReport, BuildError> {
    std::fs::create_dir_all(&opts.out).map_err(io("create the output folder", &opts.out))?;
    let staging_dir = opts.out.join(".staging");
    staging::remove(&staging_dir)?;
    staging::create_dirs(&staging_dir)?;
    let result = build_in(opts, loaded, inputs, &staging_dir);
    let cleanup = staging::remove(&staging_dir);
    let report = result?;
    cleanup?;
    Ok(report)
}

fn build_in(
    opts: &BuildOptions,
    loaded: Loaded,
    inputs: &Inputs,
    staging_dir: &Path,
) -> Result<BuildReport, BuildError> {
    let Inputs { kernel, berth } = inputs;
    let mut warnings = loaded.warnings;
    let index =
        modules::read_index(&kernel.modules_dir).map_err(|source| BuildError::ModuleIndex {
            version: kernel.version.clone(),
            source,
        })?;
    // Absolute, so error messages name the rootfs folder unambiguously.
    let manifest = std::path::absolute(&opts.manifest).map_err(io("resolve", &opts.manifest))?;
    let manifest_dir = manifest.parent().unwrap_or(Path::new("/"));

    let step = Step::start("staging the root image", None);
    let tree = staging_dir.join("root");
    let staged = rootimg::stage(
        &tree,
        &RootInputs {
            manifest_text: &loaded.text,
            manifest: loaded.manifest.as_ref(),
            manifest_dir,
            kernel,
            index: &index,
            berth,
            epoch: opts.source_date_epoch,
        },
    )?;
    step.finish(&format!("{} container(s)", staged.bundles.len()));
    for (name, bundled) in &staged.bundles {
        warnings.extend(content_warnings(name, bundled));
    }

    let erofs = erofs_options(opts, &loaded.text, inputs, &mut warnings)?;
    let state_img = staging_dir.join(STATE_IMAGE);
    stage_state(
        &tree,
        &state_img,
        &erofs,
        opts.source_date_epoch,
        staging_dir,
    )?;
    if let Some(api) = loaded.manifest.as_ref().and_then(|m| m.api.as_ref()) {
        stage_api(&tree, api, manifest_dir)?;
    }
    let step = Step::start("making the root image (mkfs.erofs)", None);
    let root_img = staging_dir.join(ROOT_IMAGE);
    rootimg::make_image(&tree, &root_img, &erofs)?;
    step.finish(&progress::size(
        std::fs::metadata(&root_img).map(|m| m.len()).unwrap_or(0),
    ));
    let verity = if opts.verity {
        let step = Step::start("adding the dm-verity hash tree (veritysetup)", None);
        let info = verity::format(&root_img)?;
        step.finish(&format!("root hash {}", info.root_hash));
        let file = staging_dir.join(ROOT_VERITY);
        std::fs::write(&file, info.to_file()).map_err(io("write", &file))?;
        Some(info)
    } else {
        warnings.push(
            "built with --no-verity: the root image is not verified, and every boot says so"
                .to_owned(),
        );
        None
    };

    let (initrd_tree, stage0) =
        initramfs::tree(kernel, &index, berth, state_first(loaded.manifest.as_ref()))?;
    let initrd = staging_dir.join(INITRAMFS);
    let (initramfs_cpio_bytes, initramfs_bytes) =
        initramfs::write(&initrd_tree, &initrd, opts.source_date_epoch)?;

    let vmlinuz = staging_dir.join(VMLINUZ);
    let vmlinuz_bytes =
        std::fs::copy(&kernel.vmlinuz, &vmlinuz).map_err(io("copy the kernel", &kernel.vmlinuz))?;
    let version_file = staging_dir.join(KERNEL_VERSION);
    std::fs::write(&version_file, kernel_version_file(kernel))
        .map_err(io("write", &version_file))?;

    let root_bytes = std::fs::metadata(&root_img)
        .map_err(io("measure", &root_img))?
        .len();
    let (disk, qcow2_bytes) = make_disk(opts, staging_dir, verity.as_ref())?;
    let _ = std::fs::remove_file(&state_img);
    install(opts, staging_dir, verity.is_some(), qcow2_bytes.is_some())?;
    let names =
        |steps: &[berth_config::modules::LoadStep]| steps.iter().map(|s| s.name.clone()).collect();
    Ok(BuildReport {
        out: opts.out.clone(),
        kernel: kernel.clone(),
        berth: berth.clone(),
        vmlinuz_bytes,
        initramfs_bytes,
        initramfs_cpio_bytes,
        root_bytes,
        compression: erofs.compression,
        verity,
        disk,
        qcow2_bytes,
        stage0_modules: names(&stage0.steps),
        stage1_modules: names(&staged.modules.steps),
        contents: staged
            .bundles
            .iter()
            .map(|(name, b)| (name.clone(), content_line(b)))
            .collect(),
        containers: staged.bundles.into_iter().map(|(name, _)| name).collect(),
        warnings,
    })
}

/// Makes STATE's filesystem in the staging folder and puts its template
/// into the root tree at [`layout::STATE_TEMPLATE`], for `berth reset
/// --state`. Its identity derives from the root image's UUID, itself
/// derived from everything the image is made from.
///
/// [`layout::STATE_TEMPLATE`]: berth_config::layout::STATE_TEMPLATE
fn stage_state(
    tree: &Path,
    state_img: &Path,
    erofs: &ErofsOptions,
    epoch: u64,
    staging_dir: &Path,
) -> Result<(), BuildError> {
    let step = Step::start("making the empty STATE filesystem (mkfs.ext4)", None);
    let seed = format!("state:{}", erofs.uuid);
    let template = disk::make_state(state_img, seed.as_bytes(), epoch, staging_dir)?;
    let path = tree.join(berth_config::layout::STATE_TEMPLATE.trim_start_matches('/'));
    std::fs::write(&path, &template).map_err(io("write", &path))?;
    step.finish(&format!(
        "template {}",
        progress::size(template.len() as u64)
    ));
    Ok(())
}

/// The operator CA certificates of `api.ca` (paths relative to the
/// manifest's folder), checked and put into the root tree at
/// [`layout::API_CA_BUNDLE`].
///
/// [`layout::API_CA_BUNDLE`]: berth_config::layout::API_CA_BUNDLE
fn stage_api(
    tree: &Path,
    api: &berth_config::api::Api,
    manifest_dir: &Path,
) -> Result<(), BuildError> {
    let mut bundle = Vec::new();
    for (i, path) in api.ca.iter().enumerate() {
        let file = manifest_dir.join(path);
        let bad = |why: String| BuildError::ApiCa {
            field: format!("api.ca[{i}]"),
            path: file.clone(),
            why,
        };
        let pem = std::fs::read(&file).map_err(|e| bad(e.to_string()))?;
        let mut found = 0;
        for item in x509_parser::pem::Pem::iter_from_buffer(&pem) {
            let item = item.map_err(|e| bad(format!("not PEM: {e}")))?;
            if item.label != "CERTIFICATE" {
                continue;
            }
            let cert = item
                .parse_x509()
                .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
            if !cert.is_ca() {
                return Err(bad(format!(
                    "{} is not a CA certificate (name the CA, not a client certificate)",
                    cert.subject()
                )));
            }
            found += 1;
        }
        if found == 0 {
            return Err(bad("holds no certificate".into()));
        }
        bundle.extend_from_slice(&pem);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    let path = tree.join(berth_config::layout::API_CA_BUNDLE.trim_start_matches('/'));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    std::fs::write(&path, bundle).map_err(io("write", &path))?;
    if let Some((cert, key)) = &api.identity {
        stage_node_identity(tree, &manifest_dir.join(cert), &manifest_dir.join(key))?;
    }
    Ok(())
}

/// `api.certificate` and `api.key`: checked (a certificate that is not a
/// CA's, a PKCS#8 key) and put into the root tree, the key mode 0600.
fn stage_node_identity(tree: &Path, cert: &Path, key: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |field: &str, path: &Path, why: String| BuildError::ApiCa {
        field: field.to_owned(),
        path: path.to_owned(),
        why,
    };
    let cert_pem = std::fs::read(cert).map_err(|e| bad("api.certificate", cert, e.to_string()))?;
    let parsed = x509_parser::pem::Pem::iter_from_buffer(&cert_pem)
        .filter_map(Result::ok)
        .find(|p| p.label == "CERTIFICATE")
        .ok_or_else(|| bad("api.certificate", cert, "holds no certificate".into()))?;
    let x509 = parsed.parse_x509().map_err(|e| {
        bad(
            "api.certificate",
            cert,
            format!("not an X.509 certificate: {e}"),
        )
    })?;
    if x509.is_ca() {
        return Err(bad(
            "api.certificate",
            cert,
            "is a CA certificate; name the node's own (berth-image ca issue --node)".into(),
        ));
    }
    let key_pem = std::fs::read(key).map_err(|e| bad("api.key", key, e.to_string()))?;
    if !x509_parser::pem::Pem::iter_from_buffer(&key_pem)
        .filter_map(Result::ok)
        .any(|p| p.label == "PRIVATE KEY")
    {
        return Err(bad(
            "api.key",
            key,
            "holds no PKCS#8 private key (-----BEGIN PRIVATE KEY-----)".into(),
        ));
    }
    for (layout_path, bytes, mode) in [
        (berth_config::layout::API_NODE_CERT, &cert_pem, 0o644),
        (berth_config::layout::API_NODE_KEY, &key_pem, 0o600),
    ] {
        let path = tree.join(layout_path.trim_start_matches('/'));
        std::fs::write(&path, bytes).map_err(io("write", &path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io("chmod", &path))?;
    }
    Ok(())
}

/// `disk.img` (and `disk.qcow2` when asked) in the staging folder, from
/// the artifacts already there.
fn make_disk(
    opts: &BuildOptions,
    staging_dir: &Path,
    verity: Option<&VerityInfo>,
) -> Result<(DiskReport, Option<u64>), BuildError> {
    let step = Step::start(
        "making the disk image (GPT, ESP, ROOT-A, ROOT-B, STATE)",
        None,
    );
    let (kernel, initramfs, root_image) = (
        staging_dir.join(VMLINUZ),
        staging_dir.join(INITRAMFS),
        staging_dir.join(ROOT_IMAGE),
    );
    let image = staging_dir.join(DISK_IMAGE);
    let report = disk::write(
        &image,
        &DiskInputs {
            kernel: &kernel,
            initramfs: &initramfs,
            root_image: &root_image,
            state_image: &staging_dir.join(STATE_IMAGE),
            root_hash: verity.map(|v| v.root_hash.as_str()),
            epoch: opts.source_date_epoch,
            boot_loader: Path::new(disk::esp::SYSTEMD_BOOT),
        },
    )?;
    step.finish(&format!(
        "{}, {} allocated",
        progress::size(report.bytes),
        progress::size(report.allocated)
    ));
    if !opts.qcow2 {
        return Ok((report, None));
    }
    let step = Step::start("converting the disk image to qcow2 (qemu-img)", None);
    let bytes = disk::convert_qcow2(&image, &staging_dir.join(DISK_QCOW2))?;
    step.finish(&progress::size(bytes));
    Ok((report, Some(bytes)))
}

/// Renames the staged artifacts into `OUT`, and removes the old
/// `root.verity` and `disk.qcow2` a build without them would otherwise
/// leave beside artifacts they do not describe.
fn install(
    opts: &BuildOptions,
    staging_dir: &Path,
    verity: bool,
    qcow2: bool,
) -> Result<(), BuildError> {
    let move_in = |name: &str| {
        let to = opts.out.join(name);
        std::fs::rename(staging_dir.join(name), &to)
            .map_err(io("move the artifact into place:", &to))
    };
    let remove_old = |name: &str| {
        let path = opts.out.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io("remove the old", &path)(e))
            }
            _ => Ok(()),
        }
    };
    for name in [VMLINUZ, INITRAMFS, ROOT_IMAGE, KERNEL_VERSION, DISK_IMAGE] {
        move_in(name)?;
    }
    if qcow2 {
        move_in(DISK_QCOW2)?;
    } else {
        remove_old(DISK_QCOW2)?;
    }
    // root.verity last: a root hash never sits beside a root image it
    // does not describe for longer than the renames take.
    if verity {
        move_in(ROOT_VERITY)
    } else {
        remove_old(ROOT_VERITY)
    }
}

/// mkfs.erofs settings: compressed if the kernel can read it, a UUID
/// derived from everything that goes into the image.
fn erofs_options(
    opts: &BuildOptions,
    manifest_text: &str,
    inputs: &Inputs,
    warnings: &mut Vec<String>,
) -> Result<ErofsOptions, BuildError> {
    let Inputs { kernel, berth } = inputs;
    let config = std::fs::read_to_string(kernel.config_path()).unwrap_or_default();
    if config.is_empty() {
        warnings.push(format!(
            "no {}: root image left uncompressed",
            kernel.config_path().display()
        ));
    }
    let berth_bytes = std::fs::read(berth).map_err(io("read", berth))?;
    let epoch = opts.source_date_epoch.to_string();
    Ok(ErofsOptions {
        timestamp: opts.source_date_epoch,
        uuid: rootimg::derived_uuid(&[
            manifest_text.as_bytes(),
            kernel.version.as_bytes(),
            kernel.package_version.as_bytes(),
            epoch.as_bytes(),
            &berth_bytes,
        ]),
        compression: rootimg::erofs_compression(&config),
    })
}

/// What the operator should hear about one container's content: one line
/// per kind of thing left out or changed, with a count and an example,
/// never one line per file.
fn content_warnings(name: &str, b: &crate::bundle::Bundled) -> Vec<String> {
    let mut out = b.warnings.clone();
    if let Some(u) = &b.unpacked {
        if u.not_owned > 0 {
            out.push(format!(
                "container {name}: {} file(s) of the image kept the builder's owner (build as root to keep the image's owners)",
                u.not_owned
            ));
        }
        if u.xattrs_skipped > 0 {
            out.push(format!(
                "container {name}: {} extended attribute(s) of the image left out (file capabilities among them are lost)",
                u.xattrs_skipped
            ));
        }
        if u.devices_dropped > 0 {
            let example = u
                .device_example
                .as_ref()
                .map(|p| format!(", e.g. /{}", p.display()))
                .unwrap_or_default();
            out.push(format!(
                "container {name}: left out {} device node(s) of the image{example} (a workload gets its own /dev)",
                u.devices_dropped
            ));
        }
    }
    // Listed for the first container naming the folder only: one line per
    // folder, however many containers share it.
    if let Some(f) = &b.folder {
        if let Some(first) = f.left_out.first() {
            out.push(format!(
                "container {name}: left out {} device node(s), fifo(s) or socket(s) of the rootfs folder {}, e.g. {} (the runtime provides /dev)",
                f.left_out.len(),
                f.source.display(),
                first.display()
            ));
        }
    }
    out
}

/// One summary line about a container's content.
fn content_line(b: &crate::bundle::Bundled) -> String {
    match (&b.unpacked, &b.folder) {
        (None, None) => "nothing".to_owned(),
        (None, Some(f)) => format!(
            "folder {}, {} file(s): {} written, {} shared with other containers",
            f.source.display(),
            f.files,
            progress::size(f.bytes_written),
            progress::size(f.bytes_linked)
        ),
        (Some(u), _) => format!(
            "image, {} layer(s), {} file(s): {} written, {} shared with other containers",
            u.layers,
            u.files,
            progress::size(u.bytes_written),
            progress::size(u.bytes_linked)
        ),
    }
}

/// `OUT/kernel-version`, shell-sourceable like os-release.
pub fn kernel_version_file(k: &Kernel) -> String {
    format!(
        "KERNEL_VERSION={}\nKERNEL_PACKAGE={}\nKERNEL_PACKAGE_VERSION={}\n",
        k.version, k.package, k.package_version
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl fmt::Display for BuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        let k = &self.kernel;
        writeln!(f, "built {}", self.out.display())?;
        writeln!(
            f,
            "  kernel         {} ({} {})",
            k.version, k.package, k.package_version
        )?;
        writeln!(f, "  {VMLINUZ:<14} {:>10}", mib(self.vmlinuz_bytes))?;
        writeln!(
            f,
            "  {INITRAMFS:<14} {:>10}  cpio of {} (zstd -{}), {} modules: {}",
            mib(self.initramfs_bytes),
            mib(self.initramfs_cpio_bytes).trim(),
            initramfs::ZSTD_LEVEL,
            self.stage0_modules.len(),
            self.stage0_modules.join(" ")
        )?;
        writeln!(
            f,
            "  {ROOT_IMAGE:<14} {:>10}  erofs{}{}, {} modules, containers: {}",
            mib(self.root_bytes),
            self.compression
                .map(|c| format!(" {c}"))
                .unwrap_or_default(),
            if self.verity.is_some() {
                " + dm-verity"
            } else {
                ", not verified"
            },
            self.stage1_modules.len(),
            if self.containers.is_empty() {
                "none".to_owned()
            } else {
                self.containers.join(" ")
            }
        )?;
        if let Some(v) = &self.verity {
            writeln!(
                f,
                "  {ROOT_VERITY:<14} {:>10}  root hash {} (data {}, hash tree from byte {})",
                "",
                v.root_hash,
                mib(v.data_bytes),
                v.hash_offset
            )?;
        }
        let d = &self.disk;
        let table: Vec<String> = d
            .partitions
            .iter()
            .map(|p| format!("{} {} {}", p.number, p.name, mib(p.size)))
            .collect();
        writeln!(
            f,
            "  {DISK_IMAGE:<14} {:>10}  GPT: {}; sparse, {} allocated",
            mib(d.bytes),
            table.join(", "),
            mib(d.allocated)
        )?;
        if let Some(bytes) = self.qcow2_bytes {
            writeln!(
                f,
                "  {DISK_QCOW2:<14} {:>10}  qcow2 of {DISK_IMAGE}",
                mib(bytes)
            )?;
        }
        for (name, content) in &self.contents {
            writeln!(f, "  container {name}: {content}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_file_is_key_value() {
        let k = Kernel {
            version: "6.1.0-56-amd64".into(),
            package: "linux-image-6.1.0-56-amd64".into(),
            package_version: "6.1.192-2".into(),
            root: PathBuf::from("/k"),
            vmlinuz: PathBuf::from("/k/boot/vmlinuz-6.1.0-56-amd64"),
            modules_dir: PathBuf::from("/k/lib/modules/6.1.0-56-amd64"),
        };
        assert_eq!(
            kernel_version_file(&k),
            "KERNEL_VERSION=6.1.0-56-amd64\nKERNEL_PACKAGE=linux-image-6.1.0-56-amd64\nKERNEL_PACKAGE_VERSION=6.1.192-2\n"
        );
    }

    #[test]
    fn invalid_manifest_fails_unless_skipped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("m.toml");
        std::fs::write(&path, "[container.web]\nrestart = \"sometimes\"\n").expect("write");
        let mut opts = BuildOptions::new(&path, tmp.path().join("out"));
        let err = load(&opts).err().expect("invalid");
        assert!(matches!(err, BuildError::InvalidManifest { .. }), "{err}");
        opts.skip_validation = true;
        let loaded = load(&opts).expect("skipped");
        assert!(loaded.manifest.is_none());
        assert!(loaded.text.contains("sometimes"));
        assert!(loaded.warnings.len() >= 2, "{:?}", loaded.warnings);
    }

    #[test]
    fn left_out_nodes_are_one_line_per_container() {
        use crate::bundle::Bundled;
        use crate::folder_store::FolderReport;
        use crate::oci::UnpackReport;
        let image = Bundled {
            unpacked: Some(UnpackReport {
                devices_dropped: 152,
                device_example: Some(PathBuf::from("dev/null")),
                ..UnpackReport::default()
            }),
            ..Bundled::default()
        };
        let folder = Bundled {
            folder: Some(FolderReport {
                source: PathBuf::from("/src/rootfs"),
                left_out: vec![
                    PathBuf::from("/src/rootfs/dev/null"),
                    PathBuf::from("/src/rootfs/run/fifo"),
                ],
                ..FolderReport::default()
            }),
            ..Bundled::default()
        };
        let rows = [
            (
                Bundled::default(),
                vec![],
            ),
            (
                image,
                vec!["container web: left out 152 device node(s) of the image, e.g. /dev/null (a workload gets its own /dev)"],
            ),
            (
                folder,
                vec!["container web: left out 2 device node(s), fifo(s) or socket(s) of the rootfs folder /src/rootfs, e.g. /src/rootfs/dev/null (the runtime provides /dev)"],
            ),
        ];
        for (bundled, want) in rows {
            assert_eq!(content_warnings("web", &bundled), want, "{bundled:?}");
        }
    }

    #[test]
    fn missing_manifest_names_it() {
        let err = load(&BuildOptions::new("/nonexistent/m.toml", "/tmp/x"))
            .err()
            .expect("missing");
        assert_eq!(err.to_string(), "read manifest /nonexistent/m.toml");
    }
}
