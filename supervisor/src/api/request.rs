//! What a client may ask.

use serde::{Deserialize, Serialize};

/// One request. On the wire the variant is the `op` field, next to
/// `version`: `{"version":1,"op":"logs","name":"web","lines":20}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// The node and every container.
    Status,
    /// A container's recent output; with `follow`, then every new line.
    Logs {
        name: String,
        /// How many of the newest lines; `None` means
        /// [`DEFAULT_LOG_LINES`](super::DEFAULT_LOG_LINES).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<usize>,
        #[serde(default)]
        follow: bool,
    },
    /// The kernel log; `lines: None` means all the kernel still holds.
    Dmesg {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<usize>,
    },
    /// The console lines of an earlier boot kept on STATE: `boot` -1 is
    /// the previous one; `name` keeps only that container's lines;
    /// `lines: None` means all of them.
    BootLog {
        boot: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<usize>,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Restart {
        name: String,
    },
    /// An orderly shutdown ending in `action`.
    Power {
        action: Power,
    },
    /// Run a command in a running container and answer with how it
    /// ended and its output; `argv` is not empty.
    Exec {
        name: String,
        argv: Vec<String>,
    },
    /// Empty STATE (`state: true`, the only thing to reset so far): the
    /// node stops its containers, writes an empty filesystem over STATE
    /// and reboots. Only root on the node may ask.
    Reset {
        state: bool,
    },
    /// Refuse the client certificate with this serial number on the
    /// remote API from the next connection on (kept on STATE).
    Revoke {
        serial: String,
    },
}

impl Request {
    pub fn op(&self) -> Op {
        match self {
            Request::Status => Op::Status,
            Request::Logs { .. } => Op::Logs,
            Request::Dmesg { .. } => Op::Dmesg,
            Request::BootLog { .. } => Op::BootLog,
            Request::Start { .. } => Op::Start,
            Request::Stop { .. } => Op::Stop,
            Request::Restart { .. } => Op::Restart,
            Request::Power { .. } => Op::Power,
            Request::Exec { .. } => Op::Exec,
            Request::Reset { .. } => Op::Reset,
            Request::Revoke { .. } => Op::Revoke,
        }
    }
}

/// A request's kind, without its fields; successful responses echo it so
/// a decoder knows which result it holds (`logs` and `dmesg` results both
/// are `{"lines": [...]}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Status,
    Logs,
    Dmesg,
    BootLog,
    Start,
    Stop,
    Restart,
    Power,
    Exec,
    Reset,
    Revoke,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Status,
        Op::Logs,
        Op::Dmesg,
        Op::BootLog,
        Op::Start,
        Op::Stop,
        Op::Restart,
        Op::Power,
        Op::Exec,
        Op::Reset,
        Op::Revoke,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Status => "status",
            Op::Logs => "logs",
            Op::Dmesg => "dmesg",
            Op::BootLog => "boot-log",
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart",
            Op::Power => "power",
            Op::Exec => "exec",
            Op::Reset => "reset",
            Op::Revoke => "revoke",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a `power` request ends the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Power {
    Reboot,
    Poweroff,
    Halt,
}

impl Power {
    pub const ALL: [Power; 3] = [Power::Reboot, Power::Poweroff, Power::Halt];

    pub fn as_str(self) -> &'static str {
        match self {
            Power::Reboot => "reboot",
            Power::Poweroff => "poweroff",
            Power::Halt => "halt",
        }
    }
}

impl From<Power> for crate::power::PowerAction {
    fn from(p: Power) -> Self {
        match p {
            Power::Reboot => crate::power::PowerAction::Reboot,
            Power::Poweroff => crate::power::PowerAction::Poweroff,
            Power::Halt => crate::power::PowerAction::Halt,
        }
    }
}
