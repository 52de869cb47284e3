//! Node settings from the manifest's `[system]` table and the writable
//! areas of the read-only root.

use std::path::Path;

use berth_config::layout;
use berth_config::System;
use nix::mount::MsFlags;

use crate::mounts::{errno, mount_one, MountError};
use crate::os::{Os, RealOs};

/// Overlays `/etc` and the manifest's `system.overlay` paths with a tmpfs
/// upper layer under `/run/berth/overlay/N`, and mounts a tmpfs on each
/// `system.tmpfs` path. A failure of one path is logged and the rest go on:
/// containers may not need it.
pub fn writable_paths(os: &dyn Os, sys: &System) -> usize {
    let mut overlays: Vec<&str> = vec!["/etc"];
    overlays.extend(
        sys.overlay
            .iter()
            .map(String::as_str)
            .filter(|p| !matches!(*p, "/etc" | "/run" | "/tmp")),
    );
    let mut done = 0;
    for (i, path) in overlays.iter().enumerate() {
        match overlay(os, i, path) {
            Ok(()) => done += 1,
            Err(e) => log::error!("writable overlay on {path}: {}", crate::fatal::chain(&e)),
        }
    }
    for path in sys
        .tmpfs
        .iter()
        .filter(|p| !matches!(p.as_str(), "/etc" | "/run" | "/tmp"))
    {
        match mount_one(
            os,
            "tmpfs",
            path,
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ) {
            Ok(()) => done += 1,
            Err(e) => log::error!("tmpfs on {path}: {}", crate::fatal::chain(&e)),
        }
    }
    done
}

fn overlay(os: &dyn Os, index: usize, path: &str) -> Result<(), MountError> {
    let base = format!("{}/overlay/{index}", layout::RUN_DIR);
    let (upper, work) = (format!("{base}/upper"), format!("{base}/work"));
    for d in [&upper, &work] {
        os.create_dir_all(Path::new(d))
            .map_err(|e| MountError::MountPoint(d.clone(), errno(&e)))?;
    }
    let data = format!("lowerdir={path},upperdir={upper},workdir={work}");
    mount_one(
        os,
        "overlay",
        path,
        "overlay",
        MsFlags::empty(),
        Some(&data),
    )
}

/// Sets the hostname (and `/etc/hostname`, on the writable `/etc`).
pub fn hostname(os: &dyn Os, name: &str) {
    match os.sethostname(name) {
        Ok(()) => {
            let _ = os.write(Path::new("/etc/hostname"), format!("{name}\n").as_bytes());
            log::info!("hostname set to {name}");
        }
        Err(e) => log::error!("system.hostname: set {name:?}: {e}"),
    }
}

/// Writes each `system.sysctl` entry below `/proc/sys`; returns how many
/// were written.
pub fn sysctls(os: &dyn Os, entries: &[(String, String)]) -> usize {
    let mut done = 0;
    for (key, value) in entries {
        let path = sysctl_path(key);
        match os.write(&path, value.as_bytes()) {
            Ok(()) => done += 1,
            Err(e) => log::error!(
                "system.sysctl.{key:?}: write {value:?} to {}: {e}",
                path.display()
            ),
        }
    }
    done
}

/// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward` (sysctl(8)).
fn sysctl_path(key: &str) -> std::path::PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Brings the loopback interface up.
pub fn loopback(os: &dyn Os) {
    if let Err(e) = os.interface_up("lo") {
        log::error!("bring up lo: {e}");
    }
}

/// [`protect_pid1_with`] on the real kernel.
pub fn protect_pid1() {
    protect_pid1_with(&RealOs);
}

/// Protects PID 1 from the OOM killer and keeps it dumpable; libcontainer
/// changes both on `/proc/self` while it launches a container.
pub fn protect_pid1_with(os: &dyn Os) {
    if let Err(e) = os.write(Path::new("/proc/self/oom_score_adj"), b"-1000") {
        log::warn!("set PID 1's oom_score_adj: {e}");
    }
    let _ = os.set_dumpable(true);
}

/// The kernel's resource for a manifest `rlimits` name.
fn resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "as" => R::RLIMIT_AS,
        "core" => R::RLIMIT_CORE,
        "cpu" => R::RLIMIT_CPU,
        "data" => R::RLIMIT_DATA,
        "fsize" => R::RLIMIT_FSIZE,
        "locks" => R::RLIMIT_LOCKS,
        "memlock" => R::RLIMIT_MEMLOCK,
        "msgqueue" => R::RLIMIT_MSGQUEUE,
        "nice" => R::RLIMIT_NICE,
        "nofile" => R::RLIMIT_NOFILE,
        "nproc" => R::RLIMIT_NPROC,
        "rss" => R::RLIMIT_RSS,
        "rtprio" => R::RLIMIT_RTPRIO,
        "rttime" => R::RLIMIT_RTTIME,
        "sigpending" => R::RLIMIT_SIGPENDING,
        "stack" => R::RLIMIT_STACK,
        _ => return None,
    })
}

/// The highest hard limit any container asks for, per resource.
pub fn hard_limits_needed(containers: &[berth_config::Container]) -> Vec<(&'static str, u64)> {
    let mut needed: Vec<(&'static str, u64)> = Vec::new();
    for r in containers.iter().flat_map(|c| c.rlimits_in_force()) {
        match needed.iter_mut().find(|(name, _)| *name == r.name) {
            Some((_, hard)) => *hard = (*hard).max(r.hard),
            None => needed.push((r.name, r.hard)),
        }
    }
    needed
}

/// Raises PID 1's own hard limits (soft ones unchanged) to what the
/// containers ask for. A container's limits are set after it entered its
/// namespaces; in a user namespace raising a hard limit above the one it
/// inherited from PID 1 is refused (EPERM: it needs CAP_SYS_RESOURCE in the
/// node's namespace), so PID 1 holds the highest hard limit any container
/// needs and each container only lowers from there.
pub fn raise_hard_limits(containers: &[berth_config::Container]) {
    use nix::sys::resource::{getrlimit, setrlimit};
    for (name, hard) in hard_limits_needed(containers) {
        let Some(res) = resource(name) else { continue };
        let Ok((soft, current)) = getrlimit(res) else {
            continue;
        };
        if hard <= current {
            continue;
        }
        if let Err(e) = setrlimit(res, soft.min(hard), hard) {
            log::warn!("raise PID 1's hard {name} limit to {hard}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;
    use crate::os::RecordingOs;

    const EROFS: i64 = 0xE0F5_E1E2;

    fn overlay_calls(index: usize, path: &str) -> [String; 3] {
        let base = format!("/run/berth/overlay/{index}");
        [
            format!("mkdir -p {base}/upper"),
            format!("mkdir -p {base}/work"),
            format!(
                "mount overlay on {path} (overlay) \
                 lowerdir={path},upperdir={base}/upper,workdir={base}/work"
            ),
        ]
    }

    fn tmpfs_call(path: &str) -> String {
        format!("mount tmpfs on {path} (tmpfs) [nosuid,nodev] mode=0755")
    }

    fn read_only_root(paths: &[&str]) -> RecordingOs {
        let os = RecordingOs::new()
            .path("/", EROFS, 1)
            .path("/run", libc::TMPFS_MAGIC, 2);
        paths.iter().fold(os, |os, p| os.path(p, EROFS, 1))
    }

    fn system(overlay: &[&str], tmpfs: &[&str]) -> System {
        System {
            overlay: overlay.iter().map(|s| s.to_string()).collect(),
            tmpfs: tmpfs.iter().map(|s| s.to_string()).collect(),
            ..System::default()
        }
    }

    #[test]
    fn writable_paths_overlays_etc_then_each_path_then_tmpfs() {
        let os = read_only_root(&["/etc", "/opt", "/var/lib", "/srv"]);
        let sys = system(&["/opt", "/var/lib"], &["/srv", "/mnt/scratch"]);
        assert_eq!(writable_paths(&os, &sys), 5);
        let mut want: Vec<String> = Vec::new();
        want.extend(overlay_calls(0, "/etc"));
        want.extend(overlay_calls(1, "/opt"));
        want.extend(overlay_calls(2, "/var/lib"));
        want.push(tmpfs_call("/srv"));
        want.push("mkdir /mnt/scratch 0755".to_owned());
        want.push(tmpfs_call("/mnt/scratch"));
        assert_eq!(os.effects(), want);
    }

    #[test]
    fn writable_paths_skips_etc_run_and_tmp() {
        let os = read_only_root(&["/etc", "/opt", "/srv"]);
        let sys = system(
            &["/etc", "/run", "/opt", "/tmp"],
            &["/tmp", "/srv", "/run", "/etc"],
        );
        assert_eq!(writable_paths(&os, &sys), 3);
        let mut want: Vec<String> = Vec::new();
        want.extend(overlay_calls(0, "/etc"));
        want.extend(overlay_calls(1, "/opt"));
        want.push(tmpfs_call("/srv"));
        assert_eq!(os.effects(), want);
    }

    #[test]
    fn writable_paths_goes_on_after_a_failure() {
        let cases: Vec<(&str, &str, Vec<String>)> = vec![
            (
                "overlay mount",
                "mount overlay on /opt",
                [
                    overlay_calls(0, "/etc"),
                    overlay_calls(1, "/opt"),
                    overlay_calls(2, "/var/lib"),
                ]
                .concat()
                .into_iter()
                .chain([tmpfs_call("/srv")])
                .collect(),
            ),
            (
                "upper layer",
                "mkdir -p /run/berth/overlay/1/upper",
                [
                    overlay_calls(0, "/etc").to_vec(),
                    vec!["mkdir -p /run/berth/overlay/1/upper".to_owned()],
                    overlay_calls(2, "/var/lib").to_vec(),
                    vec![tmpfs_call("/srv")],
                ]
                .concat(),
            ),
            (
                "tmpfs mount",
                "mount tmpfs on /srv",
                [
                    overlay_calls(0, "/etc"),
                    overlay_calls(1, "/opt"),
                    overlay_calls(2, "/var/lib"),
                ]
                .concat()
                .into_iter()
                .chain([tmpfs_call("/srv")])
                .collect(),
            ),
        ];
        for (name, failing, want) in cases {
            let os =
                read_only_root(&["/etc", "/opt", "/var/lib", "/srv"]).fail(failing, Errno::EINVAL);
            let sys = system(&["/opt", "/var/lib"], &["/srv"]);
            assert_eq!(writable_paths(&os, &sys), 3, "{name}");
            assert_eq!(os.effects(), want, "{name}");
        }
    }

    #[test]
    fn sysctls_write_below_proc_sys_and_count_successes() {
        let entries: Vec<(String, String)> = [
            ("net.ipv4.ip_forward", "1"),
            ("kernel.panic", "10"),
            ("vm.no_such_knob", "3"),
            ("net.core.somaxconn", "4096"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let os = RecordingOs::new().fail("write /proc/sys/vm/no_such_knob", Errno::ENOENT);
        assert_eq!(sysctls(&os, &entries), 3);
        assert_eq!(
            os.effects(),
            [
                "write /proc/sys/net/ipv4/ip_forward = 1",
                "write /proc/sys/kernel/panic = 10",
                "write /proc/sys/vm/no_such_knob = 3",
                "write /proc/sys/net/core/somaxconn = 4096",
            ]
        );
    }

    #[test]
    fn hostname_sets_then_writes_etc_hostname() {
        let cases: Vec<(&str, RecordingOs, &[&str])> = vec![
            (
                "set",
                RecordingOs::new(),
                &["sethostname node-1", "write /etc/hostname = node-1\\n"],
            ),
            (
                "refused",
                RecordingOs::new().fail("sethostname", Errno::EPERM),
                &["sethostname node-1"],
            ),
        ];
        for (name, os, want) in cases {
            hostname(&os, "node-1");
            assert_eq!(os.effects(), want, "{name}");
        }
    }

    #[test]
    fn loopback_brings_lo_up() {
        let os = RecordingOs::new();
        loopback(&os);
        assert_eq!(os.effects(), ["interface up lo"]);
    }

    #[test]
    fn protect_pid1_sets_oom_score_and_dumpable() {
        let os = RecordingOs::new();
        protect_pid1_with(&os);
        assert_eq!(
            os.effects(),
            [
                "write /proc/self/oom_score_adj = -1000",
                "set dumpable true"
            ]
        );
    }

    #[test]
    fn hard_limits_cover_every_container() {
        use berth_config::{Container, Kind, Rlimit};
        let mut a = Container::new("a", std::path::PathBuf::from("r"));
        a.kind = Kind::Workload;
        let mut b = Container::new("b", std::path::PathBuf::from("r"));
        b.rlimits = vec![
            Rlimit {
                name: "nofile",
                soft: 10,
                hard: 1_000_000,
            },
            Rlimit {
                name: "memlock",
                soft: 1,
                hard: 2,
            },
        ];
        let needed = hard_limits_needed(&[a, b]);
        // a's default nofile (524288) is below b's.
        assert_eq!(needed, [("nofile", 1_000_000), ("memlock", 2)]);
        for name in berth_config::manifest_rlimits::NAMES {
            assert!(resource(name).is_some(), "{name}");
        }
    }
}
