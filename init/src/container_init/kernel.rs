//! The real [`Kernel`]: a signalfd for waiting, kill(2) for forwarding,
//! waitpid(2) for reaping.

use berth_supervisor::exit::ExitStatus;
use nix::errno::Errno;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::error::InitError;
use super::main_loop::Kernel;
use super::sys;

/// The live kernel, reading signals from `signals` (opened on the blocked
/// set, so it sees every signal berth handles).
#[derive(Debug)]
pub struct Live {
    pub signals: SignalFd,
}

impl Kernel for Live {
    fn next_signal(&mut self) -> Result<i32, InitError> {
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => return Ok(info.ssi_signo as i32),
                // Only a non-blocking signalfd returns no signal; ours
                // blocks, but retrying is the right answer either way.
                Ok(None) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(InitError::ReadSignal(e)),
            }
        }
    }

    fn send(&mut self, pid: Pid, sig: i32, group: bool) -> Result<(), Errno> {
        sys::send_signal(pid, sig, group)
    }

    fn reap_one(&mut self) -> Result<Option<(Pid, ExitStatus)>, InitError> {
        // __WALL also reaps children whose exit signal is not SIGCHLD
        // (clone(2) with another termination signal), which a plain
        // waitpid would leave as zombies forever.
        let flags = WaitPidFlag::WNOHANG | WaitPidFlag::__WALL;
        loop {
            match waitpid(None::<Pid>, Some(flags)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
                Ok(ws) => {
                    if let (Some(pid), Some(ended)) = (ws.pid(), ExitStatus::from_wait(ws)) {
                        return Ok(Some((pid, ended)));
                    }
                    // Not an end (we never ask for stops): look again.
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(InitError::Reap(e)),
            }
        }
    }
}
