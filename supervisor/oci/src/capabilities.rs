//! The capability sets of a container's process.
//!
//! A non-privileged container gets Docker's and containerd's default set
//! without `CAP_NET_RAW` ([`berth_config::capability::DEFAULT`], which says
//! why) plus, for a host container, the
//! manifest's `capabilities`, in the bounding, effective and permitted
//! sets. The inheritable and ambient sets stay empty, so an `execve` of a
//! non-root program keeps nothing (the fix for CVE-2022-24769 in moby and
//! runc). A privileged container gets every capability of the kernel in
//! the same three sets.

use std::collections::HashSet;

use berth_config::{capability, Container};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// The OCI name of a kernel capability (`CAP_NET_ADMIN` → `NetAdmin`);
/// `None` for a name oci-spec does not know.
pub fn from_name(name: &str) -> Option<Capability> {
    name.strip_prefix("CAP_")?.parse().ok()
}

/// The capability names a container holds, in the kernel's spelling, sorted.
pub fn names(c: &Container) -> Vec<&str> {
    let mut out: Vec<&str> = if c.privileged {
        capability::ALL.to_vec()
    } else {
        capability::DEFAULT
            .iter()
            .copied()
            .chain(c.capabilities.iter().map(String::as_str))
            .collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// The process's capability sets. A name oci-spec does not know cannot
/// occur: the manifest only accepts [`capability::ALL`], which a test maps
/// completely.
pub fn linux_capabilities(c: &Container) -> LinuxCapabilities {
    let set: Capabilities = names(c).into_iter().filter_map(from_name).collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(HashSet::new()));
    caps.set_ambient(Some(HashSet::new()));
    caps
}

#[cfg(test)]
mod tests {
    use berth_config::Kind;

    use super::*;

    #[test]
    fn every_kernel_capability_has_an_oci_name() {
        let mapped: HashSet<Capability> = capability::ALL
            .iter()
            .map(|n| from_name(n).unwrap_or_else(|| panic!("{n} unknown to oci-spec")))
            .collect();
        assert_eq!(mapped.len(), 41);
        assert_eq!(
            from_name("CAP_SYS_TTY_CONFIG"),
            Some(Capability::SysTtyConfig)
        );
        assert_eq!(from_name("NET_ADMIN"), None);
        assert_eq!(from_name("CAP_FLY"), None);
    }

    /// (kind, privileged, extra, how many, must hold, must not hold)
    #[test]
    fn sets_by_kind() {
        type Row<'a> = (
            Kind,
            bool,
            &'a [&'a str],
            usize,
            &'a [&'a str],
            &'a [&'a str],
        );
        let rows: &[Row] = &[
            (
                Kind::Workload,
                false,
                &[],
                13,
                &[
                    "CAP_CHOWN",
                    "CAP_NET_BIND_SERVICE",
                    "CAP_KILL",
                    "CAP_AUDIT_WRITE",
                ],
                &[
                    "CAP_SYS_ADMIN",
                    "CAP_NET_ADMIN",
                    "CAP_NET_RAW",
                    "CAP_SYS_PTRACE",
                    "CAP_DAC_READ_SEARCH",
                ],
            ),
            (
                Kind::Host,
                false,
                &["CAP_NET_ADMIN", "CAP_SYS_TIME"],
                15,
                &["CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_MKNOD"],
                &["CAP_SYS_ADMIN", "CAP_SYS_MODULE"],
            ),
            // A host container may get raw sockets back.
            (
                Kind::Host,
                false,
                &["CAP_NET_RAW"],
                14,
                &["CAP_NET_RAW"],
                &["CAP_NET_ADMIN"],
            ),
            // Listing a default capability changes nothing.
            (
                Kind::Host,
                false,
                &["CAP_KILL"],
                13,
                &["CAP_KILL"],
                &["CAP_SYS_ADMIN"],
            ),
            (
                Kind::Host,
                true,
                &[],
                41,
                &["CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE", "CAP_BPF"],
                &[],
            ),
        ];
        for (kind, privileged, extra, count, has, lacks) in rows {
            let c = Container {
                kind: *kind,
                privileged: *privileged,
                capabilities: extra.iter().map(|s| s.to_string()).collect(),
                ..Container::new("c", "r")
            };
            let row = format!("{kind:?} privileged={privileged} extra={extra:?}");
            let caps = linux_capabilities(&c);
            let bounding = caps.bounding().clone().unwrap_or_default();
            assert_eq!(bounding.len(), *count, "{row}");
            assert_eq!(caps.effective().as_ref(), Some(&bounding), "{row}");
            assert_eq!(caps.permitted().as_ref(), Some(&bounding), "{row}");
            assert_eq!(caps.inheritable().as_ref(), Some(&HashSet::new()), "{row}");
            assert_eq!(caps.ambient().as_ref(), Some(&HashSet::new()), "{row}");
            for n in *has {
                let cap = from_name(n).expect("known");
                assert!(bounding.contains(&cap), "{row}: lacks {n}");
            }
            for n in *lacks {
                let cap = from_name(n).expect("known");
                assert!(!bounding.contains(&cap), "{row}: holds {n}");
            }
        }
    }
}
