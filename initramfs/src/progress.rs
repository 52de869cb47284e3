//! What the builder shows while it works: on a terminal, a progress bar
//! per long step (layer extraction, image writing) that is replaced by a
//! one-line result when the step ends; otherwise (CI logs, pipes) only the
//! plain lines, one when a step starts and one when it ends, so logs stay
//! short and greppable.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One long step.
#[derive(Debug)]
pub struct Step {
    label: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

/// Whether progress bars are drawn: stderr is a terminal and `TERM` is not
/// `dumb`.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

impl Step {
    /// Starts a step whose size in bytes is `total` (a spinner when
    /// unknown).
    pub fn start(label: impl Into<String>, total: Option<u64>) -> Step {
        let label = label.into();
        let bar = interactive().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "berth-image: {msg} [{bar:30}] {bytes}/{total_bytes} {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("berth-image: {msg} {spinner} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_message(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            eprintln!("berth-image: {label}");
        }
        Step {
            label,
            bar,
            started: Instant::now(),
        }
    }

    /// Sets how far the step is, in bytes.
    pub fn set_position(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Ends the step with a result (`3 layers, 12.1 MiB`): replaces the bar,
    /// or prints the plain closing line.
    pub fn finish(self, result: &str) {
        let line = format!(
            "berth-image: {}: {result} ({:.1} s)",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
        match self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                eprintln!("{line}");
            }
            None => eprintln!("{line}"),
        }
    }
}

/// `12.3 MiB`, for summaries.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024 + 100 * 1024), "5.1 MiB");
    }
}
