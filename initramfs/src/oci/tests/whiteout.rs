//! Whiteouts and opaque folders across layers.

use super::fixture::*;
use super::*;

fn lower() -> Vec<u8> {
    TarLayer::new()
        .dir("etc")
        .file("etc/keep", b"")
        .file("etc/motd", b"hello")
        .dir("var/cache/apt")
        .file("var/cache/apt/pkgcache.bin", b"cache")
        .file("var/cache/apt/srcpkgcache.bin", b"cache")
        .dir("opt/app/sub")
        .file("opt/app/old", b"")
        .file("opt/app/sub/old", b"")
        .tar()
}

fn unpacked(upper: Vec<u8>) -> (Scene, PathBuf, UnpackReport) {
    let s = Scene::new();
    let image = s.image("layout", vec![lower(), upper]);
    let dest = s.dest("rootfs");
    let report = s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    (s, dest, report)
}

#[test]
fn whiteout_removes_a_file() {
    let (_s, dest, report) = unpacked(TarLayer::new().file("etc/.wh.motd", b"").tar());
    assert!(!exists(&dest.join("etc/motd")));
    assert!(exists(&dest.join("etc/keep")));
    assert!(!exists(&dest.join("etc/.wh.motd")));
    assert_eq!(report.whiteouts, 1);
}

#[test]
fn whiteout_removes_a_folder_recursively() {
    let (_s, dest, _) = unpacked(TarLayer::new().file("var/cache/.wh.apt", b"").tar());
    assert!(!exists(&dest.join("var/cache/apt")));
    assert!(exists(&dest.join("var/cache")));
}

#[test]
fn whiteout_of_something_missing_is_harmless() {
    let (_s, dest, _) = unpacked(
        TarLayer::new()
            .file("nope/.wh.x", b"")
            .file(".wh.y", b"")
            .tar(),
    );
    assert!(!exists(&dest.join("nope")));
}

#[test]
fn opaque_marker_before_its_siblings() {
    let upper = TarLayer::new()
        .dir("opt/app")
        .file("opt/app/.wh..wh..opq", b"")
        .file("opt/app/new", b"new")
        .dir("opt/app/sub")
        .tar();
    let (_s, dest, _) = unpacked(upper);
    assert_eq!(tree(&dest.join("opt")), ["app", "app/new", "app/sub"]);
}

#[test]
fn opaque_marker_after_its_siblings_keeps_them() {
    let upper = TarLayer::new()
        .dir("opt/app")
        .file("opt/app/new", b"new")
        .dir("opt/app/sub")
        .file("opt/app/sub/also-new", b"")
        .file("opt/app/.wh..wh..opq", b"")
        .tar();
    let (_s, dest, _) = unpacked(upper);
    // Lower entries at any depth go; the layer's own stay.
    assert_eq!(
        tree(&dest.join("opt")),
        ["app", "app/new", "app/sub", "app/sub/also-new"]
    );
    assert_eq!(read(&dest.join("opt/app/new")), "new");
}

#[test]
fn opaque_root() {
    let upper = TarLayer::new()
        .file("only", b"")
        .file(".wh..wh..opq", b"")
        .tar();
    let (_s, dest, _) = unpacked(upper);
    assert_eq!(tree(&dest), ["only"]);
}

#[test]
fn whiteout_does_not_hide_the_same_layer() {
    let upper = TarLayer::new()
        .file("etc/new", b"n")
        .file("etc/.wh.new", b"")
        .tar();
    let (_s, dest, _) = unpacked(upper);
    assert_eq!(read(&dest.join("etc/new")), "n");
}

#[test]
fn whiteout_then_recreate_in_a_later_layer() {
    let s = Scene::new();
    let second = TarLayer::new().file(".wh.etc", b"").tar();
    let third = TarLayer::new().file("etc/fresh", b"f").tar();
    let image = s.image("layout", vec![lower(), second, third]);
    let dest = s.dest("rootfs");
    s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert_eq!(tree(&dest.join("etc")), ["fresh"]);
}

#[test]
fn aufs_metadata_is_skipped() {
    let upper = TarLayer::new()
        .dir(".wh..wh.plnk")
        .file(".wh..wh.aufs", b"")
        .tar();
    let (_s, dest, _) = unpacked(upper);
    assert!(!tree(&dest).iter().any(|p| p.contains(".wh.")));
}
