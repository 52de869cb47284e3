//! `berth-image run` stopped by a signal (SIGTERM from a CI runner or
//! `timeout`, SIGHUP when the terminal goes, SIGINT) stops QEMU too and
//! exits 128 + the signal. QEMU here is a fake on `PATH` that records its
//! pid and sleeps, so no VM is booted.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long anything here may take before the test gives up (a deadline
/// on a wait, not a measurement).
const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

fn fake_qemu(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = bin.join("qemu-system-x86_64");
    std::fs::write(
        &script,
        "#!/bin/sh\necho $$ > \"$FAKE_QEMU_PID.tmp\"\nmv \"$FAKE_QEMU_PID.tmp\" \"$FAKE_QEMU_PID\"\nexec sleep 600\n",
    )
    .expect("write the fake qemu");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn artifacts(out: &Path) {
    std::fs::create_dir_all(out).expect("out");
    for name in ["vmlinuz", "initramfs.img", "root.img"] {
        std::fs::write(out.join(name), b"").expect("artifact");
    }
}

fn alive(pid: Pid) -> bool {
    kill(pid, None) != Err(Errno::ESRCH)
}

fn wait_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(POLL);
    }
    None
}

#[test]
fn a_signal_to_run_stops_qemu() {
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let tmp = tempfile::tempdir().expect("tempdir");
        fake_qemu(tmp.path());
        artifacts(&tmp.path().join("out"));
        let pid_file = tmp.path().join("qemu.pid");
        let path = format!(
            "{}:{}",
            tmp.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut runner = Command::new(env!("CARGO_BIN_EXE_berth-image"))
            .arg("run")
            .arg(tmp.path().join("out"))
            .env("PATH", path)
            .env("FAKE_QEMU_PID", &pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start berth-image run");

        let deadline = Instant::now() + DEADLINE;
        let qemu = loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file) {
                break Pid::from_raw(text.trim().parse().expect("a pid"));
            }
            if Instant::now() > deadline {
                let _ = runner.kill();
                panic!("the fake qemu never started");
            }
            std::thread::sleep(POLL);
        };
        let runner_pid = Pid::from_raw(i32::try_from(runner.id()).expect("pid"));
        kill(runner_pid, signal).expect("signal the runner");

        let status = wait_exit(&mut runner);
        let deadline = Instant::now() + DEADLINE;
        while alive(qemu) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let qemu_left = alive(qemu);
        // Clean up whatever the runner left before asserting.
        if qemu_left {
            let _ = kill(qemu, Signal::SIGKILL);
        }
        if status.is_none() {
            let _ = runner.kill();
            let _ = runner.wait();
        }
        let status = status.unwrap_or_else(|| panic!("{signal}: berth-image run did not exit"));
        assert!(!qemu_left, "{signal}: qemu still running after {status}");
        assert_eq!(
            status.code(),
            Some(128 + signal as i32),
            "{signal}: exit status {status}"
        );
    }
}
