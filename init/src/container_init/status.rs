//! What `berth init` exits with: the main child's status in the shell's
//! convention, and the shell's codes for a command that cannot be run.
//!
//! Pure, so both mappings are table-tested without forking anything.

use berth_supervisor::exit::ExitStatus;
use nix::errno::Errno;
use nix::sys::wait::WaitStatus;

/// A command that was not found (POSIX "Exit Status for Commands").
pub const NOT_FOUND: i32 = 127;
/// A command that was found but could not be executed.
pub const NOT_EXECUTABLE: i32 = 126;

/// The exit code for a failed `execvp`: 127 when there is no such file,
/// 126 for every other reason, as bash does. (tini returns 1 for errors
/// other than ENOENT and EACCES; a code in the shell's range says "the
/// command never ran", which 1 cannot.)
pub fn exec_failure_code(errno: i32) -> i32 {
    if errno == Errno::ENOENT as i32 {
        NOT_FOUND
    } else {
        NOT_EXECUTABLE
    }
}

/// How a reaped process ended, or `None` for a wait status that is not an
/// end (stopped, continued, ptrace events: we never ask for them, but nix
/// can represent them).
pub fn ended(status: WaitStatus) -> Option<ExitStatus> {
    match status {
        WaitStatus::Exited(_, code) => Some(ExitStatus::Code(code)),
        WaitStatus::Signaled(_, signal, core_dumped) => Some(ExitStatus::Signal {
            signal: signal as i32,
            core_dumped,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    use super::*;

    #[test]
    fn exec_failure_codes() {
        // (errno, exit code)
        let table = [
            (Errno::ENOENT, 127),
            (Errno::EACCES, 126),
            (Errno::ENOTDIR, 126),
            (Errno::ENOEXEC, 126),
            (Errno::ELOOP, 126),
            (Errno::ETXTBSY, 126),
            (Errno::E2BIG, 126),
            (Errno::ENOMEM, 126),
        ];
        for (errno, code) in table {
            assert_eq!(exec_failure_code(errno as i32), code, "{errno}");
        }
    }

    #[test]
    fn wait_status_to_exit_code() {
        let pid = Pid::from_raw(42);
        // (wait status, shell exit code or None when it is not an end)
        let table = [
            (WaitStatus::Exited(pid, 0), Some(0)),
            (WaitStatus::Exited(pid, 1), Some(1)),
            (WaitStatus::Exited(pid, 255), Some(255)),
            (WaitStatus::Signaled(pid, Signal::SIGHUP, false), Some(129)),
            (WaitStatus::Signaled(pid, Signal::SIGKILL, false), Some(137)),
            (WaitStatus::Signaled(pid, Signal::SIGUSR1, false), Some(138)),
            (WaitStatus::Signaled(pid, Signal::SIGUSR2, false), Some(140)),
            (WaitStatus::Signaled(pid, Signal::SIGTERM, false), Some(143)),
            (WaitStatus::Signaled(pid, Signal::SIGSEGV, true), Some(139)),
            (WaitStatus::Stopped(pid, Signal::SIGTSTP), None),
            (WaitStatus::Continued(pid), None),
            (WaitStatus::StillAlive, None),
        ];
        for (status, code) in table {
            assert_eq!(ended(status).map(ExitStatus::code), code, "{status:?}");
        }
    }
}
