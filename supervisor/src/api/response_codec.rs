//! Responses and follow lines to and from their line on the wire.
//!
//! Successful responses echo the `op` next to the `result`: the `logs` and
//! `dmesg` results have the same outer shape, and an empty list would
//! otherwise decode as either.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::envelope::{parse_object, show, take_version};
use super::error::ApiError;
use super::request::Op;
use super::response::{ErrorBody, ErrorCode, Outcome, Response};
use super::results::LogLine;
use super::VERSION;

/// Sent when a response cannot be serialized, which the types rule out;
/// the client still gets an answer it understands.
const ENCODE_FAILED: &[u8] = b"{\"version\":1,\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the response\"}}\n";

/// Encodes a response as its line, trailing `\n` included.
pub fn encode_response(response: &Response) -> Vec<u8> {
    let encoded = match response {
        Response::Success(outcome) => match outcome {
            Outcome::Status(r) => success(outcome.op(), r),
            Outcome::Logs(r) => success(outcome.op(), r),
            Outcome::Dmesg(r) => success(outcome.op(), r),
            Outcome::BootLog(r) => success(outcome.op(), r),
            Outcome::Start(r)
            | Outcome::Stop(r)
            | Outcome::Restart(r)
            | Outcome::Power(r)
            | Outcome::Reset(r)
            | Outcome::Revoke(r) => success(outcome.op(), r),
            Outcome::Exec(r) => success(outcome.op(), r),
        },
        Response::Failure(error) => failure(error),
    };
    finish(encoded)
}

/// Decodes one response line (its `\n` optional).
pub fn decode_response(line: &[u8]) -> Result<Response, ApiError> {
    let mut map = parse_object(line)?;
    take_version(&mut map)?;
    match map.remove("ok") {
        Some(Value::Bool(true)) => decode_success(map).map(Response::Success),
        Some(Value::Bool(false)) => decode_failure(map).map(Response::Failure),
        None => Err(ApiError::Invalid("missing field `ok`".into())),
        Some(other) => Err(ApiError::Invalid(format!(
            "field `ok` must be true or false, got {}",
            show(&other)
        ))),
    }
}

/// Encodes one line of `logs -f` output after the first response.
pub fn encode_follow_line(line: &LogLine) -> Vec<u8> {
    #[derive(Serialize)]
    struct Wire<'a> {
        version: u32,
        line: &'a LogLine,
    }
    finish(serde_json::to_vec(&Wire {
        version: VERSION,
        line,
    }))
}

/// Decodes one follow line.
pub fn decode_follow_line(line: &[u8]) -> Result<LogLine, ApiError> {
    let mut map = parse_object(line)?;
    take_version(&mut map)?;
    let line = map
        .remove("line")
        .ok_or_else(|| ApiError::Invalid("missing field `line`".into()))?;
    typed("line", line)
}

fn success<T: Serialize>(op: Op, result: &T) -> serde_json::Result<Vec<u8>> {
    #[derive(Serialize)]
    struct Wire<'a, T> {
        version: u32,
        ok: bool,
        op: Op,
        result: &'a T,
    }
    serde_json::to_vec(&Wire {
        version: VERSION,
        ok: true,
        op,
        result,
    })
}

fn failure(error: &ErrorBody) -> serde_json::Result<Vec<u8>> {
    #[derive(Serialize)]
    struct Wire<'a> {
        version: u32,
        ok: bool,
        error: &'a ErrorBody,
    }
    serde_json::to_vec(&Wire {
        version: VERSION,
        ok: false,
        error,
    })
}

fn finish(encoded: serde_json::Result<Vec<u8>>) -> Vec<u8> {
    match encoded {
        Ok(mut line) => {
            line.push(b'\n');
            line
        }
        Err(_) => ENCODE_FAILED.to_vec(),
    }
}

fn decode_success(mut map: Map<String, Value>) -> Result<Outcome, ApiError> {
    let op: Op = typed("op", required(&mut map, "op")?)?;
    let result = required(&mut map, "result")?;
    Ok(match op {
        Op::Status => Outcome::Status(typed("result", result)?),
        Op::Logs => Outcome::Logs(typed("result", result)?),
        Op::Dmesg => Outcome::Dmesg(typed("result", result)?),
        Op::BootLog => Outcome::BootLog(typed("result", result)?),
        Op::Start => Outcome::Start(typed("result", result)?),
        Op::Stop => Outcome::Stop(typed("result", result)?),
        Op::Restart => Outcome::Restart(typed("result", result)?),
        Op::Power => Outcome::Power(typed("result", result)?),
        Op::Exec => Outcome::Exec(typed("result", result)?),
        Op::Reset => Outcome::Reset(typed("result", result)?),
        Op::Revoke => Outcome::Revoke(typed("result", result)?),
    })
}

/// Decodes the error body by hand: a code this build does not know (a
/// newer server's) becomes `internal` with the code kept in the message,
/// rather than hiding the server's explanation behind a decode error.
fn decode_failure(mut map: Map<String, Value>) -> Result<ErrorBody, ApiError> {
    let mut error = match required(&mut map, "error")? {
        Value::Object(e) => e,
        other => {
            return Err(ApiError::Invalid(format!(
                "field `error` must be an object, got {}",
                show(&other)
            )))
        }
    };
    let code: String = typed("error.code", required(&mut error, "code")?)?;
    let message: String = typed("error.message", required(&mut error, "message")?)?;
    Ok(match ErrorCode::from_name(&code) {
        Some(code) => ErrorBody { code, message },
        None => ErrorBody {
            code: ErrorCode::Internal,
            message: format!("{code}: {message}"),
        },
    })
}

fn required(map: &mut Map<String, Value>, field: &str) -> Result<Value, ApiError> {
    map.remove(field)
        .ok_or_else(|| ApiError::Invalid(format!("missing field `{field}`")))
}

fn typed<T: DeserializeOwned>(field: &str, v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Invalid(format!("field `{field}`: {e}")))
}
