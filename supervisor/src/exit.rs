//! How a process ended, decoded from a `wait(2)` status: the one decoder
//! PID 1 (containers, exec sessions, the scrub) and `berth init` use.
//!
//! Pure, so the console wording and the shell-style code (128 + signal) are
//! table-tested without forking anything.

use std::fmt;

use nix::sys::wait::WaitStatus;

/// The end of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal, possibly dumping core.
    Signal { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// Decodes a raw status as `waitpid` stores it (`WIFEXITED`,
    /// `WEXITSTATUS`, `WTERMSIG`, `WCOREDUMP` in glibc's `bits/waitstatus.h`).
    /// Stopped/continued statuses never reach us (no `WUNTRACED`), and are
    /// read as a signal death of their signal.
    pub fn from_raw(status: i32) -> ExitStatus {
        let low = status & 0x7f;
        if low == 0 {
            ExitStatus::Code((status >> 8) & 0xff)
        } else {
            ExitStatus::Signal {
                signal: low,
                core_dumped: status & 0x80 != 0,
            }
        }
    }

    /// Decodes a status as nix's `waitpid` returns it; `None` for one that
    /// is not an end (stopped, continued, a ptrace event, still alive),
    /// which callers that never ask for them skip.
    pub fn from_wait(status: WaitStatus) -> Option<ExitStatus> {
        match status {
            WaitStatus::Exited(_, code) => Some(ExitStatus::Code(code)),
            WaitStatus::Signaled(_, signal, core_dumped) => Some(ExitStatus::Signal {
                signal: signal as i32,
                core_dumped,
            }),
            _ => None,
        }
    }

    /// The shell convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal { signal, .. } => 128 + signal,
        }
    }

    /// Whether the process ended with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signal {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by signal {} ({signal})", signal_name(signal))?;
                if core_dumped {
                    write!(f, ", core dumped")?;
                }
                Ok(())
            }
        }
    }
}

/// Linux x86-64 signal names (signal(7)); real-time ones as `SIGRTMIN+n`
/// counted from 34, glibc's SIGRTMIN as seen by applications.
pub fn signal_name(signal: i32) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match signal {
        1..=31 => NAMES[signal as usize].to_owned(),
        34..=64 => format!("SIGRTMIN+{}", signal - 34),
        _ => format!("signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        // (raw status, decoded, shell code, console text)
        let table: &[(i32, ExitStatus, i32, &str)] = &[
            (0x0000, ExitStatus::Code(0), 0, "exited with code 0"),
            (0x0100, ExitStatus::Code(1), 1, "exited with code 1"),
            (0x0300, ExitStatus::Code(3), 3, "exited with code 3"),
            (0xff00, ExitStatus::Code(255), 255, "exited with code 255"),
            (0x0001, sig(1, false), 129, "killed by signal SIGHUP (1)"),
            (0x0002, sig(2, false), 130, "killed by signal SIGINT (2)"),
            (0x0003, sig(3, false), 131, "killed by signal SIGQUIT (3)"),
            (
                0x0083,
                sig(3, true),
                131,
                "killed by signal SIGQUIT (3), core dumped",
            ),
            (0x0004, sig(4, false), 132, "killed by signal SIGILL (4)"),
            (
                0x0086,
                sig(6, true),
                134,
                "killed by signal SIGABRT (6), core dumped",
            ),
            (0x0007, sig(7, false), 135, "killed by signal SIGBUS (7)"),
            (
                0x0088,
                sig(8, true),
                136,
                "killed by signal SIGFPE (8), core dumped",
            ),
            (0x0009, sig(9, false), 137, "killed by signal SIGKILL (9)"),
            (0x000a, sig(10, false), 138, "killed by signal SIGUSR1 (10)"),
            (
                0x008b,
                sig(11, true),
                139,
                "killed by signal SIGSEGV (11), core dumped",
            ),
            (0x000b, sig(11, false), 139, "killed by signal SIGSEGV (11)"),
            (0x000c, sig(12, false), 140, "killed by signal SIGUSR2 (12)"),
            (0x000d, sig(13, false), 141, "killed by signal SIGPIPE (13)"),
            (0x000e, sig(14, false), 142, "killed by signal SIGALRM (14)"),
            (0x000f, sig(15, false), 143, "killed by signal SIGTERM (15)"),
            (0x0018, sig(24, false), 152, "killed by signal SIGXCPU (24)"),
            (0x001e, sig(30, false), 158, "killed by signal SIGPWR (30)"),
            (0x001f, sig(31, false), 159, "killed by signal SIGSYS (31)"),
            (
                0x0022,
                sig(34, false),
                162,
                "killed by signal SIGRTMIN+0 (34)",
            ),
            (
                0x0025,
                sig(37, false),
                165,
                "killed by signal SIGRTMIN+3 (37)",
            ),
        ];
        for &(raw, want, code, text) in table {
            let got = ExitStatus::from_raw(raw);
            assert_eq!(got, want, "raw {raw:#06x}");
            assert_eq!(got.code(), code, "code of {raw:#06x}");
            assert_eq!(got.to_string(), text, "text of {raw:#06x}");
        }
    }

    /// (wait status, decoded, shell code).
    fn wait_table() -> Vec<(WaitStatus, Option<ExitStatus>, Option<i32>)> {
        use nix::sys::signal::Signal;
        use nix::unistd::Pid;
        let pid = Pid::from_raw(42);
        vec![
            (
                WaitStatus::Exited(pid, 0),
                Some(ExitStatus::Code(0)),
                Some(0),
            ),
            (
                WaitStatus::Exited(pid, 1),
                Some(ExitStatus::Code(1)),
                Some(1),
            ),
            (
                WaitStatus::Exited(pid, 127),
                Some(ExitStatus::Code(127)),
                Some(127),
            ),
            (
                WaitStatus::Exited(pid, 255),
                Some(ExitStatus::Code(255)),
                Some(255),
            ),
            (
                WaitStatus::Signaled(pid, Signal::SIGHUP, false),
                Some(sig(1, false)),
                Some(129),
            ),
            (
                WaitStatus::Signaled(pid, Signal::SIGKILL, false),
                Some(sig(9, false)),
                Some(137),
            ),
            (
                WaitStatus::Signaled(pid, Signal::SIGUSR1, false),
                Some(sig(10, false)),
                Some(138),
            ),
            (
                WaitStatus::Signaled(pid, Signal::SIGUSR2, false),
                Some(sig(12, false)),
                Some(140),
            ),
            (
                WaitStatus::Signaled(pid, Signal::SIGTERM, false),
                Some(sig(15, false)),
                Some(143),
            ),
            (
                WaitStatus::Signaled(pid, Signal::SIGSEGV, true),
                Some(sig(11, true)),
                Some(139),
            ),
            (
                WaitStatus::Signaled(pid, Signal::SIGABRT, true),
                Some(sig(6, true)),
                Some(134),
            ),
            (WaitStatus::Stopped(pid, Signal::SIGTSTP), None, None),
            (WaitStatus::Stopped(pid, Signal::SIGSTOP), None, None),
            (WaitStatus::Continued(pid), None, None),
            (WaitStatus::PtraceEvent(pid, Signal::SIGTRAP, 1), None, None),
            (WaitStatus::PtraceSyscall(pid), None, None),
            (WaitStatus::StillAlive, None, None),
        ]
    }

    #[test]
    fn decode_wait_statuses() {
        for (status, want, code) in wait_table() {
            let got = ExitStatus::from_wait(status);
            assert_eq!(got, want, "{status:?}");
            assert_eq!(got.map(ExitStatus::code), code, "code of {status:?}");
        }
    }

    #[test]
    fn only_code_zero_is_success() {
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Code(1).success());
        assert!(!sig(15, false).success());
    }

    fn sig(signal: i32, core_dumped: bool) -> ExitStatus {
        ExitStatus::Signal {
            signal,
            core_dumped,
        }
    }
}
