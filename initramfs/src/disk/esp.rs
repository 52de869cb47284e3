//! The EFI system partition: a FAT32 volume, made in memory with the
//! `fatfs` crate (no mkfs.vfat, no mount), holding
//!
//! ```text
//! EFI/BOOT/BOOTX64.EFI          systemd-boot (Debian's systemd-boot-efi), at
//!                               the removable-media path firmware boots
//!                               without any NVRAM entry
//! loader/loader.conf            timeout 0, editor no, default berth-a.conf
//! loader/entries/berth-a.conf   Boot Loader Specification entry of slot a
//! berth/a/vmlinuz               slot a's kernel
//! berth/a/initramfs.img         slot a's initramfs
//! ```
//!
//! `editor no`: nobody at the console may edit the kernel command line,
//! which would let them drop `berth.verity=` and boot a root nobody
//! checked. `timeout 0` boots the default at once (a key held at power-on
//! still shows the menu, without the editor).
//!
//! [`add_slot`] writes one slot's files and entry, so an update can add
//! slot b's beside slot a's ([`super::fat_fixup`] must run after it:
//! fatfs 0.3 misplaces `.` and `..` in the folders it makes). Every timestamp is `SOURCE_DATE_EPOCH`
//! (fatfs asks a [`fatfs::TimeProvider`]) and the volume ID is derived, so
//! the same inputs give the same bytes. FAT32 because the UEFI
//! specification asks it of system partitions (FAT12/16 are for removable
//! media); 512-byte clusters, as a 64 MiB FAT32 volume needs.

use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_config::layout::disk;
use fatfs::{FatType, FileSystem, FormatVolumeOptions, FsOptions, ReadWriteSeek};

use super::fat_fixup;
use crate::build::{INITRAMFS, VMLINUZ};

/// Debian's systemd-boot for x86-64 UEFI.
pub const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// The Debian package that provides [`SYSTEMD_BOOT`].
pub const SYSTEMD_BOOT_PACKAGE: &str = "systemd-boot-efi";
/// Where firmware looks for a boot loader on a disk it has no entry for.
pub const BOOT_LOADER_PATH: &str = "EFI/BOOT/BOOTX64.EFI";
pub const LOADER_CONF: &str = "loader/loader.conf";
pub const ENTRIES_DIR: &str = "loader/entries";
/// The volume label (FAT labels are 11 bytes, space-padded).
pub const LABEL: &str = "ESP";

/// Making the ESP failed.
#[derive(Debug, thiserror::Error)]
pub enum EspError {
    #[error("read the boot loader {path} (apt-get install {SYSTEMD_BOOT_PACKAGE})")]
    BootLoader {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("format the ESP (FAT32, {bytes} bytes)")]
    Format {
        bytes: u64,
        #[source]
        source: io::Error,
    },
    #[error("write {path} on the ESP")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// One root slot's boot files and kernel options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFiles<'a> {
    /// `a` or `b`.
    pub slot: char,
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    /// The entry's `options` line: the kernel command line.
    pub options: String,
}

/// The ESP's bytes, `size` long: formatted, with systemd-boot from
/// `boot_loader`, `loader.conf` defaulting to `slot`'s entry, and that
/// slot's files.
pub fn make(
    size: u64,
    volume_id: u32,
    epoch: u64,
    boot_loader: &Path,
    slot: &SlotFiles<'_>,
) -> Result<Vec<u8>, EspError> {
    let efi = std::fs::read(boot_loader).map_err(|source| EspError::BootLoader {
        path: boot_loader.to_owned(),
        source,
    })?;
    let len = usize::try_from(size).map_err(|_| EspError::Format {
        bytes: size,
        source: io::Error::other("too big for memory"),
    })?;
    // Zeroed pages are only touched where the FAT writes: cheap.
    let mut image = Cursor::new(vec![0u8; len]);
    format(&mut image, size, volume_id)?;
    {
        let fs = open(&mut image, epoch)?;
        write_file(&fs, BOOT_LOADER_PATH, &mut efi.as_slice())?;
        write_file(&fs, LOADER_CONF, &mut loader_conf(slot.slot).as_bytes())?;
        add_slot(&fs, slot)?;
        // Counting the free clusters records the count in the FSInfo
        // sector (else left "unknown", which fsck.fat reports).
        fs.stats().map_err(write_error("the FSInfo sector"))?;
        fs.unmount().map_err(write_error("the FAT"))?;
    }
    let mut image = image.into_inner();
    fat_fixup::fix_directories(&mut image);
    Ok(image)
}

/// Formats `image` as an empty FAT32 volume of `size` bytes.
pub fn format<T: ReadWriteSeek>(image: &mut T, size: u64, volume_id: u32) -> Result<(), EspError> {
    let err = |source| EspError::Format {
        bytes: size,
        source,
    };
    let sectors = u32::try_from(size / 512)
        .map_err(|_| err(io::Error::other("too many sectors for FAT32")))?;
    let mut label = [b' '; 11];
    label[..LABEL.len()].copy_from_slice(LABEL.as_bytes());
    let options = FormatVolumeOptions::new()
        .fat_type(FatType::Fat32)
        .bytes_per_sector(512)
        .total_sectors(sectors)
        .volume_id(volume_id)
        .volume_label(label);
    image.seek(io::SeekFrom::Start(0)).map_err(err)?;
    fatfs::format_volume(&mut *image, options).map_err(err)?;
    image.seek(io::SeekFrom::Start(0)).map_err(err)?;
    Ok(())
}

/// Opens the FAT volume in `image`, every timestamp it writes `epoch`.
pub fn open<T: ReadWriteSeek>(image: T, epoch: u64) -> Result<FileSystem<T>, EspError> {
    let options = FsOptions::new().time_provider(time_provider(epoch));
    FileSystem::new(image, options).map_err(|source| EspError::Write {
        path: "/".into(),
        source,
    })
}

/// Writes `slot`'s kernel and initramfs to `berth/SLOT/` and its entry
/// to `loader/entries/berth-SLOT.conf`, replacing what was there.
pub fn add_slot<T: ReadWriteSeek>(
    fs: &FileSystem<T>,
    slot: &SlotFiles<'_>,
) -> Result<(), EspError> {
    let dir = disk::esp_slot_dir(slot.slot);
    for (name, from) in [(VMLINUZ, slot.kernel), (INITRAMFS, slot.initramfs)] {
        let mut file = std::fs::File::open(from).map_err(|source| EspError::Read {
            path: from.to_owned(),
            source,
        })?;
        write_file(fs, &format!("{dir}/{name}"), &mut file)?;
    }
    let entry = entry_text(slot.slot, &slot.options);
    let path = format!("{ENTRIES_DIR}/{}", disk::entry_name(slot.slot));
    write_file(fs, &path, &mut entry.as_bytes())
}

/// `loader/loader.conf`.
pub fn loader_conf(default_slot: char) -> String {
    format!(
        "timeout 0\neditor no\ndefault {}\n",
        disk::entry_name(default_slot)
    )
}

/// A slot's Boot Loader Specification entry (type 1).
pub fn entry_text(slot: char, options: &str) -> String {
    let dir = disk::esp_slot_dir(slot);
    format!(
        "title berth (slot {slot})\nversion {}\nlinux {dir}/{VMLINUZ}\ninitrd {dir}/{INITRAMFS}\noptions {options}\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes `path` (relative or `/`-rooted, `/`-separated) from `from`,
/// making its folders; an existing file is truncated first.
fn write_file<T: ReadWriteSeek>(
    fs: &FileSystem<T>,
    path: &str,
    from: &mut impl Read,
) -> Result<(), EspError> {
    let path = path.trim_start_matches('/');
    let err = write_error(path);
    let mut dir = fs.root_dir();
    let (folders, name) = path.rsplit_once('/').unwrap_or(("", path));
    for part in folders.split('/').filter(|p| !p.is_empty()) {
        dir = match dir.open_dir(part) {
            Ok(d) => d,
            Err(_) => dir.create_dir(part).map_err(&err)?,
        };
    }
    let mut file = dir.create_file(name).map_err(&err)?;
    file.truncate().map_err(&err)?;
    io::copy(from, &mut file).map_err(&err)?;
    file.flush().map_err(&err)
}

fn write_error(path: &str) -> impl Fn(io::Error) -> EspError + '_ {
    move |source| EspError::Write {
        path: path.to_owned(),
        source,
    }
}

/// fatfs's clock: always the build's `SOURCE_DATE_EPOCH`, in UTC.
#[derive(Debug)]
struct FixedTime {
    epoch: u64,
    at: fatfs::DateTime,
}

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.at.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.at
    }
}

/// The clock for `epoch`. fatfs wants a `&'static` one; each distinct
/// epoch is leaked once and reused (a process builds with one or two).
fn time_provider(epoch: u64) -> &'static FixedTime {
    static CLOCKS: Mutex<Vec<&'static FixedTime>> = Mutex::new(Vec::new());
    let mut clocks = CLOCKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(clock) = clocks.iter().find(|c| c.epoch == epoch) {
        return clock;
    }
    let clock: &'static FixedTime = Box::leak(Box::new(FixedTime {
        epoch,
        at: dos_date_time(epoch),
    }));
    clocks.push(clock);
    clock
}

/// `epoch` (seconds since 1970, UTC) as a FAT date and time, clamped to
/// what FAT can say (1980-01-01 to 2107-12-31), seconds rounded down to
/// even as FAT stores them.
pub fn dos_date_time(epoch: u64) -> fatfs::DateTime {
    const FIRST: u64 = 315_532_800; // 1980-01-01 00:00:00
    const LAST: u64 = 4_354_819_198; // 2107-12-31 23:59:58
    let t = epoch.clamp(FIRST, LAST);
    let (year, month, day) = civil_from_days(t / 86_400);
    let secs = t % 86_400;
    let small = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
    fatfs::DateTime {
        date: fatfs::Date {
            year: small(year),
            month: small(month),
            day: small(day),
        },
        time: fatfs::Time {
            hour: small(secs / 3600),
            min: small(secs / 60 % 60),
            sec: small(secs % 60 / 2 * 2),
            millis: 0,
        },
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after 1970).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_epochs() {
        // (epoch, (y, m, d, h, min, s))
        let table: [(u64, [u16; 6]); 6] = [
            (0, [1980, 1, 1, 0, 0, 0]),
            (315_532_800, [1980, 1, 1, 0, 0, 0]),
            (951_782_400, [2000, 2, 29, 0, 0, 0]),
            (1_700_000_001, [2023, 11, 14, 22, 13, 20]),
            (1_709_251_199, [2024, 2, 29, 23, 59, 58]),
            (u64::MAX, [2107, 12, 31, 23, 59, 58]),
        ];
        for (epoch, [y, m, d, h, min, s]) in table {
            let t = dos_date_time(epoch);
            assert_eq!(
                (t.date.year, t.date.month, t.date.day),
                (y, m, d),
                "{epoch}"
            );
            assert_eq!(
                (t.time.hour, t.time.min, t.time.sec),
                (h, min, s),
                "{epoch}"
            );
        }
    }

    #[test]
    fn entry_and_loader_conf() {
        let hash = "ab".repeat(32);
        let options = format!("console=ttyS0 quiet panic=-1 berth.slot=b berth.verity={hash}");
        assert_eq!(
            entry_text('b', &options),
            format!(
                "title berth (slot b)\nversion {}\nlinux /berth/b/vmlinuz\ninitrd /berth/b/initramfs.img\noptions {options}\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(
            loader_conf('a'),
            "timeout 0\neditor no\ndefault berth-a.conf\n"
        );
    }

    #[test]
    fn fsck_fat_finds_nothing_to_fix() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, bytes: &[u8]| {
            let path = tmp.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            path
        };
        let (kernel, initramfs, efi) = (
            file("k", &[1u8; 70_000]),
            file("i", &[2u8; 3000]),
            file("e", b"MZ"),
        );
        let slot = SlotFiles {
            slot: 'a',
            kernel: &kernel,
            initramfs: &initramfs,
            options: "console=ttyS0".into(),
        };
        let esp = make(64 << 20, 0x1234_5678, 0, &efi, &slot).expect("make");
        let image = file("esp.img", &esp);
        let fsck = crate::tool::Tool {
            program: "fsck.fat",
            package: "dosfstools",
        };
        let report = fsck
            .output(fsck.command().arg("-n").arg("-v").arg(&image))
            .expect("fsck.fat -n finds no error");
        for complaint in [
            "Expected a valid",
            "Bad short file name",
            "share clusters",
            "uninitialized",
        ] {
            assert!(!report.contains(complaint), "{report}");
        }
        // Nothing left for a second pass.
        let mut again = esp.clone();
        assert_eq!(fat_fixup::fix_directories(&mut again), 0);
    }

    #[test]
    fn missing_boot_loader_names_the_package() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let slot = SlotFiles {
            slot: 'a',
            kernel: &tmp.path().join("k"),
            initramfs: &tmp.path().join("i"),
            options: String::new(),
        };
        let err =
            make(64 << 20, 1, 0, &tmp.path().join("nope.efi"), &slot).expect_err("no boot loader");
        assert!(err.to_string().contains("systemd-boot-efi"), "{err}");
    }
}
