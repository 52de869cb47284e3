//! The serial console: every line berth or a container prints, stamped with
//! the time since boot, through a bounded queue that never blocks PID 1.
//!
//! The console is opened `O_NONBLOCK`; a write the tty cannot take now
//! stays queued and the main loop retries when `poll` reports the fd
//! writable. When the queue is full, new lines are dropped and counted per
//! source, and once there is room again a line says how many were not shown
//! (`… 37 lines from web not shown`), so nothing disappears silently.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Bytes the queue may hold before lines are dropped.
const QUEUE_LIMIT: usize = 256 * 1024;

/// Length of [`stamp`]'s output for uptimes under 100000 s.
const STAMP_LEN: usize = 12;

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

/// The queue and the open console.
#[derive(Debug)]
pub struct Console {
    out: Option<File>,
    queue: VecDeque<u8>,
    dropped: BTreeMap<String, u64>,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    out: None,
    queue: VecDeque::new(),
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
        // A full queue drops the line before it costs a format or a write:
        // under a flood this is most lines.
        if self.queue.len() + STAMP_LEN + source.len() + text.len() + 4 > QUEUE_LIMIT {
            self.count_dropped(source);
            return;
        }
        let t = uptime();
        let line = format!("{}{source} | {text}\n", stamp(t));
        if self.enqueue(source, line.as_bytes()) {
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

    /// Queues `bytes`; false when the queue had no room and the line was
    /// counted as dropped.
    fn enqueue(&mut self, source: &str, bytes: &[u8]) -> bool {
        if self.queue.len() + bytes.len() > QUEUE_LIMIT {
            self.count_dropped(source);
            return false;
        }
        if !self.dropped.is_empty() && self.queue.len() + bytes.len() <= QUEUE_LIMIT / 2 {
            self.report_dropped();
        }
        self.queue.extend(bytes);
        true
    }

    fn report_dropped(&mut self) {
        let t = uptime();
        for (source, n) in std::mem::take(&mut self.dropped) {
            let s = if n == 1 { "" } else { "s" };
            let line = format!(
                "{}berth | … {n} line{s} from {source} not shown (console too slow)\n",
                stamp(t)
            );
            self.queue.extend(line.as_bytes());
        }
    }

    /// Writes as much of the queue as the console takes now.
    pub fn flush(&mut self) {
        let Some(out) = self.out.as_mut() else { return };
        while !self.queue.is_empty() {
            let (a, _) = self.queue.as_slices();
            match out.write(a) {
                Ok(0) => break,
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock: the tty buffer is full, the loop polls for
                // POLLOUT. Other errors: nothing better to do than retry.
                Err(_) => break,
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

    #[test]
    fn stamp_is_kernel_style() {
        assert_eq!(stamp(Duration::from_millis(12_345)), "[   12.345] ");
        assert_eq!(stamp(Duration::from_millis(5)), "[    0.005] ");
        assert_eq!(stamp(Duration::from_secs(123_456)), "[123456.000] ");
    }

    #[test]
    fn full_queue_counts_and_reports_dropped_lines() {
        let mut c = Console {
            out: None,
            queue: VecDeque::new(),
            dropped: BTreeMap::new(),
        };
        let line = vec![b'x'; 1000];
        for _ in 0..300 {
            c.enqueue("web", &line);
        }
        assert_eq!(c.queue.len(), 262_000);
        assert_eq!(c.dropped.get("web"), Some(&38));
        c.queue.clear();
        c.enqueue("db", b"next\n");
        let text = String::from_utf8(c.queue.iter().copied().collect()).expect("utf8");
        assert!(text.contains("… 38 lines from web not shown"), "{text}");
        assert!(text.ends_with("next\n"));
        assert!(c.dropped.is_empty());
    }
}
