//! What the server answers.

use serde::{Deserialize, Serialize};

use super::request::Op;
use super::results::{
    BootLogResult, DmesgResult, ExecResult, LogsResult, MessageResult, StatusResult,
};

/// One response. On the wire:
/// `{"version":1,"ok":true,"op":"status","result":{...}}` or
/// `{"version":1,"ok":false,"error":{"code":"not-found","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Success(Outcome),
    Failure(ErrorBody),
}

impl Response {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Failure(ErrorBody {
            code,
            message: message.into(),
        })
    }
}

/// A successful result, by the op that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Status(StatusResult),
    Logs(LogsResult),
    Dmesg(DmesgResult),
    BootLog(BootLogResult),
    Start(MessageResult),
    Stop(MessageResult),
    Restart(MessageResult),
    Power(MessageResult),
    Exec(ExecResult),
    Reset(MessageResult),
    Revoke(MessageResult),
}

impl Outcome {
    /// The op echoed next to the result.
    pub fn op(&self) -> Op {
        match self {
            Outcome::Status(_) => Op::Status,
            Outcome::Logs(_) => Op::Logs,
            Outcome::Dmesg(_) => Op::Dmesg,
            Outcome::BootLog(_) => Op::BootLog,
            Outcome::Start(_) => Op::Start,
            Outcome::Stop(_) => Op::Stop,
            Outcome::Restart(_) => Op::Restart,
            Outcome::Power(_) => Op::Power,
            Outcome::Exec(_) => Op::Exec,
            Outcome::Reset(_) => Op::Reset,
            Outcome::Revoke(_) => Op::Revoke,
        }
    }

    /// The `result` object as one line of JSON (without newline), for
    /// `--json` output.
    pub fn result_json(&self) -> String {
        let v = match self {
            Outcome::Status(r) => serde_json::to_string(r),
            Outcome::Logs(r) => serde_json::to_string(r),
            Outcome::Dmesg(r) => serde_json::to_string(r),
            Outcome::BootLog(r) => serde_json::to_string(r),
            Outcome::Start(r)
            | Outcome::Stop(r)
            | Outcome::Restart(r)
            | Outcome::Power(r)
            | Outcome::Reset(r)
            | Outcome::Revoke(r) => serde_json::to_string(r),
            Outcome::Exec(r) => serde_json::to_string(r),
        };
        // Cannot fail: plain structs with string keys.
        v.unwrap_or_default()
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// What kind of failure; clients branch on this, people read the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Malformed JSON, unknown op, missing or mistyped field.
    BadRequest,
    /// The request line exceeded `MAX_REQUEST`.
    TooLarge,
    /// No complete request within `REQUEST_TIMEOUT`, or an `exec` command
    /// still running at `EXEC_TIMEOUT` (it was killed).
    Timeout,
    UnsupportedVersion,
    /// No container of that name.
    NotFound,
    /// The container is not in a state that allows it (start of a running
    /// container).
    InvalidState,
    /// A known op this server does not carry out.
    Unsupported,
    Internal,
    /// The client's role does not allow the op (the remote API).
    Forbidden,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadRequest,
        ErrorCode::TooLarge,
        ErrorCode::Timeout,
        ErrorCode::UnsupportedVersion,
        ErrorCode::NotFound,
        ErrorCode::InvalidState,
        ErrorCode::Unsupported,
        ErrorCode::Internal,
        ErrorCode::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Timeout => "timeout",
            ErrorCode::UnsupportedVersion => "unsupported-version",
            ErrorCode::NotFound => "not-found",
            ErrorCode::InvalidState => "invalid-state",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Internal => "internal",
            ErrorCode::Forbidden => "forbidden",
        }
    }

    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
