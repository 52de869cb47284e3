//! Device-mapper without libdevmapper or udev: the `DM_*` ioctls on
//! `/dev/mapper/control`, just enough to create one read-only device from
//! one target (the verified root, `verity.rs`).
//!
//! Every ioctl takes a `struct dm_ioctl` (<linux/dm-ioctl.h>, 312 bytes)
//! followed by its data; `DM_TABLE_LOAD`'s data is one `struct
//! dm_target_spec` (40 bytes) and the target's parameter string, NUL
//! terminated and padded to 8 bytes. Encoding and decoding those buffers is
//! pure ([`encode`], [`decode`]); the one system call goes through the
//! [`Control`] seam, whose kernel side is `sys::dm_ioctl`.
//!
//! Creating a device is what `dmsetup create --readonly` does:
//! `DM_VERSION` (interface 4.x), `DM_DEV_CREATE` (an empty device; the
//! reply carries its dev number), `DM_TABLE_LOAD` (the inactive table,
//! read-only) and `DM_DEV_SUSPEND` without the suspend flag, which resumes
//! the device and makes the table live. If loading or resuming fails the
//! empty device is removed again. Without udev nobody makes
//! `/dev/mapper/NAME`: devtmpfs makes `/dev/dm-N`, found through
//! `/sys/dev/block/MAJ:MIN/uevent`, and [`create_readonly`]'s caller may
//! link the mapper name to it.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};

/// The control node; dm_mod's misc device 10:236 (devtmpfs names it
/// `mapper/control`).
pub const CONTROL: &str = "/dev/mapper/control";
const CONTROL_MAJOR: u64 = 10;
const CONTROL_MINOR: u64 = 236;

/// `sizeof(struct dm_ioctl)`.
pub const HEADER_BYTES: usize = 312;
/// `sizeof(struct dm_target_spec)`.
const SPEC_BYTES: usize = 40;
/// `DM_NAME_LEN`, with its NUL.
const NAME_LEN: usize = 128;
/// `DM_MAX_TYPE_NAME`, with its NUL.
const TYPE_LEN: usize = 16;
const VERSION_MAJOR: u32 = 4;
/// `DM_READONLY_FLAG`.
pub const READONLY_FLAG: u32 = 1 << 0;

/// The ioctls used here (`DM_*_CMD` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Version,
    DevCreate,
    DevRemove,
    /// Suspends with `DM_SUSPEND_FLAG`, resumes without it.
    DevSuspend,
    TableLoad,
}

impl Cmd {
    fn nr(self) -> u32 {
        match self {
            Cmd::Version => 0,
            Cmd::DevCreate => 3,
            Cmd::DevRemove => 4,
            Cmd::DevSuspend => 6,
            Cmd::TableLoad => 9,
        }
    }

    /// `_IOWR(DM_IOCTL, nr, struct dm_ioctl)`.
    pub fn request(self) -> u32 {
        const IOC_READ_WRITE: u32 = 3;
        (IOC_READ_WRITE << 30) | ((HEADER_BYTES as u32) << 16) | (0xfd << 8) | self.nr()
    }

    pub fn name(self) -> &'static str {
        match self {
            Cmd::Version => "DM_VERSION",
            Cmd::DevCreate => "DM_DEV_CREATE",
            Cmd::DevRemove => "DM_DEV_REMOVE",
            Cmd::DevSuspend => "DM_DEV_SUSPEND",
            Cmd::TableLoad => "DM_TABLE_LOAD",
        }
    }
}

/// One target of a table: `start length type params`, in sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub start: u64,
    pub sectors: u64,
    pub kind: String,
    pub params: String,
}

/// What the kernel wrote back into the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub version: [u32; 3],
    pub flags: u32,
    /// The device number (`huge_encode_dev`, as `makedev` packs it).
    pub dev: u64,
}

/// A device-mapper step failed.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("make {CONTROL} (char 10:236)")]
    MakeControl(#[source] nix::Error),
    #[error("open {CONTROL}")]
    OpenControl(#[source] io::Error),
    #[error("device-mapper interface {}.{}.{} is not version 4", .0[0], .0[1], .0[2])]
    Version([u32; 3]),
    #[error("device-mapper name {0:?} is empty or longer than 127 bytes")]
    Name(String),
    #[error("device-mapper target type {0:?} is empty or longer than 15 bytes")]
    TargetType(String),
    #[error("{} {name}", cmd.name())]
    Ioctl {
        cmd: Cmd,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("make the node {path} of {name} (block {major}:{minor})")]
    MakeNode {
        name: String,
        path: PathBuf,
        major: u64,
        minor: u64,
        #[source]
        source: nix::Error,
    },
}

/// The ioctl seam: the kernel, or a fake in tests.
pub trait Control {
    /// ioctl(2) `cmd` with `buf` (header and data) read and written in
    /// place.
    fn ioctl(&mut self, cmd: Cmd, buf: &mut [u8]) -> io::Result<()>;
}

/// The kernel's control node.
#[derive(Debug)]
pub struct KernelControl {
    file: File,
}

impl KernelControl {
    /// Opens [`CONTROL`], making the node first if devtmpfs did not
    /// (dm_mod must be loaded).
    pub fn open() -> Result<KernelControl, DmError> {
        if !Path::new(CONTROL).exists() {
            let _ = std::fs::create_dir_all("/dev/mapper");
            let dev = nix::sys::stat::makedev(CONTROL_MAJOR, CONTROL_MINOR);
            mknod(
                CONTROL,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                dev,
            )
            .map_err(DmError::MakeControl)?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(CONTROL)
            .map_err(DmError::OpenControl)?;
        Ok(KernelControl { file })
    }
}

impl Control for KernelControl {
    fn ioctl(&mut self, cmd: Cmd, buf: &mut [u8]) -> io::Result<()> {
        crate::sys::dm_ioctl(self.file.as_fd(), cmd.request(), buf)
    }
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn get32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// The buffer for `cmd` on device `name` (empty for `DM_VERSION`):
/// header, then the targets for `DM_TABLE_LOAD`.
pub fn encode(name: &str, flags: u32, targets: &[Target]) -> Result<Vec<u8>, DmError> {
    if name.len() >= NAME_LEN || name.contains('\0') {
        return Err(DmError::Name(name.to_owned()));
    }
    let mut buf = vec![0u8; HEADER_BYTES];
    for t in targets {
        if t.kind.is_empty() || t.kind.len() >= TYPE_LEN {
            return Err(DmError::TargetType(t.kind.clone()));
        }
        let at = buf.len();
        // Parameters with their NUL, padded so the next spec is aligned.
        let len = (SPEC_BYTES + t.params.len() + 1).next_multiple_of(8);
        buf.resize(at + len, 0);
        put64(&mut buf, at, t.start);
        put64(&mut buf, at + 8, t.sectors);
        // `next`: from this spec to the following one.
        put32(&mut buf, at + 20, len as u32);
        buf[at + 24..at + 24 + t.kind.len()].copy_from_slice(t.kind.as_bytes());
        let p = at + SPEC_BYTES;
        buf[p..p + t.params.len()].copy_from_slice(t.params.as_bytes());
    }
    put32(&mut buf, 0, VERSION_MAJOR);
    let data_size = buf.len() as u32;
    put32(&mut buf, 12, data_size); // all of it
    put32(&mut buf, 16, HEADER_BYTES as u32); // data_start
    put32(&mut buf, 20, targets.len() as u32);
    put32(&mut buf, 28, flags);
    buf[48..48 + name.len()].copy_from_slice(name.as_bytes());
    Ok(buf)
}

/// The header fields the kernel fills in.
pub fn decode(buf: &[u8]) -> Reply {
    let mut dev = [0u8; 8];
    dev.copy_from_slice(&buf[40..48]);
    Reply {
        version: [get32(buf, 0), get32(buf, 4), get32(buf, 8)],
        flags: get32(buf, 28),
        dev: u64::from_ne_bytes(dev),
    }
}

fn call(
    ctl: &mut dyn Control,
    cmd: Cmd,
    name: &str,
    flags: u32,
    targets: &[Target],
) -> Result<Reply, DmError> {
    let mut buf = encode(name, flags, targets)?;
    ctl.ioctl(cmd, &mut buf).map_err(|source| DmError::Ioctl {
        cmd,
        name: name.to_owned(),
        source,
    })?;
    Ok(decode(&buf))
}

/// Creates the read-only device `name` with `targets` live; returns its
/// dev number. On failure after the create, the device is removed again.
pub fn create_readonly(
    ctl: &mut dyn Control,
    name: &str,
    targets: &[Target],
) -> Result<u64, DmError> {
    let version = call(ctl, Cmd::Version, "", 0, &[])?.version;
    if version[0] != VERSION_MAJOR {
        return Err(DmError::Version(version));
    }
    let dev = call(ctl, Cmd::DevCreate, name, 0, &[])?.dev;
    let live = call(ctl, Cmd::TableLoad, name, READONLY_FLAG, targets)
        .and_then(|_| call(ctl, Cmd::DevSuspend, name, 0, &[]));
    if let Err(e) = live {
        if let Err(removal) = call(ctl, Cmd::DevRemove, name, 0, &[]) {
            log::warn!(
                "remove the half-made device {name}: {}",
                crate::fatal::chain(&removal)
            );
        }
        return Err(e);
    }
    Ok(dev)
}

/// `DEVNAME=` of a sysfs `uevent` file.
pub fn devname(uevent: &str) -> Option<&str> {
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .filter(|n| !n.is_empty())
}

/// The `/dev` node of the block device `dev`, made if devtmpfs has not.
pub fn block_node(name: &str, dev: u64) -> Result<PathBuf, DmError> {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
        .unwrap_or_default();
    let path = Path::new("/dev").join(devname(&uevent).unwrap_or(&format!("dm-{minor}")));
    if !path.exists() {
        mknod(&path, SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), dev).map_err(|source| {
            DmError::MakeNode {
                name: name.to_owned(),
                path: path.clone(),
                major,
                minor,
                source,
            }
        })?;
    }
    Ok(path)
}

/// The `/dev` node of the device-mapper device called `name`, if there is
/// one (`/sys/block/*/dm/name`).
pub fn find_by_name(name: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir("/sys/block").ok()?;
    for entry in entries.flatten() {
        let dm_name = std::fs::read_to_string(entry.path().join("dm/name")).unwrap_or_default();
        if dm_name.trim_end() == name {
            return Some(Path::new("/dev").join(entry.file_name()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each call as `CMD name flags targets` and answers from a
    /// script: the dev number for `DM_DEV_CREATE`, an errno for the
    /// command named in `fail`.
    #[derive(Debug, Default)]
    struct FakeControl {
        calls: Vec<String>,
        fail: Option<(Cmd, i32)>,
        version: u32,
    }

    impl Control for FakeControl {
        fn ioctl(&mut self, cmd: Cmd, buf: &mut [u8]) -> io::Result<()> {
            let name_end = buf[48..176].iter().position(|&b| b == 0).unwrap_or(128);
            let name = String::from_utf8_lossy(&buf[48..48 + name_end]).into_owned();
            self.calls.push(format!(
                "{} {name:?} flags={} targets={}",
                cmd.name(),
                get32(buf, 28),
                get32(buf, 20)
            ));
            if let Some((c, errno)) = self.fail {
                if c == cmd {
                    return Err(io::Error::from_raw_os_error(errno));
                }
            }
            match cmd {
                Cmd::Version => put32(buf, 0, self.version),
                Cmd::DevCreate => put64(buf, 40, nix::sys::stat::makedev(253, 0)),
                _ => {}
            }
            Ok(())
        }
    }

    fn target() -> Target {
        Target {
            start: 0,
            sectors: 400,
            kind: "verity".into(),
            params: "1 /dev/vda /dev/vda 4096 4096 50 51 sha256 ab -".into(),
        }
    }

    #[test]
    fn request_numbers_match_the_header() {
        // <linux/dm-ioctl.h> _IOWR(0xfd, nr, struct dm_ioctl) on x86-64.
        let table = [
            (Cmd::Version, 0xc138_fd00u32),
            (Cmd::DevCreate, 0xc138_fd03),
            (Cmd::DevRemove, 0xc138_fd04),
            (Cmd::DevSuspend, 0xc138_fd06),
            (Cmd::TableLoad, 0xc138_fd09),
        ];
        for (cmd, want) in table {
            assert_eq!(cmd.request(), want, "{}", cmd.name());
        }
    }

    #[test]
    fn header_only_buffer() {
        let buf = encode("berth-root", 0, &[]).expect("encode");
        assert_eq!(buf.len(), HEADER_BYTES);
        assert_eq!(get32(&buf, 0), 4, "version major");
        assert_eq!(get32(&buf, 12), HEADER_BYTES as u32, "data_size");
        assert_eq!(get32(&buf, 16), HEADER_BYTES as u32, "data_start");
        assert_eq!(get32(&buf, 20), 0, "target_count");
        assert_eq!(&buf[48..58], b"berth-root");
        assert_eq!(buf[58], 0);
    }

    #[test]
    fn table_load_buffer() {
        let t = target();
        let buf = encode("berth-root", READONLY_FLAG, std::slice::from_ref(&t)).expect("encode");
        let spec_len = (SPEC_BYTES + t.params.len() + 1).next_multiple_of(8);
        assert_eq!(buf.len(), HEADER_BYTES + spec_len);
        assert_eq!(buf.len() % 8, 0);
        assert_eq!(get32(&buf, 12) as usize, buf.len(), "data_size");
        assert_eq!(get32(&buf, 20), 1, "target_count");
        assert_eq!(get32(&buf, 28), READONLY_FLAG);
        let s = HEADER_BYTES;
        assert_eq!(buf[s..s + 8], 0u64.to_ne_bytes(), "sector_start");
        assert_eq!(buf[s + 8..s + 16], 400u64.to_ne_bytes(), "length");
        assert_eq!(get32(&buf, s + 20) as usize, spec_len, "next");
        assert_eq!(&buf[s + 24..s + 31], b"verity\0");
        let p = s + SPEC_BYTES;
        assert_eq!(&buf[p..p + t.params.len()], t.params.as_bytes());
        assert_eq!(buf[p + t.params.len()], 0, "params are NUL-terminated");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(matches!(
            encode(&"x".repeat(128), 0, &[]),
            Err(DmError::Name(_))
        ));
        let long_type = Target {
            kind: "a-very-long-target".into(),
            ..target()
        };
        assert!(matches!(
            encode("n", 0, &[long_type]),
            Err(DmError::TargetType(_))
        ));
    }

    #[test]
    fn decode_reads_version_flags_dev() {
        let mut buf = vec![0u8; HEADER_BYTES];
        put32(&mut buf, 0, 4);
        put32(&mut buf, 4, 47);
        put32(&mut buf, 28, READONLY_FLAG);
        put64(&mut buf, 40, 0xfd00);
        assert_eq!(
            decode(&buf),
            Reply {
                version: [4, 47, 0],
                flags: READONLY_FLAG,
                dev: 0xfd00
            }
        );
    }

    #[test]
    fn create_sequence() {
        let mut ctl = FakeControl {
            version: 4,
            ..Default::default()
        };
        let dev = create_readonly(&mut ctl, "berth-root", &[target()]).expect("create");
        assert_eq!(dev, nix::sys::stat::makedev(253, 0));
        assert_eq!(
            ctl.calls,
            [
                "DM_VERSION \"\" flags=0 targets=0",
                "DM_DEV_CREATE \"berth-root\" flags=0 targets=0",
                "DM_TABLE_LOAD \"berth-root\" flags=1 targets=1",
                "DM_DEV_SUSPEND \"berth-root\" flags=0 targets=0",
            ]
        );
    }

    #[test]
    fn failed_load_or_resume_removes_the_device() {
        for failing in [Cmd::TableLoad, Cmd::DevSuspend] {
            let mut ctl = FakeControl {
                version: 4,
                fail: Some((failing, libc::EINVAL)),
                ..Default::default()
            };
            let err = create_readonly(&mut ctl, "berth-root", &[target()]).expect_err("fails");
            assert_eq!(
                err.to_string(),
                format!("{} berth-root", failing.name()),
                "{err:?}"
            );
            assert_eq!(
                ctl.calls.last().map(String::as_str),
                Some("DM_DEV_REMOVE \"berth-root\" flags=0 targets=0")
            );
        }
    }

    #[test]
    fn failed_create_and_old_interface_stop_early() {
        let mut ctl = FakeControl {
            version: 4,
            fail: Some((Cmd::DevCreate, libc::EBUSY)),
            ..Default::default()
        };
        assert!(create_readonly(&mut ctl, "berth-root", &[target()]).is_err());
        assert_eq!(ctl.calls.len(), 2, "{:?}", ctl.calls);
        let mut old = FakeControl {
            version: 3,
            ..Default::default()
        };
        let err = create_readonly(&mut old, "berth-root", &[target()]).expect_err("v3");
        assert!(matches!(err, DmError::Version([3, 0, 0])), "{err:?}");
        assert_eq!(old.calls.len(), 1);
    }

    #[test]
    fn devname_from_uevent() {
        let table = [
            (
                "MAJOR=253\nMINOR=0\nDEVNAME=dm-0\nDEVTYPE=disk\n",
                Some("dm-0"),
            ),
            ("MAJOR=253\nMINOR=0\n", None),
            ("DEVNAME=\n", None),
        ];
        for (text, want) in table {
            assert_eq!(devname(text), want, "{text:?}");
        }
    }
}
