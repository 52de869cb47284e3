//! What PID 1 does when it cannot go on: say why on the console, count down
//! and reboot, halt or power off as `berth.panic=` says. PID 1 never exits
//! (the kernel would panic with "Attempted to kill init!" and the reason
//! would scroll away); the panic hook takes the same path.

use std::fmt::Display;
use std::fmt::Write as _;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use berth_config::cmdline::PanicAction;
use nix::sys::reboot::{reboot, RebootMode};

/// A fatal boot error, with the step that failed and its error chain.
#[derive(Debug)]
pub struct Fatal {
    pub step: &'static str,
    pub message: String,
}

impl Fatal {
    pub fn new(step: &'static str, err: impl std::error::Error) -> Fatal {
        Fatal {
            step,
            message: chain(&err),
        }
    }

    pub fn msg(step: &'static str, message: impl Display) -> Fatal {
        Fatal {
            step,
            message: message.to_string(),
        }
    }
}

pub use berth_config::chain;

/// Logs the failure and carries out `action` after a countdown. Never
/// returns.
pub fn die(fatal: &Fatal, action: PanicAction) -> ! {
    log::error!("fatal: {} failed: {}", fatal.step, fatal.message);
    finish(action)
}

/// The countdown and the final `reboot(2)`.
pub fn finish(action: PanicAction) -> ! {
    let (verb, mode) = match action {
        PanicAction::Reboot => ("rebooting", RebootMode::RB_AUTOBOOT),
        PanicAction::Halt => ("halting", RebootMode::RB_HALT_SYSTEM),
        PanicAction::Poweroff => ("powering off", RebootMode::RB_POWER_OFF),
    };
    // The console lock may be held by the code that panicked: from here on
    // write through a fresh descriptor and touch the queue only if free.
    crate::console::try_drain(Duration::from_secs(1));
    for left in (1..=5).rev() {
        crate::console::emergency(&format!("{verb} in {left} s (berth.panic=)"));
        std::thread::sleep(Duration::from_secs(1));
    }
    nix::unistd::sync();
    loop {
        let _ = reboot(mode);
        // Only fails without CAP_SYS_BOOT, i.e. not as PID 1: stay alive.
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Installs a panic hook that logs the message and location and then
/// behaves like a fatal error, so a bug never takes PID 1 out.
pub fn install_panic_hook(action: PanicAction) {
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown payload".into());
        crate::console::emergency(&format!("panic{location}: {payload}"));
        finish(action)
    }));
}

/// `berth.panic=` for the SIGBUS handler, as an index into
/// [`PanicAction::ALL`].
static BUS_ACTION: AtomicUsize = AtomicUsize::new(0);
/// The console descriptor the SIGBUS handler writes to (stderr until
/// `/dev/console` could be opened).
static BUS_CONSOLE: AtomicI32 = AtomicI32::new(2);
/// Set by the first thread that takes a SIGBUS; any other waits.
static BUS_FAULTED: AtomicBool = AtomicBool::new(false);

/// Makes a SIGBUS in PID 1 a fatal error that says what it means. On the
/// verified root, PID 1's own pages are checked by dm-verity as they are
/// first read (stage 0 does not read the whole binary ahead of the exec),
/// and a block that fails the check faults with SIGBUS: without a handler
/// the kernel would panic with "Attempted to kill init!".
pub fn catch_bus_errors(action: PanicAction) {
    set_bus_error_action(action);
    if let Err(e) = crate::sys::on_bus_error(bus_error) {
        log::warn!("catch SIGBUS: {e}");
    }
}

/// What a SIGBUS in PID 1 ends in (`berth.panic=`, once it is known), and
/// the console it is said on, opened once `/dev` is mounted.
pub fn set_bus_error_action(action: PanicAction) {
    let index = PanicAction::ALL
        .iter()
        .position(|a| *a == action)
        .unwrap_or(0);
    BUS_ACTION.store(index, Ordering::SeqCst);
    // Opened once per stage: the first call may come before `/dev` is
    // mounted, the second (with `berth.panic=`) after.
    if BUS_CONSOLE.load(Ordering::SeqCst) != 2 {
        return;
    }
    if let Ok(console) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/console")
    {
        BUS_CONSOLE.store(console.into_raw_fd(), Ordering::SeqCst);
    }
}

/// A console line built in place: the SIGBUS handler may neither allocate
/// nor lock (the fault may have hit malloc with its lock held).
struct LineBuf {
    bytes: [u8; 384],
    len: usize,
}

impl LineBuf {
    fn new() -> LineBuf {
        LineBuf {
            bytes: [0; 384],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for LineBuf {
    /// Keeps what fits and drops the rest.
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let take = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// A `berth` console line, stamped as the console's other lines are.
fn console_line(up: Duration, text: std::fmt::Arguments) -> LineBuf {
    let mut line = LineBuf::new();
    let _ = writeln!(
        line,
        "[{:5}.{:03}] berth | {text}",
        up.as_secs(),
        up.subsec_millis()
    );
    line
}

/// The SIGBUS line.
fn bus_error_line(up: Duration, addr: usize) -> LineBuf {
    console_line(
        up,
        format_args!("fatal: PID 1 could not read the page at {addr:#x} (SIGBUS): on the verified root that is a block of its binary dm-verity rejected (see the kernel's device-mapper: verity line)"),
    )
}

/// One line of the SIGBUS handler's countdown.
fn countdown_line(up: Duration, verb: &str, left: u32) -> LineBuf {
    console_line(up, format_args!("{verb} in {left} s (berth.panic=)"))
}

/// SIGBUS: only async-signal-safe calls and no allocation from here on.
extern "C" fn bus_error(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A process PID 1 forked or cloned (a container's set-up before its
    // exec, the first of which is pid 1 in its own PID namespace) dies of
    // the signal as it would have; only PID 1 takes the machine down.
    if std::process::id() != 1 || crate::sys::clone_child::in_cloned_child() {
        crate::sys::die_of_signal(libc::SIGBUS);
        return;
    }
    if BUS_FAULTED.swap(true, Ordering::SeqCst) {
        // Another thread is counting down already.
        loop {
            crate::sys::sleep_raw(60);
        }
    }
    let addr = crate::sys::fault_address(info);
    let console = BUS_CONSOLE.load(Ordering::SeqCst);
    let uptime = crate::console::uptime;
    crate::sys::write_raw(console, bus_error_line(uptime(), addr).as_bytes());
    let action = PanicAction::ALL
        .get(BUS_ACTION.load(Ordering::SeqCst))
        .copied()
        .unwrap_or_default();
    let (verb, cmd) = match action {
        PanicAction::Reboot => ("rebooting", libc::RB_AUTOBOOT),
        PanicAction::Halt => ("halting", libc::RB_HALT_SYSTEM),
        PanicAction::Poweroff => ("powering off", libc::RB_POWER_OFF),
    };
    for left in (1..=5).rev() {
        crate::sys::write_raw(console, countdown_line(uptime(), verb, left).as_bytes());
        crate::sys::sleep_raw(1);
    }
    loop {
        crate::sys::sync_and_reboot_raw(cmd);
        crate::sys::sleep_raw(60);
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn bus_error_lines_look_like_console_lines_and_name_the_address() {
        let line = bus_error_line(Duration::from_millis(12_345), 0x7f00_1234);
        let text = std::str::from_utf8(line.as_bytes()).expect("utf-8");
        assert!(
            text.starts_with(
                "[   12.345] berth | fatal: PID 1 could not read the page at 0x7f001234 (SIGBUS)"
            ),
            "{text}"
        );
        assert!(text.ends_with("device-mapper: verity line)\n"), "{text}");
        let line = countdown_line(Duration::from_millis(5), "powering off", 3);
        assert_eq!(
            line.as_bytes(),
            b"[    0.005] berth | powering off in 3 s (berth.panic=)\n"
        );
    }

    #[test]
    fn a_line_too_long_is_cut_not_overflowed() {
        let mut line = LineBuf::new();
        for _ in 0..100 {
            let _ = line.write_str("0123456789");
        }
        assert_eq!(line.as_bytes().len(), 384);
    }

    /// A process that is not PID 1 dies of a real bus error (a read past
    /// the end of a mapped empty file) as if the handler were not there.
    #[test]
    fn a_child_dies_of_its_bus_error() {
        let died_of = crate::sys::bus_error_in_a_child(|| {
            let _ = crate::sys::on_bus_error(bus_error);
        });
        assert_eq!(died_of, Some(libc::SIGBUS));
    }
}
