//! The layer store: identical layers written once, linked everywhere.

use super::fixture::*;
use super::*;
use crate::oci::unpack::{unpack_with, Owners};
use crate::oci::OciError;

fn base() -> Vec<u8> {
    TarLayer::new()
        .dir("bin")
        .file_as("bin/busybox", &[7u8; 1000], 0o755, (0, 0))
        .hardlink("bin/sh", "bin/busybox")
        .file("etc-release", b"base")
        .tar()
}

#[test]
fn shared_layers_are_written_once_and_hard_linked() {
    let s = Scene::new();
    let web = s.image_comp(
        "web",
        vec![
            (base(), Comp::Gzip),
            (TarLayer::new().file("www", b"page").tar(), Comp::Plain),
        ],
    );
    let db = s.image_comp(
        "db",
        vec![
            (base(), Comp::Gzip),
            (TarLayer::new().file("db", b"rows!").tar(), Comp::Plain),
        ],
    );
    assert_eq!(web.layers[0].digest, db.layers[0].digest);

    let mut store = LayerStore::new(s.path("store")).expect("store");
    let policy = Policy::default();
    let (a, b) = (s.dest("a"), s.dest("b"));
    let first =
        unpack_with(&web, &a, &mut store, &policy, Owners::Apply, &mut |_| {}).expect("web");
    let second = unpack_with(&db, &b, &mut store, &policy, Owners::Apply, &mut |_| {}).expect("db");

    assert_eq!((first.bytes_written, first.bytes_linked), (1000 + 4 + 4, 0));
    assert_eq!((second.bytes_written, second.bytes_linked), (5, 1000 + 4));
    assert_eq!(first.files, 3);
    assert_eq!(second.files, 3);

    let hex = &web.layers[0].digest[7..];
    for file in ["bin/busybox", "etc-release"] {
        let stored = s.path("store").join(hex).join(file);
        assert_eq!(inode(&a.join(file)), inode(&stored), "{file}");
        assert_eq!(inode(&b.join(file)), inode(&stored), "{file}");
    }
    assert_eq!(inode(&b.join("bin/sh")), inode(&a.join("bin/busybox")));
    assert_ne!(inode(&a.join("www")), inode(&b.join("db")));
    // Verified layers only, no partial folders left.
    assert!(tree(&s.path("store"))
        .iter()
        .all(|p| !p.contains(".partial")));
    assert_eq!(read(&b.join("db")), "rows!");
}

#[test]
fn a_second_unpack_of_the_same_image_writes_nothing() {
    let s = Scene::new();
    let image = s.image("layout", vec![base()]);
    let mut store = LayerStore::new(s.path("store")).expect("store");
    let policy = Policy::default();
    unpack_with(
        &image,
        &s.dest("a"),
        &mut store,
        &policy,
        Owners::Apply,
        &mut |_| {},
    )
    .expect("a");
    let again = unpack_with(
        &image,
        &s.dest("b"),
        &mut store,
        &policy,
        Owners::Apply,
        &mut |_| {},
    )
    .expect("b");
    assert_eq!((again.bytes_written, again.bytes_linked), (0, 1004));
}

#[test]
fn a_layer_listed_twice_in_one_image() {
    let s = Scene::new();
    let image = s.image(
        "layout",
        vec![
            base(),
            TarLayer::new().file("etc-release", b"mid").tar(),
            base(),
        ],
    );
    let dest = s.dest("rootfs");
    let report = s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert_eq!(read(&dest.join("etc-release")), "base");
    assert_eq!(report.bytes_linked, 1004);
}

#[test]
fn one_timestamp_per_store() {
    let s = Scene::new();
    let image = s.image("layout", vec![base()]);
    let mut store = LayerStore::new(s.path("store")).expect("store");
    let at = |epoch| Policy {
        epoch,
        allow_devices: false,
    };
    unpack_with(
        &image,
        &s.dest("a"),
        &mut store,
        &at(1),
        Owners::Apply,
        &mut |_| {},
    )
    .expect("a");
    let err = unpack_with(
        &image,
        &s.dest("b"),
        &mut store,
        &at(2),
        Owners::Apply,
        &mut |_| {},
    )
    .expect_err("other epoch");
    assert!(matches!(err, OciError::Store { .. }), "{err}");
}

#[test]
fn duplicate_paths_in_one_layer_keep_the_last() {
    let s = Scene::new();
    let layer = TarLayer::new()
        .file("x", b"first")
        .file("x", b"second")
        .file("y", b"a file")
        .dir("y")
        .file("y/z", b"under")
        .tar();
    let image = s.image("layout", vec![layer]);
    let mut store = LayerStore::new(s.path("store")).expect("store");
    let policy = Policy::default();
    for dest in ["a", "b"] {
        let dest = s.dest(dest);
        unpack_with(
            &image,
            &dest,
            &mut store,
            &policy,
            Owners::Apply,
            &mut |_| {},
        )
        .expect("unpack");
        assert_eq!(read(&dest.join("x")), "second");
        assert_eq!(read(&dest.join("y/z")), "under");
    }
}
