//! Collecting ended children: `waitpid(-1, WNOHANG)` in PID 1, a script
//! in the loop's tests.

use berth_supervisor::exit::ExitStatus;
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub(crate) trait Reaper {
    /// The next ended child, if any, without waiting.
    fn reap(&mut self) -> Option<WaitStatus>;
}

/// Every child of PID 1, including orphans it inherited.
#[derive(Debug, Default)]
pub(crate) struct AnyChild;

impl Reaper for AnyChild {
    fn reap(&mut self) -> Option<WaitStatus> {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return None,
                Ok(w @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Some(w),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("waitpid: {e}");
                    return None;
                }
            }
        }
    }
}

/// The pid and how it ended, for an exit or a death by signal.
pub(crate) fn decode(w: WaitStatus) -> Option<(Pid, ExitStatus)> {
    w.pid().zip(ExitStatus::from_wait(w))
}
