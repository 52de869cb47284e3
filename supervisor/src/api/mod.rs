//! The control protocol between PID 1 and the `berth` CLI, as plain data
//! and pure encode/decode functions; the socket itself lives in the init.
//!
//! Transport: a Unix stream socket ([`SOCKET_PATH`]). A client connects and
//! sends ONE request, one JSON object on one `\n`-terminated line of at most
//! [`MAX_REQUEST`] bytes; the server answers with one JSON line and closes.
//! The exception is `logs` with `follow: true`: after the first response the
//! server sends one follow line (`{"version":1,"line":{...}}`) per new log
//! line until the client closes. An `exec` answer comes when the command
//! has ended (or was killed at [`EXEC_TIMEOUT`]).
//!
//! Every message carries `"version": 1` ([`VERSION`]). Fields may be added
//! within a version, so decoders ignore fields they do not know; anything
//! that would make an old peer misread a message bumps the version.
//!
//! Decoding is defensive because the server decodes whatever a client
//! sends: size, UTF-8, JSON syntax (serde_json's recursion limit bounds
//! nesting), the version, the op and then every field's type are checked in
//! turn, and each failure maps to an [`ErrorCode`] with a message that
//! names the offending field or value. The full protocol is in
//! `docs/api.md`; `fuzz` (compiled for tests and with the `fuzzing`
//! feature only) holds the check the `control_decode` fuzz target and its
//! stable replay tests run on arbitrary bytes.

mod envelope;
mod error;
mod exec_output;
mod frame;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod request;
mod request_codec;
mod response;
mod response_codec;
mod results;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use error::ApiError;
pub use frame::{frame_request, Frame};
pub use request::{Op, Power, Request};
pub use request_codec::{decode_request, encode_request};
pub use response::{ErrorBody, ErrorCode, Outcome, Response};
pub use response_codec::{
    decode_follow_line, decode_response, encode_follow_line, encode_response,
};
pub use results::{
    BootLogResult, ContainerKind, ContainerStatus, DmesgResult, ExecResult, KernelLine, LogLine,
    LogsResult, MessageResult, NodeStatus, Phase, StatusResult, Stream,
};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Where PID 1 listens.
pub const SOCKET_PATH: &str = "/run/berth/control.sock";

/// Longest request line, its `\n` included.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Longest response line a client accepts: the server is trusted, this only
/// stops a broken one from filling the client's memory. A `logs` answer of
/// many full lines (4 KiB each, escaped) stays well below it, and so does
/// an `exec` answer of two full streams ([`EXEC_OUTPUT_LIMIT`] each, at most
/// six times that once control bytes are escaped as `\u00XX`).
pub const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// How long the server waits for a complete request line before it answers
/// `timeout`, so a silent client cannot hold a connection open.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the client waits on each read or write (except while
/// following logs, where silence is normal, and for an `exec` answer:
/// [`EXEC_CLIENT_TIMEOUT`]).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines a `logs` request returns when it names no count.
pub const DEFAULT_LOG_LINES: usize = 100;

/// Most output an `exec` answer carries per stream, in bytes of UTF-8; the
/// server cuts the rest and sets [`ExecResult::truncated`].
pub const EXEC_OUTPUT_LIMIT: usize = 1024 * 1024;

/// How long an `exec` command may run: then the server kills it and
/// answers `timeout`. A client waits longer than this for the answer.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the client waits for an `exec` answer: longer than
/// [`EXEC_TIMEOUT`], so the server's `timeout` answer arrives rather than
/// the client giving up first.
pub const EXEC_CLIENT_TIMEOUT: Duration =
    Duration::from_secs(EXEC_TIMEOUT.as_secs() + CLIENT_TIMEOUT.as_secs());
