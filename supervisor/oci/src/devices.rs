//! The device allow-list of every non-privileged container, as the cgroup
//! v2 device controller enforces it: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup, which
//! the kernel asks before any process of the cgroup opens or creates a
//! device node (`Documentation/admin-guide/cgroup-v2.rst`, "Device
//! controller"). Whatever nodes a container manages to get into its `/dev`
//! (a bind mount, an image, `mknod` in a process that escaped its seccomp
//! filter), only these devices open.
//!
//! libcontainer 0.7 builds this program only with its `cgroupsv2_devices`
//! feature, which needs libbpf; berth encodes the few instructions itself
//! (pure, here) and PID 1 loads and attaches them with two `bpf(2)` calls.
//!
//! The program reads `struct bpf_cgroup_dev_ctx` (`include/uapi/linux/bpf.h`):
//! `access_type` (access bits << 16 | device type), `major`, `minor`, and
//! returns 1 (allow) at the first rule that matches, 0 (deny) otherwise.

/// `BPF_DEVCG_DEV_*`: the device type in the low 16 bits of `access_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    Block = 1,
    Char = 2,
}

/// `BPF_DEVCG_ACC_*`: the access bits in the high 16 bits of `access_type`.
pub const MKNOD: u32 = 1;
pub const READ: u32 = 2;
pub const WRITE: u32 = 4;
pub const RWM: u32 = MKNOD | READ | WRITE;

/// One allowed device (or range): `None` matches any number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

const fn char_dev(major: u32, minor: Option<u32>) -> Rule {
    Rule {
        typ: DevType::Char,
        major: Some(major),
        minor,
        access: RWM,
    }
}

/// The devices every container may use: runc's and Docker's default set
/// (`/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`, `console`,
/// `ptmx` and the pseudo-terminals), nothing else — no disk, no input
/// device, no `/dev/mem`, no `/dev/kmsg`.
pub const DEFAULT_ALLOWED: &[Rule] = &[
    char_dev(1, Some(3)), // /dev/null
    char_dev(1, Some(5)), // /dev/zero
    char_dev(1, Some(7)), // /dev/full
    char_dev(1, Some(8)), // /dev/random
    char_dev(1, Some(9)), // /dev/urandom
    char_dev(5, Some(0)), // /dev/tty
    char_dev(5, Some(1)), // /dev/console
    char_dev(5, Some(2)), // /dev/ptmx
    char_dev(136, None),  // /dev/pts/*
];

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// Destination register in the low nibble, source in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// The 8 bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

// Opcodes (`include/uapi/linux/bpf_common.h`, `bpf.h`).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV64_REG: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const AND64_IMM: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH64_IMM: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const JNE_IMM: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 holds the context on entry; the program keeps the device
// type in r3, the access bits in r2, major in r4, minor in r5, and uses r1
// as scratch once everything is loaded.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program allowing `rules` and denying everything else.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),     // r2 = ctx->access_type
        insn(MOV64_REG, R3, R2, 0, 0),     // r3 = r2
        insn(AND64_IMM, R3, 0, 0, 0xffff), // r3 &= 0xffff: the type
        insn(RSH64_IMM, R2, 0, 0, 16),     // r2 >>= 16: the access bits
        insn(LDX_MEM_W, R4, R1, 4, 0),     // r4 = ctx->major
        insn(LDX_MEM_W, R5, R1, 8, 0),     // r5 = ctx->minor
    ];
    for rule in rules {
        // Each test jumps past the rest of this rule's block on mismatch.
        let mut tests: Vec<(u8, u8, i32)> = vec![(JNE_IMM, R3, rule.typ as i32)];
        let denied_bits = !rule.access & RWM;
        let mut block = Vec::new();
        if denied_bits != 0 {
            // r1 = access & bits the rule does not grant; must be 0.
            block.push(insn(MOV64_REG, R1, R2, 0, 0));
            block.push(insn(AND64_IMM, R1, 0, 0, denied_bits as i32));
            tests.push((JNE_IMM, R1, 0));
        }
        if let Some(major) = rule.major {
            tests.push((JNE_IMM, R4, major as i32));
        }
        if let Some(minor) = rule.minor {
            tests.push((JNE_IMM, R5, minor as i32));
        }
        // Layout: type test, [scratch for access, access test], major
        // test, minor test, r0 = 1, exit.
        let len = tests.len() + block.len() + 2;
        let start = p.len();
        // The offset that lands on the first instruction after the block,
        // from an instruction about to be pushed.
        let to_end = |p: &Vec<Insn>| (len - (p.len() - start) - 1) as i16;
        let mut tests = tests.into_iter();
        if let Some((code, reg, imm)) = tests.next() {
            p.push(insn(code, reg, 0, to_end(&p), imm));
        }
        p.extend(block);
        for (code, reg, imm) in tests {
            p.push(insn(code, reg, 0, to_end(&p), imm));
        }
        p.push(insn(MOV64_IMM, R0, 0, 0, 1));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV64_IMM, R0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// The program as the bytes `BPF_PROG_LOAD` takes.
pub fn program_bytes(rules: &[Rule]) -> Vec<u8> {
    program(rules)
        .into_iter()
        .flat_map(Insn::to_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `prog` on a device context the way the kernel would, for the
    /// few instructions [`program`] emits; panics on anything else.
    fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let dst = usize::from(i.regs & 0xf);
            let src = usize::from(i.regs >> 4);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[usize::try_from(i.off).expect("offset") / 4]);
                }
                MOV64_REG => r[dst] = r[src],
                MOV64_IMM => r[dst] = i.imm as i64 as u64,
                AND64_IMM => r[dst] &= i.imm as i64 as u64,
                RSH64_IMM => r[dst] >>= i.imm,
                JNE_IMM => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = pc
                            .checked_add_signed(isize::from(i.off))
                            .expect("jump in range");
                    }
                }
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not exit");
    }

    const BLOCK: u32 = DevType::Block as u32;
    const CHAR: u32 = DevType::Char as u32;

    #[test]
    fn default_list_allows_the_standard_devices_only() {
        let prog = program(DEFAULT_ALLOWED);
        // (type, access, major, minor, allowed)
        let table = [
            (CHAR, READ | WRITE, 1, 3, true),     // /dev/null
            (CHAR, READ, 1, 9, true),             // /dev/urandom
            (CHAR, MKNOD, 1, 5, true),            // mknod /dev/zero
            (CHAR, READ | WRITE, 136, 7, true),   // /dev/pts/7
            (CHAR, READ | WRITE, 5, 2, true),     // /dev/ptmx
            (CHAR, READ, 1, 1, false),            // /dev/mem
            (CHAR, READ, 1, 4, false),            // /dev/port
            (CHAR, READ, 1, 11, false),           // /dev/kmsg
            (CHAR, READ | WRITE, 13, 64, false),  // input event (power button)
            (CHAR, READ | WRITE, 10, 200, false), // /dev/net/tun
            (CHAR, READ | WRITE, 4, 1, false),    // /dev/tty1
            (BLOCK, READ, 254, 0, false),         // /dev/vda
            (BLOCK, MKNOD, 8, 0, false),          // mknod /dev/sda
            (BLOCK, READ, 1, 3, false),           // a block device with null's numbers
            (CHAR, READ, 3, 1, false),            // same minor, other major
            (CHAR, READ, 1, 300, false),          // null's major, other minor
        ];
        for (typ, access, major, minor, allowed) in table {
            let got = run(&prog, typ, access, major, minor);
            assert_eq!(
                got,
                u64::from(allowed),
                "type {typ} access {access} {major}:{minor}"
            );
        }
    }

    #[test]
    fn access_bits_narrow_a_rule() {
        let read_only = [Rule {
            typ: DevType::Char,
            major: Some(1),
            minor: None,
            access: READ,
        }];
        let prog = program(&read_only);
        let table = [
            (READ, true),
            (WRITE, false),
            (READ | WRITE, false),
            (MKNOD, false),
        ];
        for (access, allowed) in table {
            assert_eq!(
                run(&prog, CHAR, access, 1, 42),
                u64::from(allowed),
                "{access}"
            );
        }
    }

    #[test]
    fn empty_list_denies_everything() {
        let prog = program(&[]);
        assert_eq!(run(&prog, CHAR, READ, 1, 3), 0);
        assert_eq!(prog.len(), 8);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let prog = program(DEFAULT_ALLOWED);
        for (pc, i) in prog.iter().enumerate() {
            if i.code == JNE_IMM {
                let target = pc as i64 + 1 + i64::from(i.off);
                assert!(target > pc as i64 && target < prog.len() as i64, "{pc}");
            }
        }
        assert_eq!(prog.last().map(|i| i.code), Some(EXIT));
    }

    #[test]
    fn instructions_encode_as_the_kernel_reads_them() {
        // r2 = *(u32 *)(r1 + 8): code 0x61, dst 2, src 1, off 8.
        let i = insn(LDX_MEM_W, R2, R1, 8, 0);
        assert_eq!(i.to_bytes(), [0x61, 0x12, 8, 0, 0, 0, 0, 0]);
        let j = insn(JNE_IMM, R3, 0, 5, 2);
        assert_eq!(j.to_bytes(), [0x55, 0x03, 5, 0, 2, 0, 0, 0]);
        assert_eq!(
            program_bytes(DEFAULT_ALLOWED).len(),
            program(DEFAULT_ALLOWED).len() * 8
        );
    }
}
