//! Puts the device allow-list ([`berth_oci::devices`]) on a
//! container's cgroup before its process runs, so that whatever device
//! nodes it finds or makes, only the standard devices open — for its own
//! processes and for every process berth later starts in it (`exec`,
//! health probes), which join the same cgroup.

use std::fs::File;
use std::path::Path;

use berth_oci::devices::{program_bytes, DEFAULT_ALLOWED};

/// Attaches the default device program to the cgroup directory `dir`
/// (e.g. `/sys/fs/cgroup/berth/workloads/web`).
pub fn confine(dir: &Path) -> Result<(), String> {
    let cgroup = File::open(dir).map_err(|e| format!("open cgroup {}: {e}", dir.display()))?;
    crate::sys::attach_device_program(&cgroup, &program_bytes(DEFAULT_ALLOWED))
        .map_err(|e| format!("device filter on {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;

    /// A cgroup2 mount of the test machine: `/sys/fs/cgroup` on a pure v2
    /// machine, `/sys/fs/cgroup/unified` on a hybrid one.
    fn cgroup2_root() -> Option<PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[2] == "cgroup2")
            .map(|f| PathBuf::from(f[1]))
    }

    /// Runs `sh -c script` inside `cgroup` (the shell moves itself there
    /// first) and returns its exit code.
    fn run_in(cgroup: &Path, script: &str) -> i32 {
        let procs = cgroup.join("cgroup.procs");
        let wrapped = format!("echo $$ > {} && {script}", procs.display());
        Command::new("/bin/sh")
            .args(["-c", &wrapped])
            .status()
            .expect("run sh")
            .code()
            .unwrap_or(-1)
    }

    #[test]
    fn only_the_standard_devices_open_in_a_confined_cgroup() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: attaching a cgroup device program needs root");
            return;
        }
        let Some(root) = cgroup2_root() else {
            eprintln!("skipped: no cgroup2 mount on this machine");
            return;
        };
        let dir = root.join(format!("berth-devcg-test-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("create a test cgroup");
        let nodes = tempfile::tempdir().expect("temp dir");
        let block = nodes.path().join("blk");
        let kmsg = nodes.path().join("kmsg");
        // Nodes made outside the cgroup, as a bind mount would bring them.
        nix::sys::stat::mknod(
            &block,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(7, 0),
        )
        .expect("mknod loop0");
        nix::sys::stat::mknod(
            &kmsg,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(1, 11),
        )
        .expect("mknod kmsg");
        let b = block.display();
        let m = kmsg.display();
        let before = run_in(&dir, &format!(": < {m}"));
        confine(&dir).expect("attach the device program");
        let null = run_in(
            &dir,
            "echo x > /dev/null && head -c 4 /dev/urandom >/dev/null",
        );
        let kmsg_after = run_in(&dir, &format!(": < {m} 2>/dev/null"));
        let block_after = run_in(&dir, &format!(": < {b} 2>/dev/null"));
        let mknod_after = run_in(
            &dir,
            &format!("mknod {}/new b 7 0 2>/dev/null", nodes.path().display()),
        );
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(before, 0, "/dev/kmsg's numbers open before");
        assert_eq!(null, 0, "/dev/null and /dev/urandom stay usable");
        assert_ne!(kmsg_after, 0, "/dev/kmsg's numbers open after");
        assert_ne!(block_after, 0, "a block device opens after");
        assert_ne!(mknod_after, 0, "mknod of a block device works after");
    }
}
