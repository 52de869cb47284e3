//! A writer for "newc" cpio archives (magic `070701`), the format the Linux
//! kernel unpacks into its initramfs rootfs
//! (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Each entry is a 110-byte ASCII header (the magic and thirteen 8-digit hex
//! fields), the NUL-terminated name, padding to a multiple of 4 bytes, the
//! data, and padding to a multiple of 4 again. The archive ends with an entry
//! named `TRAILER!!!`.
//!
//! The output is reproducible: owner 0:0, one mtime for every entry, inode
//! numbers counted up from 1 in write order, entries in exactly the order the
//! caller writes them (the caller sorts, parents before children).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";
const HEADER_LEN: usize = 110;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Writing an archive failed.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    #[error("write cpio entry {name}")]
    Write {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("read {path} for cpio entry {name}")]
    ReadHost {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} changed size while being archived (expected {expected} bytes, copied {copied})"
    )]
    HostFileChanged {
        path: PathBuf,
        expected: u64,
        copied: u64,
    },
    #[error("cpio entry {name} is {size} bytes, more than newc's 4 GiB limit")]
    TooLarge { name: String, size: u64 },
    #[error("cpio entry name {name:?} is empty or contains a NUL byte")]
    BadName { name: String },
}

/// Fields of one header; everything else is fixed (uid, gid, devices of
/// the archived filesystem, checksum: all 0).
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    size: u64,
    rdev: (u32, u32),
}

/// Streams a newc archive to `W`.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    mtime: u32,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// `mtime` is stamped on every entry (SOURCE_DATE_EPOCH). newc stores
    /// it in 32 bits; later times are clamped, which only matters after 2106.
    pub fn new(out: W, mtime: u64) -> Self {
        CpioWriter {
            out,
            mtime: u32::try_from(mtime).unwrap_or(u32::MAX),
            next_ino: 1,
            written: 0,
        }
    }

    /// A directory; `mode` holds only the permission bits.
    pub fn dir(&mut self, name: &str, mode: u32) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFDIR | (mode & 0o7777),
                nlink: 2,
                size: 0,
                rdev: (0, 0),
            },
            &[],
        )
    }

    /// A regular file with the given contents.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFREG | (mode & 0o7777),
                nlink: 1,
                size: data.len() as u64,
                rdev: (0, 0),
            },
            data,
        )
    }

    /// A regular file whose contents are streamed from `host` (not read
    /// into memory: kernel modules and the berth binary are megabytes).
    pub fn file_from_host(&mut self, name: &str, mode: u32, host: &Path) -> Result<(), CpioError> {
        let read_err = |source| CpioError::ReadHost {
            name: name.to_owned(),
            path: host.to_owned(),
            source,
        };
        let mut file = File::open(host).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        self.header(&Header {
            name,
            mode: S_IFREG | (mode & 0o7777),
            nlink: 1,
            size,
            rdev: (0, 0),
        })?;
        // Copy exactly `size` bytes: a file that grew would otherwise shift
        // every following header.
        let copied =
            io::copy(&mut io::Read::take(&mut file, size), &mut self.out).map_err(read_err)?;
        if copied != size {
            return Err(CpioError::HostFileChanged {
                path: host.to_owned(),
                expected: size,
                copied,
            });
        }
        self.written += copied;
        self.pad(name)
    }

    /// A symbolic link; newc stores the target as the entry's data.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFLNK | 0o777,
                nlink: 1,
                size: target.len() as u64,
                rdev: (0, 0),
            },
            target.as_bytes(),
        )
    }

    /// A character device node, e.g. `dev/console` 5:1, which the kernel
    /// opens as PID 1's stdio before any devtmpfs is mounted.
    pub fn char_device(
        &mut self,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFCHR | (mode & 0o7777),
                nlink: 1,
                size: 0,
                rdev: (major, minor),
            },
            &[],
        )
    }

    /// Writes the trailer and returns the sink and the archive's length.
    pub fn finish(mut self) -> Result<(W, u64), CpioError> {
        let trailer = Header {
            name: TRAILER,
            mode: 0,
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        };
        // The trailer carries inode 0, like GNU cpio writes it.
        self.next_ino = 0;
        self.entry(&trailer, &[])?;
        self.out.flush().map_err(|source| CpioError::Write {
            name: TRAILER.to_owned(),
            source,
        })?;
        Ok((self.out, self.written))
    }

    fn entry(&mut self, header: &Header<'_>, data: &[u8]) -> Result<(), CpioError> {
        self.header(header)?;
        self.put(header.name, data)?;
        self.pad(header.name)
    }

    fn header(&mut self, h: &Header<'_>) -> Result<(), CpioError> {
        if h.name.is_empty() || h.name.contains('\0') {
            return Err(CpioError::BadName {
                name: h.name.to_owned(),
            });
        }
        let size = u32::try_from(h.size).map_err(|_| CpioError::TooLarge {
            name: h.name.to_owned(),
            size: h.size,
        })?;
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1);
        let namesize = h.name.len() as u32 + 1;
        let fields = [
            ino, h.mode, 0, 0, h.nlink, self.mtime, size, 0, 0, h.rdev.0, h.rdev.1, namesize, 0,
        ];
        let mut buf = Vec::with_capacity(HEADER_LEN + namesize as usize + 3);
        buf.extend_from_slice(MAGIC);
        for field in fields {
            buf.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        buf.extend_from_slice(h.name.as_bytes());
        buf.push(0);
        buf.resize(buf.len() + pad4(buf.len()), 0);
        self.put(h.name, &buf)
    }

    /// Pads the data just written to a multiple of 4 (the header and name
    /// are already padded, so the running length tells how much is needed).
    fn pad(&mut self, name: &str) -> Result<(), CpioError> {
        let n = pad4(self.written as usize);
        self.put(name, &[0; 3][..n])
    }

    fn put(&mut self, name: &str, bytes: &[u8]) -> Result<(), CpioError> {
        self.out
            .write_all(bytes)
            .map_err(|source| CpioError::Write {
                name: name.to_owned(),
                source,
            })?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Bytes of zero padding that bring `len` to a multiple of 4.
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

#[cfg(test)]
pub(crate) mod reader {
    //! Test-only newc parser, just enough to round-trip what the writer
    //! emits and to check its structure.

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Entry {
        pub name: String,
        pub ino: u32,
        pub mode: u32,
        pub uid: u32,
        pub gid: u32,
        pub nlink: u32,
        pub mtime: u32,
        pub rdev: (u32, u32),
        pub data: Vec<u8>,
    }

    /// Parses every entry up to and including the trailer; panics on
    /// malformed input (it is a test helper).
    pub fn parse(mut buf: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut offset = 0usize;
        loop {
            assert_eq!(&buf[..6], b"070701", "magic at offset {offset}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i]).expect("ascii header");
                u32::from_str_radix(s, 16).expect("hex field")
            };
            let (namesize, filesize) = (field(11) as usize, field(6) as usize);
            let name_end = 110 + namesize;
            assert_eq!(buf[name_end - 1], 0, "name is NUL-terminated");
            let name = String::from_utf8(buf[110..name_end - 1].to_vec()).expect("utf-8 name");
            let data_start = name_end + super::pad4(offset + name_end);
            let data_end = data_start + filesize;
            let next = data_end + super::pad4(offset + data_end);
            let entry = Entry {
                ino: field(0),
                mode: field(1),
                uid: field(2),
                gid: field(3),
                nlink: field(4),
                mtime: field(5),
                rdev: (field(9), field(10)),
                data: buf[data_start..data_end].to_vec(),
                name,
            };
            let done = entry.name == super::TRAILER;
            entries.push(entry);
            offset += next;
            buf = &buf[next..];
            if done {
                assert!(buf.is_empty(), "nothing after the trailer");
                return entries;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reader::{parse, Entry};
    use super::*;

    fn archive(f: impl FnOnce(&mut CpioWriter<Vec<u8>>)) -> Vec<u8> {
        let mut w = CpioWriter::new(Vec::new(), 1_700_000_000);
        f(&mut w);
        let (bytes, len) = w.finish().expect("finish");
        assert_eq!(bytes.len() as u64, len);
        bytes
    }

    #[test]
    fn header_layout_byte_for_byte() {
        let bytes = archive(|w| w.file("init", 0o755, b"hi!\n").expect("file"));
        let mut expected = Vec::new();
        expected.extend_from_slice(b"070701");
        expected.extend_from_slice(b"00000001"); // ino
        expected.extend_from_slice(b"000081ed"); // S_IFREG | 0755
        expected.extend_from_slice(b"00000000"); // uid
        expected.extend_from_slice(b"00000000"); // gid
        expected.extend_from_slice(b"00000001"); // nlink
        expected.extend_from_slice(b"6553f100"); // mtime 1700000000
        expected.extend_from_slice(b"00000004"); // filesize
        expected.extend_from_slice(b"00000000"); // devmajor
        expected.extend_from_slice(b"00000000"); // devminor
        expected.extend_from_slice(b"00000000"); // rdevmajor
        expected.extend_from_slice(b"00000000"); // rdevminor
        expected.extend_from_slice(b"00000005"); // namesize incl. NUL
        expected.extend_from_slice(b"00000000"); // check
        expected.extend_from_slice(b"init\0");
        expected.push(0); // 110 + 5 = 115 bytes, padded to 116
        expected.extend_from_slice(b"hi!\n");
        assert_eq!(&bytes[..expected.len()], &expected[..]);
        assert_eq!(expected.len(), 120);
    }

    #[test]
    fn padding_for_every_length_mod_4() {
        for name_len in 1..=8 {
            for data_len in 0..=8 {
                let name = "n".repeat(name_len);
                let data = vec![0xa5; data_len];
                let bytes = archive(|w| {
                    w.file(&name, 0o644, &data).expect("file");
                    w.dir("d", 0o755).expect("dir");
                });
                assert_eq!(bytes.len() % 4, 0);
                let header_end = HEADER_LEN + name_len + 1;
                let data_start = header_end + pad4(header_end);
                assert_eq!(data_start % 4, 0);
                assert!(bytes[header_end..data_start].iter().all(|&b| b == 0));
                assert_eq!(&bytes[data_start..data_start + data_len], &data[..]);
                let next = data_start + data_len + pad4(data_len);
                assert!(bytes[data_start + data_len..next].iter().all(|&b| b == 0));
                assert_eq!(
                    &bytes[next..next + 6],
                    MAGIC,
                    "name {name_len} data {data_len}"
                );
                let entries = parse(&bytes);
                assert_eq!(entries[0].data, data);
                assert_eq!(entries[1].name, "d");
            }
        }
    }

    #[test]
    fn trailer_ends_the_archive() {
        let bytes = archive(|_| {});
        let entries = parse(&bytes);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "TRAILER!!!");
        assert_eq!(entries[0].nlink, 1);
        assert_eq!(entries[0].mode, 0);
    }

    #[test]
    fn round_trip_of_every_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join("blob");
        std::fs::write(&host, b"from the host").expect("write");
        let bytes = archive(|w| {
            w.dir("dev", 0o755).expect("dir");
            w.char_device("dev/console", 0o600, 5, 1).expect("chr");
            w.file("etc", 0o644, b"x").expect("file");
            w.file_from_host("init", 0o755, &host).expect("host file");
            w.symlink("sbin", "bin").expect("symlink");
        });
        let entries = parse(&bytes);
        let e = |name: &str, ino, mode, nlink, rdev, data: &[u8]| Entry {
            name: name.to_owned(),
            ino,
            mode,
            uid: 0,
            gid: 0,
            nlink,
            mtime: 1_700_000_000,
            rdev,
            data: data.to_vec(),
        };
        assert_eq!(
            entries,
            vec![
                e("dev", 1, 0o040_755, 2, (0, 0), b""),
                e("dev/console", 2, 0o020_600, 1, (5, 1), b""),
                e("etc", 3, 0o100_644, 1, (0, 0), b"x"),
                e("init", 4, 0o100_755, 1, (0, 0), b"from the host"),
                e("sbin", 5, 0o120_777, 1, (0, 0), b"bin"),
                e("TRAILER!!!", 0, 0, 1, (0, 0), b""),
            ]
        );
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new(Vec::new(), 0);
        assert!(matches!(w.dir("", 0o755), Err(CpioError::BadName { .. })));
        assert!(matches!(
            w.dir("a\0b", 0o755),
            Err(CpioError::BadName { .. })
        ));
    }

    #[test]
    fn gnu_cpio_lists_the_archive() {
        let cpio = Path::new("/usr/bin/cpio");
        if !cpio.exists() {
            eprintln!("skipped: /usr/bin/cpio is not installed (apt-get install cpio)");
            return;
        }
        let bytes = archive(|w| {
            w.dir("dev", 0o755).expect("dir");
            w.char_device("dev/console", 0o600, 5, 1).expect("chr");
            w.file("init", 0o755, b"#!/bin/sh\n").expect("file");
            w.symlink("sbin", "bin").expect("symlink");
        });
        let mut child = std::process::Command::new(cpio)
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cpio");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&bytes)
            .expect("feed cpio");
        let out = child.wait_with_output().expect("cpio output");
        assert!(out.status.success(), "cpio -t failed: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "dev\ndev/console\ninit\nsbin\n"
        );
    }
}
