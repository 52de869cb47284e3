//! Booting built artifacts under `qemu-system-x86_64`.
//!
//! TCG only: KVM is not usable on the machines this runs on (see the
//! design's test section). `-nodefaults` drops every device QEMU would add
//! on its own (VGA, default serial and monitor, NIC, floppy), so the
//! command line lists exactly what the guest sees: the console UART, the
//! virtio root disk and one user-mode NIC. `-no-reboot` turns a guest
//! reboot into a QEMU exit, so a run always ends when the guest stops.
//!
//! Networking is user-mode with `restrict=on`: the guest reaches nothing
//! outside, the host reaches it only through `hostfwd` on 127.0.0.1.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::build::{INITRAMFS, ROOT_IMAGE, VMLINUZ};
use crate::stop_signals::StopSignals;
use crate::verity::{VerityError, VerityInfo};

pub const QEMU: &str = "qemu-system-x86_64";
/// How long [`terminate`] waits after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

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

/// How to boot a build output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuOptions {
    /// Holds `vmlinuz`, `initramfs.img`, `root.img` (and `root.verity`).
    pub dir: PathBuf,
    /// The dm-verity root hash, passed as `berth.verity=`; [`QemuOptions::new`]
    /// reads it from `DIR/root.verity`. `None` boots the root unverified.
    pub verity: Option<String>,
    pub memory_mib: u32,
    /// Appended to the kernel command line.
    pub extra_cmdline: String,
    pub serial: Serial,
    /// A Unix socket for QEMU's human monitor (`system_powerdown`, `quit`).
    pub monitor_socket: Option<PathBuf>,
    /// (host port on 127.0.0.1, guest port), TCP.
    pub hostfwd: Vec<(u16, u16)>,
}

impl QemuOptions {
    /// 512 MiB, console on the terminal, no monitor, no forwards, the
    /// root verified when `DIR/root.verity` exists (a malformed one is
    /// reported by [`run`] through [`check_artifacts`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let verity = VerityInfo::read(&dir).ok().flatten().map(|v| v.root_hash);
        QemuOptions {
            dir,
            verity,
            memory_mib: 512,
            extra_cmdline: String::new(),
            serial: Serial::Stdio,
            monitor_socket: None,
            hostfwd: Vec::new(),
        }
    }
}

/// The base kernel command line: console on the first UART, quiet kernel
/// (berth logs its own steps; `quiet` still lets errors through, such as
/// dm-verity's `data block N is corrupted`), reboot at once on a panic
/// (with `-no-reboot` QEMU exits instead of hanging), root on the virtio
/// disk.
pub const BASE_CMDLINE: &str = "console=ttyS0 quiet panic=-1 berth.root=/dev/vda";

/// The kernel command line for `opts`: the base, `berth.verity=` when
/// verified, then the extra options (which, coming last, win).
pub fn cmdline(opts: &QemuOptions) -> String {
    let mut line = BASE_CMDLINE.to_owned();
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
    push("-kernel", file(VMLINUZ).into());
    push("-initrd", file(INITRAMFS).into());
    push("-append", cmdline(opts).into());
    push("-drive", drive_arg(&file(ROOT_IMAGE)));
    push("-netdev", netdev_arg(&opts.hostfwd).into());
    push("-device", "virtio-net-pci,netdev=net0".into());
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

/// The root disk, read-only: the image is immutable, and read-only lets
/// parallel tests share one image file.
fn drive_arg(image: &Path) -> OsString {
    let mut s = concat("file=", image);
    s.push(",if=virtio,format=raw,readonly=on");
    s
}

fn netdev_arg(hostfwd: &[(u16, u16)]) -> String {
    let mut s = String::from("user,id=net0,restrict=on");
    for (host, guest) in hostfwd {
        s.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    s
}

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

/// Fails unless `dir` holds the three boot artifacts, and a `root.verity`
/// beside them (if any) can be read.
pub fn check_artifacts(dir: &Path) -> Result<(), QemuError> {
    for name in [VMLINUZ, INITRAMFS, ROOT_IMAGE] {
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

/// Boots `opts` and waits until QEMU exits, `timeout` passes or a stop
/// signal arrives ([`StopSignals`]); in the last two cases QEMU is
/// terminated before this returns, so it never outlives the runner.
pub fn run(opts: &QemuOptions, timeout: Option<Duration>) -> Result<Outcome, QemuError> {
    check_artifacts(&opts.dir)?;
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

    fn args(opts: &QemuOptions, tty: bool) -> Vec<String> {
        qemu_args(opts, tty)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn value_of<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn default_command_line() {
        let a = args(&QemuOptions::new("/out"), false);
        #[rustfmt::skip]
        let want = [
            "-nodefaults", "-no-user-config", "-no-reboot",
            "-accel", "tcg",
            "-m", "512",
            "-display", "none",
            "-kernel", "/out/vmlinuz",
            "-initrd", "/out/initramfs.img",
            "-append", "console=ttyS0 quiet panic=-1 berth.root=/dev/vda",
            "-drive", "file=/out/root.img,if=virtio,format=raw,readonly=on",
            "-netdev", "user,id=net0,restrict=on",
            "-device", "virtio-net-pci,netdev=net0",
            "-serial", "stdio",
        ];
        assert_eq!(a, want);
        assert!(!a.iter().any(|x| x.contains("kvm")));
    }

    #[test]
    fn serial_variants() {
        let mut o = QemuOptions::new("/out");
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
        let mut o = QemuOptions::new("/out");
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
            ["console=ttyS0 quiet panic=-1 berth.root=/dev/vda berth.debug=1"]
        );
    }

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
        let err = check_artifacts(tmp.path()).expect_err("malformed root.verity");
        assert!(matches!(err, QemuError::Verity(_)), "{err}");
    }

    #[test]
    fn missing_artifacts_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = check_artifacts(tmp.path()).expect_err("empty dir");
        assert!(err.to_string().contains("vmlinuz"), "{err}");
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
