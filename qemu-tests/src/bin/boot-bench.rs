//! Boot benchmark: builds the example image (`examples/hello.toml` with
//! a fresh busybox rootfs) and boots it several times under QEMU (TCG),
//! each time both ways side by side: directly (`-kernel`, `disk.img`
//! attached) and from the disk under UEFI (OVMF, systemd-boot). For each
//! boot it prints the time from QEMU's start to the first container line
//! (as the host saw it, and the guest's own uptime stamp on that line) and
//! PID 1's resident memory with the example running; then one UEFI boot
//! on a fresh 8 GiB overlay, with the time STATE's first-boot grow took;
//! then the sizes of the artifacts. Prints figures; asserts nothing.
//!
//! Usage: cargo run --release -p qemu-tests --bin boot-bench [BOOTS]

use std::path::Path;
use std::time::Duration;

use berth_image::qemu::{create_overlay, Boot, Writes};
use qemu_tests::{example_manifest, TestImage, Vm};

fn main() {
    let boots: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let manifest = example_manifest();
    let image = TestImage::build("bench", &manifest);
    let scratch = tempfile::tempdir().expect("tempdir");

    println!("boot  mode    host→first line  guest uptime at first line  PID 1 RSS");
    let mut direct_ms = Vec::new();
    let mut uefi_ms = Vec::new();
    for n in 1..=boots {
        let (ms, guest, rss) = measure(Vm::boot(&image));
        println!("{n:>4}  direct  {ms:>12.0} ms  {guest:>23} s  {rss}");
        direct_ms.push(ms);
        let vars = scratch.path().join(format!("vars-{n}.fd"));
        let vm = Vm::boot_opts(&image, move |opts, _| opts.boot = Boot::Uefi { vars });
        let (ms, guest, rss) = measure(vm);
        println!("{n:>4}  UEFI    {ms:>12.0} ms  {guest:>23} s  {rss}");
        uefi_ms.push(ms);
    }
    let (direct, uefi) = (median(&mut direct_ms), median(&mut uefi_ms));
    println!(
        "median host→first line over {boots} boot(s): direct {direct:.0} ms, UEFI {uefi:.0} ms (UEFI {:+.0} ms, ×{:.2})",
        uefi - direct,
        uefi / direct
    );

    first_boot_grow(&image, scratch.path());
    sizes(&image);
}

/// Boots UEFI on a fresh 8 GiB overlay and prints what STATE's grow took.
fn first_boot_grow(image: &TestImage, scratch: &Path) {
    let overlay = scratch.join("grow.qcow2");
    let vars = scratch.join("grow-vars.fd");
    if let Err(e) = create_overlay(&image.dir().join("disk.img"), &overlay, 8 << 30) {
        println!("first-boot grow: cannot create the overlay: {e}");
        return;
    }
    let mut vm = Vm::boot_opts(image, move |opts, _| {
        opts.boot = Boot::Uefi { vars };
        opts.writes = Writes::Overlay(overlay);
    });
    vm.wait_for("stage 1: state: ", Duration::from_secs(240));
    let console = vm.console();
    for needle in [
        "partition table now spans",
        "ext4 grown from",
        "stage 1: state: ",
    ] {
        let line = console
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or("(none)");
        println!("first-boot grow: {}", line.trim());
    }
}

fn sizes(image: &TestImage) {
    let size = |p: std::path::PathBuf| std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    let kib = |b: u64| b as f64 / 1024.0;
    for name in ["vmlinuz", "initramfs.img", "root.img"] {
        println!("{name:<14} {:>9.0} KiB", kib(size(image.dir().join(name))));
    }
    let disk = image.dir().join("disk.img");
    let allocated = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&disk)
            .map(|m| m.blocks() * 512)
            .unwrap_or(0)
    };
    println!(
        "disk.img       {:>9.0} KiB ({:.0} KiB allocated: the file is sparse)",
        kib(size(disk.clone())),
        kib(allocated)
    );
    let berth =
        berth_image::berth_binary::static_binary_path(&berth_image::berth_binary::workspace_root());
    println!(
        "berth binary   {:>9.0} KiB ({})",
        kib(size(berth.clone())),
        berth.display()
    );
}

/// Host ms to the first container line, the guest's stamp on it, PID 1's
/// RSS.
fn measure(mut vm: Vm) -> (f64, String, String) {
    let line = first_container_line(&mut vm);
    let host = vm.elapsed().as_secs_f64() * 1000.0;
    let rss = vm.wait_for("PID 1 RSS", Duration::from_secs(60));
    let rss = rss
        .rsplit("PID 1 RSS ")
        .next()
        .unwrap_or("?")
        .trim()
        .to_owned();
    let guest = line
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or("?")
        .trim()
        .to_owned();
    (host, guest, rss)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Waits for the first console line of any container (not berth's own).
fn first_container_line(vm: &mut Vm) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let console = vm.console();
        let found = console.lines().find(|l| {
            l.split_once("] ")
                .and_then(|(_, rest)| rest.split_once(" | "))
                .is_some_and(|(name, _)| name != "berth")
        });
        if let Some(line) = found {
            return line.to_owned();
        }
        assert!(
            std::time::Instant::now() < until,
            "no container line within 120 s:\n{console}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
