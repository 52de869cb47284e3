//! What the three stable `fuzz_replay` tests share (`config/`,
//! `supervisor/` and `initramfs/` include this file with `#[path]`): the
//! committed corpus of a fuzz target, its replay, and
//! proptest runs with a fixed seed (`PROPTEST_CASES` and
//! `PROPTEST_RNG_SEED` widen a local run) over random and mutated inputs.
#![allow(dead_code)] // each test uses its own subset

use std::path::{Path, PathBuf};

use berth_config::fuzz::{apply_edits, corpus_files, Edit};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// Every committed input of fuzz target `target` (at least 10).
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let files = corpus_files(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    assert!(
        files.len() >= 10,
        "{}: only {} seeds",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `check` on every corpus input of `target`, naming the input that
/// fails. No clock: how long an input takes depends on the machine, so
/// the checks bound the work itself (bytes, entries, errors) against the
/// input's size instead; timing belongs in benchmarks.
pub fn replay(target: &str, check: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        eprintln!("replaying {}", path.display());
        check(&bytes);
    }
}

/// A fixed seed unless `PROPTEST_RNG_SEED` asks for another; `cases`
/// unless `PROPTEST_CASES` is set.
pub fn config(cases: u32) -> Config {
    let base = Config::default();
    let env = |name| std::env::var_os(name).is_some();
    Config {
        cases: if env("PROPTEST_CASES") {
            base.cases
        } else {
            cases
        },
        rng_seed: if env("PROPTEST_RNG_SEED") {
            base.rng_seed
        } else {
            RngSeed::Fixed(0xbe47_f022)
        },
        failure_persistence: None,
        ..base
    }
}

/// `test` on `cases` values of `strategy`; a panic is a finding.
pub fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value)) {
    TestRunner::new(config(cases))
        .run(&strategy, |value| {
            test(value);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Corpus seeds of `target`, spliced and edited (1 to 7 edits), through
/// `check`.
pub fn mutated(target: &str, cases: u32, check: fn(&[u8])) {
    let seeds = corpus(target);
    let n = seeds.len();
    let edit = (any::<u8>(), any::<usize>(), any::<usize>(), any::<u8>())
        .prop_map(|(kind, a, b, c)| Edit::from_raw(kind, a, b, c));
    let strategy = (0..n, 0..n, prop::collection::vec(edit, 1..8));
    run(cases, strategy, |(i, j, edits)| {
        check(&apply_edits(&seeds[i].1, &seeds[j].1, &edits))
    });
}
