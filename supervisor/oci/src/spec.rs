//! The OCI runtime spec (`config.json`) of a container, from its manifest
//! entry and, for a container made from an OCI image, the image's config.
//!
//! Starts from oci-spec's defaults (the runc-style mount set, masked and
//! read-only `/proc` paths, `no_new_privs`) and applies the image config,
//! then the manifest over it: argv, env, working dir, user, and the
//! namespace set of the container's kind. The image builder writes the
//! result into the bundle at build time; PID 1 only reads it.
//!
//! Confinement (see `docs/security.md`): every container but a privileged
//! one gets Docker's default capabilities less `CAP_NET_RAW`
//! ([`crate::capabilities`]) plus a host container's extra ones,
//! `no_new_privs`, the default seccomp profile
//! ([`crate::seccomp`]), masked and read-only `/proc` paths and a read-only
//! `/sys`; cgroup limits come from [`crate::limits`]. A privileged host
//! container gets every capability, no seccomp filter, no masked or
//! read-only paths, writable `/sys` and `/sys/fs/cgroup`, and the node's
//! `/dev` at [`PRIVILEGED_NODE_DEV`]. Not at `/dev` itself: after the
//! spec's mounts libcontainer 0.7 `mknod`s the standard devices and
//! creates `/dev/fd`, `/dev/ptmx` (deleting what is there) and friends in
//! the container's `/dev`, which would fail on, or rewrite, the node's
//! devtmpfs.
//!
//! `userns = true` adds a user namespace whose ids 0-65535 are the host ids
//! the manifest assigned ([`berth_config::UserNamespace`]); the cgroup path
//! stays absolute. A user namespace cannot mount sysfs unless it also owns
//! the network namespace, so a `network = "host"` workload with `userns`
//! gets the node's `/sys` bind-mounted read-only instead (as runc does for
//! rootless containers). The image's files, owned by host root, show up as
//! `nobody` (65534) inside: readable where world-readable, never writable.
//!
//! How the manifest overrides an image (Kubernetes' rules for command and
//! args): `command` replaces the Entrypoint *and* drops the image's Cmd;
//! `args` alone replaces the Cmd; `env` entries replace the image's of the
//! same name and add the others; `workdir` other than `/` replaces the
//! WorkingDir. ExposedPorts and StopSignal become the annotations the OCI
//! image spec's conversion rules name, for other tools; PID 1 takes the
//! stop signal from the container's plan (`berth_config::plan`).

use std::path::{Component, Path, PathBuf};

use berth_config::layout;
use berth_config::network::NetworkMode;
use berth_config::{BindMount, Container, Kind, UserNamespace};
use oci_spec::runtime::{
    Linux, LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, Mount,
    MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use crate::{capabilities, limits, seccomp};

/// The default `PATH` inside containers.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Annotation carrying an image's ExposedPorts (OCI image-spec,
/// conversion.md), comma-separated (`80/tcp,443/tcp`).
pub const ANNOTATION_EXPOSED_PORTS: &str = "org.opencontainers.image.exposedPorts";
/// Annotation carrying an image's StopSignal.
pub const ANNOTATION_STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";

/// Masked on top of oci-spec's list, as moby does: the RAPL energy
/// counters leak what other code on the node computes (CVE-2020-8694,
/// "PLATYPUS"). A path the kernel lacks is skipped.
const EXTRA_MASKED_PATHS: &[&str] = &["/sys/devices/virtual/powercap"];

/// Where a privileged container sees the node's `/dev` (see the module
/// docs for why not at `/dev`).
pub const PRIVILEGED_NODE_DEV: &str = "/dev/host";

/// What an image's config contributes to the spec, already resolved
/// against the image's files (the user's numeric ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` pairs split at the first `=`, in image order.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// uid, gid and additional gids.
    pub user: Option<(u32, u32, Vec<u32>)>,
    /// `80/tcp`, sorted.
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
}

/// Building a spec failed.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("build mount {destination} of container {container}")]
    Mount {
        container: String,
        destination: String,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("container {0}: the default spec lacks a {1} section")]
    MissingSection(String, &'static str),
    #[error("build the {what} of container {container}")]
    Build {
        container: String,
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

/// The cgroup (absolute, below the cgroup2 root) a container runs in.
/// Absolute, because libcontainer reads a relative path as a systemd slice
/// name when a user namespace is involved.
pub fn cgroup_path(c: &Container) -> String {
    let parent = match c.kind {
        Kind::Host => layout::CGROUP_SYSTEM,
        Kind::Workload => layout::CGROUP_WORKLOADS,
    };
    format!("/{parent}/{}", c.name)
}

/// The container's process: argv, environment, working directory, user,
/// capabilities, `no_new_privs`, rlimits, OOM score.
fn fill_process(
    c: &Container,
    image_config: &ImageConfig,
    process: &mut oci_spec::runtime::Process,
) {
    process.set_args(Some(argv(c, image_config)));
    process.set_env(Some(environment(c, image_config)));
    let workdir = match (&image_config.workdir, c.workdir.as_str()) {
        (Some(w), "/") if !w.is_empty() => w.clone(),
        _ => c.workdir.clone(),
    };
    process.set_cwd(PathBuf::from(workdir));
    // The manifest's `user` replaces the image's, supplementary groups
    // included (they were the image user's).
    let user = match c.user {
        Some(u) => Some((u.uid, u.gid, Vec::new())),
        None => image_config.user.clone(),
    };
    if let Some((uid, gid, groups)) = user {
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        user.set_additional_gids((!groups.is_empty()).then_some(groups));
        process.set_user(user);
    }
    // Containers must not inherit PID 1's -1000: the OOM killer has to be
    // able to pick a container over the init.
    process.set_oom_score_adj(Some(0));
    process.set_capabilities(Some(capabilities::linux_capabilities(c)));
    // As Docker's --privileged: a privileged container may run setuid
    // programs that gain what it could take anyway.
    process.set_no_new_privileges(Some(!c.privileged));
    process.set_rlimits(Some(rlimits(c)));
}

/// The runtime spec for one container made from a folder.
pub fn build_spec(c: &Container) -> Result<Spec, SpecError> {
    build_spec_with_image(c, None)
}

/// The runtime spec for one container, over its image's config if it has
/// one.
pub fn build_spec_with_image(
    c: &Container,
    image: Option<&ImageConfig>,
) -> Result<Spec, SpecError> {
    let mut spec = Spec::default();
    let empty = ImageConfig::default();
    let image_config = image.unwrap_or(&empty);
    // `/`: the overlay PID 1 assembles for each run (the image under a
    // bounded tmpfs), or with `readonly = true` the image itself.
    if !c.readonly {
        if let Some(root) = spec.root_mut() {
            root.set_path(PathBuf::from(layout::container_root(&c.name)));
            root.set_readonly(Some(false));
        }
    }

    let process = spec
        .process_mut()
        .as_mut()
        .ok_or_else(|| SpecError::MissingSection(c.name.clone(), "process"))?;
    fill_process(c, image_config, process);

    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| SpecError::MissingSection(c.name.clone(), "linux"))?;
    linux.set_cgroups_path(Some(PathBuf::from(cgroup_path(c))));
    // Host containers share the node's network and UTS namespaces, a
    // workload with `network = "host"` the network one only; `host-pid`
    // adds the PID namespace: the container then sees (and, with CAP_KILL,
    // may signal) PID 1, as busybox `poweroff` does.
    let host = c.kind == Kind::Host;
    let own_net = network_mode(c).own_namespace();
    let host_pid = c.host_pid;
    if let Some(ns) = linux.namespaces_mut() {
        ns.retain(|n| match n.typ() {
            LinuxNamespaceType::Network => own_net,
            LinuxNamespaceType::Uts => !host,
            LinuxNamespaceType::Pid => !host_pid,
            _ => true,
        });
    }
    confine(c, linux)?;

    match c.kind {
        Kind::Host => spec.set_hostname(None),
        Kind::Workload => spec.set_hostname(Some(c.name.clone())),
    };

    // `/` is read-only; give every container a writable, size-bounded /tmp.
    let tmp = tmpfs_mount(
        &c.name,
        "/tmp",
        &["nosuid", "nodev", "mode=1777", "size=65536k"],
    )?;
    let mut extra = vec![tmp];
    if c.init {
        extra.push(bind_mount(
            &c.name,
            &BindMount {
                source: layout::BERTH_BIN_DIR.to_owned(),
                destination: layout::CONTAINER_BERTH_DIR.to_owned(),
                readonly: true,
            },
        )?);
    }
    extra.extend(network_files(c)?);
    if c.privileged {
        extra.push(bind_mount(
            &c.name,
            &BindMount {
                source: "/dev".to_owned(),
                destination: PRIVILEGED_NODE_DEV.to_owned(),
                readonly: false,
            },
        )?);
    }
    for b in &c.mounts {
        extra.push(bind_mount(&c.name, b)?);
    }
    for v in &c.volumes {
        extra.push(volume_mount(&c.name, v)?);
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            adjust_default_mount(c, own_net, m)?;
        }
        mounts.extend(extra);
    }
    let mut annotations = std::collections::HashMap::new();
    if !image_config.exposed_ports.is_empty() {
        annotations.insert(
            ANNOTATION_EXPOSED_PORTS.to_owned(),
            image_config.exposed_ports.join(","),
        );
    }
    if let Some(s) = &image_config.stop_signal {
        annotations.insert(ANNOTATION_STOP_SIGNAL.to_owned(), s.clone());
    }
    if !annotations.is_empty() {
        spec.set_annotations(Some(annotations));
    }
    Ok(spec)
}

/// The container's rlimits ([`Container::rlimits_in_force`]) in the spec's
/// form; libcontainer sets them in the container's process and in every
/// process berth starts in it.
fn rlimits(c: &Container) -> Vec<PosixRlimit> {
    c.rlimits_in_force()
        .into_iter()
        .filter_map(|r| {
            let name = format!("RLIMIT_{}", r.name.to_ascii_uppercase());
            // Every manifest name is one of oci-spec's (a table test says so).
            let typ = name.parse::<PosixRlimitType>().ok()?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(r.soft)
                .hard(r.hard)
                .build()
                .ok()
        })
        .collect()
}

/// The `linux` part of a container's confinement: its user namespace,
/// seccomp profile, cgroup limits and masked paths (see the module docs).
fn confine(c: &Container, linux: &mut Linux) -> Result<(), SpecError> {
    let build_error = |what: &'static str| {
        move |source| SpecError::Build {
            container: c.name.clone(),
            what,
            source,
        }
    };
    if let Some(range) = user_namespace(c) {
        let mut user_ns = LinuxNamespace::default();
        user_ns.set_typ(LinuxNamespaceType::User);
        linux
            .namespaces_mut()
            .get_or_insert_with(Vec::new)
            .push(user_ns);
        let map = id_mapping(range).map_err(build_error("user namespace id mapping"))?;
        linux.set_uid_mappings(Some(vec![map]));
        linux.set_gid_mappings(Some(vec![map]));
    }
    let resources = linux.resources().clone().unwrap_or_default();
    linux.set_resources(Some(limits::apply(c, resources)));
    if c.privileged {
        linux.set_seccomp(None);
        linux.set_masked_paths(Some(Vec::new()));
        linux.set_readonly_paths(Some(Vec::new()));
    } else {
        let granted: Vec<&str> = c.capabilities.iter().map(String::as_str).collect();
        let profile = seccomp::profile(&granted).map_err(build_error("seccomp profile"))?;
        linux.set_seccomp(Some(profile));
        let masked = linux.masked_paths_mut().get_or_insert_with(Vec::new);
        masked.extend(EXTRA_MASKED_PATHS.iter().map(|p| (*p).to_owned()));
    }
    Ok(())
}

/// The user namespace of a workload with `userns = true`.
fn user_namespace(c: &Container) -> Option<UserNamespace> {
    match c.kind {
        Kind::Workload => c.userns,
        Kind::Host => None,
    }
}

/// Container ids from 0 onto the range's host ids.
fn id_mapping(range: UserNamespace) -> Result<LinuxIdMapping, oci_spec::OciSpecError> {
    LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(range.host_id)
        .size(range.size)
        .build()
}

/// Adapts one of oci-spec's default mounts: `/sys` and `/sys/fs/cgroup`
/// writable for a privileged container; `/sys` bound from the node, read-
/// only, for a user namespace that does not own its network namespace
/// (sysfs(5) checks the network namespace's owner).
fn adjust_default_mount(c: &Container, own_net: bool, m: &mut Mount) -> Result<(), SpecError> {
    let destination = m.destination().clone();
    let typ = m.typ().clone();
    match (typ.as_deref(), destination.to_str()) {
        (Some("sysfs" | "cgroup"), _) if c.privileged => {
            if let Some(options) = m.options_mut() {
                options.retain(|o| o != "ro");
            }
        }
        (Some("sysfs"), Some("/sys")) if user_namespace(c).is_some() && !own_net => {
            *m = MountBuilder::default()
                .destination("/sys")
                .typ("bind")
                .source("/sys")
                .options(
                    ["rbind", "nosuid", "noexec", "nodev", "ro"]
                        .map(String::from)
                        .to_vec(),
                )
                .build()
                .map_err(|source| SpecError::Mount {
                    container: c.name.clone(),
                    destination: "/sys".to_owned(),
                    source,
                })?;
        }
        _ => {}
    }
    Ok(())
}

/// The environment: a default PATH and HOME, the image's, then the
/// manifest's; a later entry replaces an earlier one of the same name in
/// place.
fn environment(c: &Container, image: &ImageConfig) -> Vec<String> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".to_owned(),
            DEFAULT_PATH.trim_start_matches("PATH=").to_owned(),
        ),
        ("HOME".to_owned(), "/root".to_owned()),
    ];
    for (k, v) in image.env.iter().chain(&c.env) {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The container's argv: the manifest's over the image's (see the module
/// docs), under `berth init` when `init = true` (berth itself, bind-mounted
/// read-only from the root image, then reaps the command's orphans and
/// forwards signals to it).
fn argv(c: &Container, image: &ImageConfig) -> Vec<String> {
    let (command, args) = if c.command.is_empty() {
        let args = if c.args.is_empty() {
            &image.cmd
        } else {
            &c.args
        };
        (&image.entrypoint, args)
    } else {
        (&c.command, &c.args)
    };
    let argv: Vec<String> = command.iter().chain(args).cloned().collect();
    if !c.init {
        return argv;
    }
    let mut wrapped = vec![
        format!("{}/berth", layout::CONTAINER_BERTH_DIR),
        "init".to_owned(),
        "--".to_owned(),
    ];
    wrapped.extend(argv);
    wrapped
}

/// `/etc/hosts` and `/etc/resolv.conf`, read-only: the node's own for a
/// container on the node's network, otherwise the pair PID 1 writes for
/// this container (its own name and address, and its neighbours' on the
/// bridge; the node's name servers).
fn network_files(c: &Container) -> Result<Vec<Mount>, SpecError> {
    layout::NETWORK_FILES
        .iter()
        .map(|dest| {
            let source = match network_mode(c) {
                NetworkMode::Host => (*dest).to_owned(),
                NetworkMode::None | NetworkMode::Bridge => {
                    let file = dest.rsplit('/').next().unwrap_or(dest);
                    layout::container_net_file(&c.name, file)
                }
            };
            bind_mount(
                &c.name,
                &BindMount {
                    source,
                    destination: (*dest).to_owned(),
                    readonly: true,
                },
            )
        })
        .collect()
}

/// A host container is on the node's network whatever its `network` says
/// (the manifest parser refuses anything else).
fn network_mode(c: &Container) -> NetworkMode {
    match c.kind {
        Kind::Host => NetworkMode::Host,
        Kind::Workload => c.network,
    }
}

/// A recursive bind mount of a node path (host containers only; the
/// manifest validator refuses them for workloads).
fn bind_mount(container: &str, b: &BindMount) -> Result<Mount, SpecError> {
    let mode = if b.readonly { "ro" } else { "rw" };
    MountBuilder::default()
        .destination(&b.destination)
        .typ("bind")
        .source(&b.source)
        .options(vec!["rbind".to_owned(), mode.to_owned()])
        .build()
        .map_err(|source| SpecError::Mount {
            container: container.to_owned(),
            destination: b.destination.clone(),
            source,
        })
}

/// A named volume: its folder under [`layout::VOLUMES`], which PID 1
/// makes (and checks is a folder, not a link) before the launch. Not
/// recursive: a volume holds no mounts. `nosuid`, `nodev`; programs may
/// run from it.
fn volume_mount(container: &str, v: &berth_config::Volume) -> Result<Mount, SpecError> {
    let mode = if v.readonly { "ro" } else { "rw" };
    MountBuilder::default()
        .destination(&v.destination)
        .typ("bind")
        .source(Path::new(layout::VOLUMES).join(&v.name))
        .options(
            ["bind", "nosuid", "nodev", mode]
                .iter()
                .map(|o| (*o).to_owned())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(|source| SpecError::Mount {
            container: container.to_owned(),
            destination: v.destination.clone(),
            source,
        })
}

fn tmpfs_mount(container: &str, destination: &str, options: &[&str]) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
        .map_err(|source| SpecError::Mount {
            container: container.to_owned(),
            destination: destination.to_owned(),
            source,
        })
}

/// Directories that must already exist in a container's rootfs, relative to
/// it: every mount destination not nested in another mount (those appear at
/// run time inside their parent's filesystem) and the working directory. The
/// rootfs is read-only in the root image, so nothing can create them later.
/// The network files ([`layout::NETWORK_FILES`]) are file mount points,
/// left out here: see [`rootfs_file_mount_points`].
pub fn rootfs_mount_points(spec: &Spec) -> Vec<PathBuf> {
    let destinations: Vec<&Path> = spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|m| m.destination().as_path())
        .collect();
    let mut out: Vec<PathBuf> = destinations
        .iter()
        .filter(|d| !destinations.iter().any(|p| p != *d && d.starts_with(p)))
        .filter(|d| !is_network_file(d))
        .map(|d| relative(d))
        .collect();
    if let Some(p) = spec.process() {
        out.push(relative(p.cwd()));
    }
    out.retain(|p| !p.as_os_str().is_empty());
    out.sort();
    out.dedup();
    out
}

/// Files that must exist in a container's rootfs (relative to it) because
/// a file is bind-mounted over them.
pub fn rootfs_file_mount_points(spec: &Spec) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|m| m.destination().as_path())
        .filter(|d| is_network_file(d))
        .map(relative)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn is_network_file(p: &Path) -> bool {
    layout::NETWORK_FILES.iter().any(|f| Path::new(f) == p)
}

fn relative(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

#[cfg(test)]
mod security_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn container(kind: Kind) -> Container {
        Container {
            kind,
            command: vec!["/bin/httpd".into(), "-f".into()],
            args: vec!["-p".into(), "80".into()],
            env: vec![("MODE".into(), "prod".into())],
            workdir: "/srv/www".into(),
            ..Container::new("web", "rootfs")
        }
    }

    fn namespaces(spec: &Spec) -> Vec<LinuxNamespaceType> {
        let linux = spec.linux().as_ref().expect("linux section");
        linux
            .namespaces()
            .as_ref()
            .expect("namespaces")
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    #[test]
    fn workload_gets_own_namespaces_and_cgroup() {
        let spec = build_spec(&container(Kind::Workload)).expect("spec");
        let ns = namespaces(&spec);
        for t in [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Ipc,
        ] {
            assert!(ns.contains(&t), "missing {t:?}");
        }
        assert_eq!(spec.hostname().as_deref(), Some("web"));
        let linux = spec.linux().as_ref().expect("linux");
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth/workloads/web"))
        );
    }

    #[test]
    fn host_shares_network_and_uts() {
        let spec = build_spec(&container(Kind::Host)).expect("spec");
        let ns = namespaces(&spec);
        assert!(!ns.contains(&LinuxNamespaceType::Network));
        assert!(!ns.contains(&LinuxNamespaceType::Uts));
        assert!(ns.contains(&LinuxNamespaceType::Pid));
        assert_eq!(spec.hostname(), &None);
        let linux = spec.linux().as_ref().expect("linux");
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth/system/web"))
        );
    }

    #[test]
    fn network_modes_pick_namespace_and_files() {
        let source_of = |spec: &Spec, dest: &str| -> Option<String> {
            spec.mounts()
                .as_deref()?
                .iter()
                .find(|m| m.destination() == Path::new(dest))
                .and_then(|m| m.source().as_ref())
                .map(|s| s.display().to_string())
        };
        // (kind, network, own network namespace, source of /etc/hosts)
        let rows = [
            (
                Kind::Workload,
                NetworkMode::Bridge,
                true,
                "/run/berth-net/web/hosts",
            ),
            (
                Kind::Workload,
                NetworkMode::None,
                true,
                "/run/berth-net/web/hosts",
            ),
            (Kind::Workload, NetworkMode::Host, false, "/etc/hosts"),
            (Kind::Host, NetworkMode::Host, false, "/etc/hosts"),
            (Kind::Host, NetworkMode::Bridge, false, "/etc/hosts"),
        ];
        for (kind, network, own, hosts) in rows {
            let c = Container {
                network,
                ..container(kind)
            };
            let spec = build_spec(&c).expect("spec");
            let ns = namespaces(&spec);
            let row = format!("{kind:?} {network:?}");
            assert_eq!(ns.contains(&LinuxNamespaceType::Network), own, "{row}");
            assert_eq!(
                ns.contains(&LinuxNamespaceType::Uts),
                kind == Kind::Workload,
                "{row}"
            );
            assert_eq!(
                source_of(&spec, "/etc/hosts").as_deref(),
                Some(hosts),
                "{row}"
            );
            let resolv = source_of(&spec, "/etc/resolv.conf").expect("resolv.conf mount");
            assert!(resolv.ends_with("resolv.conf"), "{row}: {resolv}");
            assert_eq!(
                rootfs_file_mount_points(&spec),
                vec![PathBuf::from("etc/hosts"), PathBuf::from("etc/resolv.conf")],
                "{row}"
            );
            assert!(
                !rootfs_mount_points(&spec).contains(&PathBuf::from("etc/hosts")),
                "{row}: a file mount point is not a directory"
            );
        }
    }

    #[test]
    fn init_wraps_the_command_and_mounts_berth() {
        let mut c = container(Kind::Workload);
        c.init = true;
        let spec = build_spec(&c).expect("spec");
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .expect("args");
        assert_eq!(
            args,
            [
                "/.berth/berth",
                "init",
                "--",
                "/bin/httpd",
                "-f",
                "-p",
                "80"
            ]
            .map(String::from)
        );
        let mounts = spec.mounts().as_ref().expect("mounts");
        let m = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/.berth"))
            .expect("/.berth");
        assert_eq!(m.source().as_deref(), Some(Path::new("/usr/lib/berth/bin")));
        assert_eq!(
            m.options().as_deref(),
            Some(&["rbind".to_owned(), "ro".to_owned()][..])
        );
        assert!(rootfs_mount_points(&spec).contains(&PathBuf::from(".berth")));
    }

    #[test]
    fn rlimits_from_manifest_with_the_default_open_files() {
        use berth_config::manifest_rlimits::{NAMES, UNLIMITED};
        use berth_config::Rlimit;
        let plain = container(Kind::Workload);
        let spec = build_spec(&plain).expect("spec");
        let limits = spec
            .process()
            .as_ref()
            .and_then(|p| p.rlimits().clone())
            .unwrap_or_default();
        let got: Vec<(PosixRlimitType, u64, u64)> = limits
            .iter()
            .map(|r| (r.typ(), r.soft(), r.hard()))
            .collect();
        assert_eq!(got, [(PosixRlimitType::RlimitNofile, 1024, 524_288)]);

        // Every name the manifest accepts maps to the kernel's resource.
        let mut all = container(Kind::Host);
        all.rlimits = NAMES
            .iter()
            .map(|name| Rlimit {
                name,
                soft: 7,
                hard: UNLIMITED,
            })
            .collect();
        let spec = build_spec(&all).expect("spec");
        let limits = spec
            .process()
            .as_ref()
            .and_then(|p| p.rlimits().clone())
            .unwrap_or_default();
        assert_eq!(limits.len(), NAMES.len(), "nofile set, so no default added");
        let numbers: Vec<u32> = limits.iter().map(|r| r.typ() as u32).collect();
        let want: Vec<u32> = [
            libc_rlimit::AS,
            libc_rlimit::CORE,
            libc_rlimit::CPU,
            libc_rlimit::DATA,
            libc_rlimit::FSIZE,
            libc_rlimit::LOCKS,
            libc_rlimit::MEMLOCK,
            libc_rlimit::MSGQUEUE,
            libc_rlimit::NICE,
            libc_rlimit::NOFILE,
            libc_rlimit::NPROC,
            libc_rlimit::RSS,
            libc_rlimit::RTPRIO,
            libc_rlimit::RTTIME,
            libc_rlimit::SIGPENDING,
            libc_rlimit::STACK,
        ]
        .to_vec();
        assert_eq!(numbers, want);
        assert!(limits.iter().all(|r| r.soft() == 7 && r.hard() == u64::MAX));
    }

    /// The kernel's resource numbers (asm-generic/resource.h), which
    /// libcontainer passes as `typ() as u32`.
    mod libc_rlimit {
        pub const CPU: u32 = 0;
        pub const FSIZE: u32 = 1;
        pub const DATA: u32 = 2;
        pub const STACK: u32 = 3;
        pub const CORE: u32 = 4;
        pub const RSS: u32 = 5;
        pub const NPROC: u32 = 6;
        pub const NOFILE: u32 = 7;
        pub const MEMLOCK: u32 = 8;
        pub const AS: u32 = 9;
        pub const LOCKS: u32 = 10;
        pub const SIGPENDING: u32 = 11;
        pub const MSGQUEUE: u32 = 12;
        pub const NICE: u32 = 13;
        pub const RTPRIO: u32 = 14;
        pub const RTTIME: u32 = 15;
    }

    #[test]
    fn host_pid_shares_the_pid_namespace() {
        let mut c = container(Kind::Host);
        c.host_pid = true;
        let ns = namespaces(&build_spec(&c).expect("spec"));
        assert!(!ns.contains(&LinuxNamespaceType::Pid));
        assert!(ns.contains(&LinuxNamespaceType::Mount));
    }

    #[test]
    fn process_comes_from_manifest() {
        let spec = build_spec(&container(Kind::Workload)).expect("spec");
        let p = spec.process().as_ref().expect("process");
        assert_eq!(
            p.args().as_deref(),
            Some(&["/bin/httpd", "-f", "-p", "80"].map(String::from)[..])
        );
        let env = p.env().as_ref().expect("env");
        assert!(env.contains(&"MODE=prod".to_owned()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!(p.cwd(), Path::new("/srv/www"));
        assert_eq!(p.oom_score_adj(), Some(0));
        // `/` is the per-run overlay, or the read-only image itself.
        let root = spec.root().as_ref().expect("root");
        assert_eq!(root.path(), Path::new("/run/berth-roots/web"));
        assert_eq!(root.readonly(), Some(false));
        let c = Container {
            readonly: true,
            ..container(Kind::Workload)
        };
        let spec = build_spec(&c).expect("spec");
        let root = spec.root().as_ref().expect("root");
        assert_eq!(root.path(), Path::new("rootfs"));
        assert_eq!(root.readonly(), Some(true));
    }

    #[test]
    fn image_config_under_manifest_overrides() {
        let image = ImageConfig {
            entrypoint: vec!["/docker-entrypoint.sh".into()],
            cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            env: vec![
                ("PATH".into(), "/usr/sbin:/usr/bin".into()),
                ("NGINX_VERSION".into(), "1.22".into()),
                ("MODE".into(), "image".into()),
            ],
            workdir: Some("/usr/share/nginx".into()),
            user: Some((101, 101, vec![5])),
            exposed_ports: vec!["443/tcp".into(), "80/tcp".into()],
            stop_signal: Some("SIGQUIT".into()),
        };
        let bare = |c: Container| Container {
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            workdir: "/".into(),
            ..c
        };
        let args_of = |c: &Container| -> Vec<String> {
            let spec = build_spec_with_image(c, Some(&image)).expect("spec");
            spec.process()
                .as_ref()
                .and_then(|p| p.args().clone())
                .unwrap_or_default()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // (manifest command, manifest args, argv)
        let rows: &[(&[&str], &[&str], &[&str])] = &[
            (
                &[],
                &[],
                &["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"],
            ),
            (
                &[],
                &["nginx", "-t"],
                &["/docker-entrypoint.sh", "nginx", "-t"],
            ),
            (&["/bin/sh"], &[], &["/bin/sh"]),
            (
                &["/bin/sh", "-c"],
                &["echo hi"],
                &["/bin/sh", "-c", "echo hi"],
            ),
        ];
        for (command, args, want) in rows {
            let c = Container {
                command: s(command),
                args: s(args),
                ..bare(container(Kind::Workload))
            };
            assert_eq!(args_of(&c), s(want), "command {command:?} args {args:?}");
        }

        let c = Container {
            env: vec![("MODE".into(), "prod".into()), ("EXTRA".into(), "1".into())],
            ..bare(container(Kind::Workload))
        };
        let spec = build_spec_with_image(&c, Some(&image)).expect("spec");
        let p = spec.process().as_ref().expect("process");
        assert_eq!(
            p.env().clone().unwrap_or_default(),
            s(&[
                "PATH=/usr/sbin:/usr/bin",
                "HOME=/root",
                "NGINX_VERSION=1.22",
                "MODE=prod",
                "EXTRA=1"
            ])
        );
        assert_eq!(p.cwd(), Path::new("/usr/share/nginx"));
        assert_eq!((p.user().uid(), p.user().gid()), (101, 101));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[5][..]));
        let notes = spec.annotations().clone().unwrap_or_default();
        assert_eq!(
            notes.get(ANNOTATION_EXPOSED_PORTS).map(String::as_str),
            Some("443/tcp,80/tcp")
        );
        assert_eq!(
            notes.get(ANNOTATION_STOP_SIGNAL).map(String::as_str),
            Some("SIGQUIT")
        );
        // A manifest workdir wins over the image's.
        let c = Container {
            workdir: "/srv".into(),
            ..bare(container(Kind::Workload))
        };
        let spec = build_spec_with_image(&c, Some(&image)).expect("spec");
        assert_eq!(
            spec.process().as_ref().expect("process").cwd(),
            Path::new("/srv")
        );
        // Without an image: root, no annotations.
        let spec = build_spec(&container(Kind::Workload)).expect("spec");
        let p = spec.process().as_ref().expect("process");
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert!(spec.annotations().as_ref().is_none_or(|a| a.is_empty()));
    }

    #[test]
    fn manifest_path_replaces_default_path() {
        let mut c = container(Kind::Workload);
        c.env.push(("PATH".into(), "/opt/bin".into()));
        let spec = build_spec(&c).expect("spec");
        let env = spec
            .process()
            .as_ref()
            .expect("process")
            .env()
            .clone()
            .expect("env");
        let paths: Vec<_> = env.iter().filter(|e| e.starts_with("PATH=")).collect();
        assert_eq!(paths, vec!["PATH=/opt/bin"]);
    }

    #[test]
    fn host_bind_mounts_are_recursive_binds() {
        let mut c = container(Kind::Host);
        c.mounts = vec![
            BindMount {
                source: "/".into(),
                destination: "/host".into(),
                readonly: false,
            },
            BindMount {
                source: "/run/berth".into(),
                destination: "/run/berth".into(),
                readonly: true,
            },
        ];
        let spec = build_spec(&c).expect("spec");
        let mounts = spec.mounts().as_ref().expect("mounts");
        let host = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/host"))
            .expect("/host");
        assert_eq!(host.typ().as_deref(), Some("bind"));
        assert_eq!(host.source().as_deref(), Some(Path::new("/")));
        assert_eq!(
            host.options().as_deref(),
            Some(&["rbind".to_owned(), "rw".to_owned()][..])
        );
        let run = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/run/berth"))
            .expect("/run/berth");
        assert_eq!(
            run.options().as_deref(),
            Some(&["rbind".to_owned(), "ro".to_owned()][..])
        );
        let points = rootfs_mount_points(&spec);
        assert!(points.contains(&PathBuf::from("host")));
        assert!(points.contains(&PathBuf::from("run/berth")));
    }

    #[test]
    fn volumes_are_plain_binds_from_state() {
        for kind in [Kind::Workload, Kind::Host] {
            let mut c = container(kind);
            c.volumes = vec![
                berth_config::Volume {
                    name: "pgdata".into(),
                    destination: "/var/lib/postgresql/data".into(),
                    readonly: false,
                },
                berth_config::Volume {
                    name: "conf".into(),
                    destination: "/etc/app".into(),
                    readonly: true,
                },
            ];
            let spec = build_spec(&c).expect("spec");
            let mounts = spec.mounts().as_ref().expect("mounts");
            let find = |dest: &str| {
                mounts
                    .iter()
                    .find(|m| m.destination() == Path::new(dest))
                    .unwrap_or_else(|| panic!("{dest}"))
            };
            let data = find("/var/lib/postgresql/data");
            assert_eq!(data.typ().as_deref(), Some("bind"));
            assert_eq!(
                data.source().as_deref(),
                Some(Path::new("/var/lib/berth/volumes/pgdata"))
            );
            let opts = |m: &Mount| m.options().clone().unwrap_or_default();
            assert_eq!(opts(data), ["bind", "nosuid", "nodev", "rw"]);
            assert_eq!(opts(find("/etc/app")), ["bind", "nosuid", "nodev", "ro"]);
            let points = rootfs_mount_points(&spec);
            assert!(points.contains(&PathBuf::from("var/lib/postgresql/data")));
        }
    }

    #[test]
    fn mount_points_are_top_level_destinations_and_cwd() {
        let spec = build_spec(&container(Kind::Workload)).expect("spec");
        let points = rootfs_mount_points(&spec);
        let want: Vec<PathBuf> = ["dev", "proc", "srv/www", "sys", "tmp"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(points, want);
    }
}
