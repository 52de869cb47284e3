//! Why an rtnetlink request failed. Every variant names the request and
//! its object, and its message ends with the cause:
//! `add address 10.88.0.1/24 to berth0: File exists (os error 17)`.
//!
//! The cause is part of the message rather than a `#[source]`: callers log
//! these errors with `{e}` on the console, where the errno is the point,
//! and a source as well would print it twice through `fatal::chain`.

use std::io;

use super::reply::KernelError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open an rtnetlink socket: {0}")]
    Open(io::Error),
    #[error("{op}: send the request: {cause}")]
    Send { op: String, cause: io::Error },
    #[error("{op}: read the answer: {cause}")]
    Receive { op: String, cause: io::Error },
    #[error("{op}: {cause}")]
    Kernel { op: String, cause: KernelError },
    #[error("{op}: cannot decode the answer: {reason}")]
    Decode { op: String, reason: String },
    #[error("{op}: {reason}")]
    Invalid { op: String, reason: &'static str },
}

impl Error {
    /// The errno the kernel answered with, if this is a kernel error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { cause, .. } => Some(cause.errno),
            _ => None,
        }
    }

    /// Whether the kernel refused because the object exists already
    /// (EEXIST): adding an address or route that is there.
    pub fn already_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_request_and_end_with_the_cause() {
        let table = [
            (
                Error::Kernel {
                    op: "add address 10.88.0.1/24 to berth0".into(),
                    cause: KernelError {
                        errno: libc::EEXIST,
                        message: None,
                    },
                },
                "add address 10.88.0.1/24 to berth0: File exists (os error 17)",
                true,
            ),
            (
                Error::Invalid {
                    op: "create bridge x".into(),
                    reason: "bad",
                },
                "create bridge x: bad",
                false,
            ),
        ];
        for (error, message, exists) in table {
            assert_eq!(error.to_string(), message);
            assert_eq!(error.already_exists(), exists);
        }
    }
}
