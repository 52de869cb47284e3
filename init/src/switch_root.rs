//! Leaves the initramfs for the real root, as util-linux `switch_root`
//! does: move the API filesystems and the new root over `/`, chroot, and
//! free the initramfs' memory by deleting its files (a rootfs can be
//! neither unmounted nor pivoted away from; pivot_root(2) fails on it).

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};

/// Switching roots failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchRootError {
    #[error("move {0} into the new root")]
    Move(String, #[source] nix::Error),
    #[error("enter the new root {0}")]
    Enter(String, #[source] nix::Error),
    #[error("exec {0}")]
    Exec(String, #[source] nix::Error),
}

/// Moves `/proc`, `/sys`, `/dev` under `new_root`, deletes the initramfs
/// files, makes `new_root` the root and execs `init` there. Returns only on
/// failure.
pub fn switch_root(new_root: &str, init: &str) -> SwitchRootError {
    match enter(new_root) {
        Ok(()) => {}
        Err(e) => return e,
    }
    let Ok(path) = CString::new(init) else {
        return SwitchRootError::Exec(init.to_owned(), nix::Error::EINVAL);
    };
    crate::console::console().drain(std::time::Duration::from_secs(2));
    let mut argv = vec![path.clone()];
    if let Some(arg) = hand_over_history() {
        argv.push(arg);
    }
    let refused = crate::modload::refused_modules();
    if !refused.is_empty() {
        if let Ok(arg) = CString::new(format!("{REFUSED_MODULES_ARG}{}", refused.join(","))) {
            argv.push(arg);
        }
    }
    match nix::unistd::execv(&path, &argv) {
        Err(e) => SwitchRootError::Exec(init.to_owned(), e),
        Ok(never) => match never {},
    }
}

/// The argument that tells stage 1 where stage 0's console lines are, for
/// its boot log: a memfd left open across the `execve` (`None`, and the
/// lines are only on the console, if it cannot be made).
fn hand_over_history() -> Option<CString> {
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    let history = crate::console::console().take_history();
    let fd = nix::sys::memfd::memfd_create(
        c"berth-stage0-log",
        nix::sys::memfd::MemFdCreateFlag::empty(),
    )
    .ok()?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&history).ok()?;
    // Open, without close-on-exec, in the program that follows.
    let fd = file.into_raw_fd();
    CString::new(format!("{STAGE0_LOG_ARG}{fd}")).ok()
}

/// `--stage0-log=FD` on stage 1's command line.
pub const STAGE0_LOG_ARG: &str = "--stage0-log=";
/// `--refused-modules=NAME,…` on stage 1's command line: optional modules
/// the kernel refused for good in stage 0 (crc32c_intel without SSE4.2),
/// which stage 1 then does not try again.
pub const REFUSED_MODULES_ARG: &str = "--refused-modules=";
/// The memfd's name.
pub const STAGE0_LOG_NAME: &str = "berth-stage0-log";

fn enter(new_root: &str) -> Result<(), SwitchRootError> {
    for api in ["/dev", "/proc", "/sys"] {
        let target = format!("{new_root}{api}");
        mount(
            Some(api),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| SwitchRootError::Move(api.to_owned(), e))?;
    }
    nix::unistd::chdir(new_root).map_err(|e| SwitchRootError::Enter(new_root.to_owned(), e))?;
    let root_dev = std::fs::metadata("/").map(|m| m.dev()).ok();
    if let Some(dev) = root_dev {
        delete_tree(Path::new("/"), dev, new_root);
    }
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| SwitchRootError::Enter(new_root.to_owned(), e))?;
    nix::unistd::chroot(".").map_err(|e| SwitchRootError::Enter(new_root.to_owned(), e))?;
    nix::unistd::chdir("/").map_err(|e| SwitchRootError::Enter(new_root.to_owned(), e))?;
    Ok(())
}

/// Deletes everything below `dir` on device `dev`, never crossing into
/// another filesystem (the new root and the moved API mounts).
fn delete_tree(dir: &Path, dev: u64, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev || path == Path::new(keep) {
            continue;
        }
        if meta.is_dir() {
            delete_tree(&path, dev, keep);
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}
