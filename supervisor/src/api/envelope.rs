//! The checks every message goes through before its fields are looked at:
//! one line of UTF-8 holding a JSON object with `"version": 1`.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::VERSION;

/// Parses one line (a trailing `\n` or `\r\n` allowed) into a JSON object.
pub(super) fn parse_object(line: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|e| ApiError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::Empty);
    }
    // serde_json refuses nesting deeper than 128 levels, so hostile input
    // cannot exhaust the stack here.
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::NotObject(type_name(&other))),
        Err(e) => Err(ApiError::NotJson(e.to_string())),
    }
}

/// Removes `version` from the object and checks it is ours.
pub(super) fn take_version(map: &mut Map<String, Value>) -> Result<(), ApiError> {
    match map.remove("version") {
        None => Err(ApiError::MissingVersion),
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => Ok(()),
        // Any other number is a version we do not speak; `"1"` or `null`
        // is no version at all.
        Some(Value::Number(n)) => Err(ApiError::UnsupportedVersion(n.to_string())),
        Some(other) => Err(ApiError::Invalid(format!(
            "field `version` must be an integer, got {}",
            show(&other)
        ))),
    }
}

/// A JSON value for an error message, cut short: the message goes back to
/// a client that may have sent 64 KiB of it.
pub(super) fn show(v: &Value) -> String {
    const LIMIT: usize = 40;
    let s = v.to_string();
    match s.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
