//! Containers from a real OCI image layout (made with umoci from Debian's
//! busybox-static): the image's config drives the process, its layers
//! (with a whiteout) make the filesystem, two containers share the layers,
//! and the host fetches the image's page through a published port.

use std::time::Duration;

use qemu_tests::http::get_until;
use qemu_tests::oci::{busybox_web_layout, PAGE, TAG};
use qemu_tests::vm::free_port;
use qemu_tests::{TestImage, Vm, BOOT};

#[test]
fn oci_image_runs_from_its_config_and_serves_the_host() {
    let layout = busybox_web_layout().display().to_string();
    let image = TestImage::build(
        "oci",
        &format!(
            r#"
# Entrypoint and Cmd from the image: busybox httpd on port 80.
[container.web]
image = "oci:{layout}:{TAG}"
init = true
ports = ["8080:80"]

# Same image (same layers, stored once); the manifest's command replaces
# the image's Entrypoint and Cmd, the image's env and workdir stay.
[container.probe]
image = "oci:{layout}:{TAG}"
restart = "never"
command = ["/bin/sh", "-c", """
echo "env: $GREETING"
echo "pwd: $(pwd)"
if [ -e /bin/vi ]; then echo "vi: present"; else echo "vi: whited out"; fi
echo "page: $(cat /www/index.html)"
"""]
"#
        ),
    );
    let port = free_port();
    let mut vm = Vm::boot_forwarding(&image, "", &[(port, 8080)]);
    vm.wait_for("probe | page:", BOOT);
    let console = vm.console();
    let has = |needle: &str| assert!(console.contains(needle), "console lacks {needle:?}");
    has("probe | env: hello-from-the-image-config");
    has("probe | pwd: /www");
    has("probe | vi: whited out");
    has(&format!("probe | page: {PAGE}"));
    let body = get_until(port, PAGE, Duration::from_secs(40));
    assert!(body.starts_with("HTTP/1."), "{body}");
}
