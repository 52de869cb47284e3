//! Running the host tools the build relies on (apt, dpkg-deb, depmod,
//! mkfs.erofs, veritysetup, mkfs.ext4, zstd, qemu-img, busybox), with errors that name the tool, its Debian package
//! and what it printed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// A host program and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

pub const APT_CACHE: Tool = Tool {
    program: "apt-cache",
    package: "apt",
};
pub const APT_GET: Tool = Tool {
    program: "apt-get",
    package: "apt",
};
pub const DPKG_DEB: Tool = Tool {
    program: "dpkg-deb",
    package: "dpkg",
};
pub const DEPMOD: Tool = Tool {
    program: "depmod",
    package: "kmod",
};
pub const MKFS_EROFS: Tool = Tool {
    program: "mkfs.erofs",
    package: "erofs-utils",
};
pub const DUMP_EROFS: Tool = Tool {
    program: "dump.erofs",
    package: "erofs-utils",
};
pub const VERITYSETUP: Tool = Tool {
    program: "veritysetup",
    package: "cryptsetup-bin",
};

pub const MKFS_EXT4: Tool = Tool {
    program: "mkfs.ext4",
    package: "e2fsprogs",
};
pub const TUNE2FS: Tool = Tool {
    program: "tune2fs",
    package: "e2fsprogs",
};
pub const DUMPE2FS: Tool = Tool {
    program: "dumpe2fs",
    package: "e2fsprogs",
};
pub const ZSTD: Tool = Tool {
    program: "zstd",
    package: "zstd",
};
pub const QEMU_IMG: Tool = Tool {
    program: "qemu-img",
    package: "qemu-utils",
};

/// A tool could not be started or reported failure.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("start {program} (apt-get install {package})")]
    Spawn {
        program: &'static str,
        package: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        program: &'static str,
        status: ExitStatus,
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(": {trimmed}")
    }
}

impl Tool {
    /// A command for this tool. Tools in `/usr/sbin` (depmod) are not on a
    /// normal user's PATH on Debian, so those directories are tried too.
    pub fn command(&self) -> Command {
        Command::new(self.locate())
    }

    fn locate(&self) -> PathBuf {
        let on_path = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| d.join(self.program).is_file()))
            .unwrap_or(false);
        if !on_path {
            for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
                let candidate = Path::new(dir).join(self.program);
                if candidate.is_file() {
                    return candidate;
                }
            }
        }
        PathBuf::from(self.program)
    }

    /// Runs `cmd` with stdout and stderr captured; returns stdout.
    pub fn output(&self, cmd: &mut Command) -> Result<String, ToolError> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|source| self.spawn_error(source))?;
        if !out.status.success() {
            return Err(ToolError::Failed {
                program: self.program,
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `cmd` with stdout and stderr passed through, for long steps
    /// whose progress the operator wants to see (downloads, cargo).
    pub fn status(&self, cmd: &mut Command) -> Result<(), ToolError> {
        let status = cmd
            .stdin(Stdio::null())
            .status()
            .map_err(|source| self.spawn_error(source))?;
        if !status.success() {
            return Err(ToolError::Failed {
                program: self.program,
                status,
                stderr: String::new(),
            });
        }
        Ok(())
    }

    fn spawn_error(&self, source: std::io::Error) -> ToolError {
        ToolError::Spawn {
            program: self.program,
            package: self.package,
            source,
        }
    }
}
