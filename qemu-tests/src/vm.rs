//! A running QEMU guest with its serial console captured.
//!
//! [`Vm::boot`] and friends boot the direct way (`-kernel`) from the
//! image's `disk.img`, its writes going to a temporary overlay
//! (`snapshot=on`), so tests share one built disk; [`Vm::boot_opts`]
//! hands over every [`QemuOptions`] knob (UEFI, persistent overlays, NVMe
//! or SATA, `root.img` alone).

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_image::qemu::{prepare, qemu_command, Boot, QemuOptions, Serial};

use crate::image::TestImage;

/// A booted guest. Dropping it kills QEMU and, if the test is failing,
/// prints the console and QEMU's stderr.
#[derive(Debug)]
pub struct Vm {
    child: Option<Child>,
    console: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
    name: String,
    /// Holds the monitor socket; removed with the Vm.
    scratch: tempfile::TempDir,
}

impl Vm {
    /// Boots `image` with its console on a pipe.
    pub fn boot(image: &TestImage) -> Vm {
        Vm::boot_with(image, "")
    }

    /// Boots `image`, appending `cmdline` to the kernel command line.
    pub fn boot_with(image: &TestImage, cmdline: &str) -> Vm {
        Vm::boot_forwarding(image, cmdline, &[])
    }

    /// Boots `image` with each `(host, guest)` TCP port forwarded from
    /// 127.0.0.1 on the host (QEMU's `hostfwd`); see [`free_port`].
    pub fn boot_forwarding(image: &TestImage, cmdline: &str, hostfwd: &[(u16, u16)]) -> Vm {
        Vm::boot_opts(image, |opts, _| {
            opts.extra_cmdline = cmdline.to_owned();
            opts.hostfwd = hostfwd.to_vec();
        })
    }

    /// Boots `image` under OVMF and systemd-boot from its `disk.img`
    /// (temporary overlay), as a machine with UEFI firmware would.
    pub fn boot_uefi(image: &TestImage) -> Vm {
        Vm::boot_uefi_with(image, |_| {})
    }

    /// As [`Vm::boot_uefi`], with `configure` adjusting the options
    /// (interface, a persistent overlay) after the UEFI ones are set.
    pub fn boot_uefi_with(image: &TestImage, configure: impl FnOnce(&mut QemuOptions)) -> Vm {
        Vm::boot_opts(image, |opts, scratch| {
            opts.boot = Boot::Uefi {
                vars: scratch.join("vars.fd"),
            };
            configure(opts);
        })
    }

    /// Boots `image` directly on the persistent `overlay` (see
    /// [`TestImage::overlay`]): what one boot writes, the next one finds.
    pub fn boot_on_overlay(image: &TestImage, overlay: &Path) -> Vm {
        let overlay = overlay.to_owned();
        Vm::boot_opts(image, move |opts, _| {
            opts.writes = berth_image::qemu::Writes::Overlay(overlay)
        })
    }

    /// Boots `image` with `configure` adjusting the options first. It
    /// gets the defaults (direct boot, `disk.img` with `snapshot=on` on
    /// virtio, console on a pipe, a monitor socket) and the VM's scratch
    /// folder, removed with the Vm, for files such as a UEFI variable
    /// store. The console pipe and the monitor socket are the harness's:
    /// leave `serial` and `monitor_socket` alone.
    pub fn boot_opts(image: &TestImage, configure: impl FnOnce(&mut QemuOptions, &Path)) -> Vm {
        let scratch = tempfile::Builder::new()
            .prefix("berth-vm-")
            .tempdir()
            .expect("create a temporary folder");
        let mut opts = QemuOptions {
            serial: Serial::Pipe,
            monitor_socket: Some(scratch.path().join("monitor.sock")),
            ..QemuOptions::new(image.dir())
        };
        configure(&mut opts, scratch.path());
        if let Err(e) = prepare(&opts) {
            panic!("{}: prepare the boot: {}", image.name(), crate::chain(&e));
        }
        Vm::spawn(image.name(), qemu_command(&opts), scratch)
    }

    /// Boots a guest that is not a berth image (a benchmark's comparison
    /// systems) from `image`'s QEMU flags with the kernel's initramfs, its
    /// command line and, if given, its disk replaced: the same machine,
    /// memory, devices and kernel, so only the userspace differs.
    pub fn boot_foreign(
        image: &TestImage,
        name: &str,
        initrd: &Path,
        append: &str,
        drive: Option<&Path>,
    ) -> Vm {
        let scratch = tempfile::Builder::new()
            .prefix("berth-vm-")
            .tempdir()
            .expect("create a temporary folder");
        let opts = QemuOptions {
            serial: Serial::Pipe,
            monitor_socket: Some(scratch.path().join("monitor.sock")),
            ..QemuOptions::new(image.dir())
        };
        let mut args = berth_image::qemu::qemu_args(&opts, false);
        let mut replaced_drive = false;
        for i in 1..args.len() {
            let flag = args[i - 1].to_string_lossy().into_owned();
            match flag.as_str() {
                "-initrd" => args[i] = initrd.into(),
                "-append" => args[i] = append.into(),
                "-drive" if !replaced_drive => {
                    if let Some(file) = drive {
                        let mut d = std::ffi::OsString::from("file=");
                        d.push(file);
                        d.push(",format=raw,snapshot=on,if=none,id=disk0");
                        args[i] = d;
                    }
                    replaced_drive = true;
                }
                _ => {}
            }
        }
        let mut cmd = std::process::Command::new(berth_image::qemu::QEMU);
        cmd.args(args);
        Vm::spawn(name, cmd, scratch)
    }

    fn spawn(name: &str, mut cmd: std::process::Command, scratch: tempfile::TempDir) -> Vm {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn qemu ({cmd:?}): {e}"));
        let console = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, console.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, stderr.clone()));
        }
        Vm {
            child: Some(child),
            console,
            stderr,
            readers,
            started,
            name: name.to_owned(),
            scratch,
        }
    }

    /// Sends one command to QEMU's human monitor (`system_powerdown`,
    /// `sendkey ctrl-alt-delete`) and returns what it answered.
    pub fn monitor(&mut self, command: &str) -> String {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let path = self.scratch.path().join("monitor.sock");
        let until = Instant::now() + Duration::from_secs(10);
        let mut sock = loop {
            match UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= until => {
                    panic!("{}: connect to the QEMU monitor: {e}", self.name)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let _ = sock.set_read_timeout(Some(Duration::from_millis(500)));
        sock.write_all(format!("{command}\n").as_bytes())
            .unwrap_or_else(|e| panic!("{}: write to the QEMU monitor: {e}", self.name));
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// The console output so far, lossily decoded, up to its last complete
    /// line (the serial console may be in the middle of one).
    pub fn console(&self) -> String {
        let mut text = self.raw_console();
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
        text
    }

    /// Everything the console printed, a partial last line included.
    fn raw_console(&self) -> String {
        let bytes = self.console.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).replace('\r', "")
    }

    /// Time since QEMU was spawned.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the console contains `needle`; panics (with the console
    /// printed by `Drop`) at the deadline or if QEMU exits first. Returns
    /// the console line that contains it.
    pub fn wait_for(&mut self, needle: &str, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let text = self.console();
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{}: qemu exited ({status}) before the console showed {needle:?}",
                    self.name
                );
            }
            if Instant::now() >= until {
                panic!(
                    "{}: console did not show {needle:?} within {deadline:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `needle` appears at least `count` times; returns the
    /// console then.
    pub fn wait_for_count(&mut self, needle: &str, count: usize, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let text = self.console();
            if text.matches(needle).count() >= count {
                return text;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{}: qemu exited ({status}) before the console showed {needle:?} {count} times",
                    self.name
                );
            }
            if Instant::now() >= until {
                panic!(
                    "{}: console did not show {needle:?} {count} times within {deadline:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for QEMU to exit by itself (guest poweroff or reboot with
    /// `-no-reboot`); panics at the deadline.
    pub fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() >= until {
                panic!("{}: qemu still running after {deadline:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Cuts the power: QEMU is killed with SIGKILL at once, so the guest
    /// gets no chance to flush or unmount anything.
    pub fn power_cut(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// QEMU's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            // SIGTERM lets QEMU exit cleanly; SIGKILL if it does not.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let until = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
        // BERTH_SHOW_CONSOLE=1 prints every console, also of passing tests.
        if std::thread::panicking() || std::env::var_os("BERTH_SHOW_CONSOLE").is_some() {
            let stderr = self
                .stderr
                .lock()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            eprintln!(
                "===== {}: serial console ({:.1} s) =====\n{}\n===== {}: qemu stderr =====\n{}\n===== end =====",
                self.name,
                self.started.elapsed().as_secs_f64(),
                self.raw_console(),
                self.name,
                stderr
            );
        }
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buf[..n]);
        }
    })
}

/// A TCP port on 127.0.0.1 that is free right now (the kernel picks it), so
/// tests running in parallel forward different ports.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pick a free port on 127.0.0.1")
}
