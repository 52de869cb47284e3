//! A container's cgroup limits (`linux.resources`), from the manifest's
//! `memory`, `cpus` and `pids`.
//!
//! - `memory` → `memory.max`, and no swap. OCI's `memory.swap` is the
//!   cgroup v1 sum of memory and swap, so "no swap" is `swap = limit`;
//!   runc turns that into `memory.swap.max` 0, but libcontainer 0.7
//!   (libcgroups `v2/memory.rs`) computes `swap - limit` = 0 and then skips
//!   the write because it treats 0 as "unset", leaving the kernel's `max`.
//!   The spec therefore also carries `memory.swap.max: "0"` in
//!   `linux.resources.unified`, which libcontainer writes verbatim after
//!   the typed controllers.
//! - `cpus` → `cpu.max` as quota per [`CPU_PERIOD`] (`cpus = 1.5`:
//!   150000 µs every 100000 µs).
//! - `pids` → `pids.max`, with workloads at
//!   [`berth_config::manifest::DEFAULT_WORKLOAD_PIDS`] unless set.
//! - A privileged container's device cgroup allows every device (`a *:*
//!   rwm`), as Docker's `--privileged` does; others keep the OCI default.
//!   (libcontainer 0.7 without `cgroupsv2_devices` enforces neither: see
//!   [`crate::seccomp`] for what stands in.)

use std::collections::HashMap;

use berth_config::Container;
use oci_spec::runtime::{LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxPids, LinuxResources};

/// The CFS period, in microseconds (the kernel's default).
pub const CPU_PERIOD: u64 = 100_000;

/// `resources` with the container's limits applied.
pub fn apply(c: &Container, mut resources: LinuxResources) -> LinuxResources {
    if let Some(bytes) = c.memory {
        // The manifest caps memory at i64::MAX.
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(limit));
        memory.set_swap(Some(limit));
        resources.set_memory(Some(memory));
        let mut unified = resources.unified().clone().unwrap_or_default();
        unified.insert("memory.swap.max".to_owned(), "0".to_owned());
        resources.set_unified(Some(unified));
    }
    if let Some(cpus) = c.cpus {
        let mut cpu = LinuxCpu::default();
        // At most 1024 CPUs: far below i64::MAX.
        cpu.set_quota(Some(
            i64::try_from(cpus.quota(CPU_PERIOD)).unwrap_or(i64::MAX),
        ));
        cpu.set_period(Some(CPU_PERIOD));
        resources.set_cpu(Some(cpu));
    }
    if let Some(limit) = c.pids_limit() {
        let mut pids = LinuxPids::default();
        pids.set_limit(i64::from(limit));
        resources.set_pids(Some(pids));
    }
    if c.privileged {
        let mut all = LinuxDeviceCgroup::default();
        all.set_allow(true);
        all.set_access(Some("rwm".to_owned()));
        resources.set_devices(Some(vec![all]));
    }
    resources
}

/// The files these limits become under cgroup v2, as the kernel shows them
/// once libcontainer wrote them: what `docs/security.md` documents and the
/// QEMU tests read back.
pub fn cgroup_files(c: &Container) -> HashMap<&'static str, String> {
    let mut files = HashMap::new();
    if let Some(bytes) = c.memory {
        files.insert("memory.max", bytes.to_string());
        files.insert("memory.swap.max", "0".to_owned());
    }
    if let Some(cpus) = c.cpus {
        files.insert(
            "cpu.max",
            format!("{} {CPU_PERIOD}", cpus.quota(CPU_PERIOD)),
        );
    }
    if let Some(limit) = c.pids_limit() {
        files.insert("pids.max", limit.to_string());
    }
    files
}

#[cfg(test)]
mod tests {
    use berth_config::{Kind, MilliCpus};

    use super::*;

    /// (kind, memory, cpus, pids, memory limit and swap, unified, quota, pids limit)
    #[test]
    fn limits_by_manifest() {
        type Row = (
            Kind,
            Option<u64>,
            Option<u32>,
            Option<u32>,
            Option<(i64, i64)>,
            Option<&'static str>,
            Option<(i64, u64)>,
            Option<i64>,
        );
        let rows: &[Row] = &[
            (
                Kind::Workload,
                None,
                None,
                None,
                None,
                None,
                None,
                Some(1024),
            ),
            (Kind::Host, None, None, None, None, None, None, None),
            (
                Kind::Workload,
                Some(256 << 20),
                Some(1500),
                Some(512),
                Some((256 << 20, 256 << 20)),
                Some("0"),
                Some((150_000, 100_000)),
                Some(512),
            ),
            (
                Kind::Host,
                Some(64 << 20),
                Some(10),
                None,
                Some((64 << 20, 64 << 20)),
                Some("0"),
                Some((1000, 100_000)),
                None,
            ),
            (Kind::Host, None, None, Some(1), None, None, None, Some(1)),
        ];
        for (kind, memory, cpus, pids, want_mem, want_swap_max, want_cpu, want_pids) in rows {
            let c = Container {
                kind: *kind,
                memory: *memory,
                cpus: cpus.map(MilliCpus),
                pids: *pids,
                ..Container::new("c", "r")
            };
            let row = format!("{kind:?} {memory:?} {cpus:?} {pids:?}");
            let r = apply(&c, LinuxResources::default());
            assert_eq!(
                r.memory()
                    .as_ref()
                    .map(|m| (m.limit().unwrap_or_default(), m.swap().unwrap_or_default())),
                *want_mem,
                "{row}"
            );
            assert_eq!(
                r.unified()
                    .as_ref()
                    .and_then(|u| u.get("memory.swap.max"))
                    .map(String::as_str),
                *want_swap_max,
                "{row}"
            );
            assert_eq!(
                r.cpu().as_ref().map(|c| (
                    c.quota().unwrap_or_default(),
                    c.period().unwrap_or_default()
                )),
                *want_cpu,
                "{row}"
            );
            assert_eq!(r.pids().as_ref().map(|p| p.limit()), *want_pids, "{row}");
            assert!(r.devices().as_ref().is_none_or(|d| d.is_empty()), "{row}");
        }
    }

    #[test]
    fn privileged_allows_every_device() {
        let c = Container {
            kind: Kind::Host,
            privileged: true,
            ..Container::new("c", "r")
        };
        let r = apply(&c, LinuxResources::default());
        let devices = r.devices().clone().unwrap_or_default();
        assert_eq!(devices.len(), 1);
        assert!(devices[0].allow());
        assert_eq!(devices[0].typ(), None);
        assert_eq!(devices[0].access().as_deref(), Some("rwm"));
    }

    #[test]
    fn kernel_files() {
        let c = Container {
            memory: Some(256 << 20),
            cpus: Some(MilliCpus(1500)),
            ..Container::new("c", "r")
        };
        let files = cgroup_files(&c);
        assert_eq!(files["memory.max"], "268435456");
        assert_eq!(files["memory.swap.max"], "0");
        assert_eq!(files["cpu.max"], "150000 100000");
        assert_eq!(files["pids.max"], "1024");
    }
}
