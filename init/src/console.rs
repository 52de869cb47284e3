//! The serial console: every line berth or a container prints, stamped with
//! the time since boot, through a bounded queue that never blocks PID 1.
//!
//! The console is opened `O_NONBLOCK`; a write the tty cannot take now
//! stays queued and the main loop retries when `poll` reports the fd
//! writable. The queue is fair between sources: when it is full, a line
//! from the source holding the most of it is dropped, and a line from any
//! other source takes the place of that source's oldest queued line. So a
//! container that floods the console loses its own lines, never a quiet
//! neighbour's. Every dropped line is counted per source, and once there
//! is room again a line says how many were not shown (`… 37 lines from web
//! not shown`), so nothing disappears silently.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, IoSlice, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Bytes the queue may hold before lines are dropped.
const QUEUE_LIMIT: usize = 256 * 1024;

/// Length of [`stamp`]'s output for uptimes under 100000 s.
const STAMP_LEN: usize = 12;

/// Lines handed to one `writev`.
const WRITE_BATCH: usize = 64;

/// Time since boot (CLOCK_BOOTTIME, the clock the kernel's own log uses
/// across suspend too).
pub fn uptime() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default()
}

/// `[  12.345] ` as the kernel prints it.
pub fn stamp(t: Duration) -> String {
    format!("[{:5}.{:03}] ", t.as_secs(), t.subsec_millis())
}

/// Writes one `berth` line straight to a fresh console descriptor,
/// blocking, bypassing the queue: for the last words of a panic or fatal
/// error, when the queue's lock may be held by the failed code.
pub fn emergency(text: &str) {
    let line = format!("{}berth | {text}\n", stamp(uptime()));
    if let Ok(mut f) = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/console")
    {
        let _ = f.write_all(line.as_bytes());
    } else {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// Drains the queue if nobody holds it.
pub fn try_drain(limit: Duration) {
    match CONSOLE.try_lock() {
        Ok(mut c) => c.drain(limit),
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().drain(limit),
        Err(std::sync::TryLockError::WouldBlock) => {}
    }
}

/// One queued line and the source it counts against.
#[derive(Debug)]
struct Queued {
    source: String,
    bytes: Vec<u8>,
}

/// The queue and the open console.
#[derive(Debug)]
pub struct Console {
    out: Option<File>,
    queue: VecDeque<Queued>,
    /// Bytes of the front line already written.
    written: usize,
    /// Bytes queued, in all and per source.
    queued: usize,
    by_source: BTreeMap<String, usize>,
    dropped: BTreeMap<String, u64>,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    out: None,
    queue: VecDeque::new(),
    written: 0,
    queued: 0,
    by_source: BTreeMap::new(),
    dropped: BTreeMap::new(),
});

/// The process-wide console. A poisoned lock (a panic while logging) is
/// still usable: the queue is plain bytes.
pub fn console() -> MutexGuard<'static, Console> {
    CONSOLE.lock().unwrap_or_else(|p| p.into_inner())
}

impl Console {
    /// Opens `/dev/console` for non-blocking writes. Before devtmpfs is
    /// mounted it may not exist; lines then wait in the queue.
    pub fn open(&mut self) {
        if self.out.is_some() {
            return;
        }
        self.out = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/console")
            .ok();
    }

    /// Queues one line from `source` (already formatted, without stamp).
    pub fn line(&mut self, source: &str, text: &str) {
        let len = STAMP_LEN + source.len() + text.len() + 4;
        // The biggest source's line is dropped before it costs a format:
        // under a flood this is most lines.
        if self.queued + len > QUEUE_LIMIT && self.is_biggest(source) {
            self.count_dropped(source);
            return;
        }
        let line = format!("{}{source} | {text}\n", stamp(uptime()));
        if self.enqueue(source, line.into_bytes()) {
            self.flush();
        }
    }

    fn count_dropped(&mut self, source: &str) {
        match self.dropped.get_mut(source) {
            Some(n) => *n += 1,
            None => {
                self.dropped.insert(source.to_owned(), 1);
            }
        }
    }

    /// Whether `source` holds at least as much of the queue as any other.
    fn is_biggest(&self, source: &str) -> bool {
        let mine = self.by_source.get(source).copied().unwrap_or(0);
        self.by_source.values().all(|n| *n <= mine)
    }

    /// The source holding the most of the queue.
    fn biggest(&self) -> Option<String> {
        self.by_source
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(s, _)| s.clone())
    }

    /// Queues `bytes`, making room by evicting the biggest other source's
    /// oldest lines; false when the line itself was dropped (its source is
    /// the biggest, or nothing can be evicted).
    fn enqueue(&mut self, source: &str, bytes: Vec<u8>) -> bool {
        while self.queued + bytes.len() > QUEUE_LIMIT {
            let victim = match self.biggest() {
                Some(v) if v != source && !self.is_biggest(source) => v,
                _ => {
                    self.count_dropped(source);
                    return false;
                }
            };
            // Never the front line once part of it is written.
            let skip = usize::from(self.written > 0);
            let Some(k) = self
                .queue
                .iter()
                .skip(skip)
                .position(|q| q.source == victim)
                .map(|k| k + skip)
            else {
                self.count_dropped(source);
                return false;
            };
            if let Some(old) = self.queue.remove(k) {
                self.forget(&old);
                self.count_dropped(&old.source);
            }
        }
        if !self.dropped.is_empty() && self.queued + bytes.len() <= QUEUE_LIMIT / 2 {
            self.report_dropped();
        }
        self.push(source.to_owned(), bytes);
        true
    }

    fn push(&mut self, source: String, bytes: Vec<u8>) {
        self.queued += bytes.len();
        *self.by_source.entry(source.clone()).or_default() += bytes.len();
        self.queue.push_back(Queued { source, bytes });
    }

    /// Takes a line that left the queue off the byte counts.
    fn forget(&mut self, line: &Queued) {
        forget(&mut self.queued, &mut self.by_source, line);
    }

    fn report_dropped(&mut self) {
        let t = uptime();
        for (source, n) in std::mem::take(&mut self.dropped) {
            let s = if n == 1 { "" } else { "s" };
            let line = format!(
                "{}berth | … {n} line{s} from {source} not shown (console too slow)\n",
                stamp(t)
            );
            self.push("berth".to_owned(), line.into_bytes());
        }
    }

    /// Writes as much of the queue as the console takes now.
    pub fn flush(&mut self) {
        let Some(out) = self.out.as_mut() else { return };
        while !self.queue.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .queue
                .iter()
                .take(WRITE_BATCH)
                .enumerate()
                .map(|(k, q)| {
                    IoSlice::new(if k == 0 {
                        &q.bytes[self.written..]
                    } else {
                        &q.bytes
                    })
                })
                .collect();
            let mut n = match out.write_vectored(&slices) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock: the tty buffer is full, the loop polls for
                // POLLOUT. Other errors: nothing better to do than retry.
                Err(_) => break,
            };
            while n > 0 {
                let Some(front) = self.queue.front() else {
                    break;
                };
                let rest = front.bytes.len() - self.written;
                if n < rest {
                    self.written += n;
                    break;
                }
                n -= rest;
                self.written = 0;
                if let Some(done) = self.queue.pop_front() {
                    forget(&mut self.queued, &mut self.by_source, &done);
                }
            }
        }
        if self.queue.is_empty() && !self.dropped.is_empty() {
            self.report_dropped();
        }
    }

    /// Waits (up to `limit`) until everything queued is written: before an
    /// `exec` or a reboot, when nothing else needs PID 1.
    pub fn drain(&mut self, limit: Duration) {
        let deadline = uptime() + limit;
        self.flush();
        while !self.queue.is_empty() && uptime() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            self.flush();
        }
    }

    /// Whether lines wait for the console to become writable.
    pub fn pending(&self) -> bool {
        !self.queue.is_empty() && self.out.is_some()
    }

    /// The console fd, for polling POLLOUT.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.out.as_ref().map(|f| f.as_fd())
    }
}

/// Takes a line that left the queue off the byte counts (a free function:
/// `flush` holds the console file borrowed meanwhile).
fn forget(queued: &mut usize, by_source: &mut BTreeMap<String, usize>, line: &Queued) {
    *queued -= line.bytes.len();
    if let Some(n) = by_source.get_mut(&line.source) {
        *n -= line.bytes.len();
        if *n == 0 {
            by_source.remove(&line.source);
        }
    }
}

/// The `log` backend: berth's own records go to the console as `berth`
/// lines and, best effort, to the kernel log.
#[derive(Debug)]
struct Logger {
    kmsg: Mutex<Option<File>>,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = match record.level() {
            log::Level::Error => format!("error: {}", record.args()),
            log::Level::Warn => format!("warning: {}", record.args()),
            _ => record.args().to_string(),
        };
        console().line("berth", &text);
        let mut kmsg = self.kmsg.lock().unwrap_or_else(|p| p.into_inner());
        if kmsg.is_none() {
            *kmsg = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open("/dev/kmsg")
                .ok();
        }
        if let Some(k) = kmsg.as_mut() {
            // Priority 6 (info): kept in the kernel log, not echoed to the
            // console a second time under `quiet`.
            // One write is one record: format first (writeln! may split a
            // line into several writes, each its own kernel record).
            let _ = k.write_all(format!("<6>berth: {text}\n").as_bytes());
        }
    }

    fn flush(&self) {
        console().flush();
    }
}

static LOGGER: Logger = Logger {
    kmsg: Mutex::new(None),
};

/// Installs the console logger; `debug` lowers the level to Debug.
pub fn init_logging(debug: bool) {
    // Only fails when a logger is already set, as after an exec it is not.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Console {
        Console {
            out: None,
            queue: VecDeque::new(),
            written: 0,
            queued: 0,
            by_source: BTreeMap::new(),
            dropped: BTreeMap::new(),
        }
    }

    fn text(c: &Console) -> String {
        let bytes: Vec<u8> = c.queue.iter().flat_map(|q| q.bytes.clone()).collect();
        String::from_utf8(bytes).expect("utf8")
    }

    #[test]
    fn stamp_is_kernel_style() {
        assert_eq!(stamp(Duration::from_millis(12_345)), "[   12.345] ");
        assert_eq!(stamp(Duration::from_millis(5)), "[    0.005] ");
        assert_eq!(stamp(Duration::from_secs(123_456)), "[123456.000] ");
    }

    #[test]
    fn full_queue_counts_and_reports_dropped_lines() {
        let mut c = empty();
        let line = vec![b'x'; 1000];
        for _ in 0..300 {
            c.enqueue("web", line.clone());
        }
        assert_eq!(c.queued, 262_000);
        assert_eq!(c.dropped.get("web"), Some(&38));
        c.queue.clear();
        c.queued = 0;
        c.by_source.clear();
        c.enqueue("db", b"next\n".to_vec());
        let text = text(&c);
        assert!(text.contains("… 38 lines from web not shown"), "{text}");
        assert!(text.ends_with("next\n"));
        assert!(c.dropped.is_empty());
    }

    #[test]
    fn a_flood_loses_its_own_lines_not_a_neighbours() {
        let mut c = empty();
        // The flood fills the queue to the brim.
        for _ in 0..600 {
            c.line("flood", &"y".repeat(500));
        }
        assert!(c.queued <= QUEUE_LIMIT);
        let dropped_before = c.dropped.get("flood").copied().unwrap_or(0);
        assert!(dropped_before > 0);
        // A quiet neighbour's lines still get in, each in place of one of
        // the flood's oldest.
        for i in 0..10 {
            c.line("bystander", &format!("tick {i}"));
            c.line("flood", &"y".repeat(500));
        }
        let text = text(&c);
        for i in 0..10 {
            assert!(
                text.contains(&format!("bystander | tick {i}\n")),
                "tick {i}"
            );
        }
        assert!(c.queued <= QUEUE_LIMIT);
        assert!(c.dropped.get("flood").copied().unwrap_or(0) > dropped_before + 10);
        assert!(!c.dropped.contains_key("bystander"));
        // The byte counts match the queue.
        let sum: usize = c.queue.iter().map(|q| q.bytes.len()).sum();
        assert_eq!(sum, c.queued);
        assert_eq!(c.by_source.values().sum::<usize>(), c.queued);
    }
}
