//! berth-image: the host side of berth. From a manifest it builds what a
//! machine boots: Debian's kernel (fetched, never installed), an initramfs
//! for stage 0 and a read-only EROFS root image for stage 1, both carrying
//! the same static berth binary as PID 1. It also makes busybox test
//! rootfs folders and boots the result under QEMU. [`disk`] puts it all
//! on one GPT disk image (ESP with systemd-boot, two root slots, STATE).
//!
//! The pieces, each in its own module: [`cpio`] writes newc archives,
//! [`initramfs`] lays out stage 0, [`rootimg`] and [`bundle`] stage the
//! root image, [`oci`] imports images, [`progress`] shows long steps, [`verity`] appends its dm-verity hash tree, [`extent`]
//! finds a file's bytes in it (for corruption tests), [`modules`] picks
//! kernel modules with the same index PID 1 reads, [`mod@kernel`] and
//! [`berth_binary`] get the inputs, [`mod@build`] ties them together,
//! [`disk`] makes `disk.img` from the artifacts, [`qemu`] runs the
//! output, directly or under UEFI (and stops it when [`stop_signals`]
//! arrive).
//!
//! Decisions worth knowing:
//! - Output is reproducible: one timestamp (SOURCE_DATE_EPOCH, default 0)
//!   for every file, fixed owners (root for what the builder writes, the
//!   layers' for image files), a UUID derived from the inputs.
//! - The root image is dm-verity protected by default: its hash tree is
//!   appended to `root.img` and the root hash goes to `root.verity` and,
//!   from there, to the kernel command line (`berth.verity=`);
//!   `--no-verity` leaves it out for development.
//! - The root image is EROFS, lz4hc-compressed when the kernel's config
//!   has `CONFIG_EROFS_FS_ZIP` (Debian's does); the initramfs is an
//!   uncompressed cpio.
//! - Container content is a folder (`rootfs`: copied once per build
//!   and hard-linked into each container naming it ([`folder_store`]),
//!   owned by the builder, device nodes left out with a warning) or an OCI image
//!   (`image`: [`oci`] unpacks its layers with their owners, refuses
//!   escapes, leaves out a workload's device nodes with a warning, and
//!   hard-links each layer's files to one copy, so layers
//!   shared by containers are stored once).

pub mod berth_binary;
pub mod build;
pub mod bundle;
pub mod busybox;
pub mod ca;
pub mod cpio;
pub mod disk;
pub mod elf;
pub mod extent;
pub mod folder_store;
pub mod initramfs;
pub mod kernel;
pub mod modules;
pub(crate) mod nofollow;
pub mod oci;
pub mod progress;
pub mod qemu;
pub mod rootimg;
pub mod staging;
pub mod stop_signals;
pub mod tool;
pub mod verity;

pub use build::{build, build_with, resolve_inputs, BuildError, BuildOptions, BuildReport, Inputs};
pub use kernel::Kernel;
pub use qemu::{qemu_command, QemuOptions, Serial};
