//! Booting built artifacts under `qemu-system-x86_64`: directly
//! (`-kernel`) or through OVMF and systemd-boot, from `disk.img` or from
//! `root.img` alone ([`args`] has the command line, [`overlay`] the
//! persistent disk of `berth-image run`).
//!
//! TCG only: KVM is not usable on the machines this runs on (see the
//! design's test section). `-nodefaults` drops every device QEMU would add
//! on its own (VGA, default serial and monitor, NIC, floppy), so the
//! command line lists exactly what the guest sees: the console UART, the
//! disk (virtio, NVMe or SATA), one user-mode NIC and, under UEFI, the
//! firmware's two flash chips. `-no-reboot` turns a guest reboot into a
//! QEMU exit, so a run always ends when the guest stops.
//!
//! Networking is user-mode with `restrict=on`: the guest reaches nothing
//! outside, the host reaches it only through `hostfwd` on 127.0.0.1.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::build::{DISK_IMAGE, INITRAMFS, ROOT_IMAGE, VMLINUZ};
use crate::stop_signals::StopSignals;
use crate::tool::ToolError;
use crate::verity::{VerityError, VerityInfo};

mod args;
mod overlay;

pub use args::{
    cmdline, qemu_args, Boot, Disk, Interface, QemuOptions, Serial, Writes, BASE_CMDLINE,
    OVMF_CODE, OVMF_PACKAGE, OVMF_VARS,
};
pub use overlay::{
    create_overlay, overlay_action, parse_size, prepare_node, NodeDisk, OverlayAction,
    NODE_OVERLAY, NODE_VARS,
};

pub const QEMU: &str = "qemu-system-x86_64";
/// How long [`terminate`] waits after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

/// The QEMU command for `opts`, with stdio set up for its [`Serial`].
pub fn qemu_command(opts: &QemuOptions) -> Command {
    let mut cmd = Command::new(QEMU);
    cmd.args(qemu_args(opts, std::io::stdin().is_terminal()));
    match opts.serial {
        Serial::Stdio => {}
        Serial::File(_) => {
            cmd.stdin(Stdio::null());
        }
        Serial::Pipe => {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
    cmd
}

/// Running QEMU failed.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{dir} lacks {name}: build it first (berth-image build MANIFEST -o DIR)")]
    MissingArtifact { dir: PathBuf, name: &'static str },
    #[error("start {QEMU} (apt-get install qemu-system-x86)")]
    Spawn(#[source] std::io::Error),
    #[error("wait for {QEMU}")]
    Wait(#[source] std::io::Error),
    #[error("read the root hash")]
    Verity(#[source] VerityError),
    #[error("watch for SIGTERM, SIGINT and SIGHUP")]
    Signals(#[source] std::io::Error),
    #[error("read the UEFI firmware {path} (apt-get install {OVMF_PACKAGE})")]
    Firmware {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("boot under UEFI: it boots {DISK_IMAGE}, which {dir} lacks (rebuild it, or boot root.img directly)")]
    UefiNeedsDisk { dir: PathBuf },
    #[error("boot under UEFI with kernel options {extra:?}: the command line is the ESP entry's (use the direct mode)")]
    UefiCmdline { extra: String },
    #[error("create the overlay {overlay} over {base}")]
    Overlay {
        overlay: PathBuf,
        base: PathBuf,
        #[source]
        source: ToolError,
    },
    #[error("disk size {size} is smaller than {base} ({base_bytes} bytes)")]
    DiskSize {
        size: u64,
        base: PathBuf,
        base_bytes: u64,
    },
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// QEMU exited by itself (guest poweroff, reboot, panic, or a QEMU
    /// error) with this status.
    Exited(ExitStatus),
    /// The deadline passed and QEMU was terminated.
    TimedOut,
    /// This process got a stop signal (SIGTERM, SIGINT, SIGHUP) and
    /// terminated QEMU; the caller should exit as that signal would have
    /// made it (128 + the number).
    Stopped(Signal),
}

/// Fails unless `opts.dir` holds what `opts` boots (the kernel and
/// initramfs of a direct boot, `disk.img` or `root.img`), a
/// `root.verity` there (if any) can be read, and the combination makes
/// sense (UEFI boots `disk.img`, with the entry's command line).
pub fn check_artifacts(opts: &QemuOptions) -> Result<(), QemuError> {
    let dir = &opts.dir;
    let uefi = matches!(opts.boot, Boot::Uefi { .. });
    if uefi && opts.disk == Disk::RootImage {
        return Err(QemuError::UefiNeedsDisk { dir: dir.clone() });
    }
    if uefi && !opts.extra_cmdline.trim().is_empty() {
        return Err(QemuError::UefiCmdline {
            extra: opts.extra_cmdline.trim().to_owned(),
        });
    }
    let mut needed = if uefi {
        vec![]
    } else {
        vec![VMLINUZ, INITRAMFS]
    };
    needed.push(match opts.disk {
        Disk::Image => DISK_IMAGE,
        Disk::RootImage => ROOT_IMAGE,
    });
    for name in needed {
        if !dir.join(name).is_file() {
            return Err(QemuError::MissingArtifact {
                dir: dir.to_owned(),
                name,
            });
        }
    }
    VerityInfo::read(dir).map_err(QemuError::Verity)?;
    Ok(())
}

/// [`check_artifacts`], then what the boot needs beside them: under
/// UEFI the firmware, and the machine's variable store (copied from
/// [`OVMF_VARS`] when missing).
pub fn prepare(opts: &QemuOptions) -> Result<(), QemuError> {
    check_artifacts(opts)?;
    if let Boot::Uefi { vars } = &opts.boot {
        let firmware = |path: &str| QemuError::Firmware {
            path: PathBuf::from(path),
            source: std::io::ErrorKind::NotFound.into(),
        };
        if !Path::new(OVMF_CODE).is_file() {
            return Err(firmware(OVMF_CODE));
        }
        if !vars.exists() {
            std::fs::copy(OVMF_VARS, vars).map_err(|source| QemuError::Firmware {
                path: PathBuf::from(OVMF_VARS),
                source,
            })?;
        }
    }
    Ok(())
}

/// Boots `opts` and waits until QEMU exits, `timeout` passes or a stop
/// signal arrives ([`StopSignals`]); in the last two cases QEMU is
/// terminated before this returns, so it never outlives the runner.
pub fn run(opts: &QemuOptions, timeout: Option<Duration>) -> Result<Outcome, QemuError> {
    prepare(opts)?;
    // Before the spawn, so that no signal falls between the two.
    let signals = StopSignals::block().map_err(QemuError::Signals)?;
    let mut child = qemu_command(opts).spawn().map_err(QemuError::Spawn)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let stop = |child: &mut Child, outcome| {
        terminate(child, GRACE)
            .map(|_| outcome)
            .map_err(QemuError::Wait)
    };
    loop {
        if let Some(status) = child.try_wait().map_err(QemuError::Wait)? {
            return Ok(Outcome::Exited(status));
        }
        let left = match deadline {
            Some(d) if Instant::now() >= d => return stop(&mut child, Outcome::TimedOut),
            Some(d) => POLL.min(d.saturating_duration_since(Instant::now())),
            None => POLL,
        };
        match signals.wait(left) {
            Ok(Some(signal)) => return stop(&mut child, Outcome::Stopped(signal)),
            Ok(None) => {}
            Err(e) => {
                // QEMU must not outlive a runner that cannot watch.
                let _ = terminate(&mut child, GRACE);
                return Err(QemuError::Signals(e));
            }
        }
    }
}

/// Waits for `child` until `deadline` (forever if `None`); `None` when the
/// deadline passed first.
pub fn wait_until(
    child: &mut Child,
    deadline: Option<Instant>,
) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        match deadline {
            None => return child.wait().map(Some),
            Some(d) if Instant::now() >= d => return Ok(None),
            Some(d) => std::thread::sleep(POLL.min(d.saturating_duration_since(Instant::now()))),
        }
    }
}

/// Stops `child`: SIGTERM (QEMU then restores the terminal and flushes its
/// files), and SIGKILL if it is still there after `grace`.
pub fn terminate(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
    // ESRCH means it exited meanwhile; the wait below collects it.
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    if let Some(status) = wait_until(child, Some(Instant::now() + grace))? {
        return Ok(status);
    }
    child.kill()?;
    child.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    use args::tests::{args, value_of};

    #[test]
    fn root_hash_from_root_verity() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(QemuOptions::new(tmp.path()).verity, None);
        let hash = "4bd5902c7f765f14cca1871176470d5c78c75c18b85a763584632993d49a5fcd";
        let info = VerityInfo {
            root_hash: hash.into(),
            data_bytes: 4096,
            hash_offset: 4096,
            salt: "00".into(),
            uuid: "u".into(),
        };
        std::fs::write(tmp.path().join("root.verity"), info.to_file()).expect("write");
        let mut o = QemuOptions::new(tmp.path());
        assert_eq!(o.verity.as_deref(), Some(hash));
        o.extra_cmdline = "berth.debug".into();
        assert_eq!(
            value_of(&args(&o, false), "-append"),
            [format!(
                "console=ttyS0 quiet panic=-1 berth.root=/dev/vda berth.verity={hash} berth.debug"
            )]
        );
        std::fs::write(tmp.path().join("root.verity"), "ROOT_HASH=nope\n").expect("write");
        assert_eq!(QemuOptions::new(tmp.path()).verity, None);
        for name in [VMLINUZ, INITRAMFS, ROOT_IMAGE] {
            std::fs::write(tmp.path().join(name), "").expect("write");
        }
        let err =
            check_artifacts(&QemuOptions::new(tmp.path())).expect_err("malformed root.verity");
        assert!(matches!(err, QemuError::Verity(_)), "{err}");
    }

    #[test]
    fn missing_artifacts_and_bad_combinations_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let uefi = Boot::Uefi {
            vars: tmp.path().join("vars.fd"),
        };
        // (files present, boot, disk, extra options, what the error names)
        let table: [(&[&str], Boot, Disk, &str, &str); 6] = [
            (&[], Boot::Direct, Disk::RootImage, "", "vmlinuz"),
            (
                &[VMLINUZ, INITRAMFS],
                Boot::Direct,
                Disk::RootImage,
                "",
                "root.img",
            ),
            (
                &[VMLINUZ, INITRAMFS],
                Boot::Direct,
                Disk::Image,
                "",
                "disk.img",
            ),
            (&[], uefi.clone(), Disk::Image, "", "lacks disk.img"),
            (&[], uefi.clone(), Disk::RootImage, "", "boots disk.img"),
            (
                &[DISK_IMAGE],
                uefi.clone(),
                Disk::Image,
                "berth.debug",
                "ESP entry",
            ),
        ];
        for (files, boot, disk, extra, want) in table {
            let dir = tempfile::tempdir().expect("tempdir");
            for name in files {
                std::fs::write(dir.path().join(name), "").expect("write");
            }
            let opts = QemuOptions {
                boot,
                disk,
                extra_cmdline: extra.into(),
                ..QemuOptions::new(dir.path())
            };
            let err = check_artifacts(&opts).expect_err(want);
            assert!(err.to_string().contains(want), "{err}");
        }
        std::fs::write(tmp.path().join(DISK_IMAGE), "").expect("write");
        let opts = QemuOptions {
            boot: uefi,
            ..QemuOptions::new(tmp.path())
        };
        assert!(
            check_artifacts(&opts).is_ok(),
            "UEFI needs no kernel beside disk.img"
        );
    }

    #[test]
    fn terminate_stops_a_process() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let status = terminate(&mut child, Duration::from_secs(5)).expect("terminate");
        // SIGTERM sufficed: the fallback would have been SIGKILL.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(nix::libc::SIGTERM)
        );
        assert_eq!(
            wait_until(&mut child, Some(Instant::now())).expect("wait"),
            Some(status)
        );
    }
}
