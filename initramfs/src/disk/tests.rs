//! `disk.img` from small made-up inputs, read back with gptman, fatfs and
//! dumpe2fs.

use std::io::{Cursor, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use berth_config::layout::disk;
use gptman::GPT;

use super::plan::{ALIGN, MIB, SECTOR};
use super::*;
use crate::tool::DUMPE2FS;

const HASH: &str = "4bd5902c7f765f14cca1871176470d5c78c75c18b85a763584632993d49a5fcd";

/// Bytes that are neither zero nor repetitive, so a misplaced block shows.
fn noise(len: usize, salt: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32 ^ u32::from(salt);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, bytes: Vec<u8>| {
            std::fs::write(dir.path().join(name), bytes).expect("write input");
        };
        write("vmlinuz", noise(3 * MIB as usize + 123, 1));
        write("initramfs.img", noise(MIB as usize + 7, 2));
        // A root image with a hole in the middle, as EROFS images have.
        let mut root = noise(5 * MIB as usize, 3);
        root[MIB as usize..3 * MIB as usize].fill(0);
        write("root.img", root);
        write("boot.efi", noise(100 * 1024, 4));
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn build(&self, name: &str, root_hash: Option<&str>) -> (PathBuf, DiskReport) {
        let (kernel, initramfs, root_image, boot_loader) = (
            self.path("vmlinuz"),
            self.path("initramfs.img"),
            self.path("root.img"),
            self.path("boot.efi"),
        );
        let image = self.path(name);
        let state_image = self.path(&format!("{name}.state"));
        let template = make_state(&state_image, b"test seed", 1_700_000_000, self.dir.path())
            .expect("make STATE");
        std::fs::write(self.path(&format!("{name}.template")), template).expect("write");
        let report = write(
            &image,
            &DiskInputs {
                kernel: &kernel,
                initramfs: &initramfs,
                root_image: &root_image,
                state_image: &state_image,
                root_hash,
                epoch: 1_700_000_000,
                boot_loader: &boot_loader,
            },
        )
        .expect("write disk.img");
        (image, report)
    }
}

fn read_part(image: &Path, part: &Partition) -> Vec<u8> {
    let file = std::fs::File::open(image).expect("open");
    let mut bytes = vec![0u8; usize::try_from(part.size).expect("fits")];
    file.read_exact_at(&mut bytes, part.start)
        .expect("read partition");
    bytes
}

fn part<'a>(report: &'a DiskReport, name: &str) -> &'a Partition {
    report
        .partitions
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn gpt_reads_back() {
    let f = Fixture::new();
    let (image, report) = f.build("disk.img", Some(HASH));
    let mut file = std::fs::File::open(&image).expect("open");
    assert_eq!(file.metadata().expect("stat").len(), report.bytes);
    let gpt = GPT::find_from(&mut file).expect("read the GPT");
    assert_eq!(gpt.sector_size, SECTOR);
    let used: Vec<(u32, &gptman::GPTPartitionEntry)> =
        gpt.iter().filter(|(_, p)| p.is_used()).collect();
    // (number, name, type)
    let want = [
        (1, disk::ESP, disk::ESP_TYPE),
        (2, disk::ROOT_A, disk::ROOT_X86_64_TYPE),
        (3, disk::ROOT_B, disk::ROOT_X86_64_TYPE),
        (4, disk::STATE, disk::VAR_TYPE),
    ];
    assert_eq!(used.len(), want.len());
    let mut guids = vec![Guid::from_gpt_bytes(gpt.header.disk_guid)];
    for ((number, entry), (n, name, type_guid)) in used.iter().zip(want) {
        assert_eq!(*number, n);
        assert_eq!(entry.partition_name.as_str(), name);
        assert_eq!(
            Guid::from_gpt_bytes(entry.partition_type_guid).to_string(),
            type_guid
        );
        assert_eq!(entry.starting_lba * SECTOR % ALIGN, 0, "{name} start");
        assert_eq!((entry.ending_lba + 1) * SECTOR % ALIGN, 0, "{name} end");
        let planned = part(&report, name);
        assert_eq!(entry.starting_lba * SECTOR, planned.start, "{name}");
        guids.push(Guid::from_gpt_bytes(entry.unique_partition_guid));
    }
    let mut distinct = guids.clone();
    distinct.sort_by_key(|g| g.bytes());
    distinct.dedup();
    assert_eq!(distinct.len(), guids.len(), "{guids:?}");
    // STATE ends last, its end within the last MiB before the backup GPT.
    let state = used.iter().map(|(_, p)| p).max_by_key(|p| p.ending_lba);
    assert_eq!(state.map(|p| p.partition_name.as_str()), Some(disk::STATE));
    // The protective MBR, and the backup header in the last sector.
    let mut mbr = [0u8; 512];
    file.read_exact_at(&mut mbr, 0).expect("read the MBR");
    assert_eq!(mbr[450], 0xee, "protective partition type");
    assert_eq!(&mbr[510..], &[0x55, 0xaa]);
    let mut backup = [0u8; 8];
    file.read_exact_at(&mut backup, report.bytes - SECTOR)
        .expect("read the backup header");
    assert_eq!(&backup, b"EFI PART");
}

#[test]
fn root_a_holds_root_img_and_root_b_is_empty() {
    let f = Fixture::new();
    let (image, report) = f.build("disk.img", Some(HASH));
    let root = std::fs::read(f.path("root.img")).expect("read root.img");
    let a = read_part(&image, part(&report, disk::ROOT_A));
    assert_eq!(&a[..root.len()], &root[..]);
    assert!(a[root.len()..].iter().all(|&b| b == 0));
    assert!(read_part(&image, part(&report, disk::ROOT_B))
        .iter()
        .all(|&b| b == 0));
}

fn read_fat_file<T: fatfs::ReadWriteSeek>(fs: &fatfs::FileSystem<T>, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    fs.root_dir()
        .open_file(path)
        .unwrap_or_else(|e| panic!("open {path} on the ESP: {e}"))
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("read {path} on the ESP: {e}"));
    out
}

#[test]
fn esp_reads_back() {
    let f = Fixture::new();
    let (image, report) = f.build("disk.img", Some(HASH));
    let bytes = read_part(&image, part(&report, disk::ESP));
    let fs = fatfs::FileSystem::new(Cursor::new(bytes), fatfs::FsOptions::new())
        .expect("mount the ESP with fatfs");
    assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
    assert_eq!(fs.volume_label(), "ESP");
    let text = |path| String::from_utf8(read_fat_file(&fs, path)).expect("utf-8");
    assert_eq!(
        text("loader/loader.conf"),
        "timeout 0\neditor no\ndefault berth-a.conf\n"
    );
    let entry = text("loader/entries/berth-a.conf");
    assert!(entry.contains("\nlinux /berth/a/vmlinuz\n"), "{entry}");
    assert!(
        entry.contains("\ninitrd /berth/a/initramfs.img\n"),
        "{entry}"
    );
    assert!(
        entry.contains(&format!(
            "\noptions console=ttyS0 quiet panic=-1 berth.slot=a berth.verity={HASH}\n"
        )),
        "{entry}"
    );
    assert!(!entry.contains("berth.root="), "{entry}");
    // (path on the ESP, input)
    for (path, input) in [
        ("EFI/BOOT/BOOTX64.EFI", "boot.efi"),
        ("berth/a/vmlinuz", "vmlinuz"),
        ("berth/a/initramfs.img", "initramfs.img"),
    ] {
        let want = std::fs::read(f.path(input)).expect("read input");
        assert!(
            read_fat_file(&fs, path) == want,
            "{path} differs from {input}"
        );
    }
    let modified = fs
        .root_dir()
        .open_dir("loader")
        .expect("loader")
        .iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name() == "loader.conf")
        .expect("loader.conf entry")
        .modified();
    assert_eq!(
        (modified.date.year, modified.date.month, modified.date.day),
        (2023, 11, 14)
    );
}

#[test]
fn state_is_ext4_with_its_label() {
    let f = Fixture::new();
    let (image, report) = f.build("disk.img", None);
    let state = part(&report, disk::STATE);
    let extracted = f.path("state.img");
    let out = std::fs::File::create(&extracted).expect("create");
    sparse::write_at(&out, 0, &read_part(&image, state)).expect("extract");
    let dump = DUMPE2FS
        .output(DUMPE2FS.command().arg("-h").arg(&extracted))
        .expect("dumpe2fs");
    assert!(
        dump.lines()
            .any(|l| l.starts_with("Filesystem volume name:") && l.ends_with(" berth-state")),
        "{dump}"
    );
    assert!(dump.contains("resize_inode"), "{dump}");
    assert!(
        dump.lines()
            .any(|l| l.starts_with("Block count:") && l.ends_with(" 16384")),
        "{dump}"
    );
    // The template in the root image gives back the same bytes, from a
    // few runs (what `berth reset --state` writes).
    let data = std::fs::read(f.path("disk.img.template")).expect("read the template");
    assert!(data.len() < 256 * 1024, "template of {} bytes", data.len());
    let template = berth_config::state_template::decode(&data).expect("decode");
    assert_eq!(template.size, state.size);
    let mut restored = vec![0u8; usize::try_from(template.size).expect("size")];
    for run in &template.runs {
        let at = usize::try_from(run.offset).expect("offset");
        restored[at..at + run.bytes.len()].copy_from_slice(run.bytes);
    }
    assert!(
        restored == read_part(&image, state),
        "the template restores another filesystem"
    );
}

/// Whether two files hold the same bytes, read a MiB at a time (the
/// images are 386 MiB).
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).expect("open a"),
        std::fs::File::open(b).expect("open b"),
    );
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = fa.read(&mut x).expect("read a");
        if n == 0 {
            return fb.read(&mut y).expect("read b") == 0;
        }
        if fb.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return false;
        }
    }
}

#[test]
fn two_builds_are_byte_identical_and_sparse() {
    let f = Fixture::new();
    let (a, report) = f.build("a.img", Some(HASH));
    // Over 2 s: FAT stores times in 2-second steps.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (b, _) = f.build("b.img", Some(HASH));
    assert!(same_bytes(&a, &b), "two builds differ");
    // 386 MiB of disk; about 10 MiB of content, a few of ext4 and FAT.
    assert_eq!(report.bytes, 386 * MIB);
    assert!(
        report.allocated < 24 * MIB,
        "{} allocated",
        report.allocated
    );
    // Unverified: other GUIDs, no berth.verity= in the entry.
    let (c, _) = f.build("c.img", None);
    let gpt = |p: &Path| {
        GPT::find_from(&mut std::fs::File::open(p).expect("open"))
            .expect("gpt")
            .header
            .disk_guid
    };
    assert_ne!(gpt(&a), gpt(&c));
}

#[test]
fn boot_options_per_slot() {
    // (slot, root hash, options)
    let table = [
        (
            'a',
            None,
            "console=ttyS0 quiet panic=-1 berth.slot=a".to_owned(),
        ),
        (
            'b',
            Some(HASH),
            format!("console=ttyS0 quiet panic=-1 berth.slot=b berth.verity={HASH}"),
        ),
    ];
    for (slot, hash, want) in table {
        assert_eq!(boot_options(slot, hash), want);
    }
}
