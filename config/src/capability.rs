//! Linux capability names: the kernel's full list (capabilities(7), as of
//! Linux 6.1, `CAP_LAST_CAP` = `CAP_CHECKPOINT_RESTORE`), and the spelling
//! rules of the manifest's `capabilities` key.
//!
//! The manifest accepts a name with or without the `CAP_` prefix and in any
//! case (`"NET_ADMIN"`, `"cap_sys_time"`), as Docker's `--cap-add` does; it
//! is stored in the kernel's spelling (`CAP_NET_ADMIN`).

use crate::toml_walk::quote;

/// Every capability of Linux 6.1, in the kernel's numbering (index = bit).
pub const ALL: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's and containerd's default set without `CAP_NET_RAW`, which
/// every non-privileged container gets (bounding, effective and
/// permitted). `CAP_NET_RAW` would let a container forge any frame on its
/// link (ARP, another container's MAC, router advertisements) and capture
/// its traffic; the bridge drops forged frames anyway, and `ping` works
/// without it through ICMP echo sockets, which PID 1 allows in every
/// container's network namespace (`net.ipv4.ping_group_range`). Podman
/// leaves it out too. A host container that needs raw sockets lists it in
/// `capabilities`.
pub const DEFAULT: [&str; 13] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The kernel's spelling of `name` (`"sys_time"` → `CAP_SYS_TIME`), or why
/// it is not a capability.
pub fn canonical(name: &str) -> Result<&'static str, String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    ALL.iter()
        .copied()
        .find(|c| c.strip_prefix("CAP_") == Some(bare))
        .ok_or_else(|| {
            let hint = if bare == "ALL" {
                "; for every capability use privileged = true"
            } else {
                ""
            };
            format!(
                "unknown capability {} (expected a Linux capability such as \"NET_ADMIN\" or \"CAP_SYS_TIME\"{hint})",
                quote(name)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("CAP_NET_ADMIN", Ok("CAP_NET_ADMIN")),
            ("NET_ADMIN", Ok("CAP_NET_ADMIN")),
            ("sys_time", Ok("CAP_SYS_TIME")),
            ("cap_bpf", Ok("CAP_BPF")),
            ("CHECKPOINT_RESTORE", Ok("CAP_CHECKPOINT_RESTORE")),
            ("CAP_CHOWN", Ok("CAP_CHOWN")),
            ("CAP_", Err("unknown capability \"CAP_\"")),
            ("", Err("unknown capability \"\"")),
            ("NET-ADMIN", Err("unknown capability")),
            ("CAP_CAP_KILL", Err("unknown capability")),
            ("ALL", Err("use privileged = true")),
            ("CAP_NET_ADMIN ", Err("unknown capability")),
        ];
        for (name, want) in table {
            match (canonical(name), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{name:?}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name:?}: {e}"),
                (got, _) => panic!("{name:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn lists_are_consistent() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(a.starts_with("CAP_"), "{a}");
            assert!(!ALL[i + 1..].contains(a), "{a} listed twice");
        }
        for d in DEFAULT {
            assert!(ALL.contains(&d), "{d} is not a kernel capability");
            let times = DEFAULT.iter().filter(|x| **x == d).count();
            assert_eq!(times, 1, "{d} listed {times} times");
        }
        assert!(
            !DEFAULT.contains(&"CAP_NET_RAW"),
            "raw sockets forge frames"
        );
        assert_eq!(ALL[40], "CAP_CHECKPOINT_RESTORE", "CAP_LAST_CAP of 6.1");
    }
}
