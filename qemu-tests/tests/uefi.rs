//! `disk.img` boots as a real machine would: OVMF finds systemd-boot on
//! the ESP, systemd-boot starts slot a's entry, stage 0 finds ROOT-A on
//! the disk by its GPT name and verifies it (the root hash comes from the
//! entry, which nobody at the console can edit). Here on NVMe, the
//! interface a cloud machine most often has.

use berth_image::qemu::Interface;
use qemu_tests::{TestImage, Vm, BOOT};

#[test]
fn boots_from_the_esp_entry_on_nvme() {
    let image = TestImage::build(
        "uefi",
        r#"
[container.hello]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "echo hello from $(cat /proc/cmdline)"]
restart = "never"
"#,
    );
    let mut vm = Vm::boot_uefi_with(&image, |opts| opts.interface = Interface::Nvme);
    // OVMF prints its boot device on the console before the kernel runs.
    vm.wait_for("BdsDxe: starting", BOOT);
    let line = vm.wait_for("hello | hello from", BOOT);
    assert!(line.contains("berth.slot=a"), "{line}");
    assert!(line.contains("berth.verity="), "{line}");
    assert!(!line.contains("berth.root="), "{line}");
    assert!(vm.console().contains("starting stage 0"));
}
