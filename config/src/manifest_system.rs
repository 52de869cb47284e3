//! The `[system]` table: hostname, extra kernel modules, sysctls and extra
//! writable mount points.

use std::collections::HashMap;

use toml::{Table, Value};

use crate::manifest::System;
use crate::manifest_rules as rules;
use crate::toml_walk::{key_path, quote, Walker};

pub(crate) fn walk(path: &str, table: &Table, w: &mut Walker) -> System {
    let mut system = System::default();
    let mut mounts = MountPoints::default();
    for (key, value) in table {
        let path = key_path(path, key);
        match key.as_str() {
            "hostname" => system.hostname = hostname(&path, value, w),
            "modules" => system.modules = modules(&path, value, w),
            "tmpfs" => system.tmpfs = mounts.walk(&path, value, w),
            "overlay" => system.overlay = mounts.walk(&path, value, w),
            "sysctl" => system.sysctl = sysctls(&path, value, w),
            "reserved-memory" => {
                if let Some(text) = w.string(&path, value) {
                    match crate::manifest_lifecycle::parse_memory(text) {
                        Ok(bytes) => system.reserved_memory = Some(bytes),
                        Err(e) => w.error(&path, e),
                    }
                }
            }
            _ => w.unknown_key(&path),
        }
    }
    system
}

fn hostname(path: &str, value: &Value, w: &mut Walker) -> Option<String> {
    let name = w.string(path, value)?;
    match rules::hostname_problem(name) {
        Some(problem) => {
            w.error(path, problem);
            None
        }
        None => Some(name.to_owned()),
    }
}

/// Module names are kept as written; PID 1's module index normalises them.
fn modules(path: &str, value: &Value, w: &mut Walker) -> Vec<String> {
    let Some(list) = w.strings(path, value) else {
        return Vec::new();
    };
    // normalised name → path of its first listing
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(list.items.len());
    for (element_path, name) in list.items {
        if let Some(problem) = rules::module_name_problem(name) {
            w.error(&element_path, problem);
            continue;
        }
        if let Some(first) = seen.get(&rules::module_key(name)) {
            w.error(
                &element_path,
                format!(
                    "duplicate module {} (already listed at {first})",
                    quote(name)
                ),
            );
            continue;
        }
        seen.insert(rules::module_key(name), element_path);
        out.push(name.to_owned());
    }
    out
}

/// `system.tmpfs` and `system.overlay` share one duplicate check: a path
/// can get a tmpfs or an overlay, not both.
#[derive(Debug, Default)]
struct MountPoints {
    /// path → where it was first listed
    seen: HashMap<String, String>,
}

impl MountPoints {
    fn walk(&mut self, path: &str, value: &Value, w: &mut Walker) -> Vec<String> {
        let Some(list) = w.strings(path, value) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(list.items.len());
        for (element_path, mount_point) in list.items {
            if let Some(problem) = rules::mount_point_problem(mount_point) {
                w.error(&element_path, problem);
                continue;
            }
            if let Some(first) = self.seen.get(mount_point) {
                w.error(
                    &element_path,
                    format!(
                        "duplicate path {} (already listed at {first})",
                        quote(mount_point)
                    ),
                );
                continue;
            }
            self.seen.insert(mount_point.to_owned(), element_path);
            if !rules::HANDLED_BY_BERTH.contains(&mount_point) {
                out.push(mount_point.to_owned());
            }
        }
        out
    }
}

/// Sysctls in declaration order. Nested tables are flattened, so the
/// unquoted `net.ipv4.ip_forward = 1` (which TOML reads as tables `net`
/// and `ipv4`) means the same as the quoted `"net.ipv4.ip_forward" = 1`.
fn sysctls(path: &str, value: &Value, w: &mut Walker) -> Vec<(String, String)> {
    let Some(table) = w.table(path, value) else {
        return Vec::new();
    };
    let mut sysctls = Sysctls::default();
    sysctls.walk(path, "", table, w);
    sysctls.out
}

#[derive(Debug, Default)]
struct Sysctls {
    out: Vec<(String, String)>,
    /// name → path where it was first set
    seen: HashMap<String, String>,
}

impl Sysctls {
    fn walk(&mut self, path: &str, prefix: &str, table: &Table, w: &mut Walker) {
        for (key, value) in table {
            let path = key_path(path, key);
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if let Value::Table(nested) = value {
                self.walk(&path, &name, nested, w);
                continue;
            }
            let name_problem = rules::sysctl_name_problem(&name);
            if let Some(problem) = &name_problem {
                w.error(&path, problem.as_str());
            }
            let setting = match value {
                Value::String(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                // /proc/sys booleans are written as 1 and 0.
                Value::Boolean(b) => if *b { "1" } else { "0" }.to_owned(),
                other => {
                    w.wrong_type(&path, "a string, integer or boolean", other);
                    continue;
                }
            };
            if name_problem.is_some() {
                continue;
            }
            if let Some(first) = self.seen.get(&name) {
                w.error(
                    &path,
                    format!("duplicate sysctl {} (already set at {first})", quote(&name)),
                );
                continue;
            }
            self.seen.insert(name.clone(), path);
            self.out.push((name, setting));
        }
    }
}
