//! The `[container.NAME.health]` table: one probe (`exec` or `tcp`) and
//! its timing. Only services have one: run-once containers are judged by
//! their exit status, not by a probe.

use std::time::Duration;

use toml::{Table, Value};

use crate::manifest::{Container, HealthCheck, Phase, Probe};
use crate::manifest_lifecycle::parse_duration;
use crate::toml_walk::{key_path, Walker};

/// At most this many `retries`: more would leave a dead service "healthy"
/// for hours at any sensible interval.
const RETRIES_MAX: i64 = 100;

/// The `health` table. `None` when it has no usable probe (already
/// reported); other bad values are reported and left at their defaults.
pub(crate) fn walk(path: &str, value: &Value, w: &mut Walker) -> Option<HealthCheck> {
    let table = w.table(path, value)?;
    let mut check = HealthCheck::new(Probe::Tcp(0));
    // Each probe key that held a valid value; `None` = absent or bad.
    let mut exec = None;
    let mut tcp = None;
    // Whether a probe key was present at all, so a bad value does not
    // also earn a "no probe" error.
    let mut probe_keys = Vec::new();
    for (key, value) in table {
        let path = key_path(path, key);
        match key.as_str() {
            "exec" => {
                probe_keys.push(key.as_str());
                exec = exec_argv(&path, value, w);
            }
            "tcp" => {
                probe_keys.push(key.as_str());
                tcp = port(&path, value, w);
            }
            "interval" => set_positive(&path, value, w, &mut check.interval),
            "timeout" => set_positive(&path, value, w, &mut check.timeout),
            "start-period" => {
                if let Some(d) = duration(&path, value, w) {
                    check.start_period = d;
                }
            }
            "retries" => {
                if let Some(n) = w.integer(&path, value) {
                    match u32::try_from(n) {
                        Ok(n) if (1..=RETRIES_MAX).contains(&i64::from(n)) => check.retries = n,
                        _ => w.error(&path, format!("{n} out of range (1 to {RETRIES_MAX})")),
                    }
                }
            }
            _ => w.unknown_key(&path),
        }
    }
    match probe_keys.as_slice() {
        [] => {
            w.error(path, "no probe: set exec or tcp");
            return None;
        }
        [_, _] => {
            w.error(path, "both exec and tcp set (expected exactly one probe)");
            return None;
        }
        _ => {}
    }
    check.probe = match (exec, tcp) {
        (Some(argv), None) => Probe::Exec(argv),
        (None, Some(port)) => Probe::Tcp(port),
        _ => return None,
    };
    Some(check)
}

/// After the whole container table is walked (the phase may come after
/// `health`): only services are probed.
pub(crate) fn check_container(path: &str, table: &Table, c: &Container, w: &mut Walker) {
    if c.phase != Phase::Service && table.contains_key("health") {
        w.error(
            &key_path(path, "health"),
            format!(
                "health is only for phase = \"service\" ({} containers are judged by their exit status)",
                c.phase.as_str()
            ),
        );
    }
}

/// `exec`: a non-empty argv whose program is not empty, without NUL bytes.
fn exec_argv(path: &str, value: &Value, w: &mut Walker) -> Option<Vec<String>> {
    let list = w.strings(path, value)?;
    let mut complete = list.complete;
    for (element_path, s) in &list.items {
        complete &= w.no_nul(element_path, s);
    }
    match list.items.first() {
        None if complete => {
            w.error(
                path,
                "empty command (expected the program to run and its arguments)",
            );
            return None;
        }
        Some((first_path, "")) => {
            w.error(
                first_path,
                "empty program name (expected the program to run)",
            );
            return None;
        }
        _ => {}
    }
    complete.then(|| list.items.iter().map(|(_, s)| (*s).to_owned()).collect())
}

/// `tcp`: a port 1-65535.
fn port(path: &str, value: &Value, w: &mut Walker) -> Option<u16> {
    let n = w.integer(path, value)?;
    match u16::try_from(n) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            w.error(path, format!("port {n} out of range (1 to 65535)"));
            None
        }
    }
}

fn duration(path: &str, value: &Value, w: &mut Walker) -> Option<Duration> {
    let s = w.string(path, value)?;
    parse_duration(s).map_err(|e| w.error(path, e)).ok()
}

/// `interval` and `timeout`: zero would probe in a busy loop or fail every
/// probe before it could answer.
fn set_positive(path: &str, value: &Value, w: &mut Walker, slot: &mut Duration) {
    match duration(path, value, w) {
        Some(Duration::ZERO) => w.error(path, "must be more than 0"),
        Some(d) => *slot = d,
        None => {}
    }
}
