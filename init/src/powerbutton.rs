//! The ACPI power button as an input device: the `button` driver reports a
//! press as `KEY_POWER` on an evdev node, which PID 1 polls like any other
//! fd. This is how QEMU's `system_powerdown` and a cloud's "stop" reach the
//! node.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Opens the event device of every input device named "Power Button".
/// devtmpfs creates the nodes right after the drivers bind; a short retry
/// covers the gap after module loading.
pub fn open_all() -> Vec<File> {
    for attempt in 0..20 {
        let devices = find();
        if !devices.is_empty() || attempt == 19 {
            return devices
                .into_iter()
                .filter_map(|dev| {
                    match OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                        .open(&dev)
                    {
                        Ok(f) => {
                            log::info!("watching the power button at {}", dev.display());
                            Some(f)
                        }
                        Err(e) => {
                            log::warn!("open power button {}: {e}", dev.display());
                            None
                        }
                    }
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Vec::new()
}

/// `/dev/input/eventN` of each power button in `/sys/class/input`.
fn find() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/class/input") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("event") {
            continue;
        }
        let label = std::fs::read_to_string(entry.path().join("device/name")).unwrap_or_default();
        let dev = Path::new("/dev/input").join(name);
        if label.trim() == "Power Button" && dev.exists() {
            out.push(dev);
        }
    }
    out.sort();
    out
}
