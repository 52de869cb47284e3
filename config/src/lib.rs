//! berth's boot configuration as plain data: the container manifest (types,
//! parsing, validation that reports every error at once with its TOML path),
//! the `berth.*` kernel command-line options, and the kernel-module
//! dependency model shared by the image builder (which picks modules) and
//! PID 1 (which loads them), and each container's resolved [`plan`]. Pure:
//! no syscalls, no I/O beyond `from_file` (and `fuzz`, the checks of the
//! fuzz targets and their stable replay tests, compiled only for tests and
//! with the `fuzzing` feature).

pub mod api;
pub mod capability;
pub mod cmdline;
mod error_line;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod id_ranges;
pub mod image;
pub mod layout;
pub mod manifest;
mod manifest_container;
mod manifest_deps;
mod manifest_health;
mod manifest_lifecycle;
mod manifest_network;
mod manifest_parse;
pub mod manifest_rlimits;
mod manifest_rules;
mod manifest_security;
mod manifest_system;
mod manifest_warnings;
pub mod modules;
pub mod network;
pub mod plan;
mod serde_text;
pub mod state_template;
pub mod state_use;
mod toml_walk;

pub use error_line::chain;
pub use manifest::{
    Backoff, BindMount, ConfigError, Container, CrashLoop, HealthCheck, Kind, LoadError, Manifest,
    ManifestErrors, MilliCpus, Phase, Probe, RestartPolicy, Rlimit, System, User, UserNamespace,
    Volume,
};
pub use manifest_lifecycle::parse_signal;
pub use manifest_rules::validate_container_name;
pub use plan::Plan;
