//! What PID 1 does when it cannot go on: say why on the console, count down
//! and reboot, halt or power off as `berth.panic=` says. PID 1 never exits
//! (the kernel would panic with "Attempted to kill init!" and the reason
//! would scroll away); the panic hook takes the same path.

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// What a SIGBUS in PID 1 ends in (`berth.panic=`, once it is known).
pub fn set_bus_error_action(action: PanicAction) {
    let index = PanicAction::ALL
        .iter()
        .position(|a| *a == action)
        .unwrap_or(0);
    BUS_ACTION.store(index, Ordering::SeqCst);
}

extern "C" fn bus_error(_: libc::c_int) {
    // A process PID 1 forked (a container's set-up, before its exec) dies
    // as it would have; only PID 1 itself takes the machine down.
    if std::process::id() != 1 {
        crate::sys::exit_now(128 + libc::SIGBUS);
    }
    crate::console::emergency(
        "fatal: PID 1 could not read a page of its own binary (SIGBUS): on the verified root that is a block dm-verity rejected (see the kernel's device-mapper: verity line)",
    );
    let action = PanicAction::ALL
        .get(BUS_ACTION.load(Ordering::SeqCst))
        .copied()
        .unwrap_or_default();
    finish(action)
}
