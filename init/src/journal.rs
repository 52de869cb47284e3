//! The console lines of the last boots, kept on STATE so that a boot that
//! went wrong can be read after the reboot (`berth logs --boot -1`).
//!
//! `/var/lib/berth/logs/boot.0.log` is this boot, `boot.1.log` the one
//! before, up to `boot.{KEEP-1}.log`: at each boot the files move up one
//! number (renames) and the oldest is dropped. Each boot keeps at most
//! [`BOOT_LIMIT`] bytes; past that one line says the rest was cut.
//!
//! Every line queued for the console is also handed to a writer thread
//! through a bounded channel (a full channel drops the line and counts
//! it, so the loop never waits for the disk). The writer appends each
//! line as it comes and `fdatasync`s at most once a second, so a power
//! cut loses about a second of lines, not the boot. Lines from stage 1's
//! start until STATE is mounted are kept in memory and written first.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_config::layout::disk;

/// Boots kept: this one and three before it.
pub const KEEP: u32 = 4;
/// Bytes kept of one boot.
pub const BOOT_LIMIT: u64 = 8 << 20;
/// Lines waiting for the writer before new ones are dropped.
const CHANNEL_LINES: usize = 4096;
/// How often written lines are forced to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The folder of the boot logs.
pub fn dir() -> PathBuf {
    Path::new(disk::STATE_MOUNT).join("logs")
}

/// The file of boot `back` boots ago (0: this one).
pub fn file(dir: &Path, back: u32) -> PathBuf {
    dir.join(format!("boot.{back}.log"))
}

/// Reading an earlier boot's lines failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("boot {boot}: only the last {} boots are kept", KEEP - 1)]
    TooOld { boot: i32 },
    #[error("boot {boot}: no lines kept (no such boot on this node's STATE)")]
    Missing { boot: i32 },
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lines of boot `boot` (-1: the previous one), only `name`'s if
/// given, the last `lines` of them if given.
pub fn read(
    dir: &Path,
    boot: i32,
    name: Option<&str>,
    lines: Option<usize>,
) -> Result<Vec<String>, JournalError> {
    let back = boot.unsigned_abs();
    if back >= KEEP {
        return Err(JournalError::TooOld { boot });
    }
    let path = file(dir, back);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(JournalError::Missing { boot })
        }
        Err(source) => return Err(JournalError::Read { path, source }),
    };
    Ok(select(&text, name, lines))
}

/// The lines of `text` from `name` (the source between the stamp and
/// ` | `), the last `lines` of them.
pub fn select(text: &str, name: Option<&str>, lines: Option<usize>) -> Vec<String> {
    let picked: Vec<&str> = text
        .lines()
        .filter(|l| name.is_none_or(|n| source_of(l) == Some(n)))
        .collect();
    let skip = lines.map_or(0, |n| picked.len().saturating_sub(n));
    picked[skip..].iter().map(|l| (*l).to_owned()).collect()
}

/// `web` of `[   12.345] web | text`.
fn source_of(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?.split_once("] ")?.1;
    Some(rest.split_once(" | ")?.0)
}

/// Moves the kept boots up one number, dropping the oldest.
fn rotate(dir: &Path) {
    let _ = std::fs::remove_file(file(dir, KEEP - 1));
    for back in (0..KEEP - 1).rev() {
        let from = file(dir, back);
        if from.exists() {
            if let Err(e) = std::fs::rename(&from, file(dir, back + 1)) {
                log::warn!("boot logs: rename {}: {e}", from.display());
            }
        }
    }
}

/// This boot's log, as the console holds it.
#[derive(Debug)]
pub struct Journal {
    /// Where the console hands its lines.
    pub tx: SyncSender<Vec<u8>>,
    /// Lines the full channel refused, counted for the writer to report.
    pub dropped: Arc<AtomicU64>,
    /// The writer thread: it syncs and closes the file once `tx` is gone.
    pub writer: std::thread::JoinHandle<()>,
}

/// Starts keeping this boot's lines in [`dir`].
pub fn start(history: Vec<u8>) -> Option<Journal> {
    let dir = dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        log::error!("boot logs: create {}: {e}", dir.display());
        return None;
    }
    rotate(&dir);
    let path = file(&dir, 0);
    let mut out = match OpenOptions::new().append(true).create(true).open(&path) {
        Ok(f) => f,
        Err(e) => {
            log::error!("boot logs: open {}: {e}", path.display());
            return None;
        }
    };
    let mut written = 0u64;
    write_limited(&mut out, &history, &mut written);
    let (tx, rx) = sync_channel(CHANNEL_LINES);
    let dropped = Arc::new(AtomicU64::new(0));
    let counter = dropped.clone();
    let spawned = std::thread::Builder::new()
        .name("berth-journal".into())
        .spawn(move || writer(out, rx, written, &counter));
    match spawned {
        Ok(writer) => Some(Journal {
            tx,
            dropped,
            writer,
        }),
        Err(e) => {
            log::error!("boot logs: start the writer thread: {e}");
            None
        }
    }
}

/// Appends `bytes` unless the boot's limit is reached; the line that
/// crosses it is replaced by one saying so.
fn write_limited(out: &mut File, bytes: &[u8], written: &mut u64) {
    if *written >= BOOT_LIMIT {
        return;
    }
    let len = bytes.len() as u64;
    let result = if *written + len > BOOT_LIMIT {
        *written = BOOT_LIMIT;
        out.write_all(
            format!("… the rest of this boot's lines are not kept ({BOOT_LIMIT} bytes kept)\n")
                .as_bytes(),
        )
    } else {
        *written += len;
        out.write_all(bytes)
    };
    if let Err(e) = result {
        // Reported once: the console says why the boot log stops here.
        *written = BOOT_LIMIT;
        log::error!("boot logs: write: {e}; this boot's lines are no longer kept");
    }
}

/// The writer thread: appends lines, syncs at most once a second.
fn writer(mut out: File, rx: Receiver<Vec<u8>>, mut written: u64, dropped: &AtomicU64) {
    let mut dirty = false;
    let mut synced = Instant::now();
    loop {
        match rx.recv_timeout(SYNC_EVERY / 4) {
            Ok(line) => {
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let note = format!("… {lost} console lines not kept (the disk was slow)\n");
                    write_limited(&mut out, note.as_bytes(), &mut written);
                }
                write_limited(&mut out, &line, &mut written);
                dirty = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.sync_data();
                return;
            }
        }
        if dirty && synced.elapsed() >= SYNC_EVERY {
            let _ = out.sync_data();
            dirty = false;
            synced = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
[    3.100] berth | berth 0.1.0 starting stage 1
[    4.000] web | listening
[    4.100] db | ready
[    4.200] web | GET /
no stamp here
";

    #[test]
    fn selects_by_name_and_count() {
        let rows: &[(Option<&str>, Option<usize>, &[&str])] = &[
            (
                None,
                None,
                &[
                    "[    3.100] berth | berth 0.1.0 starting stage 1",
                    "[    4.000] web | listening",
                    "[    4.100] db | ready",
                    "[    4.200] web | GET /",
                    "no stamp here",
                ],
            ),
            (
                Some("web"),
                None,
                &["[    4.000] web | listening", "[    4.200] web | GET /"],
            ),
            (Some("web"), Some(1), &["[    4.200] web | GET /"]),
            (Some("nosuch"), None, &[]),
            (None, Some(0), &[]),
            (Some("db"), Some(10), &["[    4.100] db | ready"]),
        ];
        for (name, lines, want) in rows {
            assert_eq!(select(TEXT, *name, *lines), *want, "{name:?} {lines:?}");
        }
    }

    #[test]
    fn rotates_and_reads_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        for boot in 0..6 {
            rotate(dir);
            std::fs::write(file(dir, 0), format!("[    1.000] berth | boot {boot}\n"))
                .expect("write");
        }
        // boot 5 is current; -1 is boot 4 … -3 is boot 2; older are gone.
        for (back, want) in [(-1, "boot 4"), (-3, "boot 2")] {
            let lines = read(dir, back, None, None).expect("read");
            assert_eq!(lines, [format!("[    1.000] berth | {want}")]);
        }
        assert!(!file(dir, KEEP).exists());
        let err = read(dir, -4, None, None).expect_err("too old");
        assert_eq!(err.to_string(), "boot -4: only the last 3 boots are kept");
        let empty = tempfile::tempdir().expect("tempdir");
        let err = read(empty.path(), -1, None, None).expect_err("missing");
        assert!(err.to_string().contains("no lines kept"), "{err}");
    }

    #[test]
    fn a_boot_is_cut_at_its_limit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("b");
        let mut f = File::create(&path).expect("create");
        let mut written = BOOT_LIMIT - 10;
        write_limited(&mut f, b"short\n", &mut written);
        write_limited(&mut f, b"this one is too long\n", &mut written);
        write_limited(&mut f, b"and this is not kept\n", &mut written);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("short\n… the rest of this boot's lines are not kept"));
        assert!(!text.contains("not kept\nand"));
    }
}
