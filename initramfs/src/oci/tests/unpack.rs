//! Unpacking: file kinds, owners, modes, timestamps, reports, progress.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::fixture::*;
use super::*;
use crate::oci::unpack::{unpack_with, Owners, Stage};
use crate::oci::{unpack, Progress};

const EPOCH: u64 = 1_700_000_000;

fn policy() -> Policy {
    Policy {
        epoch: EPOCH,
        allow_devices: false,
    }
}

#[test]
fn owners_modes_and_timestamps_from_headers() {
    let s = Scene::new();
    let layer = TarLayer::new()
        .dir_as("./", 0o750, (0, 0))
        .dir_as("usr/", 0o755, (0, 0))
        .dir_as("usr/bin/", 0o711, (0, 0))
        .file_as("usr/bin/sudo", b"#!", 0o4755, (0, 0))
        .file_as("usr/bin/wall", b"#!", 0o2755, (0, 5))
        .dir_as("tmp", 0o1777, (0, 0))
        .dir_as("home/app", 0o700, (1000, 1000))
        .file_as("home/app/notes", b"mine", 0o600, (1000, 1000))
        .symlink("usr/bin/vi", "/usr/bin/vim")
        .hardlink("usr/bin/sudoedit", "usr/bin/sudo")
        .fifo("run/initctl")
        .tar();
    let image = s.image("layout", vec![layer]);
    let dest = s.dest("rootfs");
    let report = s.unpack(&image, &dest, &policy()).expect("unpack");

    let rows: &[(&str, u32, u32, u32)] = &[
        ("", 0o750, 0, 0),
        ("usr", 0o755, 0, 0),
        ("usr/bin", 0o711, 0, 0),
        ("usr/bin/sudo", 0o4755, 0, 0),
        ("usr/bin/wall", 0o2755, 0, 5),
        ("tmp", 0o1777, 0, 0),
        ("home", 0o755, 0, 0),
        ("home/app", 0o700, 1000, 1000),
        ("home/app/notes", 0o600, 1000, 1000),
        ("run/initctl", 0o600, 0, 0),
    ];
    for (path, mode, uid, gid) in rows {
        let m = lmeta(&dest.join(path));
        assert_eq!(m.mode() & 0o7777, *mode, "mode of /{path}");
        assert_eq!((m.uid(), m.gid()), (*uid, *gid), "owner of /{path}");
        assert_eq!(m.mtime(), EPOCH as i64, "mtime of /{path}");
    }
    let vi = lmeta(&dest.join("usr/bin/vi"));
    assert!(vi.file_type().is_symlink());
    assert_eq!(vi.mtime(), EPOCH as i64);
    assert_eq!(
        std::fs::read_link(dest.join("usr/bin/vi")).expect("link"),
        Path::new("/usr/bin/vim")
    );
    assert_eq!(
        inode(&dest.join("usr/bin/sudoedit")),
        inode(&dest.join("usr/bin/sudo"))
    );
    assert!(lmeta(&dest.join("run/initctl")).file_type().is_fifo());
    assert_eq!(read(&dest.join("home/app/notes")), "mine");
    assert_eq!(report.files, 3);
    assert_eq!(report.bytes_written, 8);
    assert_eq!(report.not_owned, 0);
}

#[test]
fn later_layers_replace_and_merge() {
    let s = Scene::new();
    let lower = TarLayer::new()
        .dir_as("etc", 0o700, (0, 0))
        .file("etc/a", b"lower a")
        .file("etc/b", b"lower b")
        .dir("was-dir")
        .file("was-dir/x", b"")
        .file("was-file", b"")
        .symlink("was-link", "/nowhere")
        .tar();
    let upper = TarLayer::new()
        .dir_as("etc", 0o755, (0, 0))
        .file("etc/a", b"upper a")
        .file("was-dir", b"now a file")
        .dir("was-file")
        .dir("was-link")
        .tar();
    let image = s.image("layout", vec![lower, upper]);
    let dest = s.dest("rootfs");
    s.unpack(&image, &dest, &policy()).expect("unpack");
    assert_eq!(read(&dest.join("etc/a")), "upper a");
    assert_eq!(read(&dest.join("etc/b")), "lower b");
    assert_eq!(lmeta(&dest.join("etc")).mode() & 0o7777, 0o755);
    assert_eq!(read(&dest.join("was-dir")), "now a file");
    assert!(lmeta(&dest.join("was-file")).is_dir());
    assert!(lmeta(&dest.join("was-link")).is_dir());
}

#[test]
fn devices_only_when_allowed() {
    let s = Scene::new();
    let image = s.image(
        "layout",
        vec![TarLayer::new().char_device("dev/null", 1, 3).tar()],
    );
    let dest = s.dest("rootfs");
    let allow = Policy {
        allow_devices: true,
        ..policy()
    };
    s.unpack(&image, &dest, &allow).expect("unpack");
    let m = lmeta(&dest.join("dev/null"));
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(m.mode() & 0o777, 0o666);
}

#[test]
fn devices_are_dropped_for_workloads() {
    // As debootstrap + umoci leave them: /dev populated in the layer.
    let s = Scene::new();
    let lower = TarLayer::new()
        .dir("dev")
        .file("dev/console", b"a lower layer's file")
        .tar();
    let upper = TarLayer::new()
        .char_device("dev/console", 5, 1)
        .char_device("dev/null", 1, 3)
        .raw(
            tar::EntryType::Block,
            "dev/sda",
            None,
            0o660,
            (0, 6),
            b"",
            (8, 0),
        )
        .file("etc/hostname", b"debian")
        .tar();
    let image = s.image("layout", vec![lower, upper]);
    let dest = s.dest("rootfs");
    let report = s.unpack(&image, &dest, &policy()).expect("unpack");
    assert_eq!(report.devices_dropped, 3);
    assert_eq!(
        report.device_example.as_deref(),
        Some(Path::new("dev/console"))
    );
    // The device replaced the lower layer's file, and is left out itself.
    assert_eq!(tree(&dest.join("dev")), Vec::<String>::new());
    assert_eq!(read(&dest.join("etc/hostname")), "debian");
}

/// A GNU sparse entry: `data` at `offset` in a file of `offset + data`
/// bytes, the rest a hole.
fn sparse_layer(offset: u64, data: &[u8]) -> Vec<u8> {
    let octal = |field: &mut [u8; 12], n: u64| {
        field.copy_from_slice(format!("{n:011o}\0").as_bytes());
    };
    let mut h = tar::Header::new_gnu();
    h.set_path("sparse").expect("path");
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    let gnu = h.as_gnu_mut().expect("gnu header");
    octal(&mut gnu.sparse[0].offset, offset);
    octal(&mut gnu.sparse[0].numbytes, data.len() as u64);
    octal(&mut gnu.realsize, offset + data.len() as u64);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, data).expect("append");
    b.into_inner().expect("tar")
}

/// Found by the `oci_layer` fuzz target: holes were written out as zeros,
/// so a header of 512 bytes could claim gigabytes (and, with a GNU
/// extended size field, exabytes) of file.
#[test]
fn sparse_files_with_holes_are_refused() {
    let s = Scene::new();
    let image = s.image("layout", vec![sparse_layer(1 << 32, &[b's'; 512])]);
    let dest = s.dest("rootfs");
    let err = s
        .unpack(&image, &dest, &policy())
        .expect_err("a hole of 4 GiB");
    assert!(
        matches!(&err, OciError::BadEntry { path, why, .. }
            if path == "sparse" && why.contains("4294967296 bytes of holes")),
        "{err}"
    );
    // Without a hole the entry is a plain file.
    let image = s.image("whole", vec![sparse_layer(0, b"data")]);
    let dest = s.dest("rootfs-whole");
    s.unpack(&image, &dest, &policy()).expect("unpack");
    assert_eq!(read(&dest.join("sparse")), "data");
}

#[test]
fn xattrs_are_skipped_and_counted() {
    let s = Scene::new();
    let layer = TarLayer::new()
        .file_with_xattrs(
            "bin/ping",
            b"elf",
            &[
                ("security.capability", b"\x01\x00\x00\x02"),
                ("user.note", b"x"),
            ],
        )
        .tar();
    let image = s.image("layout", vec![layer]);
    let dest = s.dest("rootfs");
    let report = s.unpack(&image, &dest, &policy()).expect("unpack");
    assert_eq!(report.xattrs_skipped, 2);
    assert_eq!(read(&dest.join("bin/ping")), "elf");
}

#[test]
fn owners_are_counted_when_not_root() {
    let s = Scene::new();
    let layer = TarLayer::new()
        .dir_as("home/app", 0o700, (1000, 1000))
        .file_as("home/app/x", b"x", 0o600, (1000, 1000))
        .file_as("mine", b"x", 0o644, (4242, 4242))
        .tar();
    let image = s.image("layout", vec![layer]);
    let dest = s.dest("rootfs");
    let mut store = LayerStore::new(s.path("store")).expect("store");
    let me = Owners::Keep {
        uid: 4242,
        gid: 4242,
    };
    let report =
        unpack_with(&image, &dest, &mut store, &policy(), me, &mut |_| {}).expect("unpack");
    assert_eq!(report.not_owned, 2);
    // Nothing was chowned: the files keep the (root) builder's owner.
    assert_eq!(lmeta(&dest.join("home/app/x")).uid(), 0);
    assert_eq!(
        lmeta(&dest.join("home/app")).permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn progress_per_layer() {
    let s = Scene::new();
    // Incompressible content, so that stored bytes pass the 4 MiB step.
    let mut big = vec![0u8; 9 << 20];
    let mut x: u32 = 1;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let layers = vec![
        (TarLayer::new().file("small", b"s").tar(), Comp::Plain),
        (TarLayer::new().file("big", &big).tar(), Comp::Gzip),
    ];
    let image = s.image_comp("layout", layers);
    let dest = s.dest("rootfs");
    let mut store = LayerStore::new(s.path("store")).expect("store");
    let mut seen: Vec<Progress> = Vec::new();
    unpack(&image, &dest, &mut store, &policy(), &mut |p| seen.push(p)).expect("unpack");
    let stages: Vec<(usize, Stage)> = seen.iter().map(|p| (p.layer, p.stage)).collect();
    assert_eq!(
        stages,
        [
            (0, Stage::Start),
            (0, Stage::Done),
            (1, Stage::Start),
            (1, Stage::Reading),
            (1, Stage::Reading),
            (1, Stage::Done),
        ]
    );
    assert!(seen.iter().all(|p| p.layers == 2));
    let done = seen.last().expect("done");
    assert_eq!(Some(done.read), image.layers[1].size);
    assert_eq!(done.total, image.layers[1].size);
}

#[test]
fn destination_must_be_an_empty_folder() {
    let s = Scene::new();
    let image = s.image("layout", vec![TarLayer::new().tar()]);
    let dest = s.dest("rootfs");
    std::fs::write(dest.join("x"), b"").expect("write");
    let err = s.unpack(&image, &dest, &policy()).expect_err("not empty");
    assert!(err.to_string().ends_with("it is not empty"), "{err}");
    let err = s
        .unpack(&image, &s.path("nope"), &policy())
        .expect_err("missing");
    assert!(err.to_string().ends_with("it does not exist"), "{err}");
}
