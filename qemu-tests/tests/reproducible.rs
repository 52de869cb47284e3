//! Same inputs, same bytes: the manifest, the container content (a folder
//! and an OCI image) and the kernel are built twice into two folders, and
//! every artifact must be byte-identical (timestamps from
//! SOURCE_DATE_EPOCH, sorted entries, fixed owners, salts and UUIDs
//! derived from the content; in disk.img also the GPT's GUIDs, the ESP's
//! volume ID and STATE's UUID and hash seed).

use qemu_tests::oci::{busybox_web_layout, TAG};
use qemu_tests::TestImage;

#[test]
fn two_builds_are_byte_identical() {
    let layout = busybox_web_layout().display().to_string();
    let manifest = format!(
        r#"
[system]
hostname = "same"

[container.plain]
rootfs = "@BUSYBOX@"
command = ["/bin/true"]

[container.web]
image = "oci:{layout}:{TAG}"
ports = ["8080:80"]
"#
    );
    let a = TestImage::build("repro-a", &manifest);
    let b = TestImage::build("repro-b", &manifest);
    for name in [
        "vmlinuz",
        "initramfs.img",
        "root.img",
        "root.verity",
        "kernel-version",
        "disk.img",
    ] {
        let (pa, pb) = (a.dir().join(name), b.dir().join(name));
        let (x, y) = (
            std::fs::read(&pa).unwrap_or_else(|e| panic!("read {}: {e}", pa.display())),
            std::fs::read(&pb).unwrap_or_else(|e| panic!("read {}: {e}", pb.display())),
        );
        assert!(
            x.len() == y.len() && x == y,
            "{name} differs between two builds"
        );
    }
}
