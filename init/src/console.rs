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
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Bytes the queue may hold before lines are dropped.
const QUEUE_LIMIT: usize = 256 * 1024;

/// Length of [`stamp`]'s output for uptimes under 100000 s.
const STAMP_LEN: usize = 12;

/// Lines handed to one `writev`.
const WRITE_BATCH: usize = 64;

/// Bytes one [`Console::flush`] writes at most. An emulated UART takes
/// bytes as fast as the CPU can push them (under QEMU's TCG about a
/// microsecond each, in PID 1's time), so a console that "keeps up" with a
/// flood would spend the loop's whole turn on it; the cap bounds that, and
/// what the console cannot take in time is dropped, fairly and counted.
const FLUSH_BYTES: usize = 16 * 1024;

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

/// One queued line and the source it counts against. An evicted line stays
/// in place, `dead` and empty, until it reaches the front: eviction is then
/// O(1) and the queue keeps the order lines arrived in.
#[derive(Debug)]
struct Queued {
    seq: u64,
    source: String,
    bytes: Vec<u8>,
    dead: bool,
}

/// The queue and the open console.
#[derive(Debug)]
pub struct Console {
    out: Option<File>,
    queue: VecDeque<Queued>,
    next_seq: u64,
    /// Bytes of the front line already written.
    written: usize,
    /// Bytes of live lines queued, in all and per source, and each
    /// source's live lines (sequence numbers, oldest first).
    queued: usize,
    by_source: BTreeMap<String, (usize, VecDeque<u64>)>,
    dropped: BTreeMap<String, u64>,
    /// When the last "not shown" report was queued.
    reported: Duration,
    /// Set once the supervisor loop runs: it flushes once per turn and on
    /// POLLOUT, so queuing a line does not write.
    deferred: bool,
    /// Where every queued line is also kept ([`crate::journal`]), once
    /// STATE is mounted; lines the full channel refused are counted.
    journal: Option<crate::journal::Journal>,
    /// The lines queued before that, up to [`HISTORY_LIMIT`].
    history: Vec<u8>,
}

/// Bytes of lines kept for the boot log before it is attached.
const HISTORY_LIMIT: usize = 512 * 1024;

static CONSOLE: Mutex<Console> = Mutex::new(Console::new());

/// The process-wide console. A poisoned lock (a panic while logging) is
/// still usable: the queue is plain bytes.
pub fn console() -> MutexGuard<'static, Console> {
    CONSOLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often lines dropped during a flood that keeps the queue full are
/// reported.
const REPORT_EVERY: Duration = Duration::from_secs(1);

impl Console {
    const fn new() -> Console {
        Console {
            out: None,
            queue: VecDeque::new(),
            next_seq: 0,
            written: 0,
            queued: 0,
            by_source: BTreeMap::new(),
            dropped: BTreeMap::new(),
            reported: Duration::ZERO,
            deferred: false,
            journal: None,
            history: Vec::new(),
        }
    }

    /// The lines queued so far, for the boot log to start with; lines
    /// queued from now until [`Console::attach_journal`] are kept again.
    pub fn take_history(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.history)
    }

    /// Puts `earlier` (stage 0's lines) in front of the lines kept for the
    /// boot log, within [`HISTORY_LIMIT`].
    pub fn prepend_history(&mut self, mut earlier: Vec<u8>) {
        earlier.truncate(HISTORY_LIMIT.saturating_sub(self.history.len()));
        earlier.append(&mut self.history);
        self.history = earlier;
    }

    /// From now on every queued line also goes to `tx`, first those
    /// queued since [`Console::take_history`].
    pub fn attach_journal(&mut self, journal: crate::journal::Journal) {
        let since = std::mem::take(&mut self.history);
        if !since.is_empty() && journal.tx.try_send(since).is_err() {
            journal.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.journal = Some(journal);
    }

    /// Stops handing lines to the boot log; the writer thread, returned,
    /// then writes what it has, syncs and closes the file. Join it without
    /// holding the console (it may log an error).
    pub fn detach_journal(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.journal.take().map(|j| j.writer)
    }

    /// Hands a queued line to the boot log (or keeps it until there is one).
    fn tee(&mut self, bytes: &[u8]) {
        if let Some(j) = &self.journal {
            if j.tx.try_send(bytes.to_vec()).is_err() {
                j.dropped.fetch_add(1, Ordering::Relaxed);
            }
        } else if self.history.len() + bytes.len() <= HISTORY_LIMIT {
            self.history.extend_from_slice(bytes);
        }
    }

    /// From now on lines are written by the loop's [`Console::flush`]
    /// calls only.
    pub fn defer_writes(&mut self) {
        self.deferred = true;
    }

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
        self.flush();
    }

    /// Queues one line from `source` (already formatted, without stamp).
    pub fn line(&mut self, source: &str, text: &str) {
        let len = STAMP_LEN + source.len() + text.len() + 4;
        // The biggest source's line is dropped before it costs a format:
        // under a flood this is most lines.
        if self.queued + len > QUEUE_LIMIT && self.is_biggest(source) {
            self.count_dropped(source);
            self.report_dropped(false);
            return;
        }
        let line = format!("{}{source} | {text}\n", stamp(uptime()));
        self.enqueue(source, line.into_bytes());
        self.report_dropped(false);
        // Before the loop runs, each line goes out at once; in the loop a
        // write per line would cost a system call each (under a flood, most
        // of PID 1's time).
        if !self.deferred {
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

    fn bytes_of(&self, source: &str) -> usize {
        self.by_source.get(source).map_or(0, |(n, _)| *n)
    }

    /// Whether `source` holds at least as much of the queue as any other.
    fn is_biggest(&self, source: &str) -> bool {
        let mine = self.bytes_of(source);
        self.by_source.values().all(|(n, _)| *n <= mine)
    }

    /// The source holding the most of the queue.
    fn biggest(&self) -> Option<&str> {
        self.by_source
            .iter()
            .max_by_key(|(_, (n, _))| *n)
            .map(|(s, _)| s.as_str())
    }

    /// Queues `bytes`, making room by evicting the oldest lines of the
    /// biggest other source; false when the line itself was dropped (its
    /// source is the biggest, or nothing can be evicted).
    fn enqueue(&mut self, source: &str, bytes: Vec<u8>) -> bool {
        while self.queued + bytes.len() > QUEUE_LIMIT {
            let victim = match self.biggest() {
                Some(v) if v != source && !self.is_biggest(source) => v.to_owned(),
                _ => {
                    self.count_dropped(source);
                    return false;
                }
            };
            if !self.evict_oldest(&victim) {
                self.count_dropped(source);
                return false;
            }
            self.count_dropped(&victim);
        }
        self.push(source.to_owned(), bytes);
        true
    }

    /// Marks `source`'s oldest queued line dead (never the front line once
    /// part of it is written); false when it has none to give.
    fn evict_oldest(&mut self, source: &str) -> bool {
        let Some(front_seq) = self.queue.front().map(|q| q.seq) else {
            return false;
        };
        let Some((bytes, seqs)) = self.by_source.get_mut(source) else {
            return false;
        };
        let pick = usize::from(self.written > 0 && seqs.front() == Some(&front_seq));
        let Some(seq) = seqs.remove(pick) else {
            return false;
        };
        // Sequence numbers are contiguous from the front's.
        let Some(line) = usize::try_from(seq - front_seq)
            .ok()
            .and_then(|k| self.queue.get_mut(k))
        else {
            return false;
        };
        *bytes -= line.bytes.len();
        self.queued -= line.bytes.len();
        line.dead = true;
        line.bytes = Vec::new();
        if seqs.is_empty() {
            self.by_source.remove(source);
        }
        true
    }

    fn push(&mut self, source: String, bytes: Vec<u8>) {
        self.tee(&bytes);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queued += bytes.len();
        let entry = self.by_source.entry(source.clone()).or_default();
        entry.0 += bytes.len();
        entry.1.push_back(seq);
        self.queue.push_back(Queued {
            seq,
            source,
            bytes,
            dead: false,
        });
    }

    /// Queues one "not shown" line per source that lost lines: when the
    /// queue has room again, and at least every [`REPORT_EVERY`] while a
    /// flood keeps it full (the report then takes the place of the
    /// flood's oldest lines), or always with `now`.
    fn report_dropped(&mut self, now: bool) {
        if self.dropped.is_empty() {
            return;
        }
        let t = uptime();
        let room = self.queued <= QUEUE_LIMIT / 2;
        if !(now || room || t.saturating_sub(self.reported) >= REPORT_EVERY) {
            return;
        }
        self.reported = t;
        for (source, n) in std::mem::take(&mut self.dropped) {
            let s = if n == 1 { "" } else { "s" };
            let line = format!(
                "{}berth | … {n} line{s} from {source} not shown (console too slow)\n",
                stamp(t)
            );
            self.enqueue("berth", line.into_bytes());
        }
    }

    /// Takes the front line off the queue and the counts.
    fn pop_front(&mut self) {
        let Some(done) = self.queue.pop_front() else {
            return;
        };
        self.written = 0;
        if done.dead {
            return;
        }
        self.queued -= done.bytes.len();
        if let Some((bytes, seqs)) = self.by_source.get_mut(&done.source) {
            *bytes -= done.bytes.len();
            if seqs.front() == Some(&done.seq) {
                seqs.pop_front();
            }
            if seqs.is_empty() {
                self.by_source.remove(&done.source);
            }
        }
    }

    /// Writes as much of the queue as the console takes now, up to
    /// [`FLUSH_BYTES`].
    pub fn flush(&mut self) {
        while self.queue.front().is_some_and(|q| q.dead) {
            self.pop_front();
        }
        // Taken out while writing, so the queue can change meanwhile.
        let Some(file) = self.out.take() else { return };
        let mut out: &File = &file;
        let mut budget = FLUSH_BYTES;
        while !self.queue.is_empty() && budget > 0 {
            let slices: Vec<IoSlice<'_>> = self
                .queue
                .iter()
                .filter(|q| !q.dead)
                .take(WRITE_BATCH)
                .enumerate()
                .scan(budget, |left, (k, q)| {
                    let bytes = if k == 0 {
                        &q.bytes[self.written..]
                    } else {
                        &q.bytes
                    };
                    if *left == 0 {
                        return None;
                    }
                    let part = &bytes[..bytes.len().min(*left)];
                    *left -= part.len();
                    Some(IoSlice::new(part))
                })
                .collect();
            let mut n = match out.write_vectored(&slices) {
                Ok(0) => break,
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    n
                }
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
                self.pop_front();
                while self.queue.front().is_some_and(|q| q.dead) {
                    self.pop_front();
                }
            }
        }
        self.out = Some(file);
        if self.queue.is_empty() {
            self.report_dropped(true);
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

    /// A descriptor of the console of its own, for the loop to poll
    /// without holding the console's lock: every other thread that logs
    /// takes that lock, and a loop sleeping in `poll` with it held would
    /// stall them (the launcher among them, whose report the loop waits
    /// for).
    pub fn poll_handle(&self) -> Option<File> {
        self.out.as_ref().and_then(|f| f.try_clone().ok())
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
        if crate::sys::clone_child::in_cloned_child() {
            // A container's process on its way to exec: the console's
            // lock may be held by PID 1's loop for good in this copy.
            let _ = nix::unistd::write(std::io::stderr(), format!("berth: {text}\n").as_bytes());
            return;
        }
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

    fn text(c: &Console) -> String {
        let bytes: Vec<u8> = c.queue.iter().flat_map(|q| q.bytes.clone()).collect();
        String::from_utf8(bytes).expect("utf8")
    }

    /// The counts agree with the queue.
    fn check_counts(c: &Console) {
        let live: usize = c
            .queue
            .iter()
            .filter(|q| !q.dead)
            .map(|q| q.bytes.len())
            .sum();
        assert_eq!(live, c.queued);
        assert_eq!(
            c.by_source.values().map(|(n, _)| n).sum::<usize>(),
            c.queued
        );
        for (source, (_, seqs)) in &c.by_source {
            for seq in seqs {
                let q = c.queue.iter().find(|q| q.seq == *seq).expect("queued");
                assert!(!q.dead && &q.source == source);
            }
        }
    }

    #[test]
    fn stamp_is_kernel_style() {
        assert_eq!(stamp(Duration::from_millis(12_345)), "[   12.345] ");
        assert_eq!(stamp(Duration::from_millis(5)), "[    0.005] ");
        assert_eq!(stamp(Duration::from_secs(123_456)), "[123456.000] ");
    }

    #[test]
    fn full_queue_counts_and_reports_dropped_lines() {
        let mut c = Console::new();
        let line = vec![b'x'; 1000];
        for _ in 0..300 {
            c.enqueue("web", line.clone());
        }
        assert_eq!(c.queued, 262_000);
        assert_eq!(c.dropped.get("web"), Some(&38));
        check_counts(&c);
        while !c.queue.is_empty() {
            c.pop_front();
        }
        c.report_dropped(false);
        c.enqueue("db", b"next\n".to_vec());
        let text = text(&c);
        assert!(text.contains("… 38 lines from web not shown"), "{text}");
        assert!(text.ends_with("next\n"));
        assert!(c.dropped.is_empty());
        check_counts(&c);
    }

    #[test]
    fn a_flood_loses_its_own_lines_not_a_neighbours() {
        let mut c = Console::new();
        // The flood fills the queue to the brim.
        for _ in 0..600 {
            c.line("flood", &"y".repeat(500));
        }
        assert!(c.queued <= QUEUE_LIMIT);
        let dropped_before = c.dropped.get("flood").copied().unwrap_or(0);
        assert!(dropped_before > 0);
        // A quiet neighbour's lines still get in, each in place of one of
        // the flood's oldest; a big neighbour's too.
        for i in 0..10 {
            c.line("bystander", &format!("tick {i}"));
            c.line("flood", &"y".repeat(500));
            c.line("longline", &"x".repeat(4096));
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
        check_counts(&c);
        // The queue drains in arrival order, dead lines skipped.
        let mut seqs = Vec::new();
        while let Some(q) = c.queue.front() {
            if !q.dead {
                seqs.push(q.seq);
            }
            c.pop_front();
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(c.queued, 0);
        assert!(c.by_source.is_empty());
    }

    #[test]
    fn a_lasting_flood_is_reported_every_second() {
        let mut c = Console::new();
        for _ in 0..20_000 {
            c.line("flood", "flood");
        }
        assert!(c.dropped.get("flood").is_some_and(|n| *n > 0));
        // The last report was long ago: the next dropped line reports.
        c.reported = Duration::ZERO;
        let before = uptime();
        assert!(before >= REPORT_EVERY || before.is_zero());
        if before >= REPORT_EVERY {
            c.line("flood", "flood");
            assert!(text(&c).contains("lines from flood not shown"));
            check_counts(&c);
        }
    }
}
