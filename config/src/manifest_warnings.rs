//! Warnings: settings that are valid but give a container power over the
//! node, listed with their TOML paths so an operator sees them in
//! `berth validate` and on the console at every boot. A warning never
//! stops a container; it says what the manifest chose.

use crate::manifest::{ConfigError, Container, Manifest};
use crate::toml_walk::{index_path, key_path};

/// Node paths whose bind mount hands a container the node itself: the
/// path, what it gives away. A mount warns when its source is one of these,
/// lies below one (except `/`, which everything lies below) or contains
/// one (`/run` contains `/run/berth`).
const SENSITIVE: &[(&str, &str)] = &[
    ("/", "the node's whole filesystem"),
    ("/dev", "the node's devices"),
    (
        crate::layout::RUN_DIR,
        "berth's runtime state and control socket (full control of the node)",
    ),
];

/// Every warning of `m`, in manifest order.
pub(crate) fn warnings(m: &Manifest) -> Vec<ConfigError> {
    m.containers.iter().flat_map(container).collect()
}

fn container(c: &Container) -> Vec<ConfigError> {
    let base = key_path("container", &c.name);
    let warn = |key: &str, message: String| ConfigError {
        path: key_path(&base, key),
        message,
    };
    let mut out = Vec::new();
    if c.privileged {
        out.push(warn(
            "privileged",
            "privileged container: every capability, no seccomp filter, no masked /proc paths, the node's devices".into(),
        ));
    }
    if !c.capabilities.is_empty() {
        out.push(warn(
            "capabilities",
            format!("extra capabilities {}", c.capabilities.join(", ")),
        ));
    }
    if c.host_pid {
        out.push(warn(
            "host-pid",
            "shares the node's PID namespace: sees every process and may signal PID 1".into(),
        ));
    }
    for (i, m) in c.mounts.iter().enumerate() {
        if let Some(what) = sensitive(&m.source) {
            let mode = if m.readonly {
                "read-only"
            } else {
                "read-write"
            };
            out.push(ConfigError {
                path: index_path(&key_path(&base, "mounts"), i),
                message: format!("mounts {} {mode} at {}: {what}", m.source, m.destination),
            });
        }
    }
    out
}

/// What mounting `source` gives away, if it is sensitive.
fn sensitive(source: &str) -> Option<&'static str> {
    let below = |dir: &str, p: &str| p.strip_prefix(dir).is_some_and(|r| r.starts_with('/'));
    SENSITIVE.iter().find_map(|(path, what)| {
        let hit = source == *path
            || (*path != "/" && below(path, source))
            || (source != "/" && below(source, path));
        hit.then_some(*what)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_sources() {
        let table: &[(&str, Option<&str>)] = &[
            ("/", Some("whole filesystem")),
            ("/dev", Some("devices")),
            ("/dev/kmsg", Some("devices")),
            ("/run/berth", Some("control socket")),
            ("/run/berth/control.sock", Some("control socket")),
            ("/run", Some("control socket")),
            ("/devices", None),
            ("/run/app", None),
            ("/run/berthx", None),
            ("/var/lib/app", None),
            ("/etc", None),
        ];
        for (source, want) in table {
            let got = sensitive(source);
            match (got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!(g.contains(w), "{source}: {g}"),
                _ => panic!("{source}: got {got:?}, want {want:?}"),
            }
        }
    }
}
