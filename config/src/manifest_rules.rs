//! Value rules for manifest fields: pure predicates and the messages that
//! explain a rejection. The tree walk (`manifest_parse` and friends)
//! decides where a value sits; this module decides whether it is allowed.

use crate::manifest::{Kind, Phase, RestartPolicy};
use crate::toml_walk::quote;

/// Every `kind`, in the order error messages list them.
pub(crate) const KINDS: &[Kind] = &[Kind::Host, Kind::Workload];
pub(crate) const PHASES: &[Phase] = &[Phase::OnBoot, Phase::Service, Phase::OnShutdown];

/// Every `restart` policy, in the order error messages list them.
pub(crate) const POLICIES: &[RestartPolicy] = &[
    RestartPolicy::Always,
    RestartPolicy::OnFailure,
    RestartPolicy::Never,
];

/// Mount points berth sets up by itself (overlay on `/etc`, tmpfs on `/run`
/// and `/tmp`). Listing them in `system.tmpfs` or `system.overlay` is
/// accepted but dropped, so they are never mounted twice.
pub(crate) const HANDLED_BY_BERTH: &[&str] = &["/etc", "/run", "/tmp"];

/// API filesystems mounted by PID 1; a tmpfs or overlay on or under them
/// would hide the kernel's view.
const KERNEL_MOUNTS: &[&str] = &["/proc", "/sys", "/dev"];

/// The kernel's limit for `sethostname(2)` (`__NEW_UTS_LEN`); longer names
/// are valid DNS names but fail with EINVAL at boot.
const HOSTNAME_MAX: usize = 64;

const MODULE_NAME_MAX: usize = 64;

/// Looks `s` up among `all` by each variant's spelling.
pub(crate) fn pick<T: Copy>(all: &[T], spelling: fn(T) -> &'static str, s: &str) -> Option<T> {
    all.iter().copied().find(|&v| spelling(v) == s)
}

/// "a, b, c" for an "(expected ...)" hint.
pub(crate) fn spellings<T: Copy>(all: &[T], spelling: fn(T) -> &'static str) -> String {
    all.iter()
        .map(|&v| spelling(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A container name: `^[a-z0-9][a-z0-9_-]{0,62}$`. Names become cgroup,
/// hostname-like and log identifiers, so they stay short and lower-case.
pub fn validate_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 63
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub(crate) fn container_name_problem(name: &str) -> Option<String> {
    (!validate_container_name(name)).then(|| {
        format!(
            "invalid container name {} (expected 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit)",
            quote(name)
        )
    })
}

/// RFC 1123 host name, capped at the kernel's 64 bytes.
pub(crate) fn hostname_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > HOSTNAME_MAX {
        return Some(format!(
            "invalid hostname {} (expected 1-{HOSTNAME_MAX} characters, the kernel's limit)",
            quote(name)
        ));
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    (!name.split('.').all(label_ok)).then(|| {
        format!(
            "invalid hostname {} (expected dot-separated labels of 1-63 letters, digits and '-', not starting or ending with '-')",
            quote(name)
        )
    })
}

pub(crate) fn module_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MODULE_NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (!ok).then(|| {
        format!(
            "invalid module name {} (expected 1-{MODULE_NAME_MAX} letters, digits, '_' and '-')",
            quote(name)
        )
    })
}

/// Module names as the kernel compares them: `dm-verity` is `dm_verity`.
pub(crate) fn module_key(name: &str) -> String {
    name.replace('-', "_")
}

/// A dotted sysctl name such as `net.ipv4.ip_forward`; it becomes a path
/// under /proc/sys, so empty segments and `/` are refused.
pub(crate) fn sysctl_name_problem(name: &str) -> Option<String> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let ok = name.contains('.') && name.split('.').all(segment_ok);
    (!ok).then(|| {
        format!(
            "invalid sysctl name {} (expected at least two dot-separated segments of letters, digits, '_' and '-')",
            quote(name)
        )
    })
}

/// An environment variable name as POSIX shells accept it.
pub(crate) fn env_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!ok).then(|| {
        format!(
            "invalid variable name {} (expected letters, digits and '_', not starting with a digit)",
            quote(name)
        )
    })
}

/// An absolute path in canonical form. Refusing `.`, `..`, `//` and a
/// trailing `/` (rather than normalising them) means two spellings of one
/// directory cannot slip past the duplicate check.
pub(crate) fn abs_path_problem(path: &str) -> Option<String> {
    let reason = if path.contains('\0') {
        "expected no NUL bytes"
    } else if !path.starts_with('/') {
        "expected an absolute path"
    } else if path == "/" {
        return None;
    } else if path.ends_with('/') {
        "expected no trailing '/'"
    } else if path[1..].split('/').any(str::is_empty) {
        "expected no empty components"
    } else if path[1..].split('/').any(|c| c == "." || c == "..") {
        "expected no \".\" or \"..\" components"
    } else {
        return None;
    };
    Some(format!("invalid path {} ({reason})", quote(path)))
}

/// A `system.tmpfs` / `system.overlay` entry: a canonical absolute path
/// other than `/` and outside the kernel's API filesystems.
pub(crate) fn mount_point_problem(path: &str) -> Option<String> {
    if let Some(problem) = abs_path_problem(path) {
        return Some(problem);
    }
    if path == "/" {
        return Some(format!(
            "invalid mount point {} (expected a directory below /)",
            quote(path)
        ));
    }
    let is_under = |top: &&str| {
        path.strip_prefix(*top)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    KERNEL_MOUNTS.iter().find(|top| is_under(top)).map(|top| {
        format!(
            "invalid mount point {} ({top} belongs to the kernel; expected a path outside /proc, /sys and /dev)",
            quote(path)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names() {
        let cases = [
            ("web", true),
            ("0", true),
            ("a-b_c9", true),
            (&*"a".repeat(63), true),
            (&*"a".repeat(64), false),
            ("", false),
            ("Web", false),
            ("-web", false),
            ("_web", false),
            ("web.1", false),
            ("wéb", false),
        ];
        for (name, want) in cases {
            assert_eq!(
                validate_container_name(name),
                want,
                "container name {name:?}"
            );
        }
    }

    #[test]
    fn hostnames() {
        let cases = [
            ("node-1", true),
            ("node-1.example.com", true),
            ("N0DE", true),
            ("1", true),
            (&*"a".repeat(63), true),
            (&*"a".repeat(64), false),
            (&*format!("{}.{}", "a".repeat(32), "b".repeat(31)), true),
            (&*format!("{}.{}", "a".repeat(32), "b".repeat(32)), false),
            ("", false),
            ("-node", false),
            ("node-", false),
            ("a..b", false),
            ("node.", false),
            ("no_de", false),
            ("no de", false),
        ];
        for (name, ok) in cases {
            assert_eq!(hostname_problem(name).is_none(), ok, "hostname {name:?}");
        }
    }

    #[test]
    fn sysctl_names() {
        let cases = [
            ("net.ipv4.ip_forward", true),
            ("vm.max_map_count", true),
            ("net.ipv4.conf.eth-0.rp_filter", true),
            ("kernel", false),
            ("net..ipv4", false),
            (".net.ipv4", false),
            ("net.ipv4.", false),
            ("net/ipv4/ip_forward", false),
            ("net.ipv4 .x", false),
            ("", false),
        ];
        for (name, ok) in cases {
            assert_eq!(sysctl_name_problem(name).is_none(), ok, "sysctl {name:?}");
        }
    }

    #[test]
    fn env_names() {
        let cases = [
            ("PATH", true),
            ("_x1", true),
            ("a", true),
            ("1A", false),
            ("A-B", false),
            ("A.B", false),
            ("", false),
        ];
        for (name, ok) in cases {
            assert_eq!(env_name_problem(name).is_none(), ok, "env name {name:?}");
        }
    }

    #[test]
    fn module_names() {
        let cases = [
            ("veth", true),
            ("dm-verity", true),
            ("crc32c_generic", true),
            (&*"m".repeat(64), true),
            (&*"m".repeat(65), false),
            ("", false),
            ("platform:x", false),
            ("a b", false),
        ];
        for (name, ok) in cases {
            assert_eq!(module_name_problem(name).is_none(), ok, "module {name:?}");
        }
    }

    #[test]
    fn paths() {
        // (path, abs_path ok, mount point ok)
        let cases = [
            ("/", true, false),
            ("/var/tmp", true, true),
            ("/var/lib/x", true, true),
            ("/.hidden", true, true),
            ("/a..b", true, true),
            ("/proc", true, false),
            ("/proc/sys", true, false),
            ("/processes", true, true),
            ("/sys", true, false),
            ("/dev/shm", true, false),
            ("/devices", true, true),
            ("", false, false),
            ("var/tmp", false, false),
            ("/var/", false, false),
            ("/var//tmp", false, false),
            ("//var", false, false),
            ("/var/./tmp", false, false),
            ("/var/../etc", false, false),
            ("/..", false, false),
            ("/var\0", false, false),
        ];
        for (path, abs_ok, mount_ok) in cases {
            assert_eq!(
                abs_path_problem(path).is_none(),
                abs_ok,
                "abs path {path:?}"
            );
            assert_eq!(
                mount_point_problem(path).is_none(),
                mount_ok,
                "mount point {path:?}"
            );
        }
    }
}
