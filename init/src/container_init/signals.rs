//! What `berth init` does with each signal number: a pure function, so the
//! whole policy is one table test.
//!
//! Everything catchable is forwarded to the child (or its process group
//! with `-g`), except:
//! - SIGCHLD, which only wakes the loop to reap;
//! - SIGTTIN and SIGTTOU, which berth ignores and does not forward, as tini
//!   does: once the child owns the terminal's foreground, berth is a
//!   background process and must never be stopped for touching the tty;
//! - SIGKILL and SIGSTOP, which the kernel acts on without asking us;
//! - 32 and 33, which glibc keeps for itself (nptl(7)) and no one sends.
//!
//! Unlike tini, the synchronous signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
//! SIGTRAP, SIGABRT, SIGSYS) are forwarded too when someone *sends* them:
//! blocking them is safe because a real fault in berth is forced through
//! the block with the default action (the kernel's force_sig_fault), so a
//! bug still kills berth rather than looping.

use nix::sys::signal::{SigSet, Signal};

/// The fate of one signal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Blocked, read from the signalfd and sent on to the child.
    Forward,
    /// Blocked and read only to wake the loop, which then reaps.
    Reap,
    /// Set to SIG_IGN in berth; never reaches the child through berth.
    Ignore,
    /// SIGKILL and SIGSTOP: cannot be blocked, caught or ignored.
    KernelOnly,
    /// glibc's internal real-time signals 32 and 33, and numbers that are
    /// not signals at all.
    NotOurs,
}

/// The lowest real-time signal applications may use with glibc (34, after
/// glibc's own 32 and 33), and the highest on Linux.
const FIRST_RT: i32 = 34;
const LAST_RT: i32 = 64;

/// What berth does with signal `sig`.
pub fn action(sig: i32) -> Action {
    match sig {
        libc::SIGCHLD => Action::Reap,
        libc::SIGTTIN | libc::SIGTTOU => Action::Ignore,
        libc::SIGKILL | libc::SIGSTOP => Action::KernelOnly,
        1..=31 | FIRST_RT..=LAST_RT => Action::Forward,
        _ => Action::NotOurs,
    }
}

/// The standard signals berth sets to SIG_IGN.
pub fn ignored() -> impl Iterator<Item = Signal> {
    Signal::iterator().filter(|s| action(*s as i32) == Action::Ignore)
}

/// The signal mask berth runs with, which is also the set its signalfd
/// reads: every signal but the ignored ones. `SigSet::all` is glibc's
/// `sigfillset`, which already leaves out 32 and 33 and includes the
/// real-time range; SIGKILL and SIGSTOP in it are dropped by the kernel.
pub fn blocked() -> SigSet {
    let mut set = SigSet::all();
    for sig in ignored() {
        set.remove(sig);
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_number() {
        use Action::*;
        // (signal number, action): all of 0..=65, so nothing is left to a
        // default arm by accident.
        let table: [(i32, Action); 66] = [
            (0, NotOurs),
            (libc::SIGHUP, Forward),
            (libc::SIGINT, Forward),
            (libc::SIGQUIT, Forward),
            (libc::SIGILL, Forward),
            (libc::SIGTRAP, Forward),
            (libc::SIGABRT, Forward),
            (libc::SIGBUS, Forward),
            (libc::SIGFPE, Forward),
            (libc::SIGKILL, KernelOnly),
            (libc::SIGUSR1, Forward),
            (libc::SIGSEGV, Forward),
            (libc::SIGUSR2, Forward),
            (libc::SIGPIPE, Forward),
            (libc::SIGALRM, Forward),
            (libc::SIGTERM, Forward),
            (libc::SIGSTKFLT, Forward),
            (libc::SIGCHLD, Reap),
            (libc::SIGCONT, Forward),
            (libc::SIGSTOP, KernelOnly),
            (libc::SIGTSTP, Forward),
            (libc::SIGTTIN, Ignore),
            (libc::SIGTTOU, Ignore),
            (libc::SIGURG, Forward),
            (libc::SIGXCPU, Forward),
            (libc::SIGXFSZ, Forward),
            (libc::SIGVTALRM, Forward),
            (libc::SIGPROF, Forward),
            (libc::SIGWINCH, Forward),
            (libc::SIGIO, Forward),
            (libc::SIGPWR, Forward),
            (libc::SIGSYS, Forward),
            (32, NotOurs),
            (33, NotOurs),
            (34, Forward),
            (35, Forward),
            (36, Forward),
            (37, Forward),
            (38, Forward),
            (39, Forward),
            (40, Forward),
            (41, Forward),
            (42, Forward),
            (43, Forward),
            (44, Forward),
            (45, Forward),
            (46, Forward),
            (47, Forward),
            (48, Forward),
            (49, Forward),
            (50, Forward),
            (51, Forward),
            (52, Forward),
            (53, Forward),
            (54, Forward),
            (55, Forward),
            (56, Forward),
            (57, Forward),
            (58, Forward),
            (59, Forward),
            (60, Forward),
            (61, Forward),
            (62, Forward),
            (63, Forward),
            (64, Forward),
            (65, NotOurs),
        ];
        for (i, &(sig, want)) in table.iter().enumerate() {
            assert_eq!(sig, i as i32, "table row {i} out of order");
            assert_eq!(action(sig), want, "signal {sig}");
        }
        assert_eq!(action(-1), NotOurs);
    }

    #[test]
    fn ignored_are_the_tty_stops() {
        let got: Vec<Signal> = ignored().collect();
        assert_eq!(got, [Signal::SIGTTIN, Signal::SIGTTOU]);
    }

    #[test]
    fn mask_blocks_what_the_loop_reads() {
        let set = blocked();
        for sig in Signal::iterator() {
            let want = matches!(action(sig as i32), Action::Forward | Action::Reap);
            if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
                continue; // in the set, but meaningless there
            }
            assert_eq!(set.contains(sig), want, "{sig}");
        }
    }
}
