//! `rlimits`: per-container resource limits (setrlimit(2)), as Docker's
//! `--ulimit` and Compose's `ulimits`:
//!
//! ```toml
//! rlimits = { nofile = 65536, core = 0, memlock = "unlimited", nproc = "512:1024" }
//! ```
//!
//! A number sets soft and hard alike, `"SOFT:HARD"` each, `"unlimited"`
//! is RLIM_INFINITY. Every container gets [`DEFAULT_NOFILE`] unless it
//! sets `nofile`; the other limits are the kernel's defaults unless set.

use toml::Value;

use crate::manifest::Rlimit;
use crate::toml_walk::{key_path, quote, Walker};

/// The limits a manifest may set, by the name after `RLIMIT_`, lower-case.
pub const NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// RLIM_INFINITY.
pub const UNLIMITED: u64 = u64::MAX;

/// Open files of every container unless it sets `nofile`: soft 1024, so
/// `select(2)` users keep working, hard 524288, so a server that raises its
/// own soft limit (Redis, nginx, databases) can; systemd's and Docker's
/// (since 25) defaults.
pub const DEFAULT_NOFILE: Rlimit = Rlimit {
    name: "nofile",
    soft: 1024,
    hard: 524_288,
};

/// The kernel's `fs.nr_open` default: no process may have a `nofile` hard
/// limit above it (setrlimit(2) fails with EPERM).
pub const NR_OPEN: u64 = 1_048_576;

/// Walks the `rlimits` table.
pub(crate) fn walk(path: &str, value: &Value, w: &mut Walker) -> Vec<Rlimit> {
    let Some(table) = w.table(path, value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in table {
        let path = key_path(path, key);
        let Some(name) = NAMES.iter().find(|n| **n == key.as_str()) else {
            w.error(
                &path,
                format!(
                    "unknown limit {} (expected one of {})",
                    quote(key),
                    NAMES.join(", ")
                ),
            );
            continue;
        };
        let parsed = match value {
            Value::Integer(n) => u64::try_from(*n)
                .map(|n| (n, n))
                .map_err(|_| format!("{n} is negative")),
            Value::String(s) => parse(s),
            other => {
                w.wrong_type(&path, "a number or \"SOFT:HARD\"", other);
                continue;
            }
        };
        match parsed.and_then(|(soft, hard)| check(name, soft, hard)) {
            Ok((soft, hard)) => out.push(Rlimit { name, soft, hard }),
            Err(e) => w.error(&path, e),
        }
    }
    out
}

/// `"N"`, `"SOFT:HARD"`, either side `"unlimited"`.
fn parse(s: &str) -> Result<(u64, u64), String> {
    let one = |t: &str| -> Result<u64, String> {
        match t.trim() {
            "unlimited" | "infinity" => Ok(UNLIMITED),
            t => t.parse::<u64>().map_err(|_| {
                format!(
                    "{} is not a limit (expected a number, \"unlimited\" or \"SOFT:HARD\")",
                    quote(s)
                )
            }),
        }
    };
    match s.split_once(':') {
        Some((soft, hard)) => Ok((one(soft)?, one(hard)?)),
        None => one(s).map(|n| (n, n)),
    }
}

fn check(name: &str, soft: u64, hard: u64) -> Result<(u64, u64), String> {
    if soft > hard {
        return Err(format!("soft limit {soft} is above the hard limit {hard}"));
    }
    if name == "nofile" && hard > NR_OPEN {
        let hard = if hard == UNLIMITED {
            "unlimited".to_owned()
        } else {
            hard.to_string()
        };
        return Err(format!(
            "hard limit {hard} is above the kernel's fs.nr_open ({NR_OPEN}), which no process may exceed"
        ));
    }
    Ok((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (text, soft and hard or the error's words)
    type Row = (&'static str, Result<(u64, u64), &'static str>);

    #[test]
    fn values() {
        let table: &[Row] = &[
            ("1024", Ok((1024, 1024))),
            ("1024:4096", Ok((1024, 4096))),
            ("unlimited", Ok((UNLIMITED, UNLIMITED))),
            ("0:unlimited", Ok((0, UNLIMITED))),
            (" 5 : 6 ", Ok((5, 6))),
            ("lots", Err("\"lots\" is not a limit")),
            ("1:2:3", Err("is not a limit")),
            ("-1", Err("is not a limit")),
        ];
        for (text, want) in table {
            let got = parse(text);
            match want {
                Ok(v) => assert_eq!(got, Ok(*v), "{text}"),
                Err(words) => {
                    let e = got.expect_err(text);
                    assert!(e.contains(words), "{text}: {e}");
                }
            }
        }
    }

    #[test]
    fn checks() {
        assert!(check("nofile", 1024, 524_288).is_ok());
        assert!(check("nofile", NR_OPEN, NR_OPEN).is_ok());
        let e = check("nofile", 10, NR_OPEN + 1).expect_err("over nr_open");
        assert!(e.contains("fs.nr_open"), "{e}");
        let e = check("core", 10, 5).expect_err("soft over hard");
        assert!(e.contains("soft limit 10 is above the hard limit 5"), "{e}");
        assert!(check("core", UNLIMITED, UNLIMITED).is_ok());
    }
}
