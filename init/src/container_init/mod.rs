//! `berth init [-g] [-s] -- CMD ARGS…`: a tini-grade init for the inside of
//! a container, so a workload that never reaps (a shell script, a server
//! that forks) can still be PID 1's only child.
//!
//! The algorithm, tini's:
//! 1. Block every signal berth handles and open a signalfd on them, before
//!    the child exists, so nothing sent in between is lost; ignore SIGTTIN
//!    and SIGTTOU (see [`signals`]).
//! 2. With `-s`, become a child subreaper; otherwise warn when neither
//!    PID 1 nor already a subreaper, since orphans would then bypass us.
//! 3. Fork the child into its own process group (the terminal's foreground
//!    when stdin is one), give it back the signal mask and the dispositions
//!    berth was started with (what berth changed is restored, inherited
//!    ignores pass on through the exec, as under tini), and exec CMD
//!    ([`spawn`]).
//! 4. Loop: reap every ended child, read one signal, forward it to the
//!    child (or its group with `-g`); return the child's status once it has
//!    been reaped ([`main_loop`]).
//!
//! It shares nothing with the node's boot: no mounts, no cgroups, no
//! control socket, no console logging. Messages go to stderr only.

mod args;
mod error;
mod kernel;
mod main_loop;
mod signals;
mod spawn;
mod status;
mod sys;

use nix::sys::signal::SigmaskHow;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::getpid;

use args::{ArgsError, USAGE};
use error::InitError;

/// Exit code for berth's own failures (tini's as well); the child's
/// statuses are passed through unchanged.
const INIT_FAILED: i32 = 1;
/// Exit code for a bad command line, as for every other `berth` verb.
const USAGE_ERROR: i32 = 2;

/// Runs `berth init` with the words after `init` and returns the code to
/// exit with.
pub fn run(args: &[String]) -> i32 {
    let options = match args::parse(args) {
        Ok(o) => o,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("berth init: {e}\n\n{USAGE}");
            return USAGE_ERROR;
        }
    };
    match supervise(&options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth init: {}", crate::fatal::chain(&e));
            INIT_FAILED
        }
    }
}

fn supervise(options: &args::Options) -> Result<i32, InitError> {
    let blocked = signals::blocked();
    let mut mask = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&blocked), Some(&mut mask))
        .map_err(InitError::BlockSignals)?;
    let mut inherited = sys::Inherited::new(&mask);
    inherited.reset_runtime_sigpipe();
    for signal in signals::ignored() {
        let before = sys::ignore_signal(signal as i32)
            .map_err(|source| InitError::IgnoreSignal { signal, source })?;
        inherited.changed(signal as i32, before);
    }
    let signal_fd =
        SignalFd::with_flags(&blocked, SfdFlags::SFD_CLOEXEC).map_err(InitError::SignalFd)?;

    if options.subreaper {
        nix::sys::prctl::set_child_subreaper(true).map_err(InitError::Subreaper)?;
    } else if getpid().as_raw() != 1 && !already_subreaper() {
        eprintln!(
            "berth init: warning: not PID 1 and not a child subreaper (-s): \
             orphans will not be reaped by berth"
        );
    }

    let child = spawn::spawn(&options.command, &inherited)?;
    let mut kernel = kernel::Live { signals: signal_fd };
    main_loop::run(&mut kernel, child, options.process_group)
}

/// Whether berth is a subreaper without `-s` (the flag survives exec, so a
/// launcher may have set it); as tini does, only then is the warning moot.
fn already_subreaper() -> bool {
    nix::sys::prctl::get_child_subreaper().unwrap_or(false)
}
