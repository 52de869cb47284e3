//! What to boot and how, and QEMU's command line for it: a pure function
//! of [`QemuOptions`], so every combination is checked by a table test.
//!
//! Two ways to boot: [`Boot::Direct`] hands QEMU the kernel, initramfs and
//! command line from the build folder (fast: no firmware, no boot loader;
//! for development and tests), [`Boot::Uefi`] starts OVMF, which starts
//! systemd-boot from the disk's ESP, which starts the slot's entry — what
//! a real machine or a cloud does. Two disks: `disk.img` (the node disk;
//! stage 0 finds ROOT-A on it by name) or, in [`Disk::RootImage`] mode,
//! `root.img` alone, read-only, named by `berth.root=` (the dm-verity
//! tests corrupt bytes of root.img and boot it like that). Writes to
//! `disk.img` go to QEMU's temporary overlay (`snapshot=on`: the built
//! disk is never written, and parallel tests share it) or to a
//! persistent qcow2 overlay, which may be bigger than the disk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::build::{DISK_IMAGE, INITRAMFS, ROOT_IMAGE, VMLINUZ};
pub use crate::disk::BASE_CMDLINE;
use crate::verity::VerityInfo;

/// OVMF's code (read-only) and the template of its variable store, for
/// 4 MiB flash (Debian's `ovmf`).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
pub const OVMF_PACKAGE: &str = "ovmf";

/// Where the guest's serial console (ttyS0) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serial {
    /// This process's terminal. On a terminal the QEMU monitor is muxed in
    /// (`mon:stdio`), so Ctrl-A X quits and Ctrl-C reaches the guest.
    Stdio,
    /// Appended to a file.
    File(PathBuf),
    /// QEMU's stdout and stdin, both piped to the caller (VM tests read
    /// the console from `child.stdout`). stderr is piped too: the caller
    /// must drain or drop it.
    Pipe,
}

/// How the kernel is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// `-kernel`, `-initrd`, `-append` from the build folder.
    Direct,
    /// OVMF from the disk's ESP; `vars` is this machine's writable copy
    /// of the UEFI variable store ([`super::prepare`] makes it from
    /// [`OVMF_VARS`] when missing).
    Uefi { vars: PathBuf },
}

/// Which disk the guest gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disk {
    /// `DIR/disk.img`.
    Image,
    /// `DIR/root.img` alone, read-only, with `berth.root=` naming it
    /// (direct boot only).
    RootImage,
}

/// How the disk is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// virtio-blk: `/dev/vda`.
    Virtio,
    /// An NVMe controller: `/dev/nvme0n1`.
    Nvme,
    /// SATA on an AHCI controller: `/dev/sda`.
    Sata,
}

impl Interface {
    /// The whole disk's device in the guest.
    pub fn device(self) -> &'static str {
        match self {
            Interface::Virtio => "/dev/vda",
            Interface::Nvme => "/dev/nvme0n1",
            Interface::Sata => "/dev/sda",
        }
    }
}

/// Where the guest's writes to `disk.img` go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writes {
    /// A temporary overlay QEMU drops on exit (`snapshot=on`).
    Snapshot,
    /// This qcow2 overlay over `disk.img`, kept
    /// ([`super::create_overlay`]).
    Overlay(PathBuf),
}

/// How to boot a build output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuOptions {
    /// Holds `vmlinuz`, `initramfs.img`, `root.img`, `disk.img` (and
    /// `root.verity`).
    pub dir: PathBuf,
    /// The dm-verity root hash, passed as `berth.verity=` in the direct
    /// mode; [`QemuOptions::new`] reads it from `DIR/root.verity`. `None`
    /// boots the root unverified. (A UEFI boot takes the ESP entry's.)
    pub verity: Option<String>,
    pub memory_mib: u32,
    /// Appended to the kernel command line (direct mode only: under UEFI
    /// the command line is the ESP entry's, which nobody can edit).
    pub extra_cmdline: String,
    pub serial: Serial,
    /// A Unix socket for QEMU's human monitor (`system_powerdown`, `quit`).
    pub monitor_socket: Option<PathBuf>,
    /// (host port on 127.0.0.1, guest port), TCP.
    pub hostfwd: Vec<(u16, u16)>,
    pub boot: Boot,
    pub disk: Disk,
    pub interface: Interface,
    pub writes: Writes,
}

impl QemuOptions {
    /// Direct boot, 512 MiB, console on the terminal, no monitor, no
    /// forwards, `disk.img` on virtio with a temporary overlay (or
    /// `root.img` when the folder has no `disk.img`), the root verified
    /// when `DIR/root.verity` exists (a malformed one is reported by
    /// [`super::run`] through [`super::check_artifacts`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let verity = VerityInfo::read(&dir).ok().flatten().map(|v| v.root_hash);
        let disk = if dir.join(DISK_IMAGE).is_file() {
            Disk::Image
        } else {
            Disk::RootImage
        };
        QemuOptions {
            dir,
            verity,
            memory_mib: 512,
            extra_cmdline: String::new(),
            serial: Serial::Stdio,
            monitor_socket: None,
            hostfwd: Vec::new(),
            boot: Boot::Direct,
            disk,
            interface: Interface::Virtio,
            writes: Writes::Snapshot,
        }
    }
}

/// The kernel command line of a direct boot: the base, `berth.root=` in
/// root-image mode, `berth.verity=` when verified, then the extra
/// options (which, coming last, win). With `disk.img` there is no
/// `berth.root=`: stage 0 finds the slot's partition by name.
pub fn cmdline(opts: &QemuOptions) -> String {
    let mut line = BASE_CMDLINE.to_owned();
    if opts.disk == Disk::RootImage {
        line.push_str(" berth.root=");
        line.push_str(opts.interface.device());
    }
    if let Some(hash) = &opts.verity {
        line.push_str(" berth.verity=");
        line.push_str(hash);
    }
    let extra = opts.extra_cmdline.trim();
    if !extra.is_empty() {
        line.push(' ');
        line.push_str(extra);
    }
    line
}

/// QEMU's arguments; `stdin_is_terminal` picks `mon:stdio` for
/// [`Serial::Stdio`].
pub fn qemu_args(opts: &QemuOptions, stdin_is_terminal: bool) -> Vec<OsString> {
    let file = |name: &str| opts.dir.join(name);
    let mut args: Vec<OsString> = Vec::new();
    for flag in ["-nodefaults", "-no-user-config", "-no-reboot"] {
        args.push(flag.into());
    }
    let mut push = |a: &str, b: OsString| {
        args.push(a.into());
        args.push(b);
    };
    push("-accel", "tcg".into());
    push("-m", opts.memory_mib.to_string().into());
    push("-display", "none".into());
    let uefi = match &opts.boot {
        Boot::Direct => {
            push("-kernel", file(VMLINUZ).into());
            push("-initrd", file(INITRAMFS).into());
            push("-append", cmdline(opts).into());
            false
        }
        Boot::Uefi { vars } => {
            let code = concat(
                "if=pflash,format=raw,unit=0,readonly=on,file=",
                Path::new(OVMF_CODE),
            );
            push("-drive", code);
            push("-drive", concat("if=pflash,format=raw,unit=1,file=", vars));
            true
        }
    };
    for (flag, value) in disk_args(opts, uefi) {
        push(flag, value);
    }
    push("-netdev", netdev_arg(&opts.hostfwd).into());
    // No iPXE option ROM under UEFI: OVMF would load it and offer a
    // network boot nobody wants, at a TCG cost.
    let nic = if uefi {
        "virtio-net-pci,netdev=net0,romfile="
    } else {
        "virtio-net-pci,netdev=net0"
    };
    push("-device", nic.into());
    let serial: OsString = match &opts.serial {
        Serial::Stdio if stdin_is_terminal => "mon:stdio".into(),
        Serial::Stdio | Serial::Pipe => "stdio".into(),
        Serial::File(path) => concat("file:", path),
    };
    push("-serial", serial);
    if let Some(sock) = &opts.monitor_socket {
        let mut m = concat("unix:", sock);
        m.push(",server=on,wait=off");
        push("-monitor", m);
    }
    args
}

fn concat(prefix: &str, path: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path);
    s
}

/// The `-drive` and `-device` pairs of the disk. `root.img` is attached
/// read-only (immutable, and parallel tests share it); `disk.img` with
/// `snapshot=on`, or its overlay read-write. Under UEFI the disk is the
/// first boot device.
fn disk_args(opts: &QemuOptions, uefi: bool) -> Vec<(&'static str, OsString)> {
    let mut drive = match (opts.disk, &opts.writes) {
        (Disk::RootImage, _) => {
            let mut d = concat("file=", &opts.dir.join(ROOT_IMAGE));
            d.push(",format=raw,readonly=on");
            d
        }
        (Disk::Image, Writes::Snapshot) => {
            let mut d = concat("file=", &opts.dir.join(DISK_IMAGE));
            d.push(",format=raw,snapshot=on");
            d
        }
        (Disk::Image, Writes::Overlay(overlay)) => {
            let mut d = concat("file=", overlay);
            d.push(",format=qcow2");
            d
        }
    };
    drive.push(",if=none,id=disk0");
    let boot = if uefi { ",bootindex=0" } else { "" };
    let mut out = vec![("-drive", drive)];
    match opts.interface {
        Interface::Virtio => {
            out.push((
                "-device",
                format!("virtio-blk-pci,drive=disk0{boot}").into(),
            ));
        }
        Interface::Nvme => {
            out.push((
                "-device",
                format!("nvme,serial=berth-disk0,drive=disk0{boot}").into(),
            ));
        }
        Interface::Sata => {
            out.push(("-device", "ahci,id=ahci".into()));
            out.push((
                "-device",
                format!("ide-hd,drive=disk0,bus=ahci.0{boot}").into(),
            ));
        }
    }
    out
}

fn netdev_arg(hostfwd: &[(u16, u16)]) -> String {
    let mut s = String::from("user,id=net0,restrict=on");
    for (host, guest) in hostfwd {
        s.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    s
}

#[cfg(test)]
pub(crate) mod tests;
