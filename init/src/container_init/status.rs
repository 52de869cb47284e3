//! The shell's codes for a command that `berth init` cannot run. (The
//! main child's status in the shell's convention is
//! [`berth_supervisor::exit::ExitStatus::code`], decoded as PID 1 decodes
//! it.)
//!
//! Pure, so the mapping is table-tested without forking anything.

use nix::errno::Errno;

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

#[cfg(test)]
mod tests {
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
}
