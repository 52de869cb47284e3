//! The `oci_layer` and `oci_layout` fuzz targets' checks on stable: every
//! committed input of `fuzz/corpus/{oci_layer,oci_layout}` replayed
//! through [`berth_image::oci::fuzz`], then property tests: random bytes,
//! mutated seeds and generated tar streams of hostile entries (`..`,
//! absolute paths, links out of the rootfs, whiteouts, bogus sizes), plain
//! and compressed. Each case unpacks for real into a scratch folder, so
//! the case counts are small. The seed is fixed so CI runs are
//! reproducible; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` widen a local
//! run.

use std::io::Write;

use berth_image::oci::fuzz::{check_layer, check_layout};
use proptest::prelude::*;

#[path = "../../fuzz/support.rs"]
mod support;
use support::{mutated, run};

#[test]
fn oci_layer_corpus_replays() {
    support::replay("oci_layer", check_layer);
}

#[test]
fn oci_layout_corpus_replays() {
    support::replay("oci_layout", check_layout);
}

#[test]
fn oci_layer_random_bytes() {
    let bytes = prop::collection::vec(any::<u8>(), 0..2048);
    // With the magic numbers in front, the decoders get garbage too.
    let magic = prop::sample::select(vec![
        &b""[..],
        &[0x1f, 0x8b, 8, 0][..],
        &[0x28, 0xb5, 0x2f, 0xfd][..],
    ]);
    run(64, (magic, bytes), |(magic, bytes)| {
        check_layer(&[magic, &bytes].concat())
    });
}

#[test]
fn oci_layer_mutated_seeds() {
    mutated("oci_layer", 160, check_layer);
}

#[test]
fn oci_layout_mutated_seeds() {
    mutated("oci_layout", 128, check_layout);
}

// ---- generated tar streams ----

/// Path pieces: names, some of them whiteouts…
const NAMES: &[&str] = &[
    "a",
    "b",
    "etc",
    ".wh.a",
    ".wh.b",
    ".wh..wh..opq",
    "é",
    "a b",
];
/// …and the rarer pieces that make an entry refused or special.
const ODD: &[&str] = &["..", ".", "", ".wh.", ".wh...", ".wh..wh.plnk"];

/// Link targets: inside, outside, through symlinks, absolute.
const TARGETS: &[&str] = &[
    "a",
    "a/b",
    "b",
    "../outside/sentinel",
    "/etc/passwd",
    "..",
    "/",
    ".",
    "",
    "a/../b",
    "../outside",
    "etc/passwd",
];

#[derive(Debug, Clone)]
struct GenEntry {
    path: Vec<&'static str>,
    absolute: bool,
    kind: u8,
    target: &'static str,
    mode: u32,
    data: Vec<u8>,
    /// Claims more (or fewer) bytes than follow.
    size_lie: Option<u64>,
}

fn gen_entry() -> impl Strategy<Value = GenEntry> {
    // Mostly what images hold; now and then a device, a pax or GNU
    // long-name header with random content, a contiguous file.
    let kind = prop_oneof![
        24 => prop::sample::select(b"0000055512226".to_vec()),
        1 => prop::sample::select(b"34xgLK7".to_vec()),
    ];
    (
        prop::collection::vec(
            prop_oneof![12 => prop::sample::select(NAMES), 1 => prop::sample::select(ODD)],
            1..4,
        ),
        prop::bool::weighted(0.05),
        kind,
        prop::sample::select(TARGETS),
        prop::sample::select(vec![0o644, 0o755, 0o000, 0o4755, 0o1777, 0o7777]),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::option::weighted(
            0.01,
            prop::sample::select(vec![0u64, 1, 511, 1 << 20, 1 << 40]),
        ),
    )
        .prop_map(
            |(path, absolute, kind, target, mode, data, size_lie)| GenEntry {
                path,
                absolute,
                kind,
                target,
                mode,
                data,
                size_lie,
            },
        )
}

/// A tar stream of `entries` with raw headers (so `..` and lies go in),
/// then compressed as `comp` says: 0 plain, 1 gzip, 2 zstd.
fn build_tar(entries: &[GenEntry], comp: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut path = e.path.join("/");
        if e.absolute {
            path.insert(0, '/');
        }
        let mut h = tar::Header::new_gnu();
        let name = path.as_bytes();
        {
            let gnu = h.as_gnu_mut().expect("a gnu header");
            let n = name.len().min(99);
            gnu.name[..n].copy_from_slice(&name[..n]);
            let link = e.target.as_bytes();
            gnu.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(tar::EntryType::new(e.kind));
        h.set_mode(e.mode);
        h.set_uid(1000);
        h.set_gid(1000);
        let data: &[u8] = if matches!(e.kind, b'0' | b'7' | b'x' | b'g' | b'L' | b'K') {
            &e.data
        } else {
            &[]
        };
        h.set_size(e.size_lie.unwrap_or(data.len() as u64));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    match comp {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&out).expect("gzip");
            e.finish().expect("gzip")
        }
        2 => ruzstd::encoding::compress_to_vec(
            out.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        ),
        _ => out,
    }
}

#[test]
fn generated_hostile_tars() {
    let strategy = (prop::collection::vec(gen_entry(), 0..24), 0u8..3);
    run(256, strategy, |(entries, comp)| {
        check_layer(&build_tar(&entries, comp))
    });
}
