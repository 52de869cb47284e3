//! Puts the device allow-list ([`berth_oci::devices`]) on a
//! container's cgroup before its process runs, so that whatever device
//! nodes it finds or makes, only the standard devices open — for its own
//! processes and for every process berth later starts in it (`exec`,
//! health probes), which join the same cgroup.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use berth_oci::devices::{program_bytes, DEFAULT_ALLOWED};

/// The default device program, loaded (and verified by the kernel) once
/// and attached to every confined cgroup: the program is the same for all
/// of them, and loading it is most of the cost of confining one.
static PROGRAM: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Attaches the default device program to the cgroup directory `dir`
/// (e.g. `/sys/fs/cgroup/berth/workloads/web`).
pub fn confine(dir: &Path) -> Result<(), String> {
    let cgroup = File::open(dir).map_err(|e| format!("open cgroup {}: {e}", dir.display()))?;
    let mut program = PROGRAM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let prog = match program.take() {
        Some(prog) => prog,
        None => crate::sys::load_device_program(&program_bytes(DEFAULT_ALLOWED))
            .map_err(|e| format!("device filter on {}: {e}", dir.display()))?,
    };
    let attached = crate::sys::attach_device_program(&cgroup, prog.as_fd());
    *program = Some(prog);
    attached.map_err(|e| format!("device filter on {}: {e}", dir.display()))
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

    /// The cgroup2 root when this test can attach device programs (root,
    /// a cgroup2 mount); `None` after saying why it is skipped.
    fn test_root() -> Option<PathBuf> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: attaching a cgroup device program needs root");
            return None;
        }
        let root = cgroup2_root();
        if root.is_none() {
            eprintln!("skipped: no cgroup2 mount on this machine");
        }
        root
    }

    /// Makes the device node `path` (block or character, `major:minor`).
    fn node(path: &Path, kind: nix::sys::stat::SFlag, major: u64, minor: u64) {
        nix::sys::stat::mknod(
            path,
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(major, minor),
        )
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
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
        let Some(root) = test_root() else {
            return;
        };
        let dir = root.join(format!("berth-devcg-test-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("create a test cgroup");
        let nodes = tempfile::tempdir().expect("temp dir");
        let block = nodes.path().join("blk");
        let kmsg = nodes.path().join("kmsg");
        // Nodes made outside the cgroup, as a bind mount would bring them.
        node(&block, nix::sys::stat::SFlag::S_IFBLK, 7, 0);
        node(&kmsg, nix::sys::stat::SFlag::S_IFCHR, 1, 11);
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

    #[test]
    fn one_loaded_program_confines_each_cgroup_it_is_attached_to() {
        let Some(root) = test_root() else {
            return;
        };
        let pid = std::process::id();
        let dirs = [1, 2].map(|n| root.join(format!("berth-devcg-shared-{pid}-{n}")));
        for dir in &dirs {
            std::fs::create_dir(dir).expect("create a test cgroup");
        }
        let nodes = tempfile::tempdir().expect("temp dir");
        let kmsg = nodes.path().join("kmsg");
        node(&kmsg, nix::sys::stat::SFlag::S_IFCHR, 1, 11);
        let m = kmsg.display();
        let results: Vec<(i32, i32)> = dirs
            .iter()
            .map(|dir| {
                confine(dir).expect("attach the device program");
                (
                    run_in(dir, &format!(": < {m} 2>/dev/null")),
                    run_in(dir, "echo x > /dev/null"),
                )
            })
            .collect();
        for dir in &dirs {
            let _ = std::fs::remove_dir(dir);
        }
        for (n, (kmsg_open, null_open)) in results.into_iter().enumerate() {
            assert_ne!(kmsg_open, 0, "/dev/kmsg's numbers open in cgroup {n}");
            assert_eq!(null_open, 0, "/dev/null stays usable in cgroup {n}");
        }
    }

    #[test]
    fn a_refused_program_is_explained_by_the_verifier_log() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: loading a cgroup device program needs root");
            return;
        }
        // `r0 = 0` and no exit: the verifier refuses the fall-through.
        let insns = [0xb7u8, 0, 0, 0, 0, 0, 0, 0];
        let err = crate::sys::load_device_program(&insns).expect_err("no exit instruction");
        let text = err.to_string();
        assert!(text.starts_with("load the device program: "), "{text}");
        // The verifier's own words: "last insn is not an exit or jmp".
        assert!(text.contains("exit"), "no verifier log: {text}");
    }
}
