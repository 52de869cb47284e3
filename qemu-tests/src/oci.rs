//! OCI image layouts for tests, made the way users make them: with
//! `umoci` (Debian's package) from Debian's busybox-static.
//!
//! The layout has two layers: the busybox rootfs, then a second one that
//! adds a web root and deletes `/bin/vi` (a whiteout), and a config with
//! an Entrypoint and Cmd (busybox httpd on port 80), Env, WorkingDir,
//! ExposedPorts and StopSignal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::image::busybox_rootfs;

/// The tag of the test image in its layout.
pub const TAG: &str = "web";
/// What the image's httpd serves at `/`.
pub const PAGE: &str = "served from an OCI image made with umoci";

fn umoci(args: &[&str]) {
    let out = Command::new("umoci")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run umoci {args:?} (apt-get install umoci): {e}"));
    assert!(
        out.status.success(),
        "umoci {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The layout (`oci:PATH:web`), made once per test process under the
/// workspace's `target/`.
pub fn busybox_web_layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let base = berth_image::berth_binary::workspace_root()
            .join(format!("target/qemu-tests/oci-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).expect("create the OCI scratch folder");
        let layout = base.join("layout");
        let bundle = base.join("bundle");
        let (l, b) = (
            layout.to_str().expect("utf-8 path"),
            bundle.to_str().expect("utf-8 path"),
        );
        let image = format!("{l}:{TAG}");
        umoci(&["init", "--layout", l]);
        umoci(&["new", "--image", &image]);
        umoci(&["unpack", "--image", &image, b]);
        let rootfs = bundle.join("rootfs");
        let cp = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", busybox_rootfs().display()))
            .arg(&rootfs)
            .status()
            .expect("cp");
        assert!(cp.success(), "copy the busybox rootfs");
        umoci(&["repack", "--image", &image, b]);
        // Layer 2: a web root, and a deletion (a whiteout in the layer).
        std::fs::create_dir_all(rootfs.join("www")).expect("mkdir www");
        std::fs::write(rootfs.join("www/index.html"), format!("{PAGE}\n")).expect("page");
        std::fs::remove_file(rootfs.join("bin/vi")).expect("remove bin/vi");
        umoci(&["repack", "--image", &image, b]);
        umoci(&[
            "config",
            "--image",
            &image,
            "--config.entrypoint=/bin/httpd",
            "--config.cmd=-f",
            "--config.cmd=-p",
            "--config.cmd=80",
            "--config.cmd=-h",
            "--config.cmd=/www",
            "--config.env=GREETING=hello-from-the-image-config",
            "--config.workingdir=/www",
            "--config.exposedports=80/tcp",
            "--config.stopsignal=SIGTERM",
        ]);
        let _ = std::fs::remove_dir_all(&bundle);
        layout
    })
}
