//! cgroup2 layout: PID 1 in the leaf `berth/init`, host containers under
//! `berth/system`, workloads under `berth/workloads`. cgroup2's "no internal
//! processes" rule forbids processes in a cgroup whose children have
//! controllers enabled, so PID 1 leaves `berth` for a leaf before the
//! controllers are switched on top-down.

use std::fs;
use std::path::{Path, PathBuf};

use berth_config::layout;

const ROOT: &str = "/sys/fs/cgroup";

/// Setting up the hierarchy failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("create cgroup {0}")]
    Create(PathBuf, #[source] std::io::Error),
    #[error("move PID 1 into {0}")]
    Move(PathBuf, #[source] std::io::Error),
    #[error("read available controllers")]
    Controllers(#[source] std::io::Error),
}

/// Creates the hierarchy, moves PID 1 into `berth/init` and enables every
/// available controller for `berth/system` and `berth/workloads`. Returns
/// the enabled controllers; a controller the kernel refuses is logged and
/// left out.
pub fn setup() -> Result<Vec<String>, CgroupError> {
    let root = Path::new(ROOT);
    for dir in [
        layout::CGROUP_ROOT,
        layout::CGROUP_INIT,
        layout::CGROUP_SYSTEM,
        layout::CGROUP_WORKLOADS,
    ] {
        let p = root.join(dir);
        match fs::create_dir(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::Create(p, e)),
        }
    }
    let init = root.join(layout::CGROUP_INIT);
    fs::write(init.join("cgroup.procs"), std::process::id().to_string())
        .map_err(|e| CgroupError::Move(init, e))?;

    let available =
        fs::read_to_string(root.join("cgroup.controllers")).map_err(CgroupError::Controllers)?;
    let mut enabled = Vec::new();
    for ctrl in available.split_whitespace() {
        let ok = [
            ".",
            layout::CGROUP_ROOT,
            layout::CGROUP_SYSTEM,
            layout::CGROUP_WORKLOADS,
        ]
        .iter()
        .all(|dir| enable(&root.join(dir), ctrl));
        if ok {
            enabled.push(ctrl.to_owned());
        }
    }
    Ok(enabled)
}

fn enable(dir: &Path, ctrl: &str) -> bool {
    match fs::write(dir.join("cgroup.subtree_control"), format!("+{ctrl}")) {
        Ok(()) => true,
        Err(e) => {
            log::warn!(
                "cgroup controller {ctrl} not enabled in {}: {e}",
                dir.display()
            );
            false
        }
    }
}
