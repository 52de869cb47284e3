//! Checks shared by the fuzz targets (`fuzz/fuzz_targets/{manifest,cmdline}.rs`)
//! and the stable tests that replay the committed corpus
//! (`config/tests/fuzz_replay.rs`).
//!
//! Each check takes arbitrary bytes, runs a parser on them and asserts what
//! must hold for every input: no panic, the same answer twice, and a result
//! bounded by the input (error counts at most linear in its length, every
//! message on one line and not much longer than the input). A violated
//! property panics with a message naming it, which is how both libFuzzer
//! and `cargo test` report a finding; nothing here runs in PID 1.
//!
//! Bytes that are not UTF-8 are decoded lossily: the parsers take `&str`,
//! and their callers (`Manifest::from_file`, PID 1 reading
//! `/proc/cmdline`) decide what to do with invalid UTF-8 first.

use std::borrow::Cow;

use crate::cmdline::{KernelCmdline, RootVerity, ROOT_HASH_HEX_LEN};
use crate::manifest::{Kind, Manifest, ManifestErrors, Phase, RestartPolicy};
use crate::network::{NetworkMode, NETWORK_ONLINE};

/// Longest message allowed for an input of `len` bytes: a message quotes
/// at most a few values of the input, each escaped (`\u{10ffff}` is the
/// longest escape of one character, 10 bytes for one to four input bytes).
fn message_limit(len: usize) -> usize {
    24 * len + 1024
}

fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Parses `data` as a manifest and checks the outcome.
pub fn check_manifest(data: &[u8]) {
    let text = text(data);
    let parsed = Manifest::parse(&text);
    match &parsed {
        Ok(manifest) => check_valid_manifest(manifest, &text),
        Err(errors) => check_manifest_errors(errors, &text),
    }
    assert_eq!(
        parsed,
        Manifest::parse(&text),
        "parsing the same text twice gave two answers"
    );
}

fn check_valid_manifest(m: &Manifest, text: &str) {
    assert!(
        m.containers.len() <= text.len(),
        "{} containers from {} bytes",
        m.containers.len(),
        text.len()
    );
    for (i, c) in m.containers.iter().enumerate() {
        assert!(
            crate::validate_container_name(&c.name),
            "accepted container name {:?}",
            c.name
        );
        assert!(
            m.containers[..i].iter().all(|o| o.name != c.name),
            "container {:?} declared twice",
            c.name
        );
        assert!(
            c.workdir.starts_with('/'),
            "relative workdir {:?}",
            c.workdir
        );
        assert!(
            (1..=64).contains(&c.stop_signal),
            "stop signal {}",
            c.stop_signal
        );
        assert!(
            (4096..=64 << 20).contains(&c.log_size),
            "log size {}",
            c.log_size
        );
        assert!(c.backoff.initial <= c.backoff.max, "backoff max < initial");
        // Exactly one of the two: no image means a rootfs path.
        assert!(
            c.image.is_some() == c.rootfs.as_os_str().is_empty(),
            "{}: rootfs and image both set or both missing",
            c.name
        );
        if c.phase != Phase::Service {
            assert_eq!(
                c.restart,
                RestartPolicy::Never,
                "{}: run-once restarts",
                c.name
            );
            assert!(c.after.is_empty() && c.requires.is_empty() && c.health.is_none());
        }
        if c.kind == Kind::Host {
            assert_eq!(
                c.network,
                NetworkMode::Host,
                "{}: host container network",
                c.name
            );
        }
        for dep in c.after.iter().chain(&c.requires) {
            let known = dep == NETWORK_ONLINE
                || m.containers
                    .iter()
                    .any(|o| &o.name == dep && o.phase == Phase::Service);
            assert!(
                known && dep != &c.name,
                "{}: bad dependency {dep:?}",
                c.name
            );
        }
        for arg in c.argv() {
            assert!(!arg.contains('\0'), "{}: NUL in argv", c.name);
        }
        check_plan_round_trip(c);
    }
}

/// A valid container survives its plan's JSON unchanged, as PID 1 reads
/// what the image builder wrote.
fn check_plan_round_trip(c: &crate::Container) {
    let plan = crate::Plan::resolve(c, None, crate::plan::ProcessUser::default()).0;
    let json = plan.to_json().expect("a valid container serialises");
    let back = crate::Plan::from_json(&json).expect("a written plan reads back");
    assert_eq!(&back.container, c, "{}: plan round trip", c.name);
}

fn check_manifest_errors(errors: &ManifestErrors, text: &str) {
    let count = errors.0.len();
    assert!(count > 0, "an error result without errors");
    // Every error belongs to a key, a value or an array element, each at
    // least a byte of input, and no item earns more than a few errors.
    assert!(
        count <= 2 * text.len() + 2,
        "{count} errors from {} bytes",
        text.len()
    );
    let limit = message_limit(text.len());
    for e in &errors.0 {
        assert!(!e.message.is_empty(), "empty message at {:?}", e.path);
        assert!(
            e.path.len() <= limit && e.message.len() <= limit,
            "error of {} + {} bytes from {} bytes of input",
            e.path.len(),
            e.message.len(),
            text.len()
        );
        // The report is one error per line.
        assert!(
            !e.path.contains('\n') && !e.message.contains('\n'),
            "error spans lines: {e}"
        );
    }
    assert_eq!(errors.to_string().lines().count(), count);
}

/// Parses `data` as a kernel command line and checks the outcome.
pub fn check_cmdline(data: &[u8]) {
    let text = text(data);
    let parsed = KernelCmdline::parse(&text);
    assert!(
        parsed.root.as_ref().is_none_or(|r| !r.is_empty()),
        "empty root device"
    );
    assert!(
        parsed.slot == 'a' || parsed.slot == 'b',
        "slot {:?}",
        parsed.slot
    );
    if let Some(fs) = &parsed.rootfstype {
        assert!(fs == "erofs" || fs == "squashfs", "rootfstype {fs:?}");
    }
    if let RootVerity::RootHash(hash) = &parsed.verity {
        assert!(
            hash.len() == ROOT_HASH_HEX_LEN
                && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "root hash {hash:?}"
        );
    }
    let words = text.split_whitespace().count();
    assert!(
        parsed.unknown.len() + parsed.invalid.len() <= words,
        "{} problems from {words} words",
        parsed.unknown.len() + parsed.invalid.len()
    );
    for word in &parsed.unknown {
        assert!(word.starts_with("berth."), "unknown word {word:?}");
        assert!(
            word.len() <= text.len(),
            "unknown word longer than the input"
        );
    }
    let limit = message_limit(text.len());
    for message in &parsed.invalid {
        assert!(message.len() <= limit, "message of {} bytes", message.len());
        assert!(!message.contains('\n'), "message spans lines: {message:?}");
    }
    assert_eq!(
        parsed,
        KernelCmdline::parse(&text),
        "parsing the same line twice gave two answers"
    );
}

/// Longest input [`apply_edits`] makes: big enough for size limits to
/// matter, small enough to keep a property-test case fast.
pub const MAX_MUTATED: usize = 64 * 1024;

/// One change to a seed input, as the property tests draw them; the
/// stable stand-in for libFuzzer's mutator. Positions wrap around the
/// input's length, so any drawn numbers make a valid edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Flips one bit.
    Flip {
        at: usize,
        bit: u8,
    },
    /// Overwrites one byte.
    Set {
        at: usize,
        byte: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Remove {
        at: usize,
    },
    /// Cuts the input short.
    Truncate {
        at: usize,
    },
    /// Puts `len` bytes of the other seed, from `from`, at `at`.
    Splice {
        at: usize,
        from: usize,
        len: usize,
    },
    /// Repeats `len` bytes from `at` `times` times (long lines, deep
    /// nesting, many entries).
    Repeat {
        at: usize,
        len: usize,
        times: usize,
    },
}

impl Edit {
    /// An edit from four drawn numbers: `kind` picks the variant, the
    /// others its fields.
    pub fn from_raw(kind: u8, a: usize, b: usize, c: u8) -> Edit {
        match kind % 7 {
            0 => Edit::Flip { at: a, bit: c % 8 },
            1 => Edit::Set { at: a, byte: c },
            2 => Edit::Insert { at: a, byte: c },
            3 => Edit::Remove { at: a },
            4 => Edit::Truncate { at: a },
            5 => Edit::Splice {
                at: a,
                from: b,
                len: usize::from(c),
            },
            _ => Edit::Repeat {
                at: a,
                len: 1 + b % 64,
                times: 1 + usize::from(c) * 4,
            },
        }
    }
}

/// `seed` with `edits` applied in order; `other` feeds splices. The
/// result never grows past [`MAX_MUTATED`] bytes.
pub fn apply_edits(seed: &[u8], other: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for edit in edits {
        // Insertion points range over 0..=len, others over 0..len.
        let point = |at: usize, len: usize| at % (len + 1);
        match *edit {
            Edit::Flip { at, bit } if !out.is_empty() => {
                let i = at % out.len();
                out[i] ^= 1 << (bit % 8);
            }
            Edit::Set { at, byte } if !out.is_empty() => {
                let i = at % out.len();
                out[i] = byte;
            }
            Edit::Insert { at, byte } => out.insert(point(at, out.len()), byte),
            Edit::Remove { at } if !out.is_empty() => {
                out.remove(at % out.len());
            }
            Edit::Truncate { at } => out.truncate(point(at, out.len())),
            Edit::Splice { at, from, len } if !other.is_empty() => {
                let from = from % other.len();
                let end = other.len().min(from + len);
                let at = point(at, out.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            Edit::Repeat { at, len, times } if !out.is_empty() => {
                let start = at % out.len();
                let end = out.len().min(start + len);
                let chunk = out[start..end].to_vec();
                let room = MAX_MUTATED.saturating_sub(out.len()) / chunk.len();
                let copies = times.min(room);
                out.splice(
                    end..end,
                    chunk.iter().copied().cycle().take(copies * chunk.len()),
                );
            }
            _ => {}
        }
        out.truncate(MAX_MUTATED);
    }
    out
}

/// Every file of a corpus folder, sorted by name, with its contents.
pub fn corpus_files(dir: &std::path::Path) -> std::io::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            let bytes = std::fs::read(&path)?;
            files.push((path, bytes));
        }
    }
    files.sort();
    Ok(files)
}
