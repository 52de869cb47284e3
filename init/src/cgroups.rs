//! cgroup2 layout: PID 1 in the leaf `berth/init`, host containers under
//! `berth/system`, workloads under `berth/workloads`. cgroup2's "no internal
//! processes" rule forbids processes in a cgroup whose children have
//! controllers enabled, so PID 1 leaves `berth` for a leaf before the
//! controllers are switched on top-down.
//!
//! Once the memory controller is on, PID 1 gets a `memory.min` floor
//! ([`layout::INIT_MEMORY_MIN`]) on `berth/init` and on `berth`: cgroup2
//! caps a cgroup's effective protection at its parent's `memory.min`
//! (Documentation/admin-guide/cgroup-v2.rst, "memory.min"), so the floor
//! has to be set on every level below the root. Its siblings
//! (`berth/system`, `berth/workloads`) claim no protection, so all of
//! `berth`'s goes to the init. Together with `oom_score_adj` -1000 this
//! keeps a container that fills the node's memory from evicting PID 1.

use std::path::{Path, PathBuf};

use berth_config::layout;

use crate::os::Os;

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
pub fn setup(os: &dyn Os) -> Result<Vec<String>, CgroupError> {
    let root = Path::new(ROOT);
    for dir in [
        layout::CGROUP_ROOT,
        layout::CGROUP_INIT,
        layout::CGROUP_SYSTEM,
        layout::CGROUP_WORKLOADS,
    ] {
        let p = root.join(dir);
        // 0777 before the umask, as fs::create_dir.
        match os.mkdir(&p, 0o777) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::Create(p, e)),
        }
    }
    let init = root.join(layout::CGROUP_INIT);
    os.write(
        &init.join("cgroup.procs"),
        os.getpid().to_string().as_bytes(),
    )
    .map_err(|e| CgroupError::Move(init, e))?;

    let available = os
        .read_to_string(&root.join("cgroup.controllers"))
        .map_err(CgroupError::Controllers)?;
    let mut enabled = Vec::new();
    for ctrl in available.split_whitespace() {
        // Top-down: a controller must be enabled in the parent's
        // subtree_control before a child can enable it.
        let ok = [
            "",
            layout::CGROUP_ROOT,
            layout::CGROUP_SYSTEM,
            layout::CGROUP_WORKLOADS,
        ]
        .iter()
        .all(|dir| enable(os, &root.join(dir), ctrl));
        if ok {
            enabled.push(ctrl.to_owned());
        }
    }
    if enabled.iter().any(|c| c == "memory") {
        protect_init_memory(os, root);
    }
    Ok(enabled)
}

/// Writes the `memory.min` floor top-down; a failure is logged, not fatal
/// (the node still boots, only unprotected).
fn protect_init_memory(os: &dyn Os, root: &Path) {
    let value = layout::INIT_MEMORY_MIN.to_string();
    for dir in [layout::CGROUP_ROOT, layout::CGROUP_INIT] {
        let file = root.join(dir).join("memory.min");
        if let Err(e) = os.write(&file, value.as_bytes()) {
            log::warn!("PID 1 memory floor not set: {}: {e}", file.display());
            return;
        }
    }
    log::info!(
        "PID 1 memory floor: memory.min {} MiB on {}",
        layout::INIT_MEMORY_MIN >> 20,
        layout::CGROUP_INIT
    );
}

/// Caps what all workloads together may use at the node's memory less
/// `reserved` (the manifest's `system.reserved-memory`, else
/// [`layout::default_reserved_memory`]), so that their processes, tmpfs
/// layers and kernel memory (open files, inotify instances) can never take
/// what PID 1, host containers and the kernel need. Returns what one
/// workload without a `memory` key may then use
/// ([`layout::default_workload_memory`]), or `None` when the cap could not
/// be set (logged).
pub fn limit_workloads(os: &dyn Os, reserved: Option<u64>) -> Option<u64> {
    let meminfo = os.read_to_string(Path::new("/proc/meminfo")).ok()?;
    let total = mem_total(&meminfo)?;
    let reserved = reserved.unwrap_or_else(|| layout::default_reserved_memory(total));
    let budget = total
        .saturating_sub(reserved)
        .max(layout::MIN_WORKLOAD_BUDGET);
    let file = Path::new(ROOT)
        .join(layout::CGROUP_WORKLOADS)
        .join("memory.max");
    if let Err(e) = os.write(&file, budget.to_string().as_bytes()) {
        log::warn!("workload memory cap not set: {}: {e}", file.display());
        return None;
    }
    let each = layout::default_workload_memory(budget);
    log::info!(
        "memory: {} MiB; {} MiB reserved for the node; workloads {} MiB together, {} MiB each unless memory is set",
        total >> 20,
        reserved >> 20,
        budget >> 20,
        each >> 20
    );
    Some(each)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn enable(os: &dyn Os, dir: &Path, ctrl: &str) -> bool {
    match os.write(
        &dir.join("cgroup.subtree_control"),
        format!("+{ctrl}").as_bytes(),
    ) {
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

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;
    use crate::os::RecordingOs;

    const CONTROLLERS: &str = "/sys/fs/cgroup/cgroup.controllers";
    const MKDIRS: [&str; 4] = [
        "mkdir /sys/fs/cgroup/berth 0777",
        "mkdir /sys/fs/cgroup/berth/init 0777",
        "mkdir /sys/fs/cgroup/berth/system 0777",
        "mkdir /sys/fs/cgroup/berth/workloads 0777",
    ];
    const MOVE: &str = "write /sys/fs/cgroup/berth/init/cgroup.procs = 1";

    const FLOOR: [&str; 2] = [
        "write /sys/fs/cgroup/berth/memory.min = 33554432",
        "write /sys/fs/cgroup/berth/init/memory.min = 33554432",
    ];

    /// The four subtree_control writes that enable `ctrl`, top-down.
    fn enable_writes(ctrl: &str) -> Vec<String> {
        ["", "berth/", "berth/system/", "berth/workloads/"]
            .iter()
            .map(|dir| format!("write /sys/fs/cgroup/{dir}cgroup.subtree_control = +{ctrl}"))
            .collect()
    }

    fn cgroupfs() -> RecordingOs {
        RecordingOs::new().path("/sys/fs/cgroup", libc::CGROUP2_SUPER_MAGIC, 9)
    }

    #[test]
    fn creates_moves_pid1_then_enables_top_down() {
        let os = cgroupfs().file(CONTROLLERS, "cpu memory pids\n");
        let enabled = setup(&os).expect("setup");
        assert_eq!(enabled, ["cpu", "memory", "pids"]);
        let mut want: Vec<String> = MKDIRS.iter().map(|s| s.to_string()).collect();
        want.push(MOVE.to_owned());
        for ctrl in ["cpu", "memory", "pids"] {
            want.extend(enable_writes(ctrl));
        }
        want.extend(FLOOR.map(String::from));
        assert_eq!(os.effects(), want);
    }

    /// (available controllers, failing write, memory.min writes attempted)
    #[test]
    fn memory_floor_for_pid1() {
        let cases: Vec<(&str, Option<&str>, &[&str])> = vec![
            ("cpu memory pids", None, &FLOOR),
            ("cpu pids", None, &[]),
            // memory refused below berth: no floor on init either.
            (
                "memory",
                Some("write /sys/fs/cgroup/berth/cgroup.subtree_control = +memory"),
                &[],
            ),
            // The parent's floor fails: the child's would be capped at 0,
            // so it is not tried.
            ("memory", Some(FLOOR[0]), &FLOOR[..1]),
            ("memory", Some(FLOOR[1]), &FLOOR),
        ];
        for (available, fail, want) in cases {
            let mut os = cgroupfs().file(CONTROLLERS, available);
            if let Some(f) = fail {
                os = os.fail(f, Errno::EINVAL);
            }
            setup(&os).expect("a floor failure is not a setup failure");
            let floors: Vec<String> = os
                .effects()
                .into_iter()
                .filter(|e| e.contains("memory.min"))
                .collect();
            assert_eq!(floors, *want, "{available} failing {fail:?}");
        }
    }

    /// cgroup2's "no internal processes" rule: PID 1 must have left the
    /// root's children before any controller is switched on.
    #[test]
    fn pid1_moves_before_any_subtree_control_write() {
        let os = cgroupfs().file(CONTROLLERS, "io cpu").pid(1);
        setup(&os).expect("setup");
        let effects = os.effects();
        let moved = effects.iter().position(|c| c == MOVE).expect("PID 1 moved");
        let first_enable = effects
            .iter()
            .position(|c| c.contains("cgroup.subtree_control"))
            .expect("a controller enabled");
        assert!(moved < first_enable, "{effects:#?}");
    }

    #[test]
    fn writes_its_own_pid() {
        let os = cgroupfs().file(CONTROLLERS, "").pid(42);
        assert_eq!(setup(&os).expect("setup"), Vec::<String>::new());
        assert!(
            os.effects()
                .contains(&"write /sys/fs/cgroup/berth/init/cgroup.procs = 42".to_owned()),
            "{:#?}",
            os.effects()
        );
    }

    #[test]
    fn a_refused_controller_is_left_out() {
        let os = cgroupfs().file(CONTROLLERS, "cpu memory pids").fail(
            "write /sys/fs/cgroup/berth/system/cgroup.subtree_control = +memory",
            Errno::EOPNOTSUPP,
        );
        assert_eq!(setup(&os).expect("setup"), ["cpu", "pids"]);
        let effects = os.effects();
        for ctrl in ["cpu", "pids"] {
            for w in enable_writes(ctrl) {
                assert!(effects.contains(&w), "{w} missing from {effects:#?}");
            }
        }
        // Below a refusing parent there is nothing to try.
        let memory = enable_writes("memory");
        assert!(effects.contains(&memory[2]), "{effects:#?}");
        assert!(!effects.contains(&memory[3]), "{effects:#?}");
    }

    #[test]
    fn existing_cgroups_are_kept() {
        let os = cgroupfs()
            .path("/sys/fs/cgroup/berth", libc::CGROUP2_SUPER_MAGIC, 9)
            .path("/sys/fs/cgroup/berth/init", libc::CGROUP2_SUPER_MAGIC, 9)
            .file(CONTROLLERS, "cpu");
        assert_eq!(setup(&os).expect("setup"), ["cpu"]);
        assert!(os.effects().contains(&MOVE.to_owned()));
    }

    #[test]
    fn failures_stop_setup_at_the_failed_step() {
        let cases: Vec<(&str, RecordingOs, &str, usize)> = vec![
            (
                "create",
                cgroupfs()
                    .file(CONTROLLERS, "cpu")
                    .fail("mkdir /sys/fs/cgroup/berth/system", Errno::ENOSPC),
                "create cgroup /sys/fs/cgroup/berth/system",
                3,
            ),
            (
                "move",
                cgroupfs()
                    .file(CONTROLLERS, "cpu")
                    .fail("write /sys/fs/cgroup/berth/init/cgroup.procs", Errno::EBUSY),
                "move PID 1 into /sys/fs/cgroup/berth/init",
                5,
            ),
            ("controllers", cgroupfs(), "read available controllers", 5),
        ];
        for (name, os, want_err, want_effects) in cases {
            match setup(&os) {
                Err(e) => assert_eq!(e.to_string(), want_err, "{name}"),
                Ok(c) => panic!("{name}: want an error, got {c:?}"),
            }
            assert_eq!(
                os.effects().len(),
                want_effects,
                "{name}: {:#?}",
                os.effects()
            );
        }
    }
}
