//! Test images: a manifest written to a temporary folder and built with
//! `berth-image`, containers made from Debian's busybox-static.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_image::build::{build_with, resolve_inputs, BuildOptions, Inputs, DISK_IMAGE};
use berth_image::qemu::create_overlay;

/// A built image in a temporary folder, removed when dropped.
#[derive(Debug)]
pub struct TestImage {
    name: String,
    dir: tempfile::TempDir,
}

impl TestImage {
    /// Builds an image from `manifest` (TOML). `@BUSYBOX@` in the text is
    /// replaced by the path of the shared busybox rootfs. Panics with the
    /// builder's error chain on failure.
    pub fn build(name: &str, manifest: &str) -> TestImage {
        TestImage::build_opts(name, manifest, false)
    }

    /// As [`TestImage::build`], but puts the manifest in unvalidated
    /// (`--skip-validation`), for testing how the node handles bad input.
    pub fn build_unvalidated(name: &str, manifest: &str) -> TestImage {
        TestImage::build_opts(name, manifest, true)
    }

    fn build_opts(name: &str, manifest: &str, skip_validation: bool) -> TestImage {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-{name}-"))
            .tempdir()
            .expect("create a temporary folder");
        let text = manifest.replace("@BUSYBOX@", &busybox_rootfs().display().to_string());
        let manifest_path = dir.path().join("manifest.toml");
        std::fs::write(&manifest_path, text).expect("write the manifest");
        let opts = BuildOptions {
            skip_validation,
            ..BuildOptions::new(manifest_path, dir.path().join("out"))
        };
        if let Err(e) = build_with(&opts, inputs()) {
            panic!("{name}: build image: {}", crate::chain(&e));
        }
        TestImage {
            name: name.to_owned(),
            dir,
        }
    }

    /// The folder with `vmlinuz`, `initramfs.img`, `root.img` and
    /// `disk.img`.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Makes `at` a qcow2 overlay of `size` bytes over this image's
    /// `disk.img` (for [`crate::Vm::boot_opts`] with
    /// `Writes::Overlay`): writes persist across boots, and a size above
    /// the disk's is the bigger disk STATE grows into.
    pub fn overlay(&self, at: &Path, size: u64) {
        if let Err(e) = create_overlay(&self.dir().join(DISK_IMAGE), at, size) {
            panic!(
                "{}: make the overlay {}: {}",
                self.name,
                at.display(),
                crate::chain(&e)
            );
        }
    }

    /// The size of the built `disk.img`, for an overlay of the same disk.
    pub fn disk_bytes(&self) -> u64 {
        let disk = self.dir().join(DISK_IMAGE);
        std::fs::metadata(&disk)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", self.name, disk.display()))
            .len()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A busybox rootfs shared by every test of this process, made once under
/// the workspace's `target/`.
pub fn busybox_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir =
            berth_image::berth_binary::workspace_root().join("target/qemu-tests/busybox-rootfs");
        // Made afresh: a folder left by an older run may be incomplete.
        let _ = std::fs::remove_dir_all(&dir);
        berth_image::busybox::busybox_rootfs(Path::new(berth_image::busybox::HOST_BUSYBOX), &dir)
            .unwrap_or_else(|e| panic!("busybox rootfs at {}: {e}", dir.display()));
        dir
    })
}

/// The busybox rootfs plus `/bin/inotify-hold` (`src/inotify_hold.c`,
/// built static with the host's `cc`: busybox has no inotify applet), made
/// once per test process under the workspace's `target/`.
pub fn tools_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let root = berth_image::berth_binary::workspace_root();
        let dir = root.join("target/qemu-tests/tools-rootfs");
        let _ = std::fs::remove_dir_all(&dir);
        berth_image::busybox::busybox_rootfs(Path::new(berth_image::busybox::HOST_BUSYBOX), &dir)
            .unwrap_or_else(|e| panic!("busybox rootfs at {}: {e}", dir.display()));
        let source = root.join("qemu-tests/src/inotify_hold.c");
        let out = dir.join("bin/inotify-hold");
        let status = std::process::Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&source)
            .status()
            .unwrap_or_else(|e| panic!("run cc for {}: {e}", source.display()));
        assert!(status.success(), "cc {} failed: {status}", source.display());
        dir
    })
}

/// The kernel and the static berth binary, resolved once per test process
/// (the download and the cargo build are the slow part).
fn inputs() -> &'static Inputs {
    static INPUTS: OnceLock<Inputs> = OnceLock::new();
    INPUTS.get_or_init(|| {
        resolve_inputs().unwrap_or_else(|e| panic!("kernel and berth binary: {e:?}"))
    })
}

/// `examples/hello.toml` with its container content pointed at the shared
/// busybox rootfs, for benchmarks that run what a user would.
pub fn example_manifest() -> String {
    let root = berth_image::berth_binary::workspace_root();
    let path = root.join("examples/hello.toml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.replace(
        "\"rootfs/busybox\"",
        &format!("{:?}", busybox_rootfs().display().to_string()),
    )
}
