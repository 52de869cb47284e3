//! Entries that would write outside the rootfs, or that the policy
//! forbids: each is refused with an error naming the layer and the entry,
//! and nothing outside the rootfs changes.

use super::fixture::*;
use super::*;
use crate::oci::OciError;

/// A scene with a folder `outside` holding a sentinel file.
fn scene() -> Scene {
    let s = Scene::new();
    std::fs::create_dir(s.path("outside")).expect("outside");
    std::fs::write(s.path("outside/passwd"), b"sentinel").expect("sentinel");
    s
}

/// Unpacks `layers`, expects an [`OciError::Escape`] for `path` in the
/// last layer whose reason contains `why`, and checks `outside`.
fn refused(s: &Scene, layers: Vec<Vec<u8>>, path: &str, why: &str) {
    let image = s.image("layout", layers);
    let dest = s.dest("rootfs");
    let err = s
        .unpack(&image, &dest, &Policy::default())
        .expect_err("must be refused");
    let last = &image.layers.last().expect("a layer").digest;
    match &err {
        OciError::Escape {
            layer,
            path: p,
            why: w,
        } => {
            assert_eq!(layer, last, "{err}");
            assert_eq!(p, path, "{err}");
            assert!(w.contains(why), "{err}");
        }
        other => panic!("want an escape for {path}, got {other}"),
    }
    assert!(err.to_string().contains(last.as_str()) && err.to_string().contains(path));
    assert_eq!(tree(&s.path("outside")), ["passwd"]);
    assert_eq!(read(&s.path("outside/passwd")), "sentinel");
    let mut top = tree(s.tmp.path());
    top.retain(|p| !p.contains('/'));
    assert_eq!(top, ["layout", "outside", "rootfs", "store"]);
}

fn outside(s: &Scene) -> String {
    s.path("outside").display().to_string()
}

#[test]
fn dotdot_paths() {
    let s = scene();
    refused(
        &s,
        vec![TarLayer::new().file("../x", b"x").tar()],
        "../x",
        "`..`",
    );
    let s = scene();
    refused(
        &s,
        vec![TarLayer::new().file("a/../../x", b"x").tar()],
        "a/../../x",
        "`..`",
    );
    let s = scene();
    refused(
        &s,
        vec![TarLayer::new().file("etc/.wh...", b"").tar()],
        "etc/.wh...",
        "whiteout of `..`",
    );
}

#[test]
fn absolute_paths() {
    let s = scene();
    let path = format!("{}/passwd", outside(&s));
    refused(
        &s,
        vec![TarLayer::new().file(&path, b"x").tar()],
        &path,
        "absolute",
    );
}

#[test]
fn through_a_symlink_to_an_absolute_folder() {
    let s = scene();
    let layer = TarLayer::new()
        .symlink("a", &outside(&s))
        .file("a/passwd", b"owned")
        .tar();
    refused(&s, vec![layer], "a/passwd", "its parent a is a symlink");
    // The symlink may come from a lower layer.
    let s = scene();
    let lower = TarLayer::new()
        .dir("etc")
        .symlink("etc/x", &outside(&s))
        .tar();
    let upper = TarLayer::new().file("etc/x/passwd", b"owned").tar();
    refused(
        &s,
        vec![lower, upper],
        "etc/x/passwd",
        "its parent etc/x is a symlink",
    );
}

#[test]
fn through_a_symlink_to_etc() {
    let before = std::fs::read("/etc/passwd").expect("host passwd");
    let s = scene();
    let layer = TarLayer::new()
        .symlink("a", "/etc")
        .file("a/passwd", b"owned")
        .tar();
    refused(&s, vec![layer], "a/passwd", "its parent a is a symlink");
    assert_eq!(std::fs::read("/etc/passwd").expect("host passwd"), before);
}

#[test]
fn through_a_relative_symlink_climbing_out() {
    let s = scene();
    let layer = TarLayer::new()
        .symlink("a", "../../../../../../..")
        .file("a/x", b"x")
        .tar();
    refused(&s, vec![layer], "a/x", "its parent a is a symlink");
    let s = scene();
    let layer = TarLayer::new()
        .symlink("a", "../outside")
        .dir("a/sub")
        .tar();
    refused(&s, vec![layer], "a/sub", "its parent a is a symlink");
}

#[test]
fn whiteout_through_a_symlink() {
    let s = scene();
    let lower = TarLayer::new().symlink("a", &outside(&s)).tar();
    let upper = TarLayer::new().file("a/.wh.passwd", b"").tar();
    refused(
        &s,
        vec![lower, upper],
        "a/.wh.passwd",
        "its parent a is a symlink",
    );
    let s = scene();
    let lower = TarLayer::new().symlink("a", &outside(&s)).tar();
    let upper = TarLayer::new().file("a/.wh..wh..opq", b"").tar();
    refused(
        &s,
        vec![lower, upper],
        "a/.wh..wh..opq",
        "its parent a is a symlink",
    );
}

#[test]
fn hard_link_targets() {
    let s = scene();
    refused(
        &s,
        vec![TarLayer::new().hardlink("x", "../outside/passwd").tar()],
        "x",
        "`..`",
    );
    let s = scene();
    refused(
        &s,
        vec![TarLayer::new().hardlink("x", "/etc/passwd").tar()],
        "x",
        "absolute",
    );
    let s = scene();
    let layer = TarLayer::new()
        .symlink("l", &outside(&s))
        .hardlink("x", "l/passwd")
        .tar();
    refused(&s, vec![layer], "x", "goes through the symlink l");
    let s = scene();
    refused(
        &s,
        vec![TarLayer::new().hardlink("x", "missing").tar()],
        "x",
        "does not exist in the rootfs",
    );
    let s = scene();
    refused(
        &s,
        vec![TarLayer::new().hardlink("x", "a/b/c").tar()],
        "x",
        "does not exist in the rootfs",
    );
}

#[test]
fn hard_link_to_a_symlink_links_the_symlink() {
    let s = scene();
    let layer = TarLayer::new()
        .symlink("l", &format!("{}/passwd", outside(&s)))
        .hardlink("x", "l")
        .tar();
    let image = s.image("layout", vec![layer]);
    let dest = s.dest("rootfs");
    s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert!(lmeta(&dest.join("x")).file_type().is_symlink());
    assert_eq!(inode(&dest.join("x")), inode(&dest.join("l")));
    assert_eq!(read(&s.path("outside/passwd")), "sentinel");
}

#[test]
fn replacing_a_symlink_does_not_follow_it() {
    let s = scene();
    let target = format!("{}/passwd", outside(&s));
    let lower = TarLayer::new()
        .symlink("f", &target)
        .symlink("d", &outside(&s))
        .tar();
    let upper = TarLayer::new().file("f", b"replaced").dir("d").tar();
    let image = s.image("layout", vec![lower, upper]);
    let dest = s.dest("rootfs");
    s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert_eq!(read(&dest.join("f")), "replaced");
    assert!(lmeta(&dest.join("d")).is_dir());
    assert_eq!(read(&s.path("outside/passwd")), "sentinel");
    assert_eq!(tree(&s.path("outside")), ["passwd"]);
}
