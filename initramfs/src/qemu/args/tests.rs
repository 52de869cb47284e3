use super::*;

pub(crate) fn args(opts: &QemuOptions, tty: bool) -> Vec<String> {
    qemu_args(opts, tty)
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

pub(crate) fn value_of<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

/// Options for `/out` as if it held a `disk.img`.
fn with_disk() -> QemuOptions {
    QemuOptions {
        disk: Disk::Image,
        ..QemuOptions::new("/out")
    }
}

#[test]
fn default_command_line() {
    let a = args(&with_disk(), false);
    #[rustfmt::skip]
    let want = [
        "-nodefaults", "-no-user-config", "-no-reboot",
        "-accel", "tcg",
        "-m", "512",
        "-display", "none",
        "-kernel", "/out/vmlinuz",
        "-initrd", "/out/initramfs.img",
        "-append", "console=ttyS0 quiet panic=-1",
        "-drive", "file=/out/disk.img,format=raw,snapshot=on,if=none,id=disk0",
        "-device", "virtio-blk-pci,drive=disk0",
        "-netdev", "user,id=net0,restrict=on",
        "-device", "virtio-net-pci,netdev=net0",
        "-serial", "stdio",
    ];
    assert_eq!(a, want);
    assert!(!a.iter().any(|x| x.contains("kvm")));
}

#[test]
fn a_folder_without_disk_img_boots_root_img() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert_eq!(QemuOptions::new(tmp.path()).disk, Disk::RootImage);
    std::fs::write(tmp.path().join("disk.img"), "").expect("write");
    assert_eq!(QemuOptions::new(tmp.path()).disk, Disk::Image);
}

/// The arguments of one (boot, interface, writes) combination: the
/// `-drive` values after the firmware's, and the `-device` values.
fn disk_and_devices(uefi: bool, interface: Interface, overlay: bool) -> (Vec<String>, Vec<String>) {
    let opts = QemuOptions {
        boot: if uefi {
            Boot::Uefi {
                vars: PathBuf::from("/run/vars.fd"),
            }
        } else {
            Boot::Direct
        },
        interface,
        writes: if overlay {
            Writes::Overlay(PathBuf::from("/out/node.qcow2"))
        } else {
            Writes::Snapshot
        },
        ..with_disk()
    };
    let a = args(&opts, false);
    let mut drives = value_of(&a, "-drive");
    if uefi {
        assert_eq!(
            drives.drain(..2).collect::<Vec<_>>(),
            [
                "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                "if=pflash,format=raw,unit=1,file=/run/vars.fd",
            ]
        );
        for flag in ["-kernel", "-initrd", "-append"] {
            assert!(!a.iter().any(|x| x == flag), "UEFI with {flag}");
        }
    } else {
        assert_eq!(value_of(&a, "-append"), [BASE_CMDLINE]);
    }
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
    (owned(drives), owned(value_of(&a, "-device")))
}

#[test]
fn boot_modes_interfaces_and_writes() {
    use Interface::{Nvme, Sata, Virtio};
    const SNAPSHOT: &str = "file=/out/disk.img,format=raw,snapshot=on,if=none,id=disk0";
    const OVERLAY: &str = "file=/out/node.qcow2,format=qcow2,if=none,id=disk0";
    // (UEFI, interface, overlay, the disk's devices)
    let table: [(bool, Interface, bool, &[&str]); 8] = [
        (false, Virtio, false, &["virtio-blk-pci,drive=disk0"]),
        (false, Virtio, true, &["virtio-blk-pci,drive=disk0"]),
        (false, Nvme, false, &["nvme,serial=berth-disk0,drive=disk0"]),
        (
            false,
            Sata,
            true,
            &["ahci,id=ahci", "ide-hd,drive=disk0,bus=ahci.0"],
        ),
        (
            true,
            Virtio,
            false,
            &["virtio-blk-pci,drive=disk0,bootindex=0"],
        ),
        (
            true,
            Virtio,
            true,
            &["virtio-blk-pci,drive=disk0,bootindex=0"],
        ),
        (
            true,
            Nvme,
            true,
            &["nvme,serial=berth-disk0,drive=disk0,bootindex=0"],
        ),
        (
            true,
            Sata,
            false,
            &["ahci,id=ahci", "ide-hd,drive=disk0,bus=ahci.0,bootindex=0"],
        ),
    ];
    for (uefi, interface, overlay, disk_devices) in table {
        let what = format!("uefi {uefi}, {interface:?}, overlay {overlay}");
        let (drives, devices) = disk_and_devices(uefi, interface, overlay);
        assert_eq!(drives, [if overlay { OVERLAY } else { SNAPSHOT }], "{what}");
        let mut want: Vec<&str> = disk_devices.to_vec();
        // The NIC, without its iPXE ROM under UEFI.
        want.push(if uefi {
            "virtio-net-pci,netdev=net0,romfile="
        } else {
            "virtio-net-pci,netdev=net0"
        });
        assert_eq!(devices, want, "{what}");
    }
}

#[test]
fn root_image_mode_names_the_device() {
    // (interface, the root's device)
    for (interface, device) in [
        (Interface::Virtio, "/dev/vda"),
        (Interface::Nvme, "/dev/nvme0n1"),
        (Interface::Sata, "/dev/sda"),
    ] {
        let opts = QemuOptions {
            disk: Disk::RootImage,
            interface,
            // Ignored: root.img is never written.
            writes: Writes::Overlay(PathBuf::from("/out/node.qcow2")),
            ..QemuOptions::new("/out")
        };
        let a = args(&opts, false);
        assert_eq!(
            value_of(&a, "-append"),
            [format!("console=ttyS0 quiet panic=-1 berth.root={device}")]
        );
        assert_eq!(
            value_of(&a, "-drive"),
            ["file=/out/root.img,format=raw,readonly=on,if=none,id=disk0"]
        );
    }
}

#[test]
fn serial_variants() {
    let mut o = with_disk();
    assert_eq!(value_of(&args(&o, true), "-serial"), ["mon:stdio"]);
    o.serial = Serial::Pipe;
    assert_eq!(value_of(&args(&o, true), "-serial"), ["stdio"]);
    o.serial = Serial::File(PathBuf::from("/tmp/console.log"));
    assert_eq!(
        value_of(&args(&o, true), "-serial"),
        ["file:/tmp/console.log"]
    );
}

#[test]
fn forwards_monitor_memory_and_cmdline() {
    let mut o = with_disk();
    o.hostfwd = vec![(18080, 80), (12222, 22)];
    o.monitor_socket = Some(PathBuf::from("/tmp/mon.sock"));
    o.memory_mib = 256;
    o.extra_cmdline = " berth.debug=1 ".into();
    let a = args(&o, false);
    assert_eq!(
        value_of(&a, "-netdev"),
        ["user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=tcp:127.0.0.1:12222-:22"]
    );
    assert_eq!(
        value_of(&a, "-monitor"),
        ["unix:/tmp/mon.sock,server=on,wait=off"]
    );
    assert_eq!(value_of(&a, "-m"), ["256"]);
    assert_eq!(
        value_of(&a, "-append"),
        ["console=ttyS0 quiet panic=-1 berth.debug=1"]
    );
}
