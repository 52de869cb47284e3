//! The only `unsafe` of `berth init`: fork, the child's few steps between
//! fork and exec, and the signal calls nix has no safe form for (dispositions,
//! and real-time signals, which nix's `Signal` cannot name).
//!
//! The child runs only async-signal-safe calls (signal-safety(7)) on data
//! prepared before the fork, so it is correct even if a thread held a lock at
//! fork time: no allocation, no formatting, no locks after `fork`.
#![allow(unsafe_code)]

use std::ffi::{CString, NulError};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::status;

/// A command line turned into the NUL-terminated pointer array `execvp(3)`
/// takes, built before the fork so the child allocates nothing.
#[derive(Debug)]
pub struct Argv {
    // Owns the bytes `ptrs` points into; never read directly.
    _strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl Argv {
    /// Fails on an argument with an interior NUL, which no exec can pass.
    /// `args` must not be empty (the caller's parser guarantees a command).
    pub fn new(args: &[String]) -> Result<Argv, NulError> {
        let strings = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(Argv {
            _strings: strings,
            ptrs,
        })
    }
}

/// The signal state berth init was started with, which its child gets
/// back: the mask, and the dispositions of the signals berth itself set to
/// SIG_IGN. Every other disposition is untouched by berth (it installs no
/// handlers), so the exec passes inherited ignores on by itself, as tini
/// does: a command started under `nohup` keeps ignoring SIGHUP.
#[derive(Debug)]
pub struct Inherited {
    mask: libc::sigset_t,
    actions: Vec<(libc::c_int, libc::sigaction)>,
}

impl Inherited {
    pub fn new(mask: &nix::sys::signal::SigSet) -> Inherited {
        Inherited {
            mask: *mask.as_ref(),
            actions: Vec::new(),
        }
    }

    /// SIGPIPE: Rust's runtime sets it to SIG_IGN before `main`, so what
    /// it was before berth started cannot be known; the child gets the
    /// default, as every child of Rust's `Command` does.
    pub fn reset_runtime_sigpipe(&mut self) {
        // SAFETY: an all-zero `sigaction` is SIG_DFL with no flags and an
        // empty mask.
        let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        self.actions.push((libc::SIGPIPE, dfl));
    }

    /// Records the disposition `sig` had before berth changed it.
    pub fn changed(&mut self, sig: libc::c_int, before: libc::sigaction) {
        self.actions.push((sig, before));
    }
}

/// Forks; the child becomes the leader of a new process group, takes the
/// terminal's foreground if stdin is one, gets back the signal state berth
/// was started with ([`Inherited`]) and execs `argv`. If the exec fails
/// the child writes its errno (native-endian `i32`) into `report` and exits
/// with the shell's code for it (127 or 126); `report` must be close-on-exec
/// so that a successful exec closes it.
///
/// Returns the child's pid in the parent.
pub fn fork_exec(argv: &Argv, report: &OwnedFd, inherited: &Inherited) -> io::Result<Pid> {
    let report = report.as_raw_fd();
    // SAFETY: the child branch (`exec_child`) only calls async-signal-safe
    // functions on memory that was fully built before this call (`argv`,
    // `report`) and never returns, so no Rust destructor or allocator runs
    // in the child; the parent continues normally.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => exec_child(argv, report, inherited),
        pid => Ok(Pid::from_raw(pid)),
    }
}

/// The child's side of [`fork_exec`]. Errors of the set-up steps are
/// ignored on purpose: each is best effort (no terminal, a signal glibc
/// reserves), and only the exec's own failure is worth reporting.
fn exec_child(argv: &Argv, report: libc::c_int, inherited: &Inherited) -> ! {
    // SAFETY: (the whole block) setpgid, isatty, getpgrp, tcsetpgrp,
    // sigaction, sigprocmask, write and _exit are async-signal-safe
    // (signal-safety(7)); execvp is not on that list, but glibc's (since
    // 2.24) searches PATH in stack buffers and never allocates. `inherited`
    // was fully built before the fork and is only read; its sigactions are
    // what the kernel returned for these signals. `argv.ptrs` is a
    // NUL-terminated array of pointers into live CStrings owned by `argv`,
    // whose first entry exists because the parser requires a command.
    // `report` is an open fd owned by the parent's OwnedFd, which outlives
    // this (never returning) function.
    unsafe {
        // Own process group, so `-g` can signal the whole job and the
        // terminal can be handed over without involving berth.
        libc::setpgid(0, 0);
        // Make it the foreground job like an interactive shell would; all
        // signals are still blocked here, so the SIGTTOU a background
        // tcsetpgrp raises cannot stop us (tcsetpgrp(3)).
        if libc::isatty(libc::STDIN_FILENO) == 1 {
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
        }
        // Dispositions first, mask second: a signal forwarded before the
        // exec then stays pending until it can act as it would have.
        for (sig, action) in &inherited.actions {
            libc::sigaction(*sig, action, std::ptr::null_mut());
        }
        libc::sigprocmask(libc::SIG_SETMASK, &inherited.mask, std::ptr::null_mut());

        libc::execvp(argv.ptrs[0], argv.ptrs.as_ptr());

        let errno = Errno::last_raw();
        let bytes = errno.to_ne_bytes();
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(status::exec_failure_code(errno))
    }
}

/// Sends `sig` (any number, real-time ones included) to `pid`, or to the
/// process group `pid` when `group` is set (kill(2) with `-pid`).
pub fn send_signal(pid: Pid, sig: i32, group: bool) -> Result<(), Errno> {
    let target = if group { -pid.as_raw() } else { pid.as_raw() };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(target, sig) };
    Errno::result(rc).map(drop)
}

/// Sets the disposition of `sig` to "ignore" (SIG_IGN); returns the one it
/// had.
pub fn ignore_signal(sig: i32) -> Result<libc::sigaction, Errno> {
    // SAFETY: `act` and `old` are zero-initialised POD that outlive the
    // call; SIG_IGN installs no handler code, so no Rust function can ever
    // run in signal context; the kernel fills `old`.
    let (rc, old) = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_IGN;
        let mut old: libc::sigaction = std::mem::zeroed();
        let rc = libc::sigaction(sig, &act, &mut old);
        (rc, old)
    };
    Errno::result(rc).map(|_| old)
}
