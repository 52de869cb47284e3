//! `berth-image busybox-rootfs DIR`: the smallest useful container rootfs,
//! from Debian's `busybox-static`, for the example manifest and the tests.
//!
//! ```text
//! DIR/bin/busybox          copied from the host
//! DIR/bin/APPLET -> busybox   one link per applet of `busybox --list`
//! DIR/etc/passwd, group    root only
//! DIR/proc sys dev tmp root   mount points and home
//! ```
//!
//! Every applet goes into `/bin`: the default `PATH` covers it, and one
//! folder keeps the tree obvious.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::elf::{self, ElfError};
use crate::staging::{self, StagingError, Tree};
use crate::tool::{Tool, ToolError};

/// Where Debian's busybox-static installs busybox.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// Making the rootfs failed.
#[derive(Debug, thiserror::Error)]
pub enum BusyboxError {
    #[error("{path} is missing: apt-get install busybox-static")]
    Missing { path: PathBuf },
    #[error("{path} is not static: apt-get install busybox-static")]
    NotStatic {
        path: PathBuf,
        #[source]
        source: ElfError,
    },
    #[error("list the applets of {path}")]
    List {
        path: PathBuf,
        #[source]
        source: ToolError,
    },
    #[error("write the rootfs")]
    Write(#[from] StagingError),
}

/// Fills `dir` (created if needed; earlier contents are kept, applet links
/// replaced) with a busybox rootfs; returns the applets linked.
pub fn busybox_rootfs(busybox: &Path, dir: &Path) -> Result<Vec<String>, BusyboxError> {
    if !busybox.is_file() {
        return Err(BusyboxError::Missing {
            path: busybox.to_owned(),
        });
    }
    elf::check_static_x86_64(busybox).map_err(|source| BusyboxError::NotStatic {
        path: busybox.to_owned(),
        source,
    })?;
    let tool = Tool {
        program: HOST_BUSYBOX,
        package: "busybox-static",
    };
    let list = tool
        .output(Command::new(busybox).arg("--list"))
        .map_err(|source| BusyboxError::List {
            path: busybox.to_owned(),
            source,
        })?;
    let applets = applets(&list);
    write_rootfs(busybox, &applets, dir)?;
    Ok(applets)
}

/// Writes the tree: `busybox` copied to `bin/`, a link per applet, the
/// folders and `/etc` files. `dir` may hold an earlier rootfs; nothing is
/// written through a symlink in it (an `etc -> /etc` there is an error
/// naming it, not a write to the build host's `/etc`).
fn write_rootfs(busybox: &Path, applets: &[String], dir: &Path) -> Result<(), BusyboxError> {
    staging::dir(dir, 0o755)?;
    let tree = Tree::new(dir);
    let bin = Path::new("bin");
    tree.copy(busybox, &bin.join("busybox"), 0o755)?;
    for applet in applets {
        tree.symlink(Path::new("busybox"), &bin.join(applet))?;
    }
    for (sub, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("etc", 0o755),
        ("root", 0o700),
    ] {
        tree.dir(Path::new(sub), mode)?;
    }
    tree.write(
        Path::new("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    tree.write(Path::new("etc/group"), b"root:x:0:\n", 0o644)?;
    Ok(())
}

/// Applet names from `busybox --list`, without `busybox` itself and
/// anything that is not a plain file name.
fn applets(list: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "busybox" && !n.contains('/') && *n != "." && *n != "..")
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn applet_list_is_cleaned() {
        assert_eq!(applets("sh\nls\n\nbusybox\n../x\nls\n"), ["ls", "sh"]);
    }

    #[test]
    fn missing_busybox_names_the_package() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err =
            busybox_rootfs(&tmp.path().join("nope"), &tmp.path().join("r")).expect_err("missing");
        assert!(
            err.to_string().contains("apt-get install busybox-static"),
            "{err}"
        );
        // A dynamic binary is refused the same way.
        let me = std::env::current_exe().expect("current_exe");
        let err = busybox_rootfs(&me, &tmp.path().join("r")).expect_err("dynamic");
        assert!(
            err.to_string().contains("apt-get install busybox-static"),
            "{err}"
        );
    }

    #[test]
    fn makes_a_rootfs_from_the_host_busybox() {
        let host = Path::new(HOST_BUSYBOX);
        if elf::check_static_x86_64(host).is_err() {
            eprintln!(
                "skipped: {HOST_BUSYBOX} is missing or not static (apt-get install busybox-static)"
            );
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("root");
        let applets = busybox_rootfs(host, &dir).expect("rootfs");
        assert!(applets.iter().any(|a| a == "sh"));
        assert_eq!(
            std::fs::read_link(dir.join("bin/sh")).expect("link"),
            Path::new("busybox")
        );
        assert!(std::fs::read_to_string(dir.join("etc/passwd"))
            .expect("passwd")
            .starts_with("root:x:0:0:"));
        // Running it again refreshes the links instead of failing.
        busybox_rootfs(host, &dir).expect("again");
        let out = Command::new(dir.join("bin/echo"))
            .arg("hi")
            .output()
            .expect("run echo applet");
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn never_writes_through_a_symlink_in_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let host = tmp.path().join("host");
        std::fs::create_dir_all(host.join("etc")).expect("host etc");
        std::fs::write(host.join("etc/passwd"), b"host\n").expect("passwd");
        let busybox = tmp.path().join("busybox");
        std::fs::write(&busybox, b"not really busybox").expect("write");
        let applets = ["sh".to_owned(), "ls".to_owned()];
        for (link, target) in [("bin", host.clone()), ("etc", host.join("etc"))] {
            let dir = tmp.path().join(format!("rootfs-{link}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            // `etc -> /etc` as a host-style tree would have it.
            symlink(&target, dir.join(link)).expect("symlink");
            let err = write_rootfs(&busybox, &applets, &dir).expect_err("through a symlink");
            let msg = format!("{err}: {}", std::error::Error::source(&err).expect("cause"));
            assert!(msg.contains(&dir.join(link).display().to_string()), "{msg}");
            assert_eq!(
                std::fs::read(host.join("etc/passwd")).expect("read"),
                b"host\n"
            );
            let mut names: Vec<_> = std::fs::read_dir(&host)
                .expect("list")
                .map(|e| e.expect("entry").file_name())
                .collect();
            names.sort();
            assert_eq!(names, ["etc"], "nothing new on the host");
        }
    }
}
