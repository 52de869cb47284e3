//! What the benchmark programs share: medians, the comparison systems
//! (a floor initramfs, crun and runc in a host container) and the chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::busybox::{busybox_rootfs, HOST_BUSYBOX};
use berth_image::cpio::CpioWriter;

/// A flapping container's restart gaps in ms: from each `NAME | down T`
/// line to the next run's `NAME | up T` (its `/proc/uptime`, 10 ms).
pub fn restart_gaps_ms(console: &str, name: &str) -> Vec<f64> {
    let value = |l: &str, tag: &str| -> Option<f64> {
        l.split(&format!("{name} | {tag} "))
            .nth(1)?
            .trim()
            .parse()
            .ok()
    };
    let ups: Vec<f64> = console.lines().filter_map(|l| value(l, "up")).collect();
    let downs: Vec<f64> = console.lines().filter_map(|l| value(l, "down")).collect();
    downs
        .iter()
        .zip(ups.iter().skip(1))
        .map(|(d, u)| (u - d) * 1000.0)
        .collect()
}

/// The median of `values` (the upper one of an even count); NaN if empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The line the floor's `/init` prints.
pub const FLOOR_LINE: &str = "floor | first line";

/// Writes the floor: an initramfs whose `/init` is a busybox shell script
/// that prints [`FLOOR_LINE`] at once and then sleeps. Booted with the
/// same kernel and QEMU flags as berth, it is the least any userspace
/// could take to its first line.
pub fn floor_initramfs(out: &Path) {
    let file =
        std::fs::File::create(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    let mut w = CpioWriter::new(std::io::BufWriter::new(file), 0);
    let script =
        format!("#!/bin/busybox sh\necho '{FLOOR_LINE}'\nexec /bin/busybox sleep 100000\n");
    let result = (|| {
        w.dir("bin", 0o755)?;
        w.dir("dev", 0o755)?;
        w.char_device("dev/console", 0o600, 5, 1)?;
        w.file_from_host("bin/busybox", 0o755, Path::new(HOST_BUSYBOX))?;
        w.file("init", 0o755, script.as_bytes())?;
        w.finish().map(|_| ())
    })();
    result.unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}

/// Compiles `src/clock_ns.c` (static) to `out`.
pub fn build_clock_ns(out: &Path) {
    let source = berth_image::berth_binary::workspace_root().join("qemu-tests/src/clock_ns.c");
    let status = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("run cc for {}: {e}", source.display()));
    assert!(status.success(), "cc {} failed: {status}", source.display());
}

/// The host's path of `program`, installing Debian's `package` when it is
/// missing (the benchmark runs the same crun and runc a Debian user has).
pub fn host_program(program: &str, package: &str) -> PathBuf {
    let find = || {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())
    };
    if let Some(p) = find() {
        return p;
    }
    eprintln!("compare-bench: installing {package} (apt-get)");
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .unwrap_or_else(|e| panic!("run apt-get: {e}"));
    assert!(status.success(), "apt-get install {package} failed");
    find().unwrap_or_else(|| panic!("{package} installed but {program} not found"))
}

/// Copies `binary` into `root` at the same path, with every shared library
/// `ldd` names (and the dynamic loader), so it runs in a busybox rootfs.
fn copy_with_libraries(binary: &Path, root: &Path) {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("run ldd {}: {e}", binary.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut files = vec![binary.to_owned()];
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x…)".
        let path = line
            .split("=>")
            .last()
            .and_then(|s| s.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(p) = path {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let to = root.join(f.strip_prefix("/").unwrap_or(&f));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::copy(&f, &to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", f.display(), to.display()));
    }
}

/// The rootfs of the benchmark's runtime host container: busybox,
/// `clock-ns`, Debian's crun and runc with their libraries, and at
/// `/bench/bundle` an OCI bundle made by `crun spec` (the runtimes'
/// defaults: its own namespaces, loopback only, read-only root) whose
/// process is `clock-ns t1` on a busybox rootfs.
pub fn runtimes_rootfs() -> PathBuf {
    let crun = host_program("crun", "crun");
    let runc = host_program("runc", "runc");
    let dir = berth_image::berth_binary::workspace_root().join("target/qemu-tests/runtimes-rootfs");
    let _ = std::fs::remove_dir_all(&dir);
    busybox_rootfs(Path::new(HOST_BUSYBOX), &dir)
        .unwrap_or_else(|e| panic!("busybox rootfs at {}: {e}", dir.display()));
    build_clock_ns(&dir.join("bin/clock-ns"));
    copy_with_libraries(&crun, &dir);
    copy_with_libraries(&runc, &dir);
    let bundle = dir.join("bench/bundle");
    busybox_rootfs(Path::new(HOST_BUSYBOX), &bundle.join("rootfs"))
        .unwrap_or_else(|e| panic!("busybox rootfs in {}: {e}", bundle.display()));
    build_clock_ns(&bundle.join("rootfs/bin/clock-ns"));
    let status = Command::new(&crun)
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .unwrap_or_else(|e| panic!("run crun spec: {e}"));
    assert!(status.success(), "crun spec failed");
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).expect("read config.json");
    let mut spec: serde_json::Value = serde_json::from_str(&text).expect("parse config.json");
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/clock-ns", "t1"]);
    spec["root"]["readonly"] = true.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json"))
        .expect("write config.json");
    dir
}

/// One group of bars in the chart: a title, the unit, and labelled values.
#[derive(Debug, Clone)]
pub struct ChartGroup {
    pub title: String,
    pub unit: String,
    pub bars: Vec<(String, f64)>,
}

/// An SVG bar chart: one block per group, bars scaled to the group's
/// largest value, each labelled with its value. Plain SVG 1.1, no script,
/// so GitHub and any browser render it.
pub fn svg_chart(title: &str, groups: &[ChartGroup]) -> String {
    const WIDTH: f64 = 760.0;
    const LABEL: f64 = 190.0;
    const BAR_MAX: f64 = 440.0;
    const BAR_H: f64 = 18.0;
    let colours = ["#9aa5b1", "#e4a33b", "#3b7de4", "#5aa469", "#b05ad1"];
    let mut y = 40.0;
    let mut body = String::new();
    for g in groups {
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-weight="bold">{}</text>"#,
            escape(&g.title)
        );
        y += 10.0;
        let max = g.bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
        for (i, (label, value)) in g.bars.iter().enumerate() {
            let w = if max > 0.0 {
                value / max * BAR_MAX
            } else {
                0.0
            };
            let colour = colours[i % colours.len()];
            let _ = writeln!(
                body,
                r#"<text x="{lx}" y="{ty}" text-anchor="end">{}</text><rect x="{LABEL}" y="{y}" width="{w:.1}" height="{BAR_H}" fill="{colour}"/><text x="{vx:.1}" y="{ty}">{} {}</text>"#,
                escape(label),
                format_value(*value),
                escape(&g.unit),
                lx = LABEL - 8.0,
                ty = y + 13.0,
                vx = LABEL + w + 6.0,
            );
            y += BAR_H + 6.0;
        }
        y += 22.0;
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" viewBox="0 0 {WIDTH} {y}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="16" font-weight="bold">{}</text>
{body}</svg>
"#,
        escape(title)
    )
}

fn format_value(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_gaps_pair_each_exit_with_the_next_start() {
        let console = "\
[ 1.0] flap | up 10.00
[ 1.1] flap | down 10.05
[ 1.2] other | up 10.06
[ 1.3] flap | up 10.14
[ 1.4] flap | down 10.20
[ 1.5] flap | up 10.31
";
        let gaps = restart_gaps_ms(console, "flap");
        assert_eq!(gaps.len(), 2);
        assert!((gaps[0] - 90.0).abs() < 0.01, "{gaps:?}");
        assert!((gaps[1] - 110.0).abs() < 0.01, "{gaps:?}");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn chart_scales_bars_to_the_largest_and_escapes_labels() {
        let svg = svg_chart(
            "t<1>",
            &[ChartGroup {
                title: "boot".into(),
                unit: "ms".into(),
                bars: vec![("a & b".into(), 50.0), ("c".into(), 100.0)],
            }],
        );
        assert!(svg.contains("t&lt;1&gt;"));
        assert!(svg.contains("a &amp; b"));
        assert!(svg.contains(r#"width="220.0""#), "{svg}");
        assert!(svg.contains(r#"width="440.0""#), "{svg}");
        assert!(svg.contains(">100 ms<"), "{svg}");
    }
}
