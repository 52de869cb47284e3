//! Boot benchmark: builds the example image (`examples/hello.toml` with
//! a fresh busybox rootfs) and boots it several times under QEMU (TCG),
//! printing for each boot the time from QEMU's start to the first container
//! line (as the host saw it, and the guest's own uptime stamp on that line)
//! and PID 1's resident memory with the example running; then the sizes of
//! the artifacts. Prints figures; asserts nothing.
//!
//! Usage: cargo run --release -p qemu-tests --bin boot-bench [BOOTS]

use std::time::Duration;

use qemu_tests::{example_manifest, TestImage, Vm};

fn main() {
    let boots: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let manifest = example_manifest();
    let image = TestImage::build("bench", &manifest);

    println!("boot  host→first line  guest uptime at first line  PID 1 RSS");
    let mut host_ms = Vec::new();
    for n in 1..=boots {
        let mut vm = Vm::boot(&image);
        let line = first_container_line(&mut vm);
        let host = vm.elapsed();
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
        println!(
            "{n:>4}  {:>10.0} ms  {:>23} s  {rss}",
            host.as_secs_f64() * 1000.0,
            guest
        );
        host_ms.push(host.as_secs_f64() * 1000.0);
    }
    host_ms.sort_by(f64::total_cmp);
    if let Some(median) = host_ms.get(host_ms.len() / 2) {
        println!("median host→first line: {median:.0} ms over {boots} boot(s)");
    }

    let size = |p: std::path::PathBuf| std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    let kib = |b: u64| b as f64 / 1024.0;
    println!(
        "vmlinuz        {:>9.0} KiB",
        kib(size(image.dir().join("vmlinuz")))
    );
    println!(
        "initramfs.img  {:>9.0} KiB",
        kib(size(image.dir().join("initramfs.img")))
    );
    println!(
        "root.img       {:>9.0} KiB",
        kib(size(image.dir().join("root.img")))
    );
    let berth =
        berth_image::berth_binary::static_binary_path(&berth_image::berth_binary::workspace_root());
    println!(
        "berth binary   {:>9.0} KiB ({})",
        kib(size(berth.clone())),
        berth.display()
    );
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
