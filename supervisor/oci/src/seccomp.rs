//! The default seccomp profile of every non-privileged container, as data.
//!
//! **Approach: allow by default, deny a list.** moby's profile is an
//! allowlist (about 350 names) whose default action is `SCMP_ACT_ERRNO`;
//! this one allows by default and denies, with `EPERM`, the calls moby
//! leaves out of its allowlist or allows only with a capability (its
//! `includes.caps`), plus io_uring (out of moby's list since 25.0) and
//! device-node `mknod` (below). The effect on a container is the same for
//! every syscall libseccomp 2.5 knows; the differences are:
//!
//! - a syscall newer than the profile is allowed here and refused by moby
//!   (the allowlist fails closed, this list fails open);
//! - `personality(0xffffffff)`, the "query" moby allows, is refused: a
//!   single seccomp comparison cannot exclude one value from a bit test
//!   (see [`PERSONALITY_DENIED_BITS`]); setting `PER_LINUX` (0),
//!   `PER_LINUX32` (8), `UNAME26` (0x20000) and their union still works;
//! - `mknod`/`mknodat` of character and block devices are refused even
//!   with `CAP_MKNOD`: moby relies on the device cgroup to make such nodes
//!   useless, and berth's libcontainer (0.7, built without
//!   `cgroupsv2_devices`, which needs libbpf) does not enforce
//!   `linux.resources.devices` on cgroup v2 at all. Without this rule a
//!   container's root could `mknod /dev/vda` in its writable `/dev` tmpfs
//!   and open the node's disk. FIFOs and sockets are still allowed.
//!
//! Why not moby's allowlist as is: libcontainer 0.7 passes OCI's
//! `SCMP_CMP_MASKED_EQ` operands to libseccomp swapped (`valueTwo` as the
//! mask, `value` as the datum, the reverse of runc), which turns moby's
//! `clone` rule (`flags & 0x7E020000 == 0` allows) into "never", i.e. no
//! `fork`. Every masked rule here tests a single bit with `value ==
//! valueTwo`, which reads the same either way round. A deny list is also
//! short enough to review line by line.
//!
//! libcontainer resolves each name with libseccomp when the container
//! starts; a name libseccomp does not know is skipped with a warning by
//! 0.7 (a failed launch in other versions), so the tests check every name
//! against the linked libseccomp. Architectures: x86-64 and its two
//! compatibility ABIs, x86 (`int 0x80`) and x32, so a 32-bit binary cannot
//! reach a call through another syscall table. Names that exist only on
//! x86 (`stime`, `umount`, `vm86`, the `*64` time calls) are listed for it.
//!
//! A host container granted a capability (`capabilities = ["SYS_TIME"]`)
//! gets the calls moby allows with it ([`Deny::lifted_by`]); privileged
//! containers get no filter.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use oci_spec::OciSpecError;

/// errno(3) values the profile returns (x86).
pub const EPERM: u32 = 1;
pub const ENOSYS: u32 = 38;

/// `clone` flags that create namespaces (`CLONE_NEWNS`, `CLONE_NEWCGROUP`,
/// `CLONE_NEWUTS`, `CLONE_NEWIPC`, `CLONE_NEWUSER`, `CLONE_NEWPID`,
/// `CLONE_NEWNET`; moby's mask 0x7E020000 bit by bit).
pub const CLONE_NEW_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The personality bits a container may set: `PER_LINUX32` (0x0008) and
/// `UNAME26` (0x0020000); `PER_LINUX` is 0.
pub const PERSONALITY_ALLOWED: u64 = 0x0002_0008;

/// Every other bit of the kernel's 32-bit persona, one deny rule each
/// (the kernel ignores the upper half of the argument).
pub const PERSONALITY_DENIED_BITS: [u64; 30] = bits_outside(PERSONALITY_ALLOWED);

/// `S_IFCHR`: set in the mode of a character (`S_IFCHR`) or block
/// (`S_IFBLK` = 0o060000) device, and of nothing else `mknod(2)` creates.
pub const S_IFCHR_BIT: u64 = 0o020_000;

/// `AF_VSOCK`: sockets between a virtual machine and its hypervisor.
pub const AF_VSOCK: u64 = 40;

/// The 30 bits of a 32-bit word outside `allowed` (which must have two).
const fn bits_outside(allowed: u64) -> [u64; 30] {
    let mut out = [0u64; 30];
    let mut i = 0;
    let mut bit = 0;
    while bit < 32 {
        let b = 1u64 << bit;
        if allowed & b == 0 {
            out[i] = b;
            i += 1;
        }
        bit += 1;
    }
    out
}

/// Which calls of a syscall a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Argument `arg` has any one of `bits` set: one OCI rule per bit.
    AnyBit {
        arg: usize,
        bits: &'static [u64],
    },
    /// Argument `arg` equals `value`.
    Equals {
        arg: usize,
        value: u64,
    },
}

/// One deny rule of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deny {
    pub syscalls: &'static [&'static str],
    pub when: When,
    pub errno: u32,
    /// Granting any of these capabilities lifts the rule: moby allows
    /// these calls to a container that holds one of them.
    pub lifted_by: &'static [&'static str],
    /// Why the calls are refused.
    pub why: &'static str,
}

const fn deny(
    syscalls: &'static [&'static str],
    lifted_by: &'static [&'static str],
    why: &'static str,
) -> Deny {
    Deny {
        syscalls,
        when: When::Always,
        errno: EPERM,
        lifted_by,
        why,
    }
}

/// The profile, in the order it is written into `config.json`.
pub const DENY: &[Deny] = &[
    deny(&["acct"], &["CAP_SYS_PACCT"], "process accounting is node-wide"),
    deny(
        &["add_key", "keyctl", "request_key"],
        &[],
        "the kernel keyrings are not namespaced",
    ),
    deny(
        &["bpf"],
        &["CAP_SYS_ADMIN", "CAP_BPF"],
        "loads programs into the kernel",
    ),
    deny(
        &[
            "clock_adjtime",
            "clock_adjtime64",
            "clock_settime",
            "clock_settime64",
            "settimeofday",
            "stime",
        ],
        &["CAP_SYS_TIME"],
        "the clock is not namespaced",
    ),
    deny(
        &[
            "create_module",
            "get_kernel_syms",
            "nfsservctl",
            "query_module",
            "_sysctl",
            "sysfs",
            "uselib",
            "ustat",
            "vm86",
            "vm86old",
        ],
        &[],
        "obsolete interfaces, gone from the kernel or kept only for old binaries",
    ),
    deny(
        &["delete_module", "finit_module", "init_module"],
        &["CAP_SYS_MODULE"],
        "kernel modules are node-wide",
    ),
    deny(
        &[
            "get_mempolicy",
            "mbind",
            "migrate_pages",
            "move_pages",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        &["CAP_SYS_NICE"],
        "NUMA placement, which reaches other processes' memory",
    ),
    deny(
        &["ioperm", "iopl"],
        &["CAP_SYS_RAWIO"],
        "raw access to I/O ports",
    ),
    deny(
        &["io_uring_enter", "io_uring_register", "io_uring_setup"],
        &[],
        "io_uring: a large attack surface that bypasses seccomp for the calls it queues",
    ),
    deny(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        &["CAP_SYS_PTRACE"],
        "inspects or changes other processes",
    ),
    deny(
        &["kexec_file_load", "kexec_load"],
        &[],
        "replaces the running kernel",
    ),
    deny(
        &["reboot"],
        &["CAP_SYS_BOOT"],
        "reboots the node, or ends the PID namespace",
    ),
    deny(
        &[
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setns",
            "swapoff",
            "swapon",
            "umount",
            "umount2",
            "unshare",
        ],
        &["CAP_SYS_ADMIN"],
        "mounts, namespaces, quotas and swap: CAP_SYS_ADMIN's domain",
    ),
    deny(
        &["name_to_handle_at", "open_by_handle_at"],
        &["CAP_DAC_READ_SEARCH"],
        "opens files by handle, past the mount namespace (the \"shocker\" escape)",
    ),
    deny(
        &["perf_event_open"],
        &["CAP_SYS_ADMIN", "CAP_PERFMON"],
        "kernel performance counters",
    ),
    deny(
        &["syslog"],
        &["CAP_SYSLOG", "CAP_SYS_ADMIN"],
        "the kernel log is node-wide",
    ),
    deny(
        &["userfaultfd"],
        &[],
        "stalls the kernel on a page fault at will, a common exploit primitive",
    ),
    deny(
        &["vhangup"],
        &["CAP_SYS_TTY_CONFIG"],
        "hangs up the terminal",
    ),
    Deny {
        syscalls: &["clone"],
        when: When::AnyBit {
            arg: 0,
            bits: &CLONE_NEW_FLAGS,
        },
        errno: EPERM,
        lifted_by: &["CAP_SYS_ADMIN"],
        why: "new namespaces",
    },
    Deny {
        syscalls: &["clone3"],
        when: When::Always,
        errno: ENOSYS,
        lifted_by: &["CAP_SYS_ADMIN"],
        why: "clone3 passes its flags in memory, out of seccomp's sight; ENOSYS makes the C library fall back to clone",
    },
    Deny {
        syscalls: &["personality"],
        when: When::AnyBit {
            arg: 0,
            bits: &PERSONALITY_DENIED_BITS,
        },
        errno: EPERM,
        lifted_by: &[],
        why: "execution domains other than Linux, and flags that weaken ASLR (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC)",
    },
    Deny {
        syscalls: &["socket"],
        when: When::Equals {
            arg: 0,
            value: AF_VSOCK,
        },
        errno: EPERM,
        lifted_by: &[],
        why: "vsock reaches the hypervisor",
    },
    Deny {
        syscalls: &["mknod"],
        when: When::AnyBit {
            arg: 1,
            bits: &[S_IFCHR_BIT],
        },
        errno: EPERM,
        lifted_by: &[],
        why: "device nodes; no device cgroup stops their use (see the module docs)",
    },
    Deny {
        syscalls: &["mknodat"],
        when: When::AnyBit {
            arg: 2,
            bits: &[S_IFCHR_BIT],
        },
        errno: EPERM,
        lifted_by: &[],
        why: "device nodes; no device cgroup stops their use (see the module docs)",
    },
];

/// The rules in force for a container that holds the extra capabilities
/// `granted` (kernel spelling, `CAP_SYS_TIME`).
pub fn rules<'a>(granted: &'a [&'a str]) -> impl Iterator<Item = &'static Deny> + 'a {
    DENY.iter()
        .filter(move |d| !d.lifted_by.iter().any(|c| granted.contains(c)))
}

/// The OCI profile for a container holding the extra capabilities
/// `granted`. (oci-spec's argument builder cannot fail on complete input;
/// its error is passed on rather than unwrapped.)
pub fn profile(granted: &[&str]) -> Result<LinuxSeccomp, OciSpecError> {
    let mut syscalls = Vec::new();
    for d in rules(granted) {
        let names: Vec<String> = d.syscalls.iter().map(|s| (*s).to_owned()).collect();
        let entry = |args: Option<Vec<LinuxSeccompArg>>| {
            let mut s = LinuxSyscall::default();
            s.set_names(names.clone());
            s.set_action(LinuxSeccompAction::ScmpActErrno);
            s.set_errno_ret(Some(d.errno));
            s.set_args(args);
            s
        };
        match d.when {
            When::Always => syscalls.push(entry(None)),
            // One entry per bit: separate entries are alternatives in every
            // runtime, several arguments in one entry are not.
            When::AnyBit { arg, bits } => {
                for &bit in bits {
                    let rule =
                        arg_rule(arg, LinuxSeccompOperator::ScmpCmpMaskedEq, bit, Some(bit))?;
                    syscalls.push(entry(Some(vec![rule])));
                }
            }
            When::Equals { arg, value } => {
                let rule = arg_rule(arg, LinuxSeccompOperator::ScmpCmpEq, value, None)?;
                syscalls.push(entry(Some(vec![rule])));
            }
        }
    }
    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(LinuxSeccompAction::ScmpActAllow);
    seccomp.set_architectures(Some(vec![
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
    ]));
    seccomp.set_syscalls(Some(syscalls));
    Ok(seccomp)
}

fn arg_rule(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> Result<LinuxSeccompArg, OciSpecError> {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    match value_two {
        Some(v) => builder.value_two(v),
        None => builder,
    }
    .build()
}

#[cfg(test)]
mod tests;
