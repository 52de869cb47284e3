//! berth side by side with what a user would pick instead, under QEMU
//! (TCG), the same kernel and the same QEMU flags for every system.
//! Prints figures and ratios from one run, and writes them as an SVG bar
//! chart; asserts nothing.
//!
//! 1. Boot: QEMU start → the first container line (the host's clock), for
//!    (a) the floor: an initramfs whose busybox `/init` prints at once;
//!    (b) a Debian node with systemd and crun running a busybox container
//!    as a unit (`scripts/systemd-node.sh`, debootstrap; run first if its
//!    output is missing); (c) berth with `examples/hello.toml`, direct
//!    mode with its disk, booted once before so STATE has grown (each
//!    measured boot on a copy of that disk). Boots interleaved, medians.
//! 2. Container start, in one berth guest: from just before `berth start`
//!    (`crun run`, `runc run`) to the container's first instruction, as
//!    both sides' `clock-ns` print it (CLOCK_REALTIME, shared by every
//!    namespace). crun and runc are Debian's, in a privileged host
//!    container. The same bundle for all three: berth's own bundle of a
//!    read-only workload with `network = "none"` and the default hardening
//!    (its seccomp filter included), given to crun and runc with only its
//!    host paths adjusted. For reference, crun and runc also run a bundle
//!    from `crun spec`, which has no seccomp filter.
//! 3. Restart latency (exit → next run's first line), PID 1 RSS with 1
//!    and with 20 containers (and 20 with the remote API) when the last
//!    one started and 10 s later, image sizes.
//!
//! Usage: cargo run --release -p qemu-tests --bin compare-bench --
//!        [--boots N] [--starts N] [--svg PATH] [--no-systemd]
//!        [--only boot|start|rss] [--cmdline ARGS] [--console DIR]
//!
//! `--cmdline` appends kernel arguments to berth's boots (`berth.debug`
//! logs where each launch's time goes); `--console` keeps each berth
//! guest's console there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu_tests::bench::{self, median, restart_gaps_ms, ChartGroup};
use qemu_tests::{example_manifest, TestImage, Vm};

struct Args {
    boots: usize,
    starts: usize,
    svg: PathBuf,
    systemd: bool,
    only: Option<String>,
    cmdline: String,
    console: Option<PathBuf>,
}

fn parse_args() -> Args {
    let root = berth_image::berth_binary::workspace_root();
    let mut a = Args {
        boots: 3,
        starts: 20,
        svg: root.join("docs/bench/compare.svg"),
        systemd: true,
        only: None,
        cmdline: String::new(),
        console: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = |what: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match flag.as_str() {
            "--boots" => a.boots = number("--boots"),
            "--starts" => a.starts = number("--starts"),
            "--svg" => a.svg = PathBuf::from(it.next().expect("--svg needs a path")),
            "--no-systemd" => a.systemd = false,
            "--only" => a.only = it.next(),
            "--cmdline" => a.cmdline = it.next().expect("--cmdline needs arguments"),
            "--console" => a.console = it.next().map(PathBuf::from),
            other => panic!("unknown argument {other}; see the usage at the top of the source"),
        }
    }
    a
}

fn main() {
    let args = parse_args();
    let wanted = |s: &str| args.only.as_deref().is_none_or(|o| o == s);
    let mut groups = Vec::new();
    let image = TestImage::build("compare", &example_manifest());
    if wanted("boot") {
        groups.push(boot_section(&image, &args));
    }
    if wanted("start") {
        let (start, restart) = start_section(&args);
        groups.push(start);
        groups.push(restart);
    }
    if wanted("rss") {
        groups.push(rss_section());
    }
    groups.push(size_section(&image));
    let svg = bench::svg_chart(
        "berth compared (QEMU TCG, one run; lower is better)",
        &groups,
    );
    if let Some(parent) = args.svg.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::write(&args.svg, svg) {
        Ok(()) => println!("\nchart: {}", args.svg.display()),
        Err(e) => println!("\nchart: cannot write {}: {e}", args.svg.display()),
    }
}

/// The systemd node's files, made by the script when missing.
fn systemd_node() -> Option<PathBuf> {
    let root = berth_image::berth_binary::workspace_root();
    let dir = root.join("target/systemd-node");
    let ready = ["vmlinuz", "initrd.img", "root.ext4"]
        .iter()
        .all(|f| dir.join(f).is_file());
    if !ready {
        println!("systemd node: building it with scripts/systemd-node.sh (debootstrap, minutes)");
        let status = std::process::Command::new(root.join("scripts/systemd-node.sh"))
            .arg(&dir)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("systemd node: scripts/systemd-node.sh failed ({status:?}); left out");
            return None;
        }
    }
    Some(dir)
}

const SYSTEMD_LINE: &str = "bench-container: hello from crun";

fn boot_section(image: &TestImage, args: &Args) -> ChartGroup {
    let scratch = tempfile::tempdir().expect("tempdir");
    let floor = scratch.path().join("floor.cpio");
    bench::floor_initramfs(&floor);
    let systemd = if args.systemd { systemd_node() } else { None };
    let append = berth_image::qemu::BASE_CMDLINE;
    // berth boots as a node does after its first boot: STATE already
    // grown to the disk (the first boot's grow is boot-bench's figure).
    let grown = scratch.path().join("grown.qcow2");
    image.overlay(&grown, 1 << 30);
    {
        let mut vm = Vm::boot_on_overlay(image, &grown);
        vm.wait_for("PID 1 RSS", Duration::from_secs(240));
        vm.monitor("system_powerdown");
        vm.wait_exit(Duration::from_secs(120));
    }
    let (mut f, mut s, mut b) = (Vec::new(), Vec::new(), Vec::new());
    println!("\n== boot: QEMU start → first container line (host clock, ms) ==");
    println!("boot  floor   systemd+crun  berth");
    for n in 1..=args.boots {
        let mut vm = Vm::boot_foreign(image, "floor", &floor, append, None);
        f.push(time_to(&mut vm, |l| l.contains(bench::FLOOR_LINE)));
        drop(vm);
        let sd = systemd.as_ref().map(|dir| {
            let mut vm = Vm::boot_foreign(
                image,
                "systemd",
                &dir.join("initrd.img"),
                &format!("{append} root=/dev/vda"),
                Some(&dir.join("root.ext4")),
            );
            time_to(&mut vm, |l| l.contains(SYSTEMD_LINE))
        });
        if let Some(ms) = sd {
            s.push(ms);
        }
        let disk = scratch.path().join(format!("boot-{n}.qcow2"));
        std::fs::copy(&grown, &disk).expect("copy the grown overlay");
        let mut vm = Vm::boot_opts(image, |opts, _| {
            opts.writes = berth_image::qemu::Writes::Overlay(disk.clone());
            opts.extra_cmdline.clone_from(&args.cmdline);
        });
        b.push(time_to(&mut vm, is_container_line));
        if args.console.is_some() {
            // The lines right after the first one, too.
            std::thread::sleep(Duration::from_secs(2));
        }
        keep_console(args, &format!("boot-{n}"), &vm.console());
        drop(vm);
        println!(
            "{n:>4}  {:>5.0}  {:>12}  {:>5.0}",
            f[n - 1],
            sd.map_or("-".to_owned(), |v| format!("{v:.0}")),
            b[n - 1]
        );
    }
    let (fm, bm) = (median(&mut f), median(&mut b));
    println!(
        "median floor {fm:.0} ms; berth {bm:.0} ms: {:+.0} ms over the floor ({:+.0}%)",
        bm - fm,
        (bm / fm - 1.0) * 100.0
    );
    let mut bars = vec![("floor (busybox /init)".to_owned(), fm)];
    if s.is_empty() {
        println!("systemd + crun: not measured (--no-systemd or no node)");
    } else {
        let sm = median(&mut s);
        println!(
            "median systemd + crun {sm:.0} ms: {:+.0} ms over the floor; berth's overhead is {:.1}× smaller",
            sm - fm,
            (sm - fm) / (bm - fm)
        );
        bars.push(("Debian systemd + crun".to_owned(), sm));
    }
    bars.push(("berth".to_owned(), bm));
    ChartGroup {
        title: "Boot: QEMU start → first container line".into(),
        unit: "ms".into(),
        bars,
    }
}

/// Keeps a berth guest's console in `--console DIR`, if given.
fn keep_console(args: &Args, what: &str, console: &str) {
    if let Some(dir) = &args.console {
        let path = dir.join(format!("{what}.console"));
        let kept = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, console));
        if let Err(e) = kept {
            println!("console: cannot write {}: {e}", path.display());
        }
    }
}

/// A console line of a container (`[ t] NAME | …`, not berth's own).
fn is_container_line(l: &str) -> bool {
    l.split_once("] ")
        .and_then(|(_, rest)| rest.split_once(" | "))
        .is_some_and(|(name, _)| name != "berth")
}

/// Host ms from QEMU's start until a console line matches.
fn time_to(vm: &mut Vm, matches: impl Fn(&str) -> bool) -> f64 {
    let until = Instant::now() + Duration::from_secs(240);
    loop {
        if vm.console().lines().any(&matches) {
            return vm.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(
            Instant::now() < until,
            "no first line within 240 s:\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

const START_MANIFEST: &str = r#"
[container.probe]
rootfs = "@RUNTIMES@/bench/bundle/rootfs"
network = "none"
restart = "never"
readonly = true
command = ["/bin/clock-ns", "t1"]

[container.bench]
kind = "host"
privileged = true
restart = "never"
rootfs = "@RUNTIMES@"
mounts = [
  "/run/berth:/run/berth",
  "/usr/lib/berth/bin:/usr/local/bin:ro",
  "/usr/lib/berth/containers/probe:/berth-bundle:ro",
]
command = ["/bin/sh", "-c", """
sleep 3
# crun and runc make their cgroups next to the driver, not above it.
mkdir -p /sys/fs/cgroup/driver && echo $$ > /sys/fs/cgroup/driver/cgroup.procs
# berth's own bundle of probe, as is but for the paths only berth's
# network step makes (/etc/hosts, /etc/resolv.conf) and the rootfs made
# absolute; its cgroup beside the driver's (whose own holds processes).
mkdir -p /bench/same /bench/net
echo '127.0.0.1 localhost probe' > /bench/net/hosts
: > /bench/net/resolv.conf
sed -e 's|/run/berth-net/probe/|/bench/net/|' -e 's|"path": "rootfs"|"path": "/berth-bundle/rootfs"|' -e 's|"/berth/workloads/probe"|"/same"|' /berth-bundle/config.json > /bench/same/config.json
i=0
while [ $i -lt @N@ ]; do
  i=$((i+1))
  clock-ns berth-t0; berth start probe >/dev/null; sleep 1
done
for rt in crun runc; do
  for bundle in bundle same; do
    i=0
    while [ $i -lt @N@ ]; do
      i=$((i+1))
      clock-ns $rt-$bundle-t0; $rt run --bundle /bench/$bundle c$i; $rt delete -f c$i >/dev/null 2>&1
      sleep 0.2
    done
  done
done
echo bench-done
"""]

[container.flap]
rootfs = "@BUSYBOX@"
network = "none"
command = ["/bin/sh", "-c", "echo up $(cut -d' ' -f1 /proc/uptime); echo down $(cut -d' ' -f1 /proc/uptime); exit 1"]
restart = "always"
backoff-initial = "0ms"
backoff-max = "0ms"
crash-loop-starts = @FLAPS@
crash-loop-window = "1h"
"#;

/// Container start (berth, crun, runc) and restart latency, from one guest.
fn start_section(args: &Args) -> (ChartGroup, ChartGroup) {
    let starts = args.starts;
    let runtimes = bench::runtimes_rootfs();
    let manifest = START_MANIFEST
        .replace("@RUNTIMES@", &runtimes.display().to_string())
        .replace("@N@", &starts.to_string())
        .replace("@FLAPS@", &(starts + 1).to_string());
    let image = TestImage::build("start-bench", &manifest);
    let mut vm = Vm::boot_with(&image, &args.cmdline);
    vm.wait_for("bench | bench-done", Duration::from_secs(900));
    let console = vm.console();
    keep_console(args, "start", &console);
    let values = |prefix: &str| -> Vec<i64> {
        console
            .lines()
            .filter_map(|l| l.split_once(prefix).map(|(_, v)| v.trim()))
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    // probe's boot-time run prints a t1 before any berth-t0.
    let berth_t1: Vec<i64> = values("probe | t1 ").into_iter().skip(1).collect();
    let pairs = |t0: Vec<i64>, t1: &[i64]| -> Vec<f64> {
        t0.iter()
            .zip(t1)
            .map(|(a, b)| (b - a) as f64 / 1e6)
            .collect()
    };
    let mut berth = pairs(values("bench | berth-t0 "), &berth_t1);
    let mut by_label = runtime_samples(&console);
    let mut runtime = |label: &str| by_label.remove(label).unwrap_or_default();
    let mut crun = runtime("crun-bundle");
    let mut crun_same = runtime("crun-same");
    let mut runc = runtime("runc-bundle");
    let mut runc_same = runtime("runc-same");
    println!("\n== container start: command → the container's first instruction (ms, median of {starts}) ==");
    let bm = median(&mut berth);
    let (cm, csm) = (median(&mut crun), median(&mut crun_same));
    let (rm, rsm) = (median(&mut runc), median(&mut runc_same));
    for (name, v, m) in [
        ("berth start", &berth, bm),
        ("crun run, berth's bundle", &crun_same, csm),
        ("runc run, berth's bundle", &runc_same, rsm),
        ("crun run, `crun spec`", &crun, cm),
        ("runc run, `crun spec`", &runc, rm),
    ] {
        let min = v.first().copied().unwrap_or(f64::NAN);
        let max = v.last().copied().unwrap_or(f64::NAN);
        println!(
            "{name:<26} median {m:>6.1}  min {min:>6.1}  max {max:>6.1}  ({} samples)",
            v.len()
        );
    }
    println!(
        "the same bundle: berth / crun = {:.2}×, berth / runc = {:.2}×",
        bm / csm,
        bm / rsm
    );
    println!(
        "crun's and runc's default spec (no seccomp filter): berth / crun = {:.2}×, berth / runc = {:.2}×",
        bm / cm,
        bm / rm
    );
    let counts = [&berth, &crun, &crun_same, &runc, &runc_same].map(|v| v.len());
    if counts.iter().any(|n| *n < starts) {
        let errors: Vec<&str> = console
            .lines()
            .filter(|l| l.contains("bench | ") && !l.contains("-t0 ") && !l.contains(" t1 "))
            .take(10)
            .collect();
        println!("missing samples; the driver said:\n{}", errors.join("\n"));
    }
    let restart = restart_latency(&console);
    (
        ChartGroup {
            title: "Container start: command → first instruction".into(),
            unit: "ms".into(),
            bars: vec![
                ("runc run (berth's bundle)".into(), rsm),
                ("crun run (berth's bundle)".into(), csm),
                ("berth start".into(), bm),
            ],
        },
        ChartGroup {
            title: "berth restart: exit → next run's first line".into(),
            unit: "ms".into(),
            bars: vec![("berth".into(), restart)],
        },
    )
}

/// The driver's runtime samples (ms) by label: a `t1` belongs to the last
/// `LABEL-t0` before it (a run that failed has none, and its t0 is
/// dropped).
fn runtime_samples(console: &str) -> std::collections::HashMap<String, Vec<f64>> {
    let mut by_label: std::collections::HashMap<String, Vec<f64>> = Default::default();
    let mut pending: Option<(String, i64)> = None;
    for line in console.lines() {
        let Some((_, said)) = line.split_once("bench | ") else {
            continue;
        };
        let Some((word, value)) = said.trim().split_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<i64>() else {
            continue;
        };
        if let Some(label) = word.strip_suffix("-t0") {
            pending = Some((label.to_owned(), value));
        } else if word == "t1" {
            if let Some((label, t0)) = pending.take() {
                by_label
                    .entry(label)
                    .or_default()
                    .push((value - t0) as f64 / 1e6);
            }
        }
    }
    by_label
}

/// The flap container's exits and next starts (`/proc/uptime`, 10 ms).
fn restart_latency(console: &str) -> f64 {
    let mut lat = restart_gaps_ms(console, "flap");
    let m = median(&mut lat);
    println!(
        "\n== restart latency (exit → next run's first line, /proc/uptime): median {m:.0} ms over {} restarts ==",
        lat.len()
    );
    m
}

/// PID 1's RSS (MiB) when the last container has started (the
/// "supervising" line) and 10 s later, as `berth status` reports it to a
/// host container that is one of the `n` containers.
fn rss_of(manifest: &str, name: &str) -> (f64, f64) {
    let image = TestImage::build(name, manifest);
    let mut vm = Vm::boot(&image);
    let line = vm.wait_for("PID 1 RSS", Duration::from_secs(240));
    let at_start = line
        .rsplit("PID 1 RSS ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let later = vm.wait_for("rssprobe | rss ", Duration::from_secs(120));
    let later = later
        .rsplit(' ')
        .next()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    (at_start / 1024.0, later / 1024.0)
}

/// `n` containers: `n - 1` busybox workloads and the host container that
/// asks for PID 1's RSS.
fn containers(n: usize) -> String {
    let mut m = String::new();
    for i in 1..n {
        let _ = write!(
            m,
            "[container.w{i:02}]\nrootfs = \"@BUSYBOX@\"\ncommand = [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 3600 & wait; done\"]\n\n"
        );
    }
    m.push_str(
        r#"[container.rssprobe]
kind = "host"
rootfs = "@BUSYBOX@"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
trap 'exit 0' TERM
sleep 10
berth status --json | sed -n 's/.*"pid1_rss_kib":\\([0-9]*\\).*/rss \\1/p'
while :; do sleep 3600 & wait; done
"""]
"#,
    );
    m
}

fn rss_section() -> ChartGroup {
    let one = rss_of(&containers(1), "rss-1");
    let twenty = rss_of(&containers(20), "rss-20");
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = berth_image::ca::init(&tmp.path().join("ca")).expect("make a CA");
    let api = format!("[api]\nca = [\"{}\"]\n\n{}", ca.display(), containers(20));
    let with_api = rss_of(&api, "rss-api");
    println!(
        "\n== PID 1 RSS (MiB): when the last container started / 10 s later (berth status) =="
    );
    for (what, (a, b)) in [
        ("1 container", one),
        ("20 containers", twenty),
        ("20 containers and the remote API", with_api),
    ] {
        println!("{what:<34} {a:>5.2} / {b:>5.2}");
    }
    ChartGroup {
        title: "PID 1 resident memory, 10 s after the last start".into(),
        unit: "MiB".into(),
        bars: vec![
            ("1 container".into(), one.1),
            ("20 containers".into(), twenty.1),
            ("20 + remote API".into(), with_api.1),
        ],
    }
}

fn size_section(image: &TestImage) -> ChartGroup {
    let size =
        |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / (1024.0 * 1024.0);
    let dir = image.dir();
    let (initramfs, root) = (
        size(&dir.join("initramfs.img")),
        size(&dir.join("root.img")),
    );
    let berth = size(&berth_image::berth_binary::static_binary_path(
        &berth_image::berth_binary::workspace_root(),
    ));
    println!("\n== sizes (MiB) ==");
    println!(
        "initramfs {initramfs:.2} + root image {root:.2} = {:.2}; berth binary {berth:.2}",
        initramfs + root
    );
    ChartGroup {
        title: "The example's image".into(),
        unit: "MiB".into(),
        bars: vec![
            ("initramfs + root image".into(), initramfs + root),
            ("berth binary".into(), berth),
        ],
    }
}
