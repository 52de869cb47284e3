//! The declarative container manifest, version 1.
//!
//! Parsing walks the TOML tree by hand instead of using serde's
//! `deny_unknown_fields`, because serde stops at the first problem while an
//! operator wants to see every unknown key and bad value at once, each named
//! by its TOML path (`container.web.restart`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::image::ImageRef;
use crate::network::{Network, NetworkMode, PortMap};

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub system: System,
    /// The `[network]` table.
    pub network: Network,
    /// Containers in the order the manifest declares them.
    pub containers: Vec<Container>,
    /// The `[api]` table: the remote API, off when absent.
    pub api: Option<crate::api::Api>,
}

/// Node-wide settings, the `[system]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct System {
    /// `system.hostname`; `None` keeps the kernel's default.
    pub hostname: Option<String>,
    /// `system.modules`: extra kernel modules loaded in stage 1.
    pub modules: Vec<String>,
    /// `system.sysctl`: (dotted key, value) in declaration order.
    pub sysctl: Vec<(String, String)>,
    /// `system.tmpfs`: extra absolute paths that get a fresh tmpfs.
    pub tmpfs: Vec<String>,
    /// `system.overlay`: extra absolute paths of the read-only root made
    /// writable by an overlay with a tmpfs upper layer.
    pub overlay: Vec<String>,
    /// `system.reserved-memory`: memory workloads may never take from the
    /// node (PID 1, host containers, the kernel); `None` takes
    /// [`crate::layout::default_reserved_memory`] of the node's memory.
    pub reserved_memory: Option<u64>,
}

/// One `[container.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub kind: Kind,
    /// `rootfs`: a folder on the build host, as written in the manifest
    /// (relative paths are relative to the manifest's folder); empty when
    /// `image` is set.
    pub rootfs: PathBuf,
    /// `image`: an OCI layout or a docker archive instead of `rootfs`; its
    /// config supplies the defaults of `command`, `args`, `env`, `workdir`,
    /// the user and `stop-signal`.
    pub image: Option<ImageRef>,
    /// `command`: the executable and its first arguments (like an image's
    /// Entrypoint).
    pub command: Vec<String>,
    /// `args`: appended to `command` (like an image's Cmd).
    pub args: Vec<String>,
    /// `env`: (name, value) in declaration order.
    pub env: Vec<(String, String)>,
    /// `workdir`: absolute path inside the container, default `/`.
    pub workdir: String,
    pub restart: RestartPolicy,
    /// `mounts`: node paths bind-mounted into a host container.
    pub mounts: Vec<BindMount>,
    /// `volumes`: named folders on STATE that outlive the container and
    /// the boot, bind-mounted into it.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// `backoff-initial`, `backoff-max`, `backoff-reset`: the restart delay.
    pub backoff: Backoff,
    /// `stop-signal`: sent first when the container is stopped.
    pub stop_signal: i32,
    /// `stop-grace`: how long after the stop signal before SIGKILL.
    pub stop_grace: Duration,
    /// `host-pid`: a host container in the node's PID namespace (it can
    /// then signal PID 1, e.g. busybox `poweroff`).
    pub host_pid: bool,
    /// `phase`: when the container runs.
    pub phase: Phase,
    /// `essential`: whether an `onboot` container's failure halts the boot.
    pub essential: bool,
    /// `crash-loop-starts`, `crash-loop-window`: when to give up.
    pub crash_loop: CrashLoop,
    /// `init`: run the command under `berth init`, which reaps zombies and
    /// forwards signals, as PID 1 of the container.
    pub init: bool,
    /// `after`: services that must be ready before this one starts.
    pub after: Vec<String>,
    /// `requires`: as `after`, and this one stops when any of them stops
    /// or fails, and starts again once they are all ready again.
    pub requires: Vec<String>,
    /// `health`: the readiness and liveness probe; `None` means the
    /// container counts as ready as soon as it runs.
    pub health: Option<HealthCheck>,
    /// `console`: whether its lines go to the serial console (they always
    /// go to its log ring).
    pub console: bool,
    /// `log-size`: bytes of output kept for `berth logs`.
    pub log_size: usize,
    /// `network`: default `bridge` for workloads; host containers always
    /// share the node's.
    pub network: NetworkMode,
    /// `ports`: published on the node, bridge containers only.
    pub ports: Vec<PortMap>,
    /// `memory`: the memory limit in bytes, without swap.
    pub memory: Option<u64>,
    /// `cpus`: CPU time per period, in thousandths of a CPU.
    pub cpus: Option<MilliCpus>,
    /// `pids`: the most tasks (processes and threads) at once; `None`
    /// takes the kind's default, see [`Container::pids_limit`].
    pub pids: Option<u32>,
    /// `user`: the numeric ids the command runs as, over an image's user.
    pub user: Option<User>,
    /// `userns = true`: the ids of the container's user namespace on the
    /// node (workloads only; see [`UserNamespace::for_index`]).
    pub userns: Option<UserNamespace>,
    /// `privileged`: every capability, no seccomp filter, no masked `/proc`
    /// paths, the node's devices (host containers only).
    pub privileged: bool,
    /// `capabilities`: added to the default set (host containers only), in
    /// the kernel's spelling (`CAP_NET_ADMIN`).
    pub capabilities: Vec<String>,
    /// `readonly = true`: `/` is the image itself, read-only, with no
    /// writable layer over it.
    pub readonly: bool,
    /// `root-size`: the bound of the writable tmpfs layer over the image.
    pub root_size: usize,
    /// `rlimits`: resource limits set for the container's processes (and
    /// what berth starts in it later), in manifest order; see
    /// [`Container::rlimits_in_force`] for the defaults.
    pub rlimits: Vec<Rlimit>,
}

/// One `rlimits` entry: `RLIMIT_` + the upper-cased name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rlimit {
    pub name: &'static str,
    pub soft: u64,
    /// RLIM_INFINITY is `u64::MAX`.
    pub hard: u64,
}

/// [`Rlimit`] as it is read back from JSON: the name is one of
/// [`crate::manifest_rlimits::NAMES`], which gives it its `'static` life.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RlimitRepr {
    name: String,
    soft: u64,
    hard: u64,
}

impl<'de> Deserialize<'de> for Rlimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rlimit, D::Error> {
        let r = RlimitRepr::deserialize(d)?;
        let name = crate::manifest_rlimits::NAMES
            .iter()
            .find(|n| **n == r.name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rlimit {:?}", r.name)))?;
        Ok(Rlimit {
            name,
            soft: r.soft,
            hard: r.hard,
        })
    }
}

/// CPU time in thousandths of a CPU: `cpus = 1.5` is `MilliCpus(1500)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MilliCpus(pub u32);

impl MilliCpus {
    /// The CFS quota, in microseconds, per `period` microseconds.
    pub fn quota(self, period: u64) -> u64 {
        u64::from(self.0) * period / 1000
    }
}

/// The numeric user and group a container's command runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// A workload's user namespace: container ids `0..size` are host ids
/// `host_id..host_id + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UserNamespace {
    pub host_id: u32,
    pub size: u32,
}

/// The first host id of the first container's user namespace: above the
/// ids any image or the node itself uses (the Docker/Podman `subuid`
/// convention starts at 100000 too).
pub const USERNS_HOST_BASE: u32 = 100_000;
/// Ids per user namespace: the 16-bit range images assume (`nobody` is
/// 65534).
pub const USERNS_SIZE: u32 = 65_536;

impl UserNamespace {
    /// The fixed scheme: the container declared `index`-th in the manifest
    /// (counting from 0, every container counts) gets host ids
    /// `100000 + 65536 × index` onward, so no two containers share an id.
    /// `None` past the end of the 32-bit id space.
    pub fn for_index(index: usize) -> Option<UserNamespace> {
        let index = u32::try_from(index).ok()?;
        let host_id = index
            .checked_mul(USERNS_SIZE)?
            .checked_add(USERNS_HOST_BASE)?;
        // The last id, host_id + size - 1, must stay below (uid_t)-1.
        host_id.checked_add(USERNS_SIZE)?;
        Some(UserNamespace {
            host_id,
            size: USERNS_SIZE,
        })
    }
}

/// The `pids` limit of a workload that does not set one: enough for any
/// ordinary service, small enough to stop a fork bomb.
pub const DEFAULT_WORKLOAD_PIDS: u32 = 1024;
/// `pids` upper bound: the kernel's `PID_MAX_LIMIT` on 64-bit.
pub const MAX_PIDS: u32 = 4_194_304;
/// The smallest `memory` limit, below which not even a shell starts.
pub const MIN_MEMORY: u64 = 4 * 1024 * 1024;
/// `cpus` upper bound.
pub const MAX_CPUS: u32 = 1024;

/// A `[container.NAME.health]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HealthCheck {
    pub probe: Probe,
    /// `interval`: from one probe's result to the next probe.
    pub interval: Duration,
    /// `timeout`: a probe still running after this counts as failed.
    pub timeout: Duration,
    /// `retries`: consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// `start-period`: failures this soon after a start do not count
    /// (until the first pass).
    pub start_period: Duration,
}

impl HealthCheck {
    /// A check with `probe` and every other key at its default.
    pub fn new(probe: Probe) -> HealthCheck {
        HealthCheck {
            probe,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        }
    }
}

/// What a health check runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Probe {
    /// `exec`: this argv inside the container; healthy when it exits 0.
    Exec(Vec<String>),
    /// `tcp`: a TCP connect to 127.0.0.1:PORT in the container's network
    /// namespace; healthy when it is accepted.
    Tcp(u16),
}

/// Crash-loop protection: a container that started `starts` times within
/// `window` and exits again is marked failed instead of restarted.
/// `starts = 0` turns the protection off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CrashLoop {
    pub starts: u32,
    pub window: Duration,
}

impl Default for CrashLoop {
    fn default() -> Self {
        CrashLoop {
            starts: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// Output kept per container for `berth logs`: 1 MiB.
pub const DEFAULT_LOG_SIZE: usize = 1024 * 1024;

/// SIGTERM.
pub const DEFAULT_STOP_SIGNAL: i32 = 15;
/// The grace period between the stop signal and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// Restart delays: `initial`, doubled after each restart up to `max`, back
/// to `initial` once the container has run for `reset` without exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            reset: Duration::from_secs(60),
        }
    }
}

/// One `volumes` entry, `NAME:/path[:ro]`: the folder NAME under
/// [`crate::layout::VOLUMES`] mounted at `destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub destination: String,
    pub readonly: bool,
}

/// One `mounts` entry: a recursive bind mount of a node path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BindMount {
    pub source: String,
    pub destination: String,
    pub readonly: bool,
}

impl Container {
    /// A container with every optional key at its default (a workload,
    /// `restart = "always"`, workdir `/`, no command yet).
    pub fn new(name: &str, rootfs: impl Into<PathBuf>) -> Container {
        Container {
            name: name.to_owned(),
            kind: Kind::default(),
            rootfs: rootfs.into(),
            image: None,
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            workdir: "/".to_owned(),
            restart: RestartPolicy::default(),
            mounts: Vec::new(),
            volumes: Vec::new(),
            backoff: Backoff::default(),
            stop_signal: DEFAULT_STOP_SIGNAL,
            stop_grace: DEFAULT_STOP_GRACE,
            host_pid: false,
            init: false,
            crash_loop: CrashLoop::default(),
            phase: Phase::default(),
            essential: true,
            after: Vec::new(),
            requires: Vec::new(),
            health: None,
            console: true,
            log_size: DEFAULT_LOG_SIZE,
            network: NetworkMode::Bridge,
            ports: Vec::new(),
            memory: None,
            cpus: None,
            pids: None,
            user: None,
            userns: None,
            privileged: false,
            capabilities: Vec::new(),
            readonly: false,
            root_size: crate::layout::DEFAULT_ROOT_SIZE,
            rlimits: Vec::new(),
        }
    }

    /// The `pids` limit in force: the manifest's, else
    /// [`DEFAULT_WORKLOAD_PIDS`] for a workload and none for a host
    /// container.
    pub fn pids_limit(&self) -> Option<u32> {
        self.pids.or(match self.kind {
            Kind::Workload => Some(DEFAULT_WORKLOAD_PIDS),
            Kind::Host => None,
        })
    }

    /// The rlimits the container runs with: the manifest's, plus
    /// [`crate::manifest_rlimits::DEFAULT_NOFILE`] unless it sets `nofile`.
    pub fn rlimits_in_force(&self) -> Vec<Rlimit> {
        let mut all = self.rlimits.clone();
        if !all.iter().any(|r| r.name == "nofile") {
            all.push(crate::manifest_rlimits::DEFAULT_NOFILE);
        }
        all
    }

    /// The full argv: `command` followed by `args`.
    pub fn argv(&self) -> Vec<String> {
        self.command
            .iter()
            .chain(self.args.iter())
            .cloned()
            .collect()
    }
}

/// `kind`: how much of the host a container shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Shares the host's network namespace; gets only what the manifest
    /// grants beyond that.
    Host,
    /// Own namespaces, read-only root, default restrictions.
    #[default]
    Workload,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Workload => "workload",
        }
    }
}

/// `phase`: when a container runs, as LinuxKit has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Once, to completion, one after another, before any service.
    OnBoot,
    /// Supervised for as long as the node runs.
    #[default]
    Service,
    /// Once, during an orderly shutdown, after the services stopped.
    OnShutdown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::OnBoot => "onboot",
            Phase::Service => "service",
            Phase::OnShutdown => "onshutdown",
        }
    }
}

/// `restart`: what happens when the container's process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        }
    }
}

/// One problem in a manifest, named by its TOML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted TOML path (`container.web.restart`, `system.modules[2]`);
    /// empty for a syntax error, which names its line instead.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a manifest, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<ConfigError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

/// Reading a manifest file failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("read manifest {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {path} has {} error(s):\n{errors}", errors.0.len())]
    Invalid {
        path: PathBuf,
        errors: ManifestErrors,
    },
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn from_file(path: &Path) -> Result<Manifest, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        Manifest::parse(&text).map_err(|errors| LoadError::Invalid {
            path: path.to_owned(),
            errors,
        })
    }

    /// Settings that weaken isolation on purpose (privileged containers,
    /// extra capabilities, the node's PID namespace, mounts of `/`, `/dev`
    /// or berth's control socket), each named by its TOML path: valid, but
    /// worth a line at boot and in `berth validate`.
    pub fn warnings(&self) -> Vec<ConfigError> {
        crate::manifest_warnings::warnings(self)
    }

    /// The container called `name`, if declared.
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Parses and validates manifest text, collecting every error.
    pub fn parse(text: &str) -> Result<Manifest, ManifestErrors> {
        crate::manifest_parse::parse(text)
    }
}
