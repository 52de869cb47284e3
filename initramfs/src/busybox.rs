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

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::elf::{self, ElfError};
use crate::staging::{self, StagingError};
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
    #[error("link applet {link}")]
    Link {
        link: PathBuf,
        #[source]
        source: std::io::Error,
    },
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

    staging::dir(dir, 0o755)?;
    staging::copy(busybox, &dir.join("bin/busybox"), 0o755)?;
    for applet in &applets {
        let link = dir.join("bin").join(applet);
        if std::fs::symlink_metadata(&link).is_ok() {
            std::fs::remove_file(&link).map_err(|source| BusyboxError::Link {
                link: link.clone(),
                source,
            })?;
        }
        symlink("busybox", &link).map_err(|source| BusyboxError::Link { link, source })?;
    }
    for (sub, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("etc", 0o755),
        ("root", 0o700),
    ] {
        staging::dir(&dir.join(sub), mode)?;
    }
    staging::write(
        &dir.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    staging::write(&dir.join("etc/group"), b"root:x:0:\n", 0o644)?;
    Ok(applets)
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
}
