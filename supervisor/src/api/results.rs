//! The payloads of successful responses. Times are since boot or
//! durations, in the unit their field name says.

use serde::{Deserialize, Serialize};

use super::exec_output::cut_text;
use super::EXEC_OUTPUT_LIMIT;

/// `status`: the node and every container, in manifest order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResult {
    pub node: NodeStatus,
    pub containers: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub hostname: String,
    pub uptime_ms: u64,
    pub berth_version: String,
    /// PID 1's resident set, from `/proc/self/status` `VmRSS`.
    pub pid1_rss_kib: u64,
    /// Where the boot sequence is (`onboot`, `services`, `shutdown`, …);
    /// a string so new stages need no new version.
    pub stage: String,
    /// The root image's integrity: `not verified`, `verified (dm-verity),
    /// scrub running`, `verified (dm-verity), scrub clean: …` or
    /// `CORRUPT: …`; empty from an older berth.
    #[serde(default)]
    pub root: String,
    /// Where `/var/lib/berth` lives and how full it is: `STATE /dev/vda4
    /// (ext4): 8.0 GiB, 24.0 MiB used (1%)`, or `in memory (tmpfs, …):
    /// why`; empty from an older berth.
    #[serde(default)]
    pub state: String,
    /// The remote API: `listening on …; node certificate SHA-256 …` or
    /// why it did not start; absent when the manifest has no `[api]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub name: String,
    pub kind: ContainerKind,
    pub phase: Phase,
    /// `idle`, `running`, `backoff`, `done`, `stopping`, `stopped` or
    /// `failed`; a string so new states need no new version.
    pub state: String,
    pub pid: Option<i32>,
    /// Consecutive restarts since the last stable run.
    pub restarts: u32,
    /// How long the current run has lasted, when running.
    pub uptime_ms: Option<u64>,
    /// How the last run ended, e.g. `exited with code 3`.
    pub last_exit: Option<String>,
    pub health: Option<String>,
}

/// The manifest's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerKind {
    Host,
    Workload,
}

impl ContainerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerKind::Host => "host",
            ContainerKind::Workload => "workload",
        }
    }
}

impl From<berth_config::Kind> for ContainerKind {
    fn from(k: berth_config::Kind) -> Self {
        match k {
            berth_config::Kind::Host => ContainerKind::Host,
            berth_config::Kind::Workload => ContainerKind::Workload,
        }
    }
}

/// The manifest's `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Onboot,
    Service,
    Onshutdown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Onboot => "onboot",
            Phase::Service => "service",
            Phase::Onshutdown => "onshutdown",
        }
    }
}

impl From<berth_config::Phase> for Phase {
    fn from(p: berth_config::Phase) -> Self {
        match p {
            berth_config::Phase::OnBoot => Phase::Onboot,
            berth_config::Phase::Service => Phase::Service,
            berth_config::Phase::OnShutdown => Phase::Onshutdown,
        }
    }
}

/// `logs`: lines oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsResult {
    pub lines: Vec<LogLine>,
}

/// One line a container printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Increases by one per line of this container, across restarts; a
    /// gap tells a follower that lines were evicted before it saw them.
    pub seq: u64,
    pub time_ms: u64,
    pub stream: Stream,
    pub text: String,
}

impl LogLine {
    /// The line as one JSON object (without newline), for `--json` output
    /// of a followed log.
    pub fn to_json(&self) -> String {
        // Cannot fail: a plain struct with string keys.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The stream a line came from: the ring's own type, which is also the
/// wire form (`"stdout"`, `"stderr"`).
pub use crate::ring::Stream;

impl From<&crate::ring::Entry> for LogLine {
    fn from(e: &crate::ring::Entry) -> Self {
        LogLine {
            seq: e.seq,
            // Saturates after 584 million years of uptime.
            time_ms: u64::try_from(e.time.as_millis()).unwrap_or(u64::MAX),
            stream: e.stream,
            text: e.text.clone(),
        }
    }
}

/// `dmesg`: kernel log records oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmesgResult {
    pub lines: Vec<KernelLine>,
}

/// The console lines of an earlier boot, as they were printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootLogResult {
    pub boot: i32,
    pub lines: Vec<String>,
}

/// One `/dev/kmsg` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLine {
    pub seq: u64,
    pub time_us: u64,
    /// The syslog level, 0 (emergency) to 7 (debug).
    pub level: u8,
    pub text: String,
}

/// `start`, `stop`, `restart`, `power`: what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageResult {
    pub message: String,
}

impl MessageResult {
    pub fn new(message: impl Into<String>) -> Self {
        MessageResult {
            message: message.into(),
        }
    }
}

/// `exec`: how the command ended and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The shell convention: the exit code, or 128 + the signal that
    /// killed the command ([`ExitStatus::code`](crate::exit::ExitStatus::code)).
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// A stream was cut at [`EXEC_OUTPUT_LIMIT`].
    pub truncated: bool,
}

impl ExecResult {
    /// The result for a command that ended with `exit_code` after writing
    /// `stdout` and `stderr`: each stream becomes text (invalid UTF-8
    /// replaced by U+FFFD) cut to at most [`EXEC_OUTPUT_LIMIT`] bytes at a
    /// character boundary, and `truncated` says whether either was cut. A
    /// server that stops reading a stream early should keep at least one
    /// byte past the limit, or the cut goes unnoticed.
    pub fn from_output(exit_code: i32, stdout: &[u8], stderr: &[u8]) -> ExecResult {
        let (stdout, stdout_cut) = cut_text(stdout, EXEC_OUTPUT_LIMIT);
        let (stderr, stderr_cut) = cut_text(stderr, EXEC_OUTPUT_LIMIT);
        ExecResult {
            exit_code,
            stdout,
            stderr,
            truncated: stdout_cut || stderr_cut,
        }
    }
}
