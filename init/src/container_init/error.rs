//! Why `berth init` itself failed (as opposed to its child).

use std::ffi::NulError;
use std::io;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use thiserror::Error;

/// One variant per step of `berth init` that can fail.
#[derive(Debug, Error)]
pub enum InitError {
    #[error("blocking signals")]
    BlockSignals(#[source] Errno),
    #[error("ignoring {signal}")]
    IgnoreSignal {
        signal: Signal,
        #[source]
        source: Errno,
    },
    #[error("opening a signalfd")]
    SignalFd(#[source] Errno),
    #[error("registering as a child subreaper")]
    Subreaper(#[source] Errno),
    #[error("preparing the command line")]
    Command(#[source] NulError),
    #[error("creating the exec report pipe")]
    ReportPipe(#[source] Errno),
    #[error("forking the child")]
    Fork(#[source] io::Error),
    #[error("reading the exec report")]
    ReadReport(#[source] io::Error),
    #[error("reading a signal")]
    ReadSignal(#[source] Errno),
    #[error("reaping children")]
    Reap(#[source] Errno),
}
