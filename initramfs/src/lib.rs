//! berth-image: the host side of berth. From a manifest it builds what a
//! machine boots: Debian's kernel (fetched, never installed), an initramfs
//! for stage 0 and a read-only EROFS root image for stage 1, both carrying
//! the same static berth binary as PID 1. It also makes busybox test
//! rootfs folders and boots the result under QEMU.
//!
//! The pieces, each in its own module: [`cpio`] writes newc archives,
//! [`initramfs`] lays out stage 0, [`rootimg`] and [`bundle`] stage the
//! root image, [`modules`] picks kernel modules with the same index PID 1
//! reads, [`mod@kernel`] and [`berth_binary`] get the inputs, [`mod@build`] ties
//! them together, [`qemu`] runs the output.
//!
//! Decisions worth knowing:
//! - Output is reproducible: one timestamp (SOURCE_DATE_EPOCH, default 0)
//!   for every file, root ownership, a UUID derived from the inputs.
//! - The root image is EROFS, lz4hc-compressed when the kernel's config
//!   has `CONFIG_EROFS_FS_ZIP` (Debian's does); the initramfs is an
//!   uncompressed cpio.
//! - Owners inside container rootfs folders are not kept (mkfs.erofs
//!   `--all-root`); device nodes in them are left out with a warning.

pub mod berth_binary;
pub mod build;
pub mod bundle;
pub mod busybox;
pub mod cpio;
pub mod elf;
pub mod initramfs;
pub mod kernel;
pub mod modules;
pub mod qemu;
pub mod rootimg;
pub mod staging;
pub mod tool;

pub use build::{build, build_with, resolve_inputs, BuildError, BuildOptions, BuildReport, Inputs};
pub use kernel::Kernel;
pub use qemu::{qemu_command, QemuOptions, Serial};
