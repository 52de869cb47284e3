//! A node under an output flood, shared by the starvation test and the
//! flood benchmark: one container writing as fast as it can (`yes`), one
//! writing a single 100 MB line without a newline, one whose health check
//! writes without end (`yes` until its timeout), a bystander that prints
//! its own uptime once a second, and a host container that times `berth
//! status` ten times.
//!
//! The bystander's delay is the console stamp of its line (when PID 1
//! handled it) less the uptime the bystander printed in it (when it wrote
//! it); the status latency is what the admin measured around `berth
//! status`, both from `/proc/uptime` (10 ms resolution).

/// The manifest; with `flood = false` the two flooding containers are
/// left out (the idle node the benchmark compares with).
pub fn manifest(flood: bool) -> String {
    let mut text = String::new();
    if flood {
        text.push_str(
            r#"
[container.flood]
rootfs = "@BUSYBOX@"
command = ["/bin/yes", "flood"]

# Its health check writes without end until its timeout kills it.
[container.noisyprobe]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]
health = { exec = ["/bin/yes"], interval = "1s", timeout = "3s", retries = 100 }

[container.longline]
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", "head -c 100000000 /dev/zero | tr '\\000' x; echo; echo long line done"]
"#,
        );
    }
    text.push_str(
        r#"
[container.bystander]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do read up _ < /proc/uptime; echo tick at $up; sleep 1 & wait; done"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", '''
sleep 5
i=0
while [ $i -lt 10 ]; do
  i=$((i+1))
  read t0 _ < /proc/uptime
  berth status > /tmp/status || echo "status $i failed"
  read t1 _ < /proc/uptime
  echo "status $i answered in $(echo "$t1 $t0" | awk '{printf "%.2f", $1 - $2}') s, $(grep -c ' running ' /tmp/status) running"
  sleep 1
done
echo admin done
''']
"#,
    );
    text
}

/// The status latencies the admin printed, in seconds.
pub fn status_latencies(console: &str) -> Vec<f64> {
    console
        .lines()
        .filter_map(|l| {
            l.split_once("admin | status ")?
                .1
                .split_once(" answered in ")?
                .1
                .split_once(' ')
        })
        .filter_map(|(secs, _)| secs.parse().ok())
        .collect()
}

/// For each bystander line on the console: (its console stamp, the delay
/// from the bystander's write to PID 1's handling), in seconds.
pub fn bystander_delays(console: &str) -> Vec<(f64, f64)> {
    console
        .lines()
        .filter_map(|l| {
            let (stamp, rest) = l.split_once("] bystander | tick at ")?;
            let at: f64 = stamp.trim_start_matches('[').trim().parse().ok()?;
            let wrote: f64 = rest.trim().parse().ok()?;
            Some((at, at - wrote))
        })
        .collect()
}

/// The median and the largest of `values` (0 for none).
pub fn median_max(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
    (median, v.last().copied().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_a_console() {
        let console = "\
[   10.500] admin | status 1 answered in 0.12 s, 3 running
[   11.700] admin | status 2 answered in 0.30 s, 3 running
[   12.010] bystander | tick at 11.99
[   13.250] bystander | tick at 13.00
[   13.300] flood | flood
";
        assert_eq!(status_latencies(console), [0.12, 0.30]);
        let delays = bystander_delays(console);
        assert_eq!(delays.len(), 2);
        assert!((delays[0].1 - 0.02).abs() < 1e-9 && (delays[1].1 - 0.25).abs() < 1e-9);
        assert_eq!(median_max(&[3.0, 1.0, 2.0]), (2.0, 3.0));
        assert_eq!(median_max(&[]), (0.0, 0.0));
    }
}
