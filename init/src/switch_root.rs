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
    match nix::unistd::execv(&path, &[&path]) {
        Err(e) => SwitchRootError::Exec(init.to_owned(), e),
        Ok(never) => match never {},
    }
}

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
