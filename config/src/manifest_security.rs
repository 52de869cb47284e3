//! The keys that set a container's confinement: resource limits (`memory`,
//! `cpus`, `pids`), identity (`user`, `userns`) and the host-only
//! privileges (`privileged`, `capabilities`).
//!
//! [`walk_key`] checks each value where it stands; [`check_container`]
//! then checks the values against the container's kind, which the table
//! may declare after them, and assigns the user namespace's host ids,
//! which depend on the container's place in the manifest.

use toml::Value;

use crate::capability;
use crate::manifest::{Container, Kind, MilliCpus, User, UserNamespace, MAX_CPUS, MAX_PIDS};
use crate::manifest_lifecycle as lifecycle;
use crate::toml_walk::{quote, Walker};

/// Where the keys that depend on the kind were set, for the checks after
/// the whole table was read.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    user: Option<String>,
    /// The path of `userns`, when it is `true`.
    userns: Option<String>,
    privileged: Option<String>,
    capabilities: Option<String>,
}

/// Handles `key` if it is one of this module's; false otherwise.
pub(crate) fn walk_key(
    key: &str,
    path: &str,
    value: &Value,
    c: &mut Container,
    seen: &mut Seen,
    w: &mut Walker,
) -> bool {
    match key {
        "memory" => {
            if let Some(s) = w.string(path, value) {
                match lifecycle::parse_memory(s) {
                    Ok(bytes) => c.memory = Some(bytes),
                    Err(e) => w.error(path, e),
                }
            }
        }
        "cpus" => {
            let number = match value {
                Value::Float(f) => Some(*f),
                // Exact for every integer that can pass the range check.
                Value::Integer(n) => Some(*n as f64),
                other => {
                    w.wrong_type(path, "a number", other);
                    None
                }
            };
            if let Some(n) = number {
                match cpus(n) {
                    Ok(m) => c.cpus = Some(m),
                    Err(e) => w.error(path, e),
                }
            }
        }
        "pids" => {
            if let Some(n) = w.integer(path, value) {
                match u32::try_from(n) {
                    Ok(n) if (1..=MAX_PIDS).contains(&n) => c.pids = Some(n),
                    _ => w.error(path, format!("{n} out of range (1 to {MAX_PIDS})")),
                }
            }
        }
        "user" => {
            if let Some(s) = w.string(path, value) {
                match parse_user(s) {
                    Ok(u) => {
                        c.user = Some(u);
                        seen.user = Some(path.to_owned());
                    }
                    Err(e) => w.error(path, e),
                }
            }
        }
        "userns" => {
            if let Some(true) = w.boolean(path, value) {
                seen.userns = Some(path.to_owned());
            }
        }
        "privileged" => {
            if let Some(b) = w.boolean(path, value) {
                c.privileged = b;
                seen.privileged = Some(path.to_owned());
            }
        }
        "capabilities" => {
            c.capabilities = capabilities(path, value, w);
            seen.capabilities = Some(path.to_owned());
        }
        "readonly" => {
            if let Some(b) = w.boolean(path, value) {
                c.readonly = b;
            }
        }
        "root-size" => {
            if let Some(s) = w.string(path, value) {
                match lifecycle::parse_memory(s) {
                    Ok(bytes) => match usize::try_from(bytes) {
                        Ok(n) => c.root_size = n,
                        Err(_) => w.error(path, format!("{s} is too large")),
                    },
                    Err(e) => w.error(path, e),
                }
            }
        }
        _ => return false,
    }
    true
}

/// The checks that need the whole table: host-only keys on a workload,
/// a user namespace on a host container, a `user` outside the namespace.
/// `index` is the container's place in the manifest (from 0).
pub(crate) fn check_container(index: usize, c: &mut Container, seen: &Seen, w: &mut Walker) {
    match c.kind {
        Kind::Workload => {
            if let (Some(p), true) = (&seen.privileged, c.privileged) {
                w.error(
                    p,
                    "privileged is only for kind = \"host\" (a workload keeps the default restrictions)",
                );
            }
            if let (Some(p), false) = (&seen.capabilities, c.capabilities.is_empty()) {
                w.error(
                    p,
                    format!(
                        "extra capabilities ({}) are only for kind = \"host\"",
                        c.capabilities.join(", ")
                    ),
                );
            }
        }
        Kind::Host => {
            if let Some(p) = &seen.userns {
                w.error(
                    p,
                    "a user namespace is only for workloads (a host container shares the node's ids)",
                );
            }
        }
    }
    let Some(userns_path) = &seen.userns else {
        return;
    };
    if c.kind != Kind::Workload {
        return;
    }
    match UserNamespace::for_index(index) {
        Some(ns) => c.userns = Some(ns),
        None => w.error(
            userns_path,
            format!("no host ids left for container number {index} (the 32-bit id space is full)"),
        ),
    }
    if let (Some(p), Some(user), Some(ns)) = (&seen.user, c.user, c.userns) {
        let outside: Vec<String> = [("uid", user.uid), ("gid", user.gid)]
            .iter()
            .filter(|(_, id)| *id >= ns.size)
            .map(|(what, id)| format!("{what} {id}"))
            .collect();
        if !outside.is_empty() {
            w.error(
                p,
                format!(
                    "{} not mapped in the user namespace (ids 0 to {})",
                    outside.join(" and "),
                    ns.size - 1
                ),
            );
        }
    }
}

/// `cpus`: more than 0, at most [`MAX_CPUS`], in steps of 0.001 (rounded),
/// and at least 0.01: the kernel refuses a CFS quota under 1 ms per
/// 100 ms period.
fn cpus(n: f64) -> Result<MilliCpus, String> {
    if !n.is_finite() || n <= 0.0 || n > f64::from(MAX_CPUS) {
        return Err(format!(
            "{n} out of range (expected more than 0 and at most {MAX_CPUS})"
        ));
    }
    let milli = (n * 1000.0).round();
    if milli < 10.0 {
        return Err(format!(
            "{n} is below 0.01 (the kernel's smallest quota, 1 ms per 100 ms)"
        ));
    }
    // In range: 10 ..= 1_024_000.
    Ok(MilliCpus(milli as u32))
}

/// `"UID"` or `"UID:GID"`, decimal numbers (names would need the image's
/// `/etc/passwd`, which the manifest check does not read). The gid defaults
/// to the uid. 4294967295 is `(uid_t)-1`, which `setuid(2)` refuses.
pub(crate) fn parse_user(s: &str) -> Result<User, String> {
    let id = |part: &str| -> Option<u32> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse::<u32>().ok().filter(|&n| n != u32::MAX)
    };
    let (uid, gid) = match s.split_once(':') {
        Some((u, g)) => (id(u), id(g)),
        None => {
            let uid = id(s);
            (uid, uid)
        }
    };
    match (uid, gid) {
        (Some(uid), Some(gid)) => Ok(User { uid, gid }),
        _ => Err(format!(
            "invalid user {} (expected UID or UID:GID, numbers from 0 to 4294967294, as in \"1000:1000\")",
            quote(s)
        )),
    }
}

/// `capabilities`: kernel capability names, each once.
fn capabilities(path: &str, value: &Value, w: &mut Walker) -> Vec<String> {
    let Some(list) = w.strings(path, value) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::with_capacity(list.items.len());
    for (element_path, s) in &list.items {
        match capability::canonical(s) {
            Ok(name) if out.iter().any(|o| o == name) => {
                w.error(element_path, format!("capability {name} listed twice"));
            }
            Ok(name) => out.push(name.to_owned()),
            Err(e) => w.error(element_path, e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        let u = |uid, gid| Ok(User { uid, gid });
        let table: &[(&str, Result<User, &str>)] = &[
            ("1000", u(1000, 1000)),
            ("1000:100", u(1000, 100)),
            ("0", u(0, 0)),
            ("0:0", u(0, 0)),
            ("65534:65534", u(65534, 65534)),
            ("4294967294", u(4_294_967_294, 4_294_967_294)),
            ("4294967295", Err("invalid user \"4294967295\"")),
            ("4294967296", Err("invalid user")),
            ("www-data", Err("invalid user \"www-data\"")),
            ("1000:", Err("invalid user")),
            (":1000", Err("invalid user")),
            ("1000:100:5", Err("invalid user")),
            ("+1000", Err("invalid user")),
            ("-1", Err("invalid user")),
            (" 1000", Err("invalid user")),
            ("", Err("invalid user")),
        ];
        for (s, want) in table {
            match (parse_user(s), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{s:?}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{s:?}: {e}"),
                (got, _) => panic!("{s:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn cpu_counts() {
        let table: &[(f64, Result<u32, &str>)] = &[
            (1.5, Ok(1500)),
            (1.0, Ok(1000)),
            (0.01, Ok(10)),
            (0.25, Ok(250)),
            (0.0015, Err("below 0.01")),
            (0.0049, Err("below 0.01")),
            (1.23456, Ok(1235)),
            (1024.0, Ok(1_024_000)),
            (1024.5, Err("out of range")),
            (0.0, Err("out of range")),
            (-1.0, Err("out of range")),
            (f64::NAN, Err("out of range")),
            (f64::INFINITY, Err("out of range")),
        ];
        for (n, want) in table {
            match (cpus(*n), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, MilliCpus(*w), "{n}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{n}: {e}"),
                (got, _) => panic!("{n}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn userns_ranges() {
        let table: &[(usize, Option<u32>)] = &[
            (0, Some(100_000)),
            (1, Some(165_536)),
            (2, Some(231_072)),
            (65_533, Some(100_000 + 65_533 * 65_536)),
            (65_534, None),
            (usize::MAX, None),
        ];
        for (index, want) in table {
            assert_eq!(
                UserNamespace::for_index(*index).map(|n| n.host_id),
                *want,
                "index {index}"
            );
        }
        assert_eq!(UserNamespace::for_index(0).map(|n| n.size), Some(65_536));
    }

    #[test]
    fn cpu_quota() {
        let table = [(1500, 150_000), (10, 1000), (1000, 100_000), (250, 25_000)];
        for (milli, quota) in table {
            assert_eq!(MilliCpus(milli).quota(100_000), quota, "{milli}");
        }
    }
}
