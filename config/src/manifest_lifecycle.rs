//! Values of the lifecycle keys of a container: durations (`"100ms"`,
//! `"1.5s"`, `"2m"`), sizes (`"1MiB"`, `"256MiB"`) and signal names
//! (`"SIGTERM"`, `"TERM"`, `"15"`).

use std::time::Duration;

use crate::manifest::MIN_MEMORY;
use crate::toml_walk::quote;

/// Parses `NUMBER UNIT` with unit `ms`, `s`, `m` or `h` (no unit is an
/// error, so `"10"` cannot mean milliseconds to one reader and seconds to
/// another). Fractions are allowed; at most one day.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "invalid duration {} (expected a number and a unit, as in \"100ms\")",
            quote(s)
        ));
    }
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => {
            return Err(format!(
                "{} has no unit (expected ms, s, m or h, as in \"100ms\")",
                quote(s)
            ))
        }
        other => {
            return Err(format!(
                "unknown unit {} in {} (expected ms, s, m or h)",
                quote(other),
                quote(s)
            ))
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        format!(
            "invalid duration {} (expected a number and a unit, as in \"100ms\")",
            quote(s)
        )
    })?;
    let secs = value * scale;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("duration {} out of range (0 to 24h)", quote(s)));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Size units, binary as the kernel's cgroup files count.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// A whole number and a unit (`"256KiB"`, `"1 GiB"`), in bytes; `None`
/// when `s` is not of that form or overflows.
fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let (_, scale) = SIZE_UNITS.iter().find(|(u, _)| *u == unit.trim())?;
    number.parse::<u64>().ok()?.checked_mul(*scale)
}

/// Parses a log size: a whole number and a unit `B`, `KiB` or `MiB`, from
/// 4 KiB to 64 MiB (`"1MiB"`, `"256KiB"`).
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let bytes = parse_bytes(s).ok_or_else(|| {
        format!(
            "invalid size {} (expected a whole number and B, KiB or MiB, as in \"1MiB\")",
            quote(s)
        )
    })?;
    match usize::try_from(bytes) {
        Ok(b) if (4096..=64 * 1024 * 1024).contains(&b) => Ok(b),
        _ => Err(format!("size {} out of range (4KiB to 64MiB)", quote(s))),
    }
}

/// Parses a memory limit: a whole number and a unit `B`, `KiB`, `MiB`,
/// `GiB` or `TiB`, at least [`MIN_MEMORY`] and at most what the OCI spec's
/// signed 64-bit field holds.
pub(crate) fn parse_memory(s: &str) -> Result<u64, String> {
    let Some(bytes) = parse_bytes(s) else {
        return Err(format!(
            "invalid size {} (expected a whole number and B, KiB, MiB, GiB or TiB, as in \"256MiB\")",
            quote(s)
        ));
    };
    if bytes < MIN_MEMORY {
        return Err(format!(
            "memory {} below the 4MiB minimum (no process starts in less)",
            quote(s)
        ));
    }
    if i64::try_from(bytes).is_err() {
        return Err(format!("memory {} too large", quote(s)));
    }
    Ok(bytes)
}

/// Signal names berth accepts, with their x86-64 numbers (signal(7)).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("ALRM", 14),
    ("TERM", 15),
    ("PWR", 30),
    ("WINCH", 28),
];

/// `SIGTERM`, `TERM` or a number 1-64 (SIGSTOP, SIGCHLD and friends are
/// refused: they cannot stop a process).
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let name = s.strip_prefix("SIG").unwrap_or(s);
    if let Some((_, n)) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Ok(*n);
    }
    match s.parse::<i32>() {
        Ok(n) if (1..=64).contains(&n) && ![17, 18, 19, 20, 21, 22].contains(&n) => Ok(n),
        _ => Err(format!(
            "unknown stop signal {} (expected one of {}, or a number)",
            quote(s),
            SIGNALS
                .iter()
                .map(|(n, _)| format!("SIG{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok: &[(&str, u64)] = &[
            ("100ms", 100),
            ("0ms", 0),
            ("1s", 1000),
            ("1.5s", 1500),
            ("2m", 120_000),
            ("1h", 3_600_000),
            (" 30s ", 30_000),
        ];
        for (s, ms) in ok {
            assert_eq!(
                parse_duration(s).map(|d| d.as_millis() as u64),
                Ok(*ms),
                "{s}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("10", "has no unit"),
            ("10 parsecs", "unknown unit \"parsecs\""),
            ("fast", "invalid duration"),
            ("-1s", "invalid duration"),
            ("2d", "unknown unit"),
            ("25h", "out of range"),
            ("", "invalid duration"),
        ];
        for (s, want) in bad {
            let err = parse_duration(s).expect_err(s);
            assert!(err.contains(want), "{s}: {err}");
        }
    }

    #[test]
    fn sizes() {
        let table: &[(&str, Result<usize, &str>)] = &[
            ("1MiB", Ok(1 << 20)),
            ("256KiB", Ok(256 << 10)),
            ("4096B", Ok(4096)),
            ("64MiB", Ok(64 << 20)),
            ("4095B", Err("out of range")),
            ("65MiB", Err("out of range")),
            ("1GiB", Err("out of range")),
            ("1 MiB", Ok(1 << 20)),
            ("1MB", Err("invalid size")),
            ("1.5MiB", Err("invalid size")),
            ("MiB", Err("invalid size")),
            ("", Err("invalid size")),
        ];
        for (s, want) in table {
            match (parse_size(s), want) {
                (Ok(n), Ok(w)) => assert_eq!(n, *w, "{s}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{s}: {e}"),
                (got, _) => panic!("{s}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn memory_sizes() {
        let table: &[(&str, Result<u64, &str>)] = &[
            ("256MiB", Ok(256 << 20)),
            ("4MiB", Ok(4 << 20)),
            ("4096KiB", Ok(4 << 20)),
            ("1GiB", Ok(1 << 30)),
            (" 2 GiB ", Ok(2 << 30)),
            ("1TiB", Ok(1 << 40)),
            ("4194304B", Ok(4 << 20)),
            ("4194303B", Err("below the 4MiB minimum")),
            ("1MiB", Err("below the 4MiB minimum")),
            ("0MiB", Err("below the 4MiB minimum")),
            ("8388608TiB", Err("too large")),
            ("99999999999999999999B", Err("invalid size")),
            ("256MB", Err("invalid size \"256MB\"")),
            ("256M", Err("invalid size")),
            ("1.5GiB", Err("invalid size")),
            ("-1GiB", Err("invalid size")),
            ("256", Err("invalid size")),
            ("", Err("invalid size")),
        ];
        for (s, want) in table {
            match (parse_memory(s), want) {
                (Ok(n), Ok(w)) => assert_eq!(n, *w, "{s}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{s}: {e}"),
                (got, _) => panic!("{s}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn signals() {
        let table: &[(&str, Result<i32, &str>)] = &[
            ("SIGTERM", Ok(15)),
            ("TERM", Ok(15)),
            ("SIGINT", Ok(2)),
            ("SIGQUIT", Ok(3)),
            ("SIGKILL", Ok(9)),
            ("SIGUSR1", Ok(10)),
            ("SIGPWR", Ok(30)),
            ("15", Ok(15)),
            ("37", Ok(37)),
            ("SIGSTOP", Err("unknown stop signal")),
            ("19", Err("unknown stop signal")),
            ("0", Err("unknown stop signal")),
            ("65", Err("unknown stop signal")),
            ("sigterm", Err("unknown stop signal")),
        ];
        for (s, want) in table {
            match (parse_signal(s), want) {
                (Ok(n), Ok(w)) => assert_eq!(n, *w, "{s}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{s}: {e}"),
                (got, _) => panic!("{s}: got {got:?}, want {want:?}"),
            }
        }
    }
}
