use super::*;

/// What the profile answers for `name(args…)`: `None` allows, `Some(errno)`
/// refuses. `swapped` reads `SCMP_CMP_MASKED_EQ` the way libcontainer 0.7
/// does (`valueTwo` as the mask), otherwise as OCI and runc do (`value` as
/// the mask, `valueTwo` as the result).
fn verdict(p: &LinuxSeccomp, name: &str, args: &[u64], swapped: bool) -> Option<u32> {
    let arg_matches = |a: &LinuxSeccompArg| {
        let x = args.get(a.index()).copied().unwrap_or(0);
        let two = a.value_two().unwrap_or(0);
        match a.op() {
            LinuxSeccompOperator::ScmpCmpMaskedEq if swapped => x & two == a.value(),
            LinuxSeccompOperator::ScmpCmpMaskedEq => x & a.value() == two,
            LinuxSeccompOperator::ScmpCmpEq => x == a.value(),
            other => panic!("operator {other:?} not used by the profile"),
        }
    };
    p.syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names().iter().any(|n| n == name))
        .find(|s| s.args().iter().flatten().all(arg_matches))
        .map(|s| s.errno_ret().unwrap_or(EPERM))
}

/// The calls the brief for this profile names, refused to a container
/// without extra capabilities whatever their arguments.
const ALWAYS_REFUSED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "syslog",
    "io_uring_setup",
];

#[test]
fn the_listed_calls_are_refused_by_default() {
    let p = profile(&[]).expect("profile");
    for name in ALWAYS_REFUSED {
        for swapped in [false, true] {
            assert_eq!(verdict(&p, name, &[], swapped), Some(EPERM), "{name}");
            assert_eq!(
                verdict(&p, name, &[u64::MAX; 6], swapped),
                Some(EPERM),
                "{name}"
            );
        }
    }
}

/// (syscall, arguments, verdict) for a container without extra
/// capabilities, the same whichever way the masked operands are read.
#[test]
fn argument_rules() {
    const CLONE_VM_FS_FILES: u64 = 0x0000_0100 | 0x0000_0200 | 0x0000_0400;
    const SIGCHLD: u64 = 17;
    let rows: &[(&str, &[u64], Option<u32>)] = &[
        // fork and pthread_create
        ("clone", &[SIGCHLD], None),
        (
            "clone",
            &[CLONE_VM_FS_FILES | 0x0001_0000 | 0x0004_0000],
            None,
        ),
        ("clone", &[SIGCHLD | 0x0002_0000], Some(EPERM)), // CLONE_NEWNS
        ("clone", &[SIGCHLD | 0x0200_0000], Some(EPERM)), // CLONE_NEWCGROUP
        ("clone", &[SIGCHLD | 0x0400_0000], Some(EPERM)), // CLONE_NEWUTS
        ("clone", &[SIGCHLD | 0x0800_0000], Some(EPERM)), // CLONE_NEWIPC
        ("clone", &[SIGCHLD | 0x1000_0000], Some(EPERM)), // CLONE_NEWUSER
        ("clone", &[SIGCHLD | 0x2000_0000], Some(EPERM)), // CLONE_NEWPID
        ("clone", &[SIGCHLD | 0x4000_0000], Some(EPERM)), // CLONE_NEWNET
        ("clone", &[0x7E02_0000], Some(EPERM)),
        ("clone3", &[], Some(ENOSYS)),
        ("personality", &[0], None),
        ("personality", &[0x0008], None),
        ("personality", &[0x0002_0000], None),
        ("personality", &[0x0002_0008], None),
        ("personality", &[0x0004_0000], Some(EPERM)), // ADDR_NO_RANDOMIZE
        ("personality", &[0x0040_0000], Some(EPERM)), // READ_IMPLIES_EXEC
        ("personality", &[0x0080_0000], Some(EPERM)), // ADDR_LIMIT_32BIT
        ("personality", &[0x0000_0001], Some(EPERM)), // PER_SVR4
        ("personality", &[0xffff_ffff], Some(EPERM)), // the query (see module docs)
        ("personality", &[0x1_0000_0000], None),      // the kernel reads 32 bits: PER_LINUX
        ("socket", &[40, 1, 0], Some(EPERM)),         // AF_VSOCK
        ("socket", &[1, 1, 0], None),                 // AF_UNIX
        ("socket", &[2, 2, 0], None),                 // AF_INET
        ("socket", &[16, 3, 0], None),                // AF_NETLINK
        ("mknod", &[0, 0o020_644, 0x103], Some(EPERM)), // character device
        ("mknod", &[0, 0o060_644, 0x800], Some(EPERM)), // block device
        ("mknod", &[0, 0o010_644, 0], None),          // FIFO
        ("mknod", &[0, 0o140_644, 0], None),          // socket
        ("mknod", &[0, 0o100_644, 0], None),          // regular file
        ("mknodat", &[0, 0, 0o020_666, 0x103], Some(EPERM)),
        ("mknodat", &[0, 0, 0o010_666, 0], None),
        ("read", &[0, 0, 0], None),
        ("execve", &[], None),
        ("chroot", &[], None),
    ];
    let p = profile(&[]).expect("profile");
    for (name, args, want) in rows {
        for swapped in [false, true] {
            assert_eq!(
                verdict(&p, name, args, swapped),
                *want,
                "{name}{args:x?} swapped={swapped}"
            );
        }
    }
}

/// (granted capabilities, syscall, arguments, verdict)
type GrantRow<'a> = (&'a [&'a str], &'a str, &'a [u64], Option<u32>);

#[test]
fn capabilities_lift_their_rules() {
    const NEWNS: u64 = 0x0002_0000;
    let rows: &[GrantRow] = &[
        (&["CAP_SYS_TIME"], "settimeofday", &[], None),
        (&["CAP_SYS_TIME"], "clock_settime", &[], None),
        (&["CAP_SYS_TIME"], "clock_adjtime", &[], None),
        (&["CAP_SYS_TIME"], "mount", &[], Some(EPERM)),
        (&["CAP_NET_ADMIN"], "settimeofday", &[], Some(EPERM)),
        (&["CAP_SYS_ADMIN"], "mount", &[], None),
        (&["CAP_SYS_ADMIN"], "unshare", &[], None),
        (&["CAP_SYS_ADMIN"], "setns", &[], None),
        (&["CAP_SYS_ADMIN"], "clone", &[NEWNS], None),
        (&["CAP_SYS_ADMIN"], "clone3", &[], None),
        (&["CAP_SYS_ADMIN"], "bpf", &[], None),
        (&["CAP_SYS_ADMIN"], "syslog", &[], None),
        (&["CAP_SYS_ADMIN"], "keyctl", &[], Some(EPERM)),
        (&["CAP_SYS_ADMIN"], "kexec_load", &[], Some(EPERM)),
        (
            &["CAP_SYS_ADMIN"],
            "personality",
            &[0x0004_0000],
            Some(EPERM),
        ),
        (&["CAP_SYS_ADMIN"], "ptrace", &[], Some(EPERM)),
        (&["CAP_BPF"], "bpf", &[], None),
        (&["CAP_PERFMON"], "perf_event_open", &[], None),
        (&["CAP_SYSLOG"], "syslog", &[], None),
        (&["CAP_SYS_PTRACE"], "ptrace", &[], None),
        (&["CAP_SYS_PTRACE"], "process_vm_readv", &[], None),
        (&["CAP_SYS_PTRACE"], "kcmp", &[], None),
        (&["CAP_SYS_MODULE"], "finit_module", &[], None),
        (&["CAP_SYS_BOOT"], "reboot", &[], None),
        (&["CAP_SYS_BOOT"], "kexec_load", &[], Some(EPERM)),
        (&["CAP_SYS_RAWIO"], "iopl", &[], None),
        (&["CAP_SYS_NICE"], "mbind", &[], None),
        (&["CAP_SYS_PACCT"], "acct", &[], None),
        (&["CAP_SYS_TTY_CONFIG"], "vhangup", &[], None),
        (&["CAP_DAC_READ_SEARCH"], "open_by_handle_at", &[], None),
        (&["CAP_MKNOD"], "mknod", &[0, 0o020_644, 0x103], Some(EPERM)),
        (&["CAP_NET_ADMIN", "CAP_SYS_TIME"], "stime", &[], None),
        (&[], "userfaultfd", &[], Some(EPERM)),
    ];
    for (granted, name, args, want) in rows {
        let p = profile(granted).expect("profile");
        assert_eq!(
            verdict(&p, name, args, false),
            *want,
            "{granted:?} {name}{args:x?}"
        );
    }
}

#[test]
fn oci_shape() {
    let p = profile(&[]).expect("profile");
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    let json = serde_json::to_value(&p).expect("json");
    let entries = json["syscalls"].as_array().expect("syscalls");
    // 18 unconditional groups and clone3; 7 clone bits, 30 personality
    // bits, vsock, mknod, mknodat.
    assert_eq!(entries.len(), 19 + 7 + 30 + 3);
    let clone = entries
        .iter()
        .find(|e| e["names"][0] == "clone")
        .expect("clone rule");
    assert_eq!(
        clone["args"],
        serde_json::json!([{"index": 0, "value": 0x20000, "valueTwo": 0x20000, "op": "SCMP_CMP_MASKED_EQ"}])
    );
    assert_eq!(clone["action"], "SCMP_ACT_ERRNO");
    assert_eq!(clone["errnoRet"], 1);
    for e in entries {
        for a in e["args"].as_array().into_iter().flatten() {
            if a["op"] == "SCMP_CMP_MASKED_EQ" {
                assert_eq!(a["value"], a["valueTwo"], "asymmetric masked rule {e}");
            }
        }
    }
    // Every name once per unconditional rule set.
    let mut seen = std::collections::HashSet::new();
    for d in DENY {
        if d.when == When::Always {
            for n in d.syscalls {
                assert!(seen.insert(*n), "{n} in two rules");
            }
        }
    }
}

#[test]
fn personality_bits() {
    assert_eq!(PERSONALITY_DENIED_BITS.len(), 30);
    assert!(!PERSONALITY_DENIED_BITS.contains(&0x0008));
    assert!(!PERSONALITY_DENIED_BITS.contains(&0x0002_0000));
    assert!(PERSONALITY_DENIED_BITS.contains(&0x8000_0000));
    assert_eq!(
        PERSONALITY_DENIED_BITS.iter().fold(0, |a, b| a | b),
        0xfffd_fff7
    );
}

/// Every name must be one libseccomp (the version berth links) resolves,
/// with a real syscall number on at least one of the three ABIs.
#[test]
fn every_name_is_known_to_libseccomp() {
    use libseccomp::{ScmpArch, ScmpSyscall};
    for d in DENY {
        for name in d.syscalls {
            assert!(ScmpSyscall::from_name(name).is_ok(), "{name} unknown");
            let real = [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]
                .iter()
                .filter_map(|a| ScmpSyscall::from_name_by_arch(name, *a).ok())
                .any(|s| i32::from(s) >= 0);
            assert!(real, "{name} exists on none of x86-64, x86, x32");
        }
    }
}

/// Loads the profile through libcontainer's own loader into a fresh copy
/// of this test binary and checks what the kernel answers there. The
/// parent only re-runs itself; the child (marked by an environment
/// variable) never returns to a process that shares anything with other
/// tests.
#[test]
fn the_kernel_enforces_the_profile() {
    const CHILD: &str = "BERTH_SECCOMP_PROBE_CHILD";
    if std::env::var_os(CHILD).is_some() {
        probe_in_child();
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "seccomp::tests::the_kernel_enforces_the_profile",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the probe");
    assert!(
        out.status.success(),
        "probe failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed"), "probe did not run:\n{stdout}");
}

fn probe_in_child() {
    let dir = std::env::temp_dir().join(format!("berth-seccomp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
    libcontainer::seccomp::initialize_seccomp(&profile(&[]).expect("profile"))
        .expect("load the profile");

    let rows = probes(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    for (what, got, want) in rows {
        assert_eq!(got, want, "{what}");
    }
    // fork + exec still work: glibc's clone3 gets ENOSYS and falls back to
    // clone, and the filter passes on to the child.
    let run = |argv: &[&str]| {
        std::process::Command::new(argv[0])
            .args(&argv[1..])
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
    };
    assert_eq!(run(&["true"]).ok(), Some(true), "spawn true");
    if std::path::Path::new("/usr/bin/unshare").exists() {
        assert_eq!(
            run(&["unshare", "-U", "true"]).ok(),
            Some(false),
            "unshare -U"
        );
    }
}

/// docs/security.md lists every refused call; keep it in step.
#[test]
fn documented_in_security_md() {
    let doc = include_str!("../../../../docs/security.md");
    for d in DENY {
        for name in d.syscalls {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/security.md does not list `{name}`"
            );
        }
        for cap in d.lifted_by {
            assert!(doc.contains(&format!("`{cap}`")), "{cap} missing");
        }
    }
}

/// A probed call: what, its result, the result wanted.
type Probe = (
    &'static str,
    Result<(), nix::errno::Errno>,
    Result<(), nix::errno::Errno>,
);

/// Calls the profile must refuse or allow, each with its result and the
/// result wanted, run under the loaded profile.
fn probes(dir: &std::path::Path) -> Vec<Probe> {
    use nix::errno::Errno;
    use nix::sched::CloneFlags;
    use nix::sys::personality::{self, Persona};
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};

    let uts = std::fs::File::open("/proc/self/ns/uts").expect("open uts namespace");
    vec![
        (
            "unshare(CLONE_NEWUSER)",
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER),
            Err(Errno::EPERM),
        ),
        (
            "unshare(CLONE_NEWNET)",
            nix::sched::unshare(CloneFlags::CLONE_NEWNET),
            Err(Errno::EPERM),
        ),
        (
            "setns(uts)",
            nix::sched::setns(&uts, CloneFlags::CLONE_NEWUTS),
            Err(Errno::EPERM),
        ),
        (
            "mount",
            nix::mount::mount(
                Some("none"),
                dir,
                Some("berth-no-such-fs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            ),
            Err(Errno::EPERM),
        ),
        (
            "personality(ADDR_NO_RANDOMIZE)",
            personality::set(Persona::ADDR_NO_RANDOMIZE).map(drop),
            Err(Errno::EPERM),
        ),
        (
            "personality(PER_LINUX)",
            personality::set(Persona::empty()).map(drop),
            Ok(()),
        ),
        (
            "socket(AF_VSOCK)",
            socket(
                AddressFamily::Vsock,
                SockType::Stream,
                SockFlag::empty(),
                None,
            )
            .map(drop),
            Err(Errno::EPERM),
        ),
        (
            "socket(AF_UNIX)",
            socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::empty(),
                None,
            )
            .map(drop),
            Ok(()),
        ),
        (
            "mknod(char 1:3)",
            mknod(
                &dir.join("null"),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                makedev(1, 3),
            ),
            Err(Errno::EPERM),
        ),
        (
            "mknod(fifo)",
            mknod(
                &dir.join("fifo"),
                SFlag::S_IFIFO,
                Mode::from_bits_truncate(0o600),
                0,
            ),
            Ok(()),
        ),
    ]
}
