//! Why a message could not be decoded. The server turns each into an error
//! response ([`ApiError::response`]); the client reports it as a broken
//! answer.

use super::response::{ErrorCode, Response};
use super::{MAX_REQUEST, VERSION};

/// A message that is not a valid protocol message. Causes are kept as text
/// (serde_json's error is neither `Clone` nor `PartialEq`) and already name
/// the offending field or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("request of {len} bytes is larger than the limit of {MAX_REQUEST}")]
    TooLarge { len: usize },
    #[error("empty message")]
    Empty,
    #[error("message is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("message is not JSON: {0}")]
    NotJson(String),
    #[error("message is not a JSON object but {0}")]
    NotObject(&'static str),
    #[error("missing field `version`")]
    MissingVersion,
    #[error("version {0} is not supported (this side speaks version {VERSION})")]
    UnsupportedVersion(String),
    /// A field is missing, has the wrong type or an unknown value.
    #[error("{0}")]
    Invalid(String),
}

impl ApiError {
    /// The error code the server answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::TooLarge { .. } => ErrorCode::TooLarge,
            ApiError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            ApiError::Empty
            | ApiError::NotUtf8 { .. }
            | ApiError::NotJson(_)
            | ApiError::NotObject(_)
            | ApiError::MissingVersion
            | ApiError::Invalid(_) => ErrorCode::BadRequest,
        }
    }

    /// The error response the server sends for this request.
    pub fn response(&self) -> Response {
        Response::error(self.code(), self.to_string())
    }
}
