//! Just enough ELF to tell whether an executable can run with no dynamic
//! loader: the image carries no `/lib`, so PID 1 and the busybox of test
//! containers must be static.
//!
//! An executable needs a loader exactly when it has a `PT_INTERP` program
//! header (elf(5)); static-pie binaries, which Rust produces with
//! `+crt-static`, have none, so counting `PT_INTERP` handles both static
//! flavours without running `file`.

use std::path::{Path, PathBuf};

const PT_INTERP: u32 = 3;
const EM_X86_64: u16 = 62;

/// Checking an executable failed, or it is not a static x86-64 ELF.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a 64-bit little-endian ELF file")]
    NotElf64 { path: PathBuf },
    #[error("{path} is an ELF for machine {machine}, not x86-64")]
    WrongMachine { path: PathBuf, machine: u16 },
    #[error("{path} has a truncated program header table")]
    Truncated { path: PathBuf },
    #[error("{path} is dynamically linked (it names a program interpreter)")]
    Dynamic { path: PathBuf },
}

/// Fails unless `path` is a statically linked x86-64 ELF executable.
pub fn check_static_x86_64(path: &Path) -> Result<(), ElfError> {
    let bytes = std::fs::read(path).map_err(|source| ElfError::Read {
        path: path.to_owned(),
        source,
    })?;
    match inspect(&bytes) {
        Inspection::NotElf64 => Err(ElfError::NotElf64 {
            path: path.to_owned(),
        }),
        Inspection::Truncated => Err(ElfError::Truncated {
            path: path.to_owned(),
        }),
        Inspection::Elf { machine, .. } if machine != EM_X86_64 => Err(ElfError::WrongMachine {
            path: path.to_owned(),
            machine,
        }),
        Inspection::Elf { interp: true, .. } => Err(ElfError::Dynamic {
            path: path.to_owned(),
        }),
        Inspection::Elf { .. } => Ok(()),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Inspection {
    NotElf64,
    Truncated,
    Elf { machine: u16, interp: bool },
}

/// Reads the ELF64 header (e_machine at 0x12, e_phoff at 0x20, e_phentsize
/// and e_phnum at 0x36 and 0x38) and scans the program headers.
fn inspect(b: &[u8]) -> Inspection {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Inspection::NotElf64;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let machine = u16_at(0x12);
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or([0xff; 8]));
    let (phentsize, phnum) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    let Ok(phoff) = usize::try_from(phoff) else {
        return Inspection::Truncated;
    };
    let end = phnum
        .checked_mul(phentsize)
        .and_then(|n| n.checked_add(phoff));
    if phentsize < 4 || end.is_none_or(|end| end > b.len()) {
        return Inspection::Truncated;
    }
    let interp = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == PT_INTERP
    });
    Inspection::Elf { machine, interp }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header followed by program headers of these types.
    fn elf(machine: u16, types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn table() {
        let cases: &[(&str, Vec<u8>, Inspection)] = &[
            (
                "static",
                elf(62, &[1, 1, 4]),
                Inspection::Elf {
                    machine: 62,
                    interp: false,
                },
            ),
            (
                "dynamic",
                elf(62, &[6, 3, 1]),
                Inspection::Elf {
                    machine: 62,
                    interp: true,
                },
            ),
            (
                "arm64",
                elf(183, &[1]),
                Inspection::Elf {
                    machine: 183,
                    interp: false,
                },
            ),
            ("script", b"#!/bin/sh\n".repeat(10), Inspection::NotElf64),
            (
                "truncated",
                elf(62, &[1, 1])[..100].to_vec(),
                Inspection::Truncated,
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(&inspect(bytes), want, "{name}");
        }
    }

    #[test]
    fn this_test_binary_is_dynamic() {
        // cargo links test binaries against glibc dynamically.
        let me = std::env::current_exe().expect("current_exe");
        assert!(matches!(
            check_static_x86_64(&me),
            Err(ElfError::Dynamic { .. })
        ));
    }
}
