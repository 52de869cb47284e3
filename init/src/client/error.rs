//! Why the CLI could not get an answer from PID 1. Every variant means
//! exit code 3: the server's own refusals are responses, not errors here.

use std::path::PathBuf;
use std::time::Duration;

use berth_supervisor::api::{ApiError, Op, MAX_RESPONSE};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("send the request to {}", path.display())]
    Send {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from {} within {timeout:?}", path.display())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("read the answer from {}", path.display())]
    Receive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} closed the connection without answering", path.display())]
    Closed { path: PathBuf },
    #[error("answer from {} is longer than {MAX_RESPONSE} bytes", path.display())]
    TooLong { path: PathBuf },
    #[error("cannot understand the answer from {}", path.display())]
    Garbled {
        path: PathBuf,
        #[source]
        source: ApiError,
    },
    #[error("asked {} for {asked} but it answered {got}", path.display())]
    WrongOp { path: PathBuf, asked: Op, got: Op },
    #[error("{node}: {why}")]
    Remote { node: String, why: String },
}
