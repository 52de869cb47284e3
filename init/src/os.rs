//! The seam between stage 1's node setup and the kernel: every mount,
//! directory, file write and node-wide setting that `mounts`, `cgroups` and
//! `system` make goes through [`Os`]. PID 1 passes [`RealOs`]; unit tests
//! pass [`RecordingOs`], which answers from in-memory state and records each
//! call as a readable line, so the order and arguments of the calls can be
//! checked without root or a VM.
//!
//! The trait holds only what those modules use; each method is a thin,
//! decision-free wrapper so that every decision stays in the code under
//! test.

use std::io;
use std::path::Path;

use nix::mount::MsFlags;

#[cfg(test)]
mod fake;
#[cfg(test)]
pub use fake::RecordingOs;

/// The kernel calls of PID 1's node setup.
pub trait Os {
    /// mount(2).
    fn mount(
        &self,
        source: &str,
        target: &str,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    /// chown(2) to `id`:`id`.
    fn chown(&self, path: &Path, id: u32) -> io::Result<()>;
    /// umount2(2) with MNT_DETACH: gone from the tree at once, released
    /// when its last user goes.
    fn umount_detach(&self, target: &str) -> nix::Result<()>;
    /// mkdir(2) of one directory with `mode` (before the umask); an
    /// existing path fails with `ErrorKind::AlreadyExists`.
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// `mkdir -p`: creates `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Whether `path` exists (following symlinks).
    fn exists(&self, path: &Path) -> bool;
    /// Replaces the contents of `path` with `data`.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Reads all of `path` as UTF-8.
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    /// statfs(2) `f_type` of the filesystem holding `path`, if it can be
    /// read.
    fn fs_magic(&self, path: &Path) -> Option<i64>;
    /// stat(2) `st_dev` of `path`, if it can be read.
    fn device(&self, path: &Path) -> Option<u64>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> nix::Result<()>;
    /// Sets `IFF_UP` on the network interface `name`.
    fn interface_up(&self, name: &str) -> io::Result<()>;
    /// This process's PID.
    fn getpid(&self) -> u32;
    /// prctl(2) `PR_SET_DUMPABLE`.
    fn set_dumpable(&self, dumpable: bool) -> nix::Result<()>;
}

/// The kernel itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealOs;

impl Os for RealOs {
    fn mount(
        &self,
        source: &str,
        target: &str,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(Some(source), target, Some(fstype), flags, data)
    }

    fn umount_detach(&self, target: &str) -> nix::Result<()> {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
    }

    fn chown(&self, path: &Path, id: u32) -> io::Result<()> {
        std::os::unix::fs::chown(path, Some(id), Some(id))
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(mode).create(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::write(path, data)
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn fs_magic(&self, path: &Path) -> Option<i64> {
        let fs = nix::sys::statfs::statfs(path).ok()?;
        // `f_type` is `__fsword_t` (i64 on x86_64 glibc) but not on every
        // libc; the cast keeps the comparison in one integer type.
        Some(fs.filesystem_type().0 as i64)
    }

    fn device(&self, path: &Path) -> Option<u64> {
        nix::sys::stat::stat(path).ok().map(|st| st.st_dev)
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        nix::unistd::sethostname(name)
    }

    fn interface_up(&self, name: &str) -> io::Result<()> {
        crate::sys::interface_up(name)
    }

    fn getpid(&self) -> u32 {
        std::process::id()
    }

    fn set_dumpable(&self, dumpable: bool) -> nix::Result<()> {
        nix::sys::prctl::set_dumpable(dumpable)
    }
}
