//! Human renderings of results: pure functions from data to text, so each
//! is a table test.

use std::time::Duration;

use berth_supervisor::api::{ContainerStatus, KernelLine, LogLine, NodeStatus, EXEC_OUTPUT_LIMIT};

/// A duration as `12s`, `3m05s`, `1h02m` or `2d03h`: two units are
/// precise enough to read at a glance and keep the column narrow.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 60 {
        format!("{s}s")
    } else if m < 60 {
        format!("{m}m{:02}s", s % 60)
    } else if h < 24 {
        format!("{h}h{:02}m", m % 60)
    } else {
        format!("{d}d{:02}h", h % 24)
    }
}

/// A size in KiB, in MiB once it is large enough for that to read better.
pub fn size_kib(kib: u64) -> String {
    if kib < 10 * 1024 {
        format!("{kib} KiB")
    } else {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    }
}

/// The line above the status table.
pub fn node_line(node: &NodeStatus) -> String {
    let mut line = format!(
        "{}: up {}, berth {}, PID 1 RSS {}, stage {}",
        node.hostname,
        duration(node.uptime_ms),
        node.berth_version,
        size_kib(node.pid1_rss_kib),
        node.stage
    );
    if !node.root.is_empty() {
        line.push_str(&format!("\nroot: {}", node.root));
    }
    if !node.state.is_empty() {
        line.push_str(&format!("\nstate: {}", node.state));
    }
    if let Some(api) = &node.api {
        line.push_str(&format!("\napi: {api}"));
    }
    line
}

const HEADER: [&str; 9] = [
    "NAME",
    "KIND",
    "PHASE",
    "STATE",
    "PID",
    "RESTARTS",
    "UPTIME",
    "LAST-EXIT",
    "HEALTH",
];

/// The container table: a header, one row per container, columns aligned
/// two spaces apart, `-` for what is not known. Ends with a newline.
pub fn status_table(containers: &[ContainerStatus]) -> String {
    let dash = || "-".to_owned();
    let mut rows: Vec<[String; 9]> = vec![HEADER.map(str::to_owned)];
    for c in containers {
        rows.push([
            c.name.clone(),
            c.kind.as_str().to_owned(),
            c.phase.as_str().to_owned(),
            c.state.clone(),
            c.pid.map_or_else(dash, |p| p.to_string()),
            c.restarts.to_string(),
            c.uptime_ms.map_or_else(dash, duration),
            c.last_exit.clone().unwrap_or_else(dash),
            c.health.clone().unwrap_or_else(dash),
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        // No trailing blanks from padding the last column.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One container log line as the console shows it: the stamp since boot,
/// the stream, the text.
pub fn log_line(line: &LogLine) -> String {
    format!(
        "{}{}| {}",
        crate::console::stamp(Duration::from_millis(line.time_ms)),
        line.stream.as_str(),
        line.text
    )
}

/// One kernel record, as `dmesg` prints it (microseconds).
pub fn kernel_line(line: &KernelLine) -> String {
    format!(
        "[{:5}.{:06}] {}",
        line.time_us / 1_000_000,
        line.time_us % 1_000_000,
        line.text
    )
}

/// What a follower missed: lines are numbered without gaps, so a jump
/// means the ring evicted lines before they could be sent.
pub fn gap_notice(last_seq: Option<u64>, seq: u64) -> Option<String> {
    let missed = seq.checked_sub(last_seq?.checked_add(1)?)?;
    match missed {
        0 => None,
        1 => Some("… 1 line not shown (dropped before it was sent)".into()),
        n => Some(format!(
            "… {n} lines not shown (dropped before they were sent)"
        )),
    }
}

/// The note after an `exec` whose output the server cut (the limit is a
/// whole number of MiB).
pub fn truncation_notice() -> String {
    format!(
        "berth: output truncated at {} MiB",
        EXEC_OUTPUT_LIMIT / (1024 * 1024)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_supervisor::api::{ContainerKind, Phase, Stream};

    #[test]
    fn durations() {
        let table: &[(u64, &str)] = &[
            (0, "0s"),
            (999, "0s"),
            (12_345, "12s"),
            (59_999, "59s"),
            (60_000, "1m00s"),
            (185_000, "3m05s"),
            (3_599_999, "59m59s"),
            (3_600_000, "1h00m"),
            (3_723_000, "1h02m"),
            (86_399_000, "23h59m"),
            (86_400_000, "1d00h"),
            (97_200_000 + 86_400_000, "2d03h"),
            (u64::MAX, "213503982334d14h"),
        ];
        for (ms, want) in table {
            assert_eq!(duration(*ms), *want, "{ms} ms");
        }
    }

    #[test]
    fn sizes() {
        let table: &[(u64, &str)] = &[
            (0, "0 KiB"),
            (2480, "2480 KiB"),
            (10_239, "10239 KiB"),
            (10_240, "10.0 MiB"),
            (51_200 + 512, "50.5 MiB"),
        ];
        for (kib, want) in table {
            assert_eq!(size_kib(*kib), *want, "{kib}");
        }
    }

    fn container(name: &str, state: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            kind: ContainerKind::Workload,
            phase: Phase::Service,
            state: state.into(),
            pid: None,
            restarts: 0,
            uptime_ms: None,
            last_exit: None,
            health: None,
        }
    }

    #[test]
    fn status_tables() {
        let web = ContainerStatus {
            pid: Some(412),
            restarts: 2,
            uptime_ms: Some(185_000),
            last_exit: Some("exited with code 3".into()),
            health: Some("healthy".into()),
            ..container("web", "running")
        };
        let net = ContainerStatus {
            kind: ContainerKind::Host,
            phase: Phase::Onboot,
            ..container("network-setup", "done")
        };
        let table: Vec<(Vec<ContainerStatus>, &str)> = vec![
            (
                vec![],
                "NAME  KIND  PHASE  STATE  PID  RESTARTS  UPTIME  LAST-EXIT  HEALTH\n",
            ),
            (
                vec![net, web],
                "\
NAME           KIND      PHASE    STATE    PID  RESTARTS  UPTIME  LAST-EXIT           HEALTH
network-setup  host      onboot   done     -    0         -       -                   -
web            workload  service  running  412  2         3m05s   exited with code 3  healthy
",
            ),
        ];
        for (containers, want) in table {
            assert_eq!(status_table(&containers), want);
        }
    }

    #[test]
    fn node_lines() {
        let node = NodeStatus {
            hostname: "node1".into(),
            uptime_ms: 3_723_000,
            berth_version: "0.1.0".into(),
            pid1_rss_kib: 2480,
            stage: "services".into(),
            root: "verified (dm-verity), scrub clean".into(),
            state: "STATE /dev/vda4 (ext4): 8.0 GiB, 24.0 MiB used (0%)".into(),
            api: Some("listening on 0.0.0.0:7443".into()),
        };
        assert_eq!(
            node_line(&node),
            "node1: up 1h02m, berth 0.1.0, PID 1 RSS 2480 KiB, stage services\nroot: verified (dm-verity), scrub clean\nstate: STATE /dev/vda4 (ext4): 8.0 GiB, 24.0 MiB used (0%)\napi: listening on 0.0.0.0:7443"
        );
    }

    #[test]
    fn log_and_kernel_lines() {
        let line = |time_ms, stream, text: &str| LogLine {
            seq: 1,
            time_ms,
            stream,
            text: text.into(),
        };
        let table: &[(LogLine, &str)] = &[
            (
                line(12_345, Stream::Stdout, "hello"),
                "[   12.345] stdout| hello",
            ),
            (line(5, Stream::Stderr, ""), "[    0.005] stderr| "),
            (
                line(123_456_000, Stream::Stdout, "x"),
                "[123456.000] stdout| x",
            ),
        ];
        for (l, want) in table {
            assert_eq!(log_line(l), *want);
        }
        let k = |time_us| KernelLine {
            seq: 0,
            time_us,
            level: 6,
            text: "virtio_blk".into(),
        };
        assert_eq!(kernel_line(&k(1_234_567)), "[    1.234567] virtio_blk");
        assert_eq!(kernel_line(&k(0)), "[    0.000000] virtio_blk");
    }

    #[test]
    fn truncation() {
        assert_eq!(truncation_notice(), "berth: output truncated at 1 MiB");
    }

    #[test]
    fn gaps() {
        let table: &[(Option<u64>, u64, Option<&str>)] = &[
            (None, 7, None),
            (Some(6), 7, None),
            (
                Some(6),
                8,
                Some("… 1 line not shown (dropped before it was sent)"),
            ),
            (
                Some(6),
                44,
                Some("… 37 lines not shown (dropped before they were sent)"),
            ),
            (Some(9), 7, None),
            (Some(u64::MAX), 1, None),
        ];
        for (last, seq, want) in table {
            assert_eq!(
                gap_notice(*last, *seq).as_deref(),
                *want,
                "{last:?} → {seq}"
            );
        }
    }
}
