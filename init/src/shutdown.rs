//! The last part of an orderly shutdown, once every container has stopped:
//! end whatever processes are left (SIGTERM, a short grace, SIGKILL), sync,
//! unmount in reverse mount order (remounting read-only what cannot be
//! unmounted), then `reboot(2)` with the requested action. Each step is
//! logged with its duration.

use std::time::{Duration, Instant};

use berth_supervisor::power::PowerAction;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::console;
use crate::disk::reset::Reset;

/// How long leftover processes get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// Finishes the shutdown, emptying STATE on the way when `reset` asks;
/// never returns.
pub fn finish(action: PowerAction, started: Instant, reset: Option<&Reset>) -> ! {
    step("end leftover processes", end_leftovers);
    step("boot log", close_boot_log);
    step("sync", || {
        nix::unistd::sync();
        "done".into()
    });
    step("unmount", unmount_all);
    if let Some(reset) = reset {
        step("reset STATE", || match reset.carry_out() {
            Ok(done) => done,
            Err(e) => {
                log::error!("reset STATE: {}", crate::fatal::chain(&e));
                "failed; STATE is as it was".into()
            }
        });
    }
    let (verb, mode) = match action {
        PowerAction::Reboot => ("rebooting", RebootMode::RB_AUTOBOOT),
        PowerAction::Halt => ("halting", RebootMode::RB_HALT_SYSTEM),
        PowerAction::Poweroff => ("powering off", RebootMode::RB_POWER_OFF),
    };
    log::info!(
        "{verb} ({} ms after the request)",
        started.elapsed().as_millis()
    );
    console().drain(Duration::from_secs(2));
    loop {
        let Err(e) = reboot(mode);
        log::error!("reboot(2): {e}");
        console().drain(Duration::from_secs(1));
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Lets the boot log's writer sync and close its file, so STATE can be
/// unmounted rather than only remounted read-only.
/// A disk that no longer answers must not hold the shutdown: the writer
/// gets [`JOURNAL_GRACE`], then the shutdown goes on without it.
fn close_boot_log() -> String {
    let writer = console().detach_journal();
    let Some(w) = writer else {
        return "none open".into();
    };
    let end = Instant::now() + JOURNAL_GRACE;
    while !w.is_finished() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !w.is_finished() {
        return format!("its writer is still busy after {JOURNAL_GRACE:?}; going on");
    }
    match w.join() {
        Ok(()) => "closed".into(),
        Err(_) => "its writer had failed".into(),
    }
}

/// How long the boot log's writer may take to finish at shutdown.
const JOURNAL_GRACE: Duration = Duration::from_secs(3);

fn step(name: &str, f: impl FnOnce() -> String) {
    let t = Instant::now();
    let what = f();
    log::info!("shutdown: {name}: {what} ({} ms)", t.elapsed().as_millis());
    console().flush();
}

/// SIGTERM to every process but PID 1 and kernel threads (`kill(-1)`),
/// reaping until none is left or the grace is over, then SIGKILL.
fn end_leftovers() -> String {
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    let mut reaped = reap_until(Instant::now() + LEFTOVER_GRACE);
    let killed = match kill(Pid::from_raw(-1), Signal::SIGKILL) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => false,
    };
    if killed {
        reaped += reap_until(Instant::now() + Duration::from_secs(1));
    }
    format!(
        "{reaped} reaped{}",
        if killed { ", SIGKILL sent" } else { "" }
    )
}

/// Reaps children until there are none or the deadline passes.
fn reap_until(deadline: Instant) -> usize {
    let mut n = 0;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    return n;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(_) => n += 1,
            Err(Errno::EINTR) => {}
            Err(_) => return n, // ECHILD: nothing left.
        }
    }
}

fn unmount_all() -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let (mut unmounted, mut readonly, mut failed) = (0, 0, 0);
    for target in unmount_order(&info) {
        match umount2(target.as_str(), MntFlags::empty()) {
            Ok(()) => unmounted += 1,
            Err(_) => {
                let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                match mount(
                    None::<&str>,
                    target.as_str(),
                    None::<&str>,
                    flags,
                    None::<&str>,
                ) {
                    Ok(()) => readonly += 1,
                    Err(_) => failed += 1,
                }
            }
        }
    }
    format!("{unmounted} unmounted, {readonly} remounted read-only, {failed} left")
}

/// Mount points from `/proc/self/mountinfo` in the order to unmount them:
/// the reverse of mount order, without `/` (which stays, read-only). Octal
/// escapes (`\040` for a space) are decoded.
pub fn unmount_order(mountinfo: &str) -> Vec<String> {
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p != "/")
        .collect();
    points.reverse();
    points
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_mount_order_without_root() {
        let info = "\
22 1 254:0 / / ro,relatime - erofs /dev/vda ro
23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw
24 22 0:21 / /proc rw - proc proc rw
25 22 0:22 / /sys rw - sysfs sysfs rw
26 23 0:23 / /dev/pts rw - devpts devpts rw
27 22 0:24 / /run rw - tmpfs tmpfs rw
28 22 0:25 / /etc rw - overlay overlay rw
29 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
30 22 0:27 / /var/my\\040data rw - tmpfs tmpfs rw
";
        assert_eq!(
            unmount_order(info),
            vec![
                "/var/my data",
                "/sys/fs/cgroup",
                "/etc",
                "/run",
                "/dev/pts",
                "/sys",
                "/proc",
                "/dev"
            ]
        );
    }

    #[test]
    fn unescape_table() {
        let table = [
            ("/a\\040b", "/a b"),
            ("/tab\\011x", "/tab\tx"),
            ("/plain", "/plain"),
            ("/end\\04", "/end\\04"),
            ("\\134", "\\"),
        ];
        for (raw, want) in table {
            assert_eq!(unescape(raw), want, "{raw}");
        }
    }
}
