//! STATE: an ext4 filesystem made at build time by `mkfs.ext4` straight
//! into `disk.img` at the partition's offset (`-E offset=`), so no loop
//! device, mount or root is needed, and the node never formats anything
//! itself (a STATE that fails to mount is never formatted automatically).
//!
//! The result must not depend on the build host, so mkfs reads our own
//! configuration ([`MKE2FS_CONF`], through `MKE2FS_CONFIG`), not
//! `/etc/mke2fs.conf`: 4 KiB blocks, 256-byte inodes, Debian 12's ext4
//! features spelled out. Nothing in it is random: the UUID (`-U`) and the
//! directory hash seed (`-E hash_seed=`) are derived from the build, and
//! every timestamp is `SOURCE_DATE_EPOCH` through `E2FSPROGS_FAKE_TIME`,
//! which e2fsprogs 1.47 honours for the superblock and the inodes of `/`
//! and `lost+found`. e2fsprogs reads a fake time of 0 as none, so epoch 0
//! becomes 1 s (1970-01-01 00:00:01). With those, two builds are
//! byte-identical (checked by a test below).
//!
//! PID 1 grows the filesystem online into the rest of a bigger disk on
//! first boot. `resize_inode` keeps descriptor blocks in reserve for that
//! (mkfs reserves enough for 1024 times the initial size, 64 GiB from
//! 64 MiB); beyond it the kernel converts to `meta_bg` on its own while
//! resizing. The inode tables are zeroed by mkfs (as holes: e2fsprogs
//! punches them in a file) so the kernel starts no lazy-init thread on
//! first mount; the journal is left as the hole it already is
//! (`lazy_journal_init`), its superblock marking it empty.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use berth_config::layout::{self, disk};

use super::guid::Guid;
use crate::tool::{ToolError, MKFS_EXT4, TUNE2FS};

/// The usage type our configuration defines (`mkfs.ext4 -T`).
pub const USAGE_TYPE: &str = "berth-state";

/// `MKE2FS_CONFIG` for STATE: everything mkfs would otherwise take from
/// the host's `/etc/mke2fs.conf` (Debian 12's ext4 features, no
/// `orphan_file` or `metadata_csum_seed`, which older tools refuse).
pub const MKE2FS_CONF: &str = "\
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
	reserved_ratio = 5.0
	lazy_itable_init = false
	lazy_journal_init = true

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	berth-state = {
		inode_ratio = 16384
	}
";

/// Variables of the builder's environment that would change what mkfs
/// makes; removed from its environment.
const FOREIGN_ENV: &[&str] = &[
    "MKE2FS_SYNC",
    "MKE2FS_DEVICE_SECTSIZE",
    "MKE2FS_DEVICE_PHYS_SECTSIZE",
    "MKE2FS_FIRST_META_BG",
    "E2FSPROGS_FAKE_TIME",
];

/// What identifies the filesystem; derived from the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFs {
    pub uuid: Guid,
    pub hash_seed: Guid,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: u64,
}

/// Making STATE failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("write the mkfs configuration {path}")]
    Config {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("make the STATE filesystem (ext4) in {image} at byte {offset}")]
    Mkfs {
        image: PathBuf,
        offset: u64,
        #[source]
        source: ToolError,
    },
}

/// `mkfs.ext4`'s arguments for a filesystem of `size` bytes at byte
/// `offset` of `image`.
pub fn mkfs_args(image: &Path, offset: u64, size: u64, fs: &StateFs) -> Vec<OsString> {
    let extended = format!(
        "offset={offset},hash_seed={},root_owner=0:0,nodiscard",
        fs.hash_seed
    );
    let mut args: Vec<OsString> = [
        "-q",
        // A regular file, and a GPT may be seen at its start.
        "-F",
        "-t",
        "ext4",
        "-T",
        USAGE_TYPE,
        "-L",
        disk::STATE_LABEL,
        "-U",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push(fs.uuid.to_string().into());
    args.push("-E".into());
    args.push(extended.into());
    args.push(image.into());
    // With a unit, so no -b can turn it into a block count.
    args.push(format!("{}k", size / 1024).into());
    args
}

/// Makes STATE in `image` (which must already be at least `offset + size`
/// long); `work_dir` receives the mkfs configuration.
pub fn make(
    image: &Path,
    offset: u64,
    size: u64,
    fs: &StateFs,
    work_dir: &Path,
) -> Result<(), StateError> {
    let conf = work_dir.join("mke2fs.conf");
    std::fs::write(&conf, MKE2FS_CONF).map_err(|source| StateError::Config {
        path: conf.clone(),
        source,
    })?;
    let mut cmd = MKFS_EXT4.command();
    for var in FOREIGN_ENV {
        cmd.env_remove(var);
    }
    cmd.env("MKE2FS_CONFIG", &conf)
        .env("E2FSPROGS_FAKE_TIME", fs.epoch.max(1).to_string())
        .args(mkfs_args(image, offset, size, fs));
    MKFS_EXT4
        .output(&mut cmd)
        .map_err(|source| StateError::Mkfs {
            image: image.to_owned(),
            offset,
            source,
        })?;
    // The blocks ext4 keeps back (5%) are for the node: only a process
    // with CAP_SYS_RESOURCE (PID 1; workloads do not get it) or the
    // reserve's own id may use them, not root as by default, so a
    // workload that fills STATE leaves room for the node's logs and keys.
    let reserve = layout::STATE_RESERVE_ID.to_string();
    let mut tune = TUNE2FS.command();
    for var in FOREIGN_ENV {
        tune.env_remove(var);
    }
    tune.env("E2FSPROGS_FAKE_TIME", fs.epoch.max(1).to_string())
        .args(["-u", &reserve, "-g", &reserve])
        .arg(format!("{}?offset={offset}", image.display()));
    TUNE2FS
        .output(&mut tune)
        .map_err(|source| StateError::Mkfs {
            image: image.to_owned(),
            offset,
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::{Tool, DUMPE2FS};
    use std::os::unix::fs::FileExt;

    const MIB: u64 = 1 << 20;

    fn state_fs(epoch: u64) -> StateFs {
        StateFs {
            uuid: Guid::derive(b"test", "state-uuid"),
            hash_seed: Guid::derive(b"test", "state-hash-seed"),
            epoch,
        }
    }

    #[test]
    fn arguments() {
        let fs = StateFs {
            uuid: Guid::parse("11111111-2222-8333-8444-555555555555").expect("uuid"),
            hash_seed: Guid::parse("66666666-7777-8888-9999-000000000000").expect("seed"),
            epoch: 0,
        };
        let args: Vec<String> = mkfs_args(Path::new("/o/disk.img"), 3 * MIB, 64 * MIB, &fs)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        #[rustfmt::skip]
        let want = [
            "-q", "-F", "-t", "ext4", "-T", "berth-state", "-L", "berth-state",
            "-U", "11111111-2222-8333-8444-555555555555",
            "-E", "offset=3145728,hash_seed=66666666-7777-8888-9999-000000000000,root_owner=0:0,nodiscard",
            "/o/disk.img", "65536k",
        ];
        assert_eq!(args, want);
    }

    /// A 96 MiB file with STATE (64 MiB) at 16 MiB, and markers around it.
    fn made(dir: &Path, name: &str, epoch: u64) -> PathBuf {
        let image = dir.join(name);
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&image)
            .expect("create");
        file.set_len(96 * MIB).expect("set_len");
        file.write_all_at(b"before", 16 * MIB - 6).expect("marker");
        file.write_all_at(b"after", 80 * MIB).expect("marker");
        make(&image, 16 * MIB, 64 * MIB, &state_fs(epoch), dir).expect("mkfs");
        let mut marker = [0u8; 6];
        file.read_exact_at(&mut marker, 16 * MIB - 6).expect("read");
        assert_eq!(&marker, b"before");
        file.read_exact_at(&mut marker[..5], 80 * MIB)
            .expect("read");
        assert_eq!(&marker[..5], b"after");
        assert_eq!(file.metadata().expect("stat").len(), 96 * MIB);
        image
    }

    /// The filesystem's 64 MiB, alone in `to` (sparse).
    fn extract(image: &Path, to: &Path) {
        let from = std::fs::File::open(image).expect("open");
        let out = std::fs::File::create(to).expect("create");
        out.set_len(64 * MIB).expect("set_len");
        let mut buf = vec![0u8; MIB as usize];
        for i in 0..64 {
            from.read_exact_at(&mut buf, 16 * MIB + i * MIB)
                .expect("read");
            crate::disk::sparse::write_at(&out, i * MIB, &buf).expect("write");
        }
    }

    fn dumpe2fs(path: &Path) -> String {
        DUMPE2FS
            .output(DUMPE2FS.command().arg("-h").arg(path))
            .expect("dumpe2fs -h")
    }

    fn field<'a>(dump: &'a str, name: &str) -> &'a str {
        dump.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {name} in\n{dump}"))
            .trim()
    }

    #[test]
    fn state_is_labelled_growable_and_reproducible() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = made(tmp.path(), "a.img", 1_700_000_000);
        let part = tmp.path().join("state.img");
        extract(&a, &part);
        let dump = dumpe2fs(&part);
        let fs = state_fs(0);
        assert_eq!(field(&dump, "Filesystem volume name"), "berth-state");
        assert_eq!(field(&dump, "Filesystem UUID"), fs.uuid.to_string());
        assert_eq!(
            field(&dump, "Directory Hash Seed"),
            fs.hash_seed.to_string()
        );
        assert_eq!(field(&dump, "Block count"), "16384");
        assert_eq!(field(&dump, "Block size"), "4096");
        // 5% kept back, for the node only (not for root).
        assert_eq!(field(&dump, "Reserved block count"), "819");
        assert!(field(&dump, "Reserved blocks uid").starts_with("65533 "));
        assert!(field(&dump, "Reserved blocks gid").starts_with("65533 "));
        assert_eq!(field(&dump, "Inode size"), "256");
        let features: Vec<&str> = field(&dump, "Filesystem features").split(' ').collect();
        for want in [
            "has_journal",
            "extent",
            "64bit",
            "flex_bg",
            "metadata_csum",
            "resize_inode",
        ] {
            assert!(features.contains(&want), "{want} not in {features:?}");
        }
        assert!(!features.contains(&"orphan_file"), "{features:?}");
        let reserved: u64 = field(&dump, "Reserved GDT blocks").parse().expect("number");
        assert!(reserved > 0, "no descriptor blocks kept for growing");
        assert!(
            field(&dump, "Filesystem created").contains("2023"),
            "{dump}"
        );

        // Made again seconds later: the same bytes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = made(tmp.path(), "b.img", 1_700_000_000);
        assert!(
            std::fs::read(&a).expect("read a") == std::fs::read(&b).expect("read b"),
            "two mkfs runs differ"
        );
        assert!(
            std::fs::read(made(tmp.path(), "c.img", 1_700_000_002)).expect("read c")
                != std::fs::read(&a).expect("read a"),
            "the epoch is not in the filesystem"
        );

        // Grows to 8 GiB (offline here; PID 1 does it online).
        std::fs::File::options()
            .write(true)
            .open(&part)
            .and_then(|f| f.set_len(8 << 30))
            .expect("grow the file");
        let resize2fs = Tool {
            program: "resize2fs",
            package: "e2fsprogs",
        };
        resize2fs
            .output(resize2fs.command().arg("-f").arg(&part))
            .expect("resize2fs");
        let grown = dumpe2fs(&part);
        assert_eq!(field(&grown, "Block count"), (2u64 << 20).to_string());
        let e2fsck = Tool {
            program: "e2fsck",
            package: "e2fsprogs",
        };
        e2fsck
            .output(e2fsck.command().arg("-fn").arg(&part))
            .expect("e2fsck after the resize");
    }
}
