//! `berth-image busybox-rootfs DIR` as an operator runs it: from a
//! working directory, with a relative DIR, into a folder that may already
//! hold something. Skipped (with a note) without a static /bin/busybox.

use std::path::Path;
use std::process::{Command, Output};

fn busybox_is_static() -> bool {
    let ok = berth_image::elf::check_static_x86_64(Path::new("/bin/busybox")).is_ok();
    if !ok {
        eprintln!(
            "skipped: /bin/busybox is missing or not static (apt-get install busybox-static)"
        );
    }
    ok
}

fn busybox_rootfs(cwd: &Path, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth-image"))
        .arg("busybox-rootfs")
        .arg(dir)
        .current_dir(cwd)
        .output()
        .expect("run berth-image")
}

#[test]
fn makes_a_new_relative_folder() {
    if !busybox_is_static() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = busybox_rootfs(tmp.path(), Path::new("newdir"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(tmp.path().join("newdir/bin/busybox").is_file());
    assert!(tmp.path().join("newdir/etc/passwd").is_file());
}

#[test]
fn refuses_an_etc_symlink_naming_it() {
    if !busybox_is_static() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let host_etc = tmp.path().join("host/etc");
    std::fs::create_dir_all(&host_etc).expect("host etc");
    std::fs::write(host_etc.join("passwd"), b"host\n").expect("passwd");
    let dir = tmp.path().join("rootfs");
    std::fs::create_dir_all(&dir).expect("rootfs");
    // A host-style tree: `etc -> /etc`, here the test's own host folder.
    std::os::unix::fs::symlink(&host_etc, dir.join("etc")).expect("symlink");

    let out = busybox_rootfs(tmp.path(), &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&dir.join("etc").display().to_string()),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(host_etc.join("passwd")).expect("read"),
        b"host\n"
    );
    let names: Vec<_> = std::fs::read_dir(&host_etc)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["passwd"], "nothing new in the host's etc");
}
