//! Node settings from the manifest's `[system]` table and the writable
//! areas of the read-only root.

use std::fs;
use std::path::Path;

use berth_config::layout;
use berth_config::System;
use nix::mount::MsFlags;

use crate::mounts::{mount_one, MountError};

/// Overlays `/etc` and the manifest's `system.overlay` paths with a tmpfs
/// upper layer under `/run/berth/overlay/N`, and mounts a tmpfs on each
/// `system.tmpfs` path. A failure of one path is logged and the rest go on:
/// containers may not need it.
pub fn writable_paths(sys: &System) -> usize {
    let mut overlays: Vec<&str> = vec!["/etc"];
    overlays.extend(
        sys.overlay
            .iter()
            .map(String::as_str)
            .filter(|p| !matches!(*p, "/etc" | "/run" | "/tmp")),
    );
    let mut done = 0;
    for (i, path) in overlays.iter().enumerate() {
        match overlay(i, path) {
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

fn overlay(index: usize, path: &str) -> Result<(), MountError> {
    let base = format!("{}/overlay/{index}", layout::RUN_DIR);
    let (upper, work) = (format!("{base}/upper"), format!("{base}/work"));
    for d in [&upper, &work] {
        fs::create_dir_all(d).map_err(|e| {
            MountError::MountPoint(
                d.clone(),
                nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
    }
    let data = format!("lowerdir={path},upperdir={upper},workdir={work}");
    mount_one("overlay", path, "overlay", MsFlags::empty(), Some(&data))
}

/// Sets the hostname (and `/etc/hostname`, on the writable `/etc`).
pub fn hostname(name: &str) {
    match nix::unistd::sethostname(name) {
        Ok(()) => {
            let _ = fs::write("/etc/hostname", format!("{name}\n"));
            log::info!("hostname set to {name}");
        }
        Err(e) => log::error!("system.hostname: set {name:?}: {e}"),
    }
}

/// Writes each `system.sysctl` entry below `/proc/sys`.
pub fn sysctls(entries: &[(String, String)]) -> usize {
    let mut done = 0;
    for (key, value) in entries {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        match fs::write(&path, value) {
            Ok(()) => done += 1,
            Err(e) => log::error!(
                "system.sysctl.{key:?}: write {value:?} to {}: {e}",
                path.display()
            ),
        }
    }
    done
}

/// Brings the loopback interface up.
pub fn loopback() {
    if let Err(e) = crate::sys::interface_up("lo") {
        log::error!("bring up lo: {e}");
    }
}

/// Protects PID 1 from the OOM killer and keeps it dumpable; libcontainer
/// changes both on `/proc/self` while it launches a container.
pub fn protect_pid1() {
    if let Err(e) = fs::write("/proc/self/oom_score_adj", "-1000") {
        log::warn!("set PID 1's oom_score_adj: {e}");
    }
    let _ = nix::sys::prctl::set_dumpable(true);
}
