//! The signals that ask a foreground `berth-image run` to stop: SIGTERM
//! (`kill`, `timeout`, a CI runner cancelling a job), SIGINT (Ctrl-C when
//! the terminal is not in QEMU's raw mode) and SIGHUP (the terminal went
//! away). Left to their default action they would end the runner and
//! leave QEMU running on its own.
//!
//! While a [`StopSignals`] lives, the three are blocked in the calling
//! thread and read from a signalfd, so a signal only wakes the wait loop
//! ([`StopSignals::wait`]); nothing runs in a handler. The child started
//! meanwhile does not inherit the block: `std::process::Command` gives
//! every child an empty signal mask. Dropping it restores the previous
//! mask (a signal still pending then gets its default action).

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The stop signals, blocked and readable; see the module's doc.
#[derive(Debug)]
pub struct StopSignals {
    fd: SignalFd,
    previous: SigSet,
}

impl StopSignals {
    pub const SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

    /// Blocks the stop signals in this thread and opens their signalfd.
    pub fn block() -> io::Result<StopSignals> {
        let mut set = SigSet::empty();
        for s in Self::SIGNALS {
            set.add(s);
        }
        let previous = set.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        match SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Ok(StopSignals { fd, previous }),
            Err(e) => {
                // Best effort: the error below is what the caller hears.
                let _ = previous.thread_set_mask();
                Err(e.into())
            }
        }
    }

    /// Waits up to `timeout` for a stop signal; the one received, if any.
    pub fn wait(&self, timeout: Duration) -> io::Result<Option<Signal>> {
        if let Some(s) = self.take()? {
            return Ok(Some(s));
        }
        // Below a millisecond would round to a busy loop; above u16 is
        // more than any caller's poll interval.
        let millis = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => self.take(),
            Err(e) => Err(e.into()),
        }
    }

    /// A pending stop signal, without waiting.
    fn take(&self) -> io::Result<Option<Signal>> {
        match self.fd.read_signal()? {
            None => Ok(None),
            Some(info) => {
                let signo = i32::try_from(info.ssi_signo).map_err(io::Error::other)?;
                Signal::try_from(signo).map(Some).map_err(io::Error::from)
            }
        }
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        // Nothing to report to: the mask was set by `block` and setting
        // it back cannot fail for a valid set.
        let _ = self.previous.thread_set_mask();
    }
}
