//! Boot stage 1, on the real (read-only) root: writable areas, modules,
//! cgroups, node settings, the containers' plans ([`crate::plans`]), then
//! the supervisor. Each step logs what it did and how long it took.

use std::time::Instant;

use berth_config::network::{Network, NetworkMode};
use berth_config::plan::PlanError;
use berth_config::{layout, state_use, Container, Kind, Manifest, System};
use berth_net::node::Net;

use crate::console::uptime;

use crate::console::console;
use crate::fatal::Fatal;
use crate::os::{Os, RealOs};
use crate::{
    cgroups, disk, id_ranges, journal, modload, mounts, plans, supervise, system, volumes,
};

/// Runs stage 1 and then supervises forever; returns only on a fatal error.
pub fn run() -> Fatal {
    let os: &dyn Os = &RealOs;
    let t = Instant::now();
    match mounts::mount_table_with(os, mounts::STAGE1) {
        Ok(n) => log::info!(
            "stage 1: mounted {n} filesystem(s) in {} ms",
            t.elapsed().as_millis()
        ),
        Err(e) => return Fatal::new("stage 1 mounts", e),
    }
    system::protect_pid1_with(os);

    let manifest = match load_manifest() {
        Ok(m) => m,
        Err(f) => return f,
    };
    let sys = manifest
        .as_ref()
        .map(|m| m.system.clone())
        .unwrap_or_default();
    let workload_memory = node_settings(os, &sys);
    let state = state_slot(manifest.as_ref());

    let api = manifest.as_ref().and_then(|m| m.api.clone());
    let (network, mut containers) = match manifest {
        Some(m) => match containers(&m) {
            Ok(containers) => (m.network, containers),
            Err(f) => return f,
        },
        None => Default::default(),
    };
    id_ranges::settle(&mut containers);
    let net = start_network(&network, &sys, &containers);
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "berth".into());
    let on_disk = matches!(state.ready(), Some(disk::state::State::Disk { .. }));
    crate::remote::start(api.as_ref(), &hostname, on_disk);
    system::raise_hard_limits(&containers);
    supervise::run(containers, net, workload_memory, state)
}

/// STATE set up now when something needs it before the first container,
/// else left to the loop ([`disk::later`]).
fn state_slot(manifest: Option<&Manifest>) -> disk::later::Slot {
    let resolve = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let why = manifest.and_then(|m| state_use::needed_before_containers(m, &resolve));
    match why {
        Some(why) => {
            log::info!("stage 1: STATE is set up before the containers: {why}");
            disk::later::Slot::Ready(set_up_state())
        }
        None => {
            log::info!(
                "stage 1: STATE is set up after the boot's first launches: no container needs it before"
            );
            disk::later::Slot::Later(Box::new(set_up_state))
        }
    }
}

/// Mounts STATE (or a tmpfs in its place), prepares the volumes' folder
/// and starts the boot log there with the lines kept so far.
fn set_up_state() -> disk::state::State {
    let t = Instant::now();
    let state = disk::state::setup();
    volumes::setup_root();
    let history = console().take_history();
    if let Some(j) = journal::start(history) {
        console().attach_journal(j);
    }
    log::info!("stage 1: state: {} ms", t.elapsed().as_millis());
    state
}

/// The manifest, or `None` when it is invalid: a bad one must not stop the
/// node from coming up far enough to say what is wrong with it. Fatal only
/// when the root image cannot be read.
fn load_manifest() -> Result<Option<Manifest>, Fatal> {
    match Manifest::from_file(std::path::Path::new(layout::MANIFEST)) {
        Ok(m) => {
            for w in m.warnings() {
                log::warn!("manifest: {w}");
            }
            Ok(Some(m))
        }
        // An I/O error is the root image failing (on a verified root: a
        // block dm-verity rejected), not a bad manifest: nothing read from
        // that image can be trusted to run.
        Err(berth_config::LoadError::Read { path, source })
            if source.raw_os_error() == Some(libc::EIO) =>
        {
            Err(root_unreadable(&path, &source))
        }
        Err(e) => {
            report_manifest_error(&e);
            Ok(None)
        }
    }
}

/// The fatal error for a file of the root image that could not be read.
fn root_unreadable(path: &std::path::Path, source: &std::io::Error) -> Fatal {
    let verity = crate::dm::find_by_name(layout::VERITY_DEVICE);
    Fatal::msg(
        "read the root image",
        root_read_error(path, source, verity.as_deref()),
    )
}

/// The manifest's containers as their plans resolved them, in the
/// manifest's order. A plan that is missing or invalid means the root
/// image does not match its manifest: every such plan is reported and no
/// container starts, as with an invalid manifest (the node stays up and
/// says why). A plan the root image cannot give (EIO) is fatal, as for
/// the manifest.
fn containers(m: &Manifest) -> Result<Vec<Container>, Fatal> {
    let names = m.containers.iter().map(|c| c.name.as_str());
    let errors = match plans::load(names, std::path::Path::new(layout::BUNDLES)) {
        Ok(containers) => return Ok(containers),
        Err(errors) => errors,
    };
    if let Some(PlanError::Read { path, source, .. }) =
        errors.iter().find(|e| plans::is_read_failure(e))
    {
        return Err(root_unreadable(path, source));
    }
    for e in &errors {
        log::error!("{}", crate::fatal::chain(e));
    }
    log::error!(
        "{} container plan(s) missing or invalid; starting no containers",
        errors.len()
    );
    Ok(Vec::new())
}

/// Kernel modules, writable paths, cgroups, hostname and sysctls; the
/// `memory.max` given to workloads, if any.
fn node_settings(os: &dyn Os, sys: &System) -> Option<u64> {
    step("kernel modules", || {
        let mut names: Vec<&str> = layout::STAGE1_MODULES.to_vec();
        names.extend(sys.modules.iter().map(String::as_str));
        match modload::modules_dir().and_then(|d| modload::load(&d, &names)) {
            Ok(n) => format!("{n} loaded"),
            Err(e) => {
                log::error!("load kernel modules: {}", crate::fatal::chain(&e));
                "failed".into()
            }
        }
    });
    step("writable paths", || {
        format!("{} mounted", system::writable_paths(os, sys))
    });
    let mut workload_memory = None;
    step("cgroups", || match cgroups::setup(os) {
        Ok(ctrls) => {
            if ctrls.iter().any(|c| c == "memory") {
                workload_memory = cgroups::limit_workloads(os, sys.reserved_memory);
            }
            format!("controllers {}", ctrls.join(" "))
        }
        Err(e) => {
            log::error!("cgroup setup: {}", crate::fatal::chain(&e));
            "failed".into()
        }
    });
    step("node settings", || {
        if let Some(h) = &sys.hostname {
            system::hostname(os, h);
        }
        system::loopback(os);
        let defaults: Vec<(String, String)> = layout::NODE_SYSCTLS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let node = system::sysctls(os, &defaults);
        format!(
            "{} node default(s), {} sysctl(s)",
            node,
            system::sysctls(os, &sys.sysctl)
        )
    });
    workload_memory
}

/// Starts the network (DHCP first) and loads the bridge modules when a
/// workload uses the bridge.
fn start_network(network: &Network, sys: &System, containers: &[Container]) -> Net {
    let t = Instant::now();
    let on_bridge = containers
        .iter()
        .any(|c| c.kind == Kind::Workload && c.network == NetworkMode::Bridge);
    // DHCP goes out first: its answers arrive while the bridge modules
    // load (hundreds of milliseconds under emulation).
    let net = Net::start(network, sys.hostname.clone(), containers, uptime());
    if on_bridge {
        let loaded = modload::modules_dir().and_then(|d| modload::load(&d, layout::BRIDGE_MODULES));
        if let Err(e) = loaded {
            log::error!("load bridge modules: {}", crate::fatal::chain(&e));
        }
    }
    log::info!(
        "stage 1: network: started{} ({} ms)",
        if on_bridge {
            ", bridge modules loaded"
        } else {
            ""
        },
        t.elapsed().as_millis()
    );
    net
}

fn step(name: &str, f: impl FnOnce() -> String) {
    let t = Instant::now();
    let what = f();
    log::info!("stage 1: {name}: {what} ({} ms)", t.elapsed().as_millis());
}

/// The fatal message for a file of the root image that could not be read.
fn root_read_error(
    path: &std::path::Path,
    error: &std::io::Error,
    verity: Option<&std::path::Path>,
) -> String {
    match verity {
        Some(dev) => format!(
            "read {} from the verified root (dm-verity, {}): {error}",
            path.display(),
            dev.display()
        ),
        None => format!(
            "read {} from the root image (not verified): {error}",
            path.display()
        ),
    }
}

fn report_manifest_error(e: &berth_config::LoadError) {
    match e {
        berth_config::LoadError::Invalid { path, errors } => {
            log::error!(
                "manifest {} is invalid ({} error(s)); starting no containers",
                path.display(),
                errors.0.len()
            );
            for err in &errors.0 {
                log::error!("manifest: {err}");
            }
        }
        other => log::error!("{}; starting no containers", crate::fatal::chain(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn root_read_errors_name_the_device() {
        let eio = std::io::Error::from_raw_os_error(libc::EIO);
        let manifest = Path::new(layout::MANIFEST);
        let table = [
            (
                Some(Path::new("/dev/dm-0")),
                "read /etc/berth/manifest.toml from the verified root (dm-verity, /dev/dm-0): Input/output error (os error 5)",
            ),
            (
                None,
                "read /etc/berth/manifest.toml from the root image (not verified): Input/output error (os error 5)",
            ),
        ];
        for (device, want) in table {
            assert_eq!(root_read_error(manifest, &eio, device), want);
        }
    }
}
