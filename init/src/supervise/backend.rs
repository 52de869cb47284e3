//! The launcher's backend in PID 1: the container's writable root, its
//! cgroup's device and memory limits, and libcontainer. Runs on the
//! launcher's thread (see [`super::launcher`]); it never logs.

use std::collections::HashMap;
use std::path::Path;

use crate::runtime::{Handle, Runtime};

use super::launcher::{Backend, LaunchJob, Started};
use crate::container_root;
use crate::devcgroup;
use crate::fatal::chain;
use crate::os::RealOs;
use crate::system;

/// libcontainer and the containers it created, by name.
#[derive(Debug)]
pub(crate) struct Libcontainer {
    runtime: Runtime,
    handles: HashMap<String, Handle>,
}

impl Libcontainer {
    pub(crate) fn new(runtime: Runtime) -> Libcontainer {
        Libcontainer {
            runtime,
            handles: HashMap::new(),
        }
    }
}

/// Who owns a volume the container makes: its process user (from its
/// plan) as the host sees it, through the user namespace if it has one.
fn volume_owner(job: &LaunchJob) -> Result<(u32, u32), String> {
    let path = job.bundle.join(berth_config::layout::PLAN_FILE);
    let plan = berth_config::Plan::from_file(&job.name, &path).map_err(|e| chain(&e))?;
    let base = job.owner.unwrap_or(0);
    Ok((base + plan.user.uid, base + plan.user.gid))
}

impl Backend for Libcontainer {
    fn launch(
        &mut self,
        job: &LaunchJob,
        prepare: &mut dyn FnMut(i32) -> Result<(), String>,
    ) -> Result<Started, String> {
        let name = &job.name;
        let t0 = std::time::Instant::now();
        let mut notes = Vec::new();
        if !job.volumes.is_empty() {
            let (uid, gid) = volume_owner(job)?;
            notes = crate::volumes::prepare(&job.volumes, uid, gid).map_err(|e| chain(&e))?;
        }
        if let Some(size) = job.root_size {
            let lower = job.bundle.join("rootfs");
            container_root::prepare(&RealOs, name, &lower, size, job.owner)
                .map_err(|e| chain(&e))?;
        }
        let bundle = match job.userns {
            Some(range) => crate::id_ranges::bundle_for(
                &job.bundle,
                std::path::Path::new(berth_config::layout::RUN_BUNDLES),
                name,
                range,
            )?,
            None => job.bundle.clone(),
        };
        // Where a launch's time goes, for `berth.debug`.
        let t_root = t0.elapsed();
        let mut marks = [std::time::Duration::ZERO; 3];
        let launched = self.runtime.launch(name, &bundle, |pid| {
            marks[0] = t0.elapsed();
            if job.confine_devices {
                devcgroup::confine(&job.cgroup)?;
            }
            if let Some(bytes) = job.default_memory {
                limit_memory(&job.cgroup, bytes)?;
            }
            marks[1] = t0.elapsed();
            let prepared = prepare(pid.as_raw());
            marks[2] = t0.elapsed();
            prepared
        });
        let ms = |d: std::time::Duration| d.as_millis();
        log::debug!(
            "launch {name}: root and volumes {} ms, create {} ms, cgroup limits {} ms, network {} ms, start {} ms",
            ms(t_root),
            ms(marks[0].saturating_sub(t_root)),
            ms(marks[1].saturating_sub(marks[0])),
            ms(marks[2].saturating_sub(marks[1])),
            ms(t0.elapsed().saturating_sub(marks[2]))
        );
        // libcontainer touched PID 1's own oom_score_adj and dumpable flag
        // (both belong to the process, not to this thread).
        system::protect_pid1();
        match launched {
            Ok(l) => {
                self.handles.insert(name.clone(), l.container);
                Ok(Started {
                    pid: l.pid.as_raw(),
                    stdout: l.stdout,
                    stderr: l.stderr,
                    notes,
                })
            }
            Err(e) => {
                container_root::release(&RealOs, name);
                Err(chain(&e))
            }
        }
    }

    fn exec(&mut self, name: &str, argv: &[String]) -> Result<Started, String> {
        let started = self.runtime.exec(name, argv);
        system::protect_pid1();
        started
            .map(|e| Started {
                pid: e.pid.as_raw(),
                stdout: e.stdout,
                stderr: e.stderr,
                notes: Vec::new(),
            })
            .map_err(|e| chain(&e))
    }

    /// Unmounts its writable root and deletes what libcontainer keeps.
    fn remove(&mut self, name: &str) -> Result<(), String> {
        container_root::release(&RealOs, name);
        let Some(mut handle) = self.handles.remove(name) else {
            return Ok(());
        };
        self.runtime
            .remove(name, &mut handle)
            .map_err(|e| chain(&e))
    }
}

/// `memory.max` of a workload without a `memory` key (see
/// [`crate::cgroups::limit_workloads`]).
fn limit_memory(cgroup: &Path, bytes: u64) -> Result<(), String> {
    let file = cgroup.join("memory.max");
    std::fs::write(&file, bytes.to_string())
        .map_err(|e| format!("default memory limit {}: {e}", file.display()))
}
