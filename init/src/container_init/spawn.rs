//! Starting the main child and learning whether its exec worked.
//!
//! The child reports a failed exec through a close-on-exec pipe: a
//! successful exec closes the child's end, so the parent reads EOF; a failed
//! one writes errno first. The parent thus prints the one-line message from
//! a normal context (not between fork and exec) and knows, before it
//! forwards any signal, that the child already sits in its own process group
//! with the signal state berth was started with. The child also exits 127/126 itself, so the exit
//! code does not depend on the report being read.

use std::fs::File;
use std::io::Read;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};

use super::error::InitError;
use super::sys::{self, Argv};

/// Forks and execs `command` (PATH is searched as `execvp(3)` does) and
/// returns the child's pid once the exec has either happened or failed; a
/// failure is reported on stderr and the child then exits 127 or 126.
pub fn spawn(command: &[String], inherited: &sys::Inherited) -> Result<Pid, InitError> {
    let argv = Argv::new(command).map_err(InitError::Command)?;
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).map_err(InitError::ReportPipe)?;
    let pid = sys::fork_exec(&argv, &write_end, inherited).map_err(InitError::Fork)?;
    // Our copy of the write end must go, or the read below never sees EOF.
    drop(write_end);
    let mut report = Vec::new();
    File::from(read_end)
        .read_to_end(&mut report)
        .map_err(InitError::ReadReport)?;
    if let Some(errno) = decode_report(&report) {
        let name = command.first().map(String::as_str).unwrap_or_default();
        eprintln!(
            "berth init: cannot execute {name}: {}",
            Errno::from_raw(errno).desc()
        );
    }
    Ok(pid)
}

/// The errno in an exec report, or `None` for an empty report (the exec
/// succeeded). A short report cannot come from our child, which writes 4
/// bytes at once into an empty pipe (atomic below PIPE_BUF, pipe(7)).
fn decode_report(report: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = report.get(..4)?.try_into().ok()?;
    Some(i32::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_reports() {
        let enoent = (libc::ENOENT).to_ne_bytes();
        // (bytes read from the pipe, errno)
        let table: &[(&[u8], Option<i32>)] = &[
            (&[], None),
            (&enoent, Some(libc::ENOENT)),
            (&enoent[..2], None),
        ];
        for (bytes, want) in table {
            assert_eq!(decode_report(bytes), *want, "{bytes:?}");
        }
    }
}
