//! Checks shared by the `oci_layer` and `oci_layout` fuzz targets
//! (`fuzz/fuzz_targets/`) and the stable tests that replay their corpus
//! (`initramfs/tests/fuzz_replay.rs`).
//!
//! Both go through the public path a build takes: an OCI layout folder is
//! written to a scratch folder, [`open`]ed and [`unpack`]ed. Whatever the
//! bytes, the checks assert:
//!
//! - no panic, and the same answer from a layout folder and from a tar
//!   archive of it;
//! - nothing outside the rootfs changes: a sentinel file next to it keeps
//!   its content, mode, owner and link count (a hard link to it would
//!   raise the count), and no new file appears beside it;
//! - no device node is created (the policy leaves them out);
//! - the files written hold at most as many bytes as the layer's
//!   uncompressed tar stream (each inode counted once), and the rootfs
//!   holds at most as many entries (folders made for a deep path
//!   included) as that stream has bytes: no entry expands into more data
//!   or more filesystem work than the image carries. This is the bound a
//!   timed replay stood for, without a clock;
//! - an unpack that succeeded succeeds again from the layer store (the
//!   path a second container sharing the layer takes) and gives the same
//!   tree.
//!
//! [`check_layer`] takes the bytes as one layer blob (plain tar, gzip or
//! zstd); [`check_layout`] as the JSON documents of a layout, with
//! placeholders for the digests a fuzzer cannot compute (see
//! [`check_layout`]). A violated property panics with a message naming
//! it, which is how libFuzzer and `cargo test` report a finding; this is
//! host-side test support, never used by a build.
//!
//! The scratch folder is made under `std::env::temp_dir()`; `TMPDIR=/dev/shm`
//! makes a fuzzing run faster.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_config::image::{ImageFormat, ImageRef};

use super::compression::Decoder;
use super::{digest, open, resolve_user, unpack, Image, ImageDefaults, LayerStore, Policy};

const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const LAYOUT_VERSION: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The sentinel beside the rootfs: what it holds and its mode.
const SENTINEL: &[u8] = b"sentinel: must not change";
const SENTINEL_MODE: u32 = 0o640;

/// Bytes of uncompressed stream measured at most: past this, the bound
/// on written bytes is not checked (a fuzzer's input never gets there).
const MEASURE_LIMIT: u64 = 1 << 30;

/// Users resolved in every unpacked rootfs, besides the image's own.
const USERS: &[&str] = &[
    "",
    "root",
    "0",
    "1000:1000",
    "nobody",
    "daemon:daemon",
    "app:0",
];

/// Unpacks `data` as the one layer of an image and checks the outcome.
pub fn check_layer(data: &[u8]) {
    let scratch = Scratch::new();
    let layout = scratch.join("layout");
    let layer = put_blob(&layout, data);
    let config = put_blob(
        &layout,
        br#"{"architecture":"amd64","os":"linux","config":{"User":"app"},"rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{{"mediaType":"{CONFIG_TYPE}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{LAYER_TYPE}","digest":"{}","size":{}}}]}}"#,
        config.0, config.1, layer.0, layer.1
    );
    let manifest = put_blob(&layout, manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{MANIFEST_TYPE}","digest":"{}","size":{}}}]}}"#,
        manifest.0, manifest.1
    );
    put_index(&layout, index.as_bytes());
    let image = match open(&oci_ref(&layout)) {
        Ok(image) => image,
        Err(e) => panic!("fuzz harness: the layout it wrote does not open: {e}"),
    };
    unpack_checked(&scratch, &image, uncompressed_len(data));
}

/// Builds an OCI layout from `data` and checks that it opens (or fails)
/// the same as a folder and as a tar archive, then unpacks it.
///
/// `data` is up to four parts separated by NUL bytes: `index.json`, the
/// manifest, the config and a layer blob (the last part may hold NULs).
/// Each blob is stored under its digest; in the three JSON parts the
/// placeholders `@LAYER@`, `@CONFIG@`, `@MANIFEST@` become the digests of
/// the layer, config and manifest blobs, and `@LAYER_SIZE@`,
/// `@CONFIG_SIZE@`, `@MANIFEST_SIZE@` their sizes, so that a fuzzer's
/// mutations of valid seeds reach past the digest checks.
pub fn check_layout(data: &[u8]) {
    let mut parts = data.splitn(4, |&b| b == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (index, manifest, config, layer) = (next(), next(), next(), next());

    let scratch = Scratch::new();
    let layout = scratch.join("layout");
    let mut subs: Vec<(&str, String)> = Vec::new();
    // Every blob of the layout: a manifest may name any of them a layer.
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // In order: the config may name the layer, the manifest both.
    for (part, name, size_name) in [
        (layer, "@LAYER@", "@LAYER_SIZE@"),
        (config, "@CONFIG@", "@CONFIG_SIZE@"),
        (manifest, "@MANIFEST@", "@MANIFEST_SIZE@"),
    ] {
        let bytes = substitute(part, &subs);
        let (digest, size) = put_blob(&layout, &bytes);
        subs.extend([(name, digest.clone()), (size_name, size.to_string())]);
        blobs.insert(digest, bytes);
    }
    put_index(&layout, &substitute(index, &subs));

    let from_dir = open(&oci_ref(&layout));
    let archive = scratch.join("layout.tar");
    tar_folder(&layout, &archive);
    let from_tar = open(&oci_ref(&archive));
    let image = match (from_dir, from_tar) {
        (Ok(dir), Ok(tar)) => {
            assert_eq!(
                dir.config_digest, tar.config_digest,
                "folder and tar differ"
            );
            let digests =
                |i: &Image| -> Vec<String> { i.layers.iter().map(|l| l.digest.clone()).collect() };
            assert_eq!(digests(&dir), digests(&tar), "folder and tar differ");
            dir
        }
        (Err(_), Err(_)) => return,
        (dir, tar) => panic!(
            "the folder {} but the tar archive {}",
            outcome(&dir),
            outcome(&tar)
        ),
    };
    assert!(
        image.layers.len() <= data.len(),
        "{} layers from {} bytes",
        image.layers.len(),
        data.len()
    );
    let _ = ImageDefaults::from_config(&image.config);
    let mut measured: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    let mut bound = Some(0u64);
    for l in &image.layers {
        let len = *measured
            .entry(l.digest.as_str())
            .or_insert_with(|| blobs.get(&l.digest).and_then(|b| uncompressed_len(b)));
        bound = bound.zip(len).map(|(a, b)| a.saturating_add(b));
    }
    unpack_checked(&scratch, &image, bound);
}

fn outcome(r: &Result<Image, super::OciError>) -> String {
    match r {
        Ok(_) => "opens".into(),
        Err(e) => format!("fails: {e}"),
    }
}

fn oci_ref(path: &Path) -> ImageRef {
    ImageRef {
        format: ImageFormat::Oci,
        path: path.to_owned(),
        tag: None,
    }
}

/// `data` with each placeholder replaced.
fn substitute(data: &[u8], subs: &[(&str, String)]) -> Vec<u8> {
    let mut out = data.to_vec();
    for (from, to) in subs {
        let from = from.as_bytes();
        let mut replaced = Vec::with_capacity(out.len());
        let mut rest = out.as_slice();
        while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
            replaced.extend_from_slice(&rest[..at]);
            replaced.extend_from_slice(to.as_bytes());
            rest = &rest[at + from.len()..];
        }
        replaced.extend_from_slice(rest);
        out = replaced;
    }
    out
}

/// Stores `bytes` as a blob of `layout`; returns its digest and size.
fn put_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = digest::of(bytes);
    let dir = layout.join("blobs/sha256");
    create_dir_all(&dir);
    write(&dir.join(&digest["sha256:".len()..]), bytes);
    (digest, bytes.len())
}

fn put_index(layout: &Path, index: &[u8]) {
    create_dir_all(layout);
    write(&layout.join("oci-layout"), LAYOUT_VERSION);
    write(&layout.join("index.json"), index);
}

fn tar_folder(folder: &Path, archive: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    let bytes = builder
        .append_dir_all(".", folder)
        .and_then(|()| builder.into_inner());
    match bytes {
        Ok(bytes) => write(archive, &bytes),
        Err(e) => panic!("fuzz harness: tar {}: {e}", folder.display()),
    }
}

fn create_dir_all(path: &Path) {
    if let Err(e) = std::fs::create_dir_all(path) {
        panic!("fuzz harness: create {}: {e}", path.display());
    }
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("fuzz harness: write {}: {e}", path.display());
    }
}

/// Bytes the layer's decoder produces from `blob`, up to
/// [`MEASURE_LIMIT`]; `None` past it. A stream that breaks counts what
/// came before the break, as the unpacker sees no more either.
fn uncompressed_len(blob: &[u8]) -> Option<u64> {
    let Ok(decoder) = Decoder::new(blob) else {
        return Some(0);
    };
    let mut limited = decoder.take(MEASURE_LIMIT + 1);
    let mut buf = vec![0; 64 << 10];
    let mut total = 0u64;
    loop {
        match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (total <= MEASURE_LIMIT).then_some(total)
}

/// Unpacks `image` into a new rootfs next to a sentinel and checks the
/// outcome; `bound` is the length of its layers' uncompressed streams
/// added up, when measured.
fn unpack_checked(scratch: &Scratch, image: &Image, bound: Option<u64>) {
    let outside = scratch.join("outside");
    create_dir_all(&outside);
    let sentinel = outside.join("sentinel");
    write(&sentinel, SENTINEL);
    if let Err(e) = std::fs::set_permissions(&sentinel, PermissionsExt::from_mode(SENTINEL_MODE)) {
        panic!("fuzz harness: chmod {}: {e}", sentinel.display());
    }
    let before = Sentinel::read(&sentinel);
    let top_before = names(&scratch.root);

    let mut store = match LayerStore::new(scratch.join("store")) {
        Ok(store) => store,
        Err(e) => panic!("fuzz harness: {e}"),
    };
    let rootfs = scratch.join("rootfs");
    create_dir_all(&rootfs);
    let policy = Policy {
        epoch: 0,
        allow_devices: false,
    };
    let first = unpack(image, &rootfs, &mut store, &policy, &mut |_| {});

    assert_eq!(
        Sentinel::read(&sentinel),
        before,
        "the file beside the rootfs changed"
    );
    assert_eq!(
        names(&outside),
        ["sentinel"],
        "a file appeared beside the rootfs"
    );
    let mut top = top_before.clone();
    top.push("rootfs".into());
    top.push("store".into());
    top.sort();
    top.dedup();
    assert_eq!(
        names(&scratch.root),
        top,
        "a file appeared beside the rootfs"
    );
    let tree = Tree::read(&rootfs);
    assert!(tree.devices == 0, "{} device nodes created", tree.devices);
    if let Some(bound) = bound {
        assert!(
            tree.bytes <= bound,
            "{} bytes of files from {bound} bytes of tar",
            tree.bytes
        );
        // Every entry, implied parent folders too, takes a component of
        // some header's path, and those are in the stream.
        assert!(
            tree.entries.len() as u64 <= bound,
            "{} entries from {bound} bytes of tar",
            tree.entries.len()
        );
    }

    let Ok(report) = first else {
        return;
    };
    assert_eq!(report.layers, image.layers.len());
    assert!(report.files <= report.entries, "{report:?}");
    for user in USERS
        .iter()
        .copied()
        .chain(ImageDefaults::from_config(&image.config).user.as_deref())
    {
        let _ = resolve_user(user, &rootfs);
    }

    // A second container of the same image links the store's files.
    let again = scratch.join("rootfs-again");
    create_dir_all(&again);
    if let Err(e) = unpack(image, &again, &mut store, &policy, &mut |_| {}) {
        panic!("a second unpack from the layer store failed: {e}");
    }
    assert_eq!(
        Tree::read(&again).entries,
        tree.entries,
        "the second unpack gave another tree"
    );
}

/// What must not change about the sentinel.
#[derive(Debug, PartialEq, Eq)]
struct Sentinel {
    content: Option<Vec<u8>>,
    mode: u32,
    owner: (u32, u32),
    links: u64,
    kind_is_file: bool,
}

impl Sentinel {
    fn read(path: &Path) -> Sentinel {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => panic!("the file beside the rootfs is gone: {e}"),
        };
        Sentinel {
            content: std::fs::read(path).ok(),
            mode: meta.mode(),
            owner: (meta.uid(), meta.gid()),
            links: meta.nlink(),
            kind_is_file: meta.is_file(),
        }
    }
}

/// Names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => panic!("fuzz harness: list {}: {e}", dir.display()),
    };
    out.sort();
    out
}

/// A summary of an unpacked rootfs, symlinks not followed.
#[derive(Debug, Default)]
struct Tree {
    /// Relative path → (kind, size, mode) of every entry.
    entries: BTreeMap<PathBuf, (&'static str, u64, u32)>,
    /// Bytes of regular files, each inode counted once.
    bytes: u64,
    devices: usize,
}

impl Tree {
    fn read(root: &Path) -> Tree {
        let mut tree = Tree::default();
        let mut seen = std::collections::HashSet::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(rel) = pending.pop() {
            // A builder that is not root cannot list a folder an image
            // made unreadable; both unpacks skip it alike.
            let Ok(entries) = std::fs::read_dir(root.join(&rel)) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let child = rel.join(entry.file_name());
                let Ok(meta) = std::fs::symlink_metadata(root.join(&child)) else {
                    continue;
                };
                let t = meta.file_type();
                let kind = if t.is_dir() {
                    pending.push(child.clone());
                    "dir"
                } else if t.is_file() {
                    if seen.insert(meta.ino()) {
                        tree.bytes += meta.len();
                    }
                    "file"
                } else if t.is_symlink() {
                    "symlink"
                } else {
                    use std::os::unix::fs::FileTypeExt;
                    if t.is_char_device() || t.is_block_device() {
                        tree.devices += 1;
                    }
                    "node"
                };
                let size = if kind == "file" { meta.len() } else { 0 };
                tree.entries.insert(child, (kind, size, meta.mode()));
            }
        }
        tree
    }
}

/// A fresh folder for one check, removed afterwards.
#[derive(Debug)]
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("berth-fuzz-{}-{n}", std::process::id()));
        force_remove(&root);
        create_dir_all(&root);
        Scratch { root }
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        force_remove(&self.root);
    }
}

/// Removes a tree even where an image left folders without write or
/// search permission (a builder that is not root could not otherwise).
fn force_remove(path: &Path) {
    fn open_up(path: &Path) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.is_dir() {
            let _ = std::fs::set_permissions(path, PermissionsExt::from_mode(0o700));
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.filter_map(Result::ok) {
                    open_up(&entry.path());
                }
            }
        }
    }
    open_up(path);
    let _ = std::fs::remove_dir_all(path);
}
