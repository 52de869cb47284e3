//! A rootfs whose `/etc` points out of it (`etc -> /etc` written for the
//! build host, or `etc -> ../../..`) must not make the builder write on
//! the build host: the file and folder mount points it adds resolve
//! inside the rootfs, as the runtime resolves them. Escapes point at a
//! "host" folder the test owns, never at the real `/etc`.

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use berth_config::image::{ImageFormat, ImageRef};
use berth_config::{Container, RestartPolicy};

use super::{bundle, BundleError, Images};
use crate::folder_store::FolderStore;
use crate::nofollow::resolve_in_root;
use crate::oci::tests::fixture::{
    docker_archive, oci_layout, Comp, DockerImage, OciImage, TarLayer,
};
use crate::oci::LayerStore;

/// The test's stand-in for the build host's `/etc`: a regular `hosts`
/// and a `resolv.conf` symlink (as systemd-resolved leaves it), the two
/// files every bundle gets a mount point for.
fn host_etc(tmp: &Path) -> PathBuf {
    let etc = tmp.join("host/etc");
    std::fs::create_dir_all(&etc).expect("host etc");
    std::fs::write(etc.join("hosts"), b"127.0.0.1 build-host\n").expect("hosts");
    symlink("../run/stub-resolv.conf", etc.join("resolv.conf")).expect("resolv.conf");
    etc
}

/// Everything under `dir`, symlinks not followed: path → (kind, content
/// or link target, mode, inode).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (char, Vec<u8>, u32, u64)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("list") {
            let path = entry.expect("entry").path();
            let m = std::fs::symlink_metadata(&path).expect("lstat");
            let (kind, body) = if m.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("readlink");
                ('l', target.into_os_string().into_encoded_bytes())
            } else if m.is_dir() {
                pending.push(path.clone());
                ('d', Vec::new())
            } else {
                ('f', std::fs::read(&path).expect("read"))
            };
            out.insert(path, (kind, body, m.mode(), m.ino()));
        }
    }
    out
}

fn container(name: &str) -> Container {
    Container {
        command: vec!["/bin/sh".into()],
        // The working directory goes through the symlink too.
        workdir: "/etc/app".into(),
        restart: RestartPolicy::Never,
        ..Container::new(name, "rootfs")
    }
}

fn images(tmp: &Path) -> Images {
    Images {
        store: LayerStore::new(tmp.join("layers")).expect("layer store"),
        folders: FolderStore::new(tmp.join("folders")).expect("folder store"),
        epoch: 0,
    }
}

/// Bundles `c` under `tmp/bundles` and checks that the host folder kept
/// every entry as it was, and that the mount points exist where the
/// runtime will look for them: resolved inside the rootfs.
fn bundles_inside(tmp: &Path, c: &Container) {
    let host = host_etc(tmp);
    let before = snapshot(&tmp.join("host"));
    let bundles = tmp.join("bundles");
    let result = bundle(c, tmp, &bundles, &mut images(tmp));
    assert_eq!(
        snapshot(&tmp.join("host")),
        before,
        "the build host's folder {} changed",
        host.display()
    );
    result.expect("bundle");
    let rootfs = bundles.join(&c.name).join("rootfs");
    for point in ["etc/hosts", "etc/resolv.conf"] {
        let at = resolve_in_root(&rootfs, Path::new(point))
            .expect("resolve")
            .unwrap_or_else(|| panic!("{point} missing in the rootfs"));
        assert!(at.starts_with(&rootfs), "{point} at {}", at.display());
        assert!(std::fs::symlink_metadata(&at).expect("lstat").is_file());
    }
    let workdir = resolve_in_root(&rootfs, Path::new("etc/app"))
        .expect("resolve")
        .expect("workdir in the rootfs");
    assert!(workdir.starts_with(&rootfs) && workdir.is_dir());
}

#[test]
fn folder_with_absolute_etc_link_stays_inside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("rootfs");
    std::fs::create_dir_all(&src).expect("mkdir");
    // `etc -> /etc` on a real build host; here the host's etc is ours.
    symlink(tmp.path().join("host/etc"), src.join("etc")).expect("symlink");
    bundles_inside(tmp.path(), &container("abs"));
}

#[test]
fn folder_with_relative_etc_escape_stays_inside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("rootfs");
    std::fs::create_dir_all(&src).expect("mkdir");
    // From bundles/rel/rootfs/etc, three `..` reach tmp on the host.
    symlink("../../../host/etc", src.join("etc")).expect("symlink");
    bundles_inside(tmp.path(), &container("rel"));
}

#[test]
fn docker_archive_with_absolute_etc_link_stays_inside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let target = tmp.path().join("host/etc").display().to_string();
    let layer = TarLayer::new()
        .dir("bin")
        .file("bin/sh", b"#!")
        .symlink("etc", &target)
        .tar();
    let archive = tmp.path().join("image.tar");
    docker_archive(
        &archive,
        &[DockerImage {
            repo_tags: &["app:1"],
            layers: vec![(layer, Comp::Plain)],
        }],
    );
    let c = Container {
        image: Some(ImageRef {
            format: ImageFormat::DockerArchive,
            path: archive,
            tag: Some("1".into()),
        }),
        ..container("docker")
    };
    bundles_inside(tmp.path(), &c);
}

#[test]
fn oci_layer_with_relative_etc_escape_stays_inside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layer = TarLayer::new()
        .file("sh", b"#!")
        .symlink("etc", "../../../host/etc")
        .tar();
    let layout = tmp.path().join("layout");
    oci_layout(
        &layout,
        &[OciImage::new(Some("t"), vec![(layer, Comp::Gzip)])],
    );
    let c = Container {
        image: Some(ImageRef {
            format: ImageFormat::Oci,
            path: layout,
            tag: Some("t".into()),
        }),
        ..container("oci")
    };
    bundles_inside(tmp.path(), &c);
}

#[test]
fn etc_link_loop_is_refused_naming_the_mount_point() {
    // `etc -> /etc` inside the rootfs is a loop (the kernel says ELOOP
    // in a chroot); this one goes through a second link so that nothing
    // here names the real /etc.
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("rootfs");
    std::fs::create_dir_all(&src).expect("mkdir");
    symlink("/loop", src.join("etc")).expect("symlink");
    symlink("/etc", src.join("loop")).expect("symlink");
    let c = Container {
        workdir: "/".into(),
        ..container("loop")
    };
    let err = bundle(
        &c,
        tmp.path(),
        &tmp.path().join("bundles"),
        &mut images(tmp.path()),
    )
    .expect_err("a loop");
    assert!(matches!(err, BundleError::MountPoint { .. }), "{err}");
    let msg = format!("{err}: {}", std::error::Error::source(&err).expect("cause"));
    assert!(msg.contains("/etc/hosts"), "{msg}");
    assert!(msg.contains("symbolic links"), "{msg}");
}
