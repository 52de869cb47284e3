//! Resolving users through an unpacked rootfs.

use std::os::unix::fs::symlink;

use super::*;
use crate::oci::{resolve_user, OciError};

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nnginx:x:101:102::/:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnginx:x:102:\nwww:x:33:nginx\n";

fn rootfs(s: &Scene) -> PathBuf {
    let root = s.dest("rootfs");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    root
}

#[test]
fn names_and_numbers() {
    let s = Scene::new();
    let root = rootfs(&s);
    std::fs::write(root.join("etc/passwd"), PASSWD).expect("passwd");
    std::fs::write(root.join("etc/group"), GROUP).expect("group");
    type Row<'a> = (&'a str, (u32, u32, Vec<u32>));
    let rows: &[Row] = &[
        ("nginx", (101, 102, vec![33])),
        ("101", (101, 102, vec![33])),
        ("7", (7, 0, vec![])),
        ("101:5", (101, 5, vec![])),
        ("nginx:www", (101, 33, vec![])),
        ("", (0, 0, vec![])),
    ];
    for (user, want) in rows {
        assert_eq!(&resolve_user(user, &root).expect(user), want, "{user}");
    }
    let err = resolve_user("nobody", &root).expect_err("unknown");
    assert!(
        matches!(&err, OciError::User { user, .. } if user == "nobody"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "resolve user \"nobody\": no user \"nobody\" in /etc/passwd"
    );
}

#[test]
fn passwd_symlinks_resolve_inside_the_rootfs() {
    let s = Scene::new();
    let root = rootfs(&s);
    // Outside the rootfs: a passwd that must never be read.
    std::fs::create_dir(s.path("host")).expect("host");
    std::fs::write(s.path("host/passwd"), "evil:x:666:666::/:/bin/sh\n").expect("evil");
    let host_passwd = s.path("host/passwd");
    for target in [
        host_passwd.to_str().expect("utf-8"),
        "../../host/passwd",
        "/host/passwd",
    ] {
        std::fs::remove_file(root.join("etc/passwd")).ok();
        symlink(target, root.join("etc/passwd")).expect("symlink");
        assert!(
            matches!(resolve_user("evil", &root), Err(OciError::User { .. })),
            "{target}"
        );
        assert_eq!(
            resolve_user("666", &root).expect("numeric"),
            (666, 0, vec![]),
            "{target}"
        );
    }
    // The same link finds the rootfs's own /host/passwd.
    std::fs::create_dir(root.join("host")).expect("host in rootfs");
    std::fs::write(root.join("host/passwd"), PASSWD).expect("passwd");
    assert_eq!(
        resolve_user("nginx", &root).expect("nginx"),
        (101, 102, vec![])
    );
}

#[test]
fn a_rootfs_without_account_files() {
    let s = Scene::new();
    let root = rootfs(&s);
    assert_eq!(
        resolve_user("1000:1000", &root).expect("numeric"),
        (1000, 1000, vec![])
    );
    assert!(resolve_user("app", &root).is_err());
}
