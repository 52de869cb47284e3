//! Requests to and from their line on the wire.
//!
//! Decoding checks each field against a small table before serde sees the
//! object: serde's own messages (`invalid type: integer 5, expected a
//! string`) do not say which field was wrong, and the client's operator
//! should not have to guess. Fields a request does not use are ignored, so a
//! newer client's additions reach an older server harmlessly.

use serde::Serialize;
use serde_json::{Map, Value};

use super::envelope::{parse_object, show, take_version};
use super::error::ApiError;
use super::request::{Op, Power, Request};
use super::{MAX_REQUEST, VERSION};

/// Decodes one request line (its `\n` optional).
pub fn decode_request(line: &[u8]) -> Result<Request, ApiError> {
    if line.len() > MAX_REQUEST {
        return Err(ApiError::TooLarge { len: line.len() });
    }
    let mut map = parse_object(line)?;
    // The version first: another version may have ops or fields this one
    // would misreport as malformed.
    take_version(&mut map)?;
    let op = match map.get("op") {
        None => return Err(ApiError::Invalid("missing field `op`".into())),
        Some(Value::String(s)) => Op::from_name(s).ok_or_else(|| {
            let known: Vec<&str> = Op::ALL.iter().map(|o| o.as_str()).collect();
            ApiError::Invalid(format!(
                "unknown op {} (known: {})",
                show(&Value::String(s.clone())),
                known.join(", ")
            ))
        })?,
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "field `op` must be a string, got {}",
                show(other)
            )))
        }
    };
    check_fields(op, &map)?;
    serde_json::from_value(Value::Object(map)).map_err(|e| ApiError::Invalid(format!("{op}: {e}")))
}

/// Encodes a request as its line, `version` and trailing `\n` included.
pub fn encode_request(request: &Request) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        version: u32,
        #[serde(flatten)]
        request: &'a Request,
    }
    let envelope = Envelope {
        version: VERSION,
        request,
    };
    // Serializing a Request cannot fail: every key is a string and every
    // value a string, number, boolean or list of strings. Should it ever,
    // the server answers `bad-request` to the empty object.
    let mut line = serde_json::to_vec(&envelope).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

/// The shape a field's value must have.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A container name: non-empty, no NUL.
    Name,
    /// A line count: a non-negative integer, or null for the default.
    Count,
    Flag,
    Power,
    /// A command line: a non-empty list of strings without NUL.
    Argv,
    /// An earlier boot: a negative integer (-1 the previous one).
    Boot,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    shape: Shape,
    required: bool,
}

const NAME: Field = Field {
    name: "name",
    shape: Shape::Name,
    required: true,
};
const LINES: Field = Field {
    name: "lines",
    shape: Shape::Count,
    required: false,
};
const FOLLOW: Field = Field {
    name: "follow",
    shape: Shape::Flag,
    required: false,
};
const ACTION: Field = Field {
    name: "action",
    shape: Shape::Power,
    required: true,
};
const BOOT: Field = Field {
    name: "boot",
    shape: Shape::Boot,
    required: true,
};
const OPTIONAL_NAME: Field = Field {
    name: "name",
    shape: Shape::Name,
    required: false,
};
const STATE: Field = Field {
    name: "state",
    shape: Shape::Flag,
    required: true,
};
const SERIAL: Field = Field {
    name: "serial",
    shape: Shape::Name,
    required: true,
};
const ARGV: Field = Field {
    name: "argv",
    shape: Shape::Argv,
    required: true,
};

/// The fields of each op; must agree with [`Request`].
fn fields(op: Op) -> &'static [Field] {
    match op {
        Op::Status => &[],
        Op::Logs => &[NAME, LINES, FOLLOW],
        Op::Dmesg => &[LINES],
        Op::BootLog => &[BOOT, OPTIONAL_NAME, LINES],
        Op::Start | Op::Stop | Op::Restart => &[NAME],
        Op::Power => &[ACTION],
        Op::Exec => &[NAME, ARGV],
        Op::Reset => &[STATE],
        Op::Revoke => &[SERIAL],
    }
}

fn check_fields(op: Op, map: &Map<String, Value>) -> Result<(), ApiError> {
    for field in fields(op) {
        match map.get(field.name) {
            None if field.required => {
                return Err(ApiError::Invalid(format!(
                    "{op}: missing field `{}`",
                    field.name
                )))
            }
            None => {}
            Some(v) if fits(field.shape, v) => {}
            Some(v) => {
                return Err(ApiError::Invalid(format!(
                    "{op}: field `{}` must be {}, got {}",
                    field.name,
                    expected(field.shape),
                    show(v)
                )))
            }
        }
    }
    Ok(())
}

fn fits(shape: Shape, v: &Value) -> bool {
    let clean = |s: &str| !s.contains('\0');
    match (shape, v) {
        (Shape::Name, Value::String(s)) => !s.is_empty() && clean(s),
        (Shape::Count, Value::Null) => true,
        (Shape::Count, Value::Number(n)) => n.as_u64().is_some_and(|n| usize::try_from(n).is_ok()),
        (Shape::Flag, Value::Bool(_)) => true,
        (Shape::Boot, Value::Number(n)) => n
            .as_i64()
            .is_some_and(|n| n < 0 && i32::try_from(n).is_ok()),
        (Shape::Power, Value::String(s)) => Power::ALL.iter().any(|p| p.as_str() == s),
        (Shape::Argv, Value::Array(items)) => {
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| matches!(i, Value::String(s) if clean(s)))
        }
        _ => false,
    }
}

fn expected(shape: Shape) -> &'static str {
    match shape {
        Shape::Name => "a non-empty string without NUL",
        Shape::Count => "a non-negative integer or null",
        Shape::Flag => "true or false",
        Shape::Power => "one of \"reboot\", \"poweroff\", \"halt\"",
        Shape::Argv => "a non-empty array of strings without NUL",
        Shape::Boot => "a negative integer (-1: the previous boot)",
    }
}
