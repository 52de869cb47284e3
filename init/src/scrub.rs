//! The dm-verity scrub: read the whole verified root once, in the
//! background, so a corrupted block is found and reported now rather than
//! the day a container first touches that file.
//!
//! dm-verity checks blocks only when they are read, so corruption in a
//! file nobody opens stays hidden. After boot PID 1 starts one child
//! ([`Scrub::start`]) that puts itself in the idle I/O class
//! (`ioprio_set(IOPRIO_CLASS_IDLE)`), reads the device from start to end in
//! 1 MiB chunks with `O_DIRECT` (so the page cache cannot answer for the
//! disk), and on an error re-reads that chunk 4 KiB block by block to name
//! the first bad block ([`scan`]). It writes one line to a pipe ([`Finding`]
//! encoded by [`encode`]) and `_exit`s. PID 1 never blocks on it: the main
//! loop polls [`Scrub::fd`], calls [`Scrub::on_readable`] when it is
//! readable and [`Scrub::on_exit`] when it reaps the child; whichever sees
//! the line first returns the [`ScrubResult`], exactly once.
//!
//! The child is forked from PID 1 (`sys::fork_scrub`), so everything it
//! needs (the open device, its size, an aligned buffer, the pipe) is made
//! before the fork, and [`child_main`] allocates nothing.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_supervisor::exit::{signal_name, ExitStatus};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// Bytes read at a time.
pub const CHUNK: usize = 1 << 20;
/// The verity data block; `O_DIRECT` reads are aligned to it.
pub const BLOCK: usize = 4096;
/// Longest encoded line.
const LINE_MAX: usize = 96;

/// What the child found, as it travels over the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Every byte read back.
    Clean { bytes: u64, nanos: u64 },
    /// The first unreadable block: EIO is what dm-verity returns for a
    /// block whose hash does not match.
    Bad { offset: u64, errno: i32, nanos: u64 },
}

/// `pread`: fills the buffer from the offset, returns the count or an
/// errno.
pub type ReadAt<'a> = dyn FnMut(&mut [u8], u64) -> Result<usize, i32> + 'a;

/// The outcome of [`scan`], before timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    Clean { bytes: u64 },
    Bad { offset: u64, errno: i32 },
}

/// Reads `size` bytes through `read_at(buf, offset)` in chunks of
/// `buf.len()` (a multiple of [`BLOCK`]), each read a whole number of
/// blocks. After a failed chunk the chunk
/// is read again block by block and the first failing block is reported;
/// if every block reads on the retry, the scan goes on. A device that ends
/// early (a read of 0) counts as clean up to where it ended.
pub fn scan(size: u64, buf: &mut [u8], read_at: &mut ReadAt<'_>) -> Scan {
    let mut offset = 0u64;
    while offset < size {
        // Whole blocks even for a ragged end, as O_DIRECT requires; the
        // read itself stops at the end of the device.
        let left = usize::try_from(size - offset).unwrap_or(usize::MAX);
        let want = buf.len().min(left.next_multiple_of(BLOCK));
        match read_full(&mut buf[..want], offset, read_at) {
            Ok(0) => break,
            Ok(n) => offset += n.min(left) as u64,
            Err(_) => {
                for block in (0..want).step_by(BLOCK) {
                    let at = offset + block as u64;
                    if let Err(errno) = read_full(&mut buf[..BLOCK], at, read_at) {
                        return Scan::Bad { offset: at, errno };
                    }
                }
                offset += want.min(left) as u64;
            }
        }
    }
    Scan::Clean { bytes: offset }
}

/// Fills `buf` from `offset` unless the device ends first; the count read.
fn read_full(buf: &mut [u8], offset: u64, read_at: &mut ReadAt<'_>) -> Result<usize, i32> {
    let mut done = 0;
    while done < buf.len() {
        match read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e == libc::EINTR => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A fixed buffer `fmt::Write` fills without allocating.
struct LineBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for LineBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The finding as one line (`clean BYTES NANOS` or `bad OFFSET ERRNO
/// NANOS`) in `out`; its length. Allocates nothing: it runs in the child.
pub fn encode(f: &Finding, out: &mut [u8; LINE_MAX]) -> usize {
    use std::fmt::Write;
    let mut w = LineBuf { buf: out, len: 0 };
    // Three u64s and a word always fit in LINE_MAX.
    let _ = match *f {
        Finding::Clean { bytes, nanos } => writeln!(w, "clean {bytes} {nanos}"),
        Finding::Bad {
            offset,
            errno,
            nanos,
        } => writeln!(w, "bad {offset} {errno} {nanos}"),
    };
    w.len
}

/// The inverse of [`encode`]; `None` for anything else.
pub fn decode(line: &str) -> Option<Finding> {
    let mut words = line.trim_end_matches('\n').split(' ');
    let finding = match words.next()? {
        "clean" => Finding::Clean {
            bytes: words.next()?.parse().ok()?,
            nanos: words.next()?.parse().ok()?,
        },
        "bad" => Finding::Bad {
            offset: words.next()?.parse().ok()?,
            errno: words.next()?.parse().ok()?,
            nanos: words.next()?.parse().ok()?,
        },
        _ => return None,
    };
    words.next().is_none().then_some(finding)
}

/// The child's whole life after the fork: idle I/O class, [`scan`] with
/// `pread`, one line to `report`. Returns the exit status (0 clean, 1
/// bad). No allocation.
pub fn child_main(
    device: BorrowedFd<'_>,
    size: u64,
    buf: &mut [u8],
    report: BorrowedFd<'_>,
) -> i32 {
    // Best effort: without it the scrub merely competes for the disk.
    let _ = crate::sys::ioprio_set_idle();
    let now = || {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(Duration::from)
            .unwrap_or_default()
    };
    let start = now();
    let result = scan(size, buf, &mut |b, off| {
        let off = i64::try_from(off).map_err(|_| libc::EOVERFLOW)?;
        nix::sys::uio::pread(device, b, off).map_err(|e| e as i32)
    });
    let nanos = u64::try_from(now().saturating_sub(start).as_nanos()).unwrap_or(u64::MAX);
    let (finding, code) = match result {
        Scan::Clean { bytes } => (Finding::Clean { bytes, nanos }, 0),
        Scan::Bad { offset, errno } => (
            Finding::Bad {
                offset,
                errno,
                nanos,
            },
            1,
        ),
    };
    let mut line = [0u8; LINE_MAX];
    let len = encode(&finding, &mut line);
    let mut sent = 0;
    while sent < len {
        match nix::unistd::write(report, &line[sent..len]) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(_) => return 2,
        }
    }
    code
}

/// What a scrub found, for the console and `berth status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScrubResult {
    /// Every block verified.
    Clean {
        device: PathBuf,
        bytes: u64,
        elapsed: Duration,
    },
    /// The first block that failed to read; `error` is EIO for a block
    /// dm-verity rejected (the kernel logs `data block N is corrupted`).
    Corrupt {
        device: PathBuf,
        block: u64,
        offset: u64,
        error: Errno,
        elapsed: Duration,
    },
    /// The scrub ended without a verdict (the child was killed, or said
    /// something unreadable).
    Failed { device: PathBuf, reason: String },
}

impl ScrubResult {
    fn from_finding(device: &Path, f: Finding) -> ScrubResult {
        let device = device.to_owned();
        match f {
            Finding::Clean { bytes, nanos } => ScrubResult::Clean {
                device,
                bytes,
                elapsed: Duration::from_nanos(nanos),
            },
            Finding::Bad {
                offset,
                errno,
                nanos,
            } => ScrubResult::Corrupt {
                device,
                block: offset / BLOCK as u64,
                offset,
                error: Errno::from_raw(errno),
                elapsed: Duration::from_nanos(nanos),
            },
        }
    }

    /// Whether corruption (or a failed read) was found.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, ScrubResult::Corrupt { .. })
    }
}

impl fmt::Display for ScrubResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScrubResult::Clean {
                device,
                bytes,
                elapsed,
            } => write!(
                f,
                "dm-verity scrub of {}: {:.1} MiB verified in {:.1} s, no corruption",
                device.display(),
                *bytes as f64 / (1024.0 * 1024.0),
                elapsed.as_secs_f64()
            ),
            ScrubResult::Corrupt {
                device,
                block,
                offset,
                error,
                ..
            } => write!(
                f,
                "dm-verity scrub of {}: CORRUPT block {block} (offset {offset}): {}",
                device.display(),
                std::io::Error::from(*error)
            ),
            ScrubResult::Failed { device, reason } => {
                write!(
                    f,
                    "dm-verity scrub of {} failed: {reason}",
                    device.display()
                )
            }
        }
    }
}

/// Starting a scrub failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    #[error("open {device} for the dm-verity scrub")]
    Open {
        device: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("find the size of {device}")]
    Size {
        device: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("make the scrub's result pipe")]
    Pipe(#[source] nix::Error),
    #[error("fork the scrub of {device}")]
    Fork {
        device: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running scrub, owned by PID 1's main loop.
#[derive(Debug)]
pub struct Scrub {
    pid: Pid,
    device: PathBuf,
    /// Read end, non-blocking; `None` once it reached end of file.
    pipe: Option<OwnedFd>,
    line: Vec<u8>,
    delivered: bool,
}

impl Scrub {
    /// Opens `device` (`O_DIRECT`, or buffered where that is refused),
    /// forks the reading child and returns at once.
    pub fn start(device: &Path) -> Result<Scrub, ScrubError> {
        let open = |flags: libc::c_int| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags | libc::O_CLOEXEC)
                .open(device)
        };
        let file = open(libc::O_DIRECT)
            .or_else(|_| open(0))
            .map_err(|source| ScrubError::Open {
                device: device.to_owned(),
                source,
            })?;
        let size = (&file)
            .seek(SeekFrom::End(0))
            .map_err(|source| ScrubError::Size {
                device: device.to_owned(),
                source,
            })?;
        let (read_end, write_end) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(ScrubError::Pipe)?;
        // O_DIRECT wants a block-aligned buffer: over-allocate and slice.
        let mut storage = vec![0u8; CHUNK + BLOCK];
        let skip = storage.as_ptr().align_offset(BLOCK).min(BLOCK);
        let buf = &mut storage[skip..skip + CHUNK];
        let pid = crate::sys::fork_scrub(file.as_fd(), size, buf, write_end.as_fd()).map_err(
            |source| ScrubError::Fork {
                device: device.to_owned(),
                source,
            },
        )?;
        log::info!(
            "dm-verity scrub of {} started (pid {pid}, {:.1} MiB, idle I/O priority)",
            device.display(),
            size as f64 / (1024.0 * 1024.0)
        );
        Ok(Scrub {
            pid,
            device: device.to_owned(),
            pipe: Some(read_end),
            line: Vec::new(),
            delivered: false,
        })
    }

    /// The child, for routing its exit to [`Scrub::on_exit`].
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Poll this for reading while it is `Some`; `None` after end of file.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(|p| p.as_fd())
    }

    /// Reads what the pipe holds; the result once the line is complete.
    pub fn on_readable(&mut self) -> Option<ScrubResult> {
        self.drain();
        self.take_line()
    }

    /// The child was reaped: the result if not yet returned, read from the
    /// pipe or, without a line, saying how the child ended.
    pub fn on_exit(&mut self, status: WaitStatus) -> Option<ScrubResult> {
        self.drain();
        self.pipe = None;
        if let Some(result) = self.take_line() {
            return Some(result);
        }
        if self.delivered {
            return None;
        }
        self.delivered = true;
        let how = match ExitStatus::from_wait(status) {
            Some(ExitStatus::Code(code)) => format!("exited with code {code}"),
            Some(ExitStatus::Signal { signal, .. }) => {
                format!("was killed by {}", signal_name(signal))
            }
            None => format!("ended ({status:?})"),
        };
        Some(ScrubResult::Failed {
            device: self.device.clone(),
            reason: format!("the scrub process {how} without a result"),
        })
    }

    fn drain(&mut self) {
        let Some(pipe) = &self.pipe else { return };
        let mut file = std::fs::File::from(match pipe.try_clone() {
            Ok(fd) => fd,
            Err(_) => return,
        });
        let mut chunk = [0u8; 128];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) if self.line.len() < 4 * LINE_MAX => self.line.extend_from_slice(&chunk[..n]),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn take_line(&mut self) -> Option<ScrubResult> {
        if self.delivered || !self.line.ends_with(b"\n") {
            return None;
        }
        self.delivered = true;
        let text = String::from_utf8_lossy(&self.line).into_owned();
        Some(match decode(&text) {
            Some(f) => ScrubResult::from_finding(&self.device, f),
            None => ScrubResult::Failed {
                device: self.device.clone(),
                reason: format!("unreadable result {:?}", text.trim_end()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device of `size` bytes whose blocks in `bad` fail with EIO; counts
    /// the reads.
    fn device(size: u64, bad: &[u64]) -> impl FnMut(&mut [u8], u64) -> Result<usize, i32> + '_ {
        move |buf, off| {
            if off >= size {
                return Ok(0);
            }
            let len = (buf.len() as u64).min(size - off);
            let first = off / BLOCK as u64;
            let last = (off + len - 1) / BLOCK as u64;
            if bad.iter().any(|b| (first..=last).contains(b)) {
                return Err(libc::EIO);
            }
            Ok(len as usize)
        }
    }

    #[test]
    fn scan_table() {
        let mib = CHUNK as u64;
        let cases: Vec<(&str, u64, Vec<u64>, Scan)> = vec![
            ("empty", 0, vec![], Scan::Clean { bytes: 0 }),
            ("one chunk", mib, vec![], Scan::Clean { bytes: mib }),
            (
                "chunks and a tail",
                3 * mib + 8192,
                vec![],
                Scan::Clean {
                    bytes: 3 * mib + 8192,
                },
            ),
            (
                "first block",
                mib,
                vec![0],
                Scan::Bad {
                    offset: 0,
                    errno: libc::EIO,
                },
            ),
            (
                "block in the third chunk",
                4 * mib,
                vec![2 * 256 + 17, 3 * 256],
                Scan::Bad {
                    offset: (2 * 256 + 17) * 4096,
                    errno: libc::EIO,
                },
            ),
            (
                "last block of the tail",
                mib + 8192,
                vec![257],
                Scan::Bad {
                    offset: 257 * 4096,
                    errno: libc::EIO,
                },
            ),
        ];
        let mut buf = vec![0u8; CHUNK];
        for (name, size, bad, want) in cases {
            let mut dev = device(size, &bad);
            assert_eq!(scan(size, &mut buf, &mut dev), want, "{name}");
        }
    }

    #[test]
    fn scan_stops_at_a_short_device_and_retries_short_reads() {
        let mut buf = vec![0u8; CHUNK];
        let mut dev = device(8192, &[]);
        assert_eq!(
            scan(CHUNK as u64, &mut buf, &mut dev),
            Scan::Clean { bytes: 8192 }
        );
        // A device that hands out one block per read, with an EINTR first.
        let mut calls = 0;
        let mut dribble = |b: &mut [u8], _off: u64| {
            calls += 1;
            if calls == 1 {
                Err(libc::EINTR)
            } else {
                Ok(b.len().min(BLOCK))
            }
        };
        assert_eq!(
            scan(3 * BLOCK as u64, &mut buf, &mut dribble),
            Scan::Clean {
                bytes: 3 * BLOCK as u64
            }
        );
    }

    #[test]
    fn a_chunk_that_reads_on_retry_is_passed() {
        let mut buf = vec![0u8; CHUNK];
        let mut first = true;
        let mut flaky = |b: &mut [u8], _off: u64| {
            if std::mem::take(&mut first) {
                Err(libc::EIO)
            } else {
                Ok(b.len())
            }
        };
        assert_eq!(
            scan(2 * CHUNK as u64, &mut buf, &mut flaky),
            Scan::Clean {
                bytes: 2 * CHUNK as u64
            }
        );
    }

    #[test]
    fn line_encoding_round_trips() {
        let table = [
            (
                Finding::Clean {
                    bytes: 8_703_180,
                    nanos: 1_234_567_890,
                },
                "clean 8703180 1234567890\n",
            ),
            (
                Finding::Bad {
                    offset: 503_808,
                    errno: 5,
                    nanos: 7,
                },
                "bad 503808 5 7\n",
            ),
            (
                Finding::Bad {
                    offset: u64::MAX,
                    errno: i32::MIN,
                    nanos: u64::MAX,
                },
                "bad 18446744073709551615 -2147483648 18446744073709551615\n",
            ),
        ];
        for (finding, line) in table {
            let mut out = [0u8; LINE_MAX];
            let n = encode(&finding, &mut out);
            assert_eq!(std::str::from_utf8(&out[..n]), Ok(line));
            assert_eq!(decode(line), Some(finding), "{line:?}");
        }
    }

    #[test]
    fn decode_rejects_garbage() {
        for bad in [
            "",
            "clean",
            "clean 1",
            "clean 1 2 3",
            "bad 1 2",
            "dirty 1 2",
            "clean x 2",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn console_lines() {
        let dev = PathBuf::from("/dev/dm-0");
        let clean = ScrubResult::from_finding(
            &dev,
            Finding::Clean {
                bytes: 8_703_180,
                nanos: 1_200_000_000,
            },
        );
        assert_eq!(
            clean.to_string(),
            "dm-verity scrub of /dev/dm-0: 8.3 MiB verified in 1.2 s, no corruption"
        );
        let bad = ScrubResult::from_finding(
            &dev,
            Finding::Bad {
                offset: 503_808,
                errno: libc::EIO,
                nanos: 1,
            },
        );
        assert!(bad.is_corrupt());
        assert_eq!(
            bad.to_string(),
            "dm-verity scrub of /dev/dm-0: CORRUPT block 123 (offset 503808): Input/output error (os error 5)"
        );
        let failed = ScrubResult::Failed {
            device: dev,
            reason: "the scrub process was killed by SIGKILL without a result".into(),
        };
        assert_eq!(
            failed.to_string(),
            "dm-verity scrub of /dev/dm-0 failed: the scrub process was killed by SIGKILL without a result"
        );
    }

    /// Forks a real child over a temporary file: the result arrives once,
    /// through `on_readable` or `on_exit`, whichever comes first.
    #[test]
    fn scrub_a_file() {
        let tmp = tempfile::NamedTempFile::new().expect("tempfile");
        std::fs::write(tmp.path(), vec![7u8; 3 * BLOCK + 100]).expect("write");
        let mut scrub = Scrub::start(tmp.path()).expect("start");
        let mut results = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while scrub.fd().is_some() && std::time::Instant::now() < deadline {
            results.extend(scrub.on_readable());
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = nix::sys::wait::waitpid(scrub.pid(), None).expect("wait");
        results.extend(scrub.on_exit(status));
        assert_eq!(results.len(), 1, "{results:?}");
        match &results[0] {
            ScrubResult::Clean { bytes, device, .. } => {
                assert_eq!(*bytes, 3 * BLOCK as u64 + 100);
                assert_eq!(device, tmp.path());
            }
            other => panic!("{other}"),
        }
        assert_eq!(scrub.on_exit(status), None);
    }
}
