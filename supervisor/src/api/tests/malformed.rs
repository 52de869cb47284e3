use crate::api::*;
use ErrorCode::{BadRequest, TooLarge, UnsupportedVersion};

/// (input, code, fragment of the message)
type Row = (Vec<u8>, ErrorCode, &'static str);

fn nested(depth: usize) -> Vec<u8> {
    let mut v = br#"{"version":1,"op":"status","x":"#.to_vec();
    v.extend(std::iter::repeat_n(b'[', depth));
    v.extend(std::iter::repeat_n(b']', depth));
    v.push(b'}');
    v
}

fn padded(len: usize) -> Vec<u8> {
    let mut v = br#"{"version":1,"op":"status"}"#.to_vec();
    v.resize(len - 1, b' ');
    v.push(b'\n');
    v
}

fn envelope_rows() -> Vec<Row> {
    vec![
        (b"".to_vec(), BadRequest, "empty"),
        (b"\n".to_vec(), BadRequest, "empty"),
        (b"  \r\n".to_vec(), BadRequest, "empty"),
        (b"status\n".to_vec(), BadRequest, "not JSON"),
        (b"{\"version\":1,".to_vec(), BadRequest, "not JSON"),
        (
            b"[1,2]".to_vec(),
            BadRequest,
            "not a JSON object but an array",
        ),
        (b"\"status\"".to_vec(), BadRequest, "but a string"),
        (b"null".to_vec(), BadRequest, "but null"),
        (
            br#"{"version":1,"op":"status"} x"#.to_vec(),
            BadRequest,
            "trailing",
        ),
        (
            b"{\"version\":1,\"op\":\"status\"}\n{\"version\":1,\"op\":\"status\"}\n".to_vec(),
            BadRequest,
            "trailing",
        ),
        (
            br#"{"version":1}"#.to_vec(),
            BadRequest,
            "missing field `op`",
        ),
        (
            br#"{"version":1,"op":5}"#.to_vec(),
            BadRequest,
            "`op` must be a string, got 5",
        ),
        (
            br#"{"version":1,"op":"frob"}"#.to_vec(),
            BadRequest,
            "unknown op \"frob\"",
        ),
        (
            br#"{"version":1,"op":"Status"}"#.to_vec(),
            BadRequest,
            "unknown op \"Status\"",
        ),
        (
            br#"{"version":1,"op":"logs"}"#.to_vec(),
            BadRequest,
            "logs: missing field `name`",
        ),
        (
            br#"{"version":1,"op":"restart"}"#.to_vec(),
            BadRequest,
            "restart: missing field `name`",
        ),
        (
            br#"{"version":1,"op":"start","name":5}"#.to_vec(),
            BadRequest,
            "start: field `name` must be a non-empty string without NUL, got 5",
        ),
    ]
}

fn field_rows() -> Vec<Row> {
    vec![
        (
            br#"{"version":1,"op":"stop","name":""}"#.to_vec(),
            BadRequest,
            "field `name`",
        ),
        (
            br#"{"version":1,"op":"stop","name":null}"#.to_vec(),
            BadRequest,
            "got null",
        ),
        (
            br#"{"version":1,"op":"stop","name":"a\u0000b"}"#.to_vec(),
            BadRequest,
            "without NUL",
        ),
        (
            br#"{"version":1,"op":"logs","name":"web","lines":"ten"}"#.to_vec(),
            BadRequest,
            "logs: field `lines` must be a non-negative integer or null, got \"ten\"",
        ),
        (
            br#"{"version":1,"op":"logs","name":"w","lines":-1}"#.to_vec(),
            BadRequest,
            "got -1",
        ),
        (
            br#"{"version":1,"op":"dmesg","lines":1.5}"#.to_vec(),
            BadRequest,
            "`lines`",
        ),
        (
            br#"{"version":1,"op":"logs","name":"w","follow":"yes"}"#.to_vec(),
            BadRequest,
            "`follow` must be true or false",
        ),
        (
            br#"{"version":1,"op":"power"}"#.to_vec(),
            BadRequest,
            "missing field `action`",
        ),
        (
            br#"{"version":1,"op":"power","action":"explode"}"#.to_vec(),
            BadRequest,
            "`action` must be one of \"reboot\", \"poweroff\", \"halt\", got \"explode\"",
        ),
    ]
}

fn exec_rows() -> Vec<Row> {
    vec![
        (
            br#"{"version":1,"op":"exec","name":"w","argv":[]}"#.to_vec(),
            BadRequest,
            "exec: field `argv` must be a non-empty array of strings without NUL, got []",
        ),
        (
            br#"{"version":1,"op":"exec","name":"w","argv":[1]}"#.to_vec(),
            BadRequest,
            "exec: field `argv` must be a non-empty array of strings without NUL, got [1]",
        ),
        (
            br#"{"version":1,"op":"exec","name":"w","argv":["sh",null]}"#.to_vec(),
            BadRequest,
            "field `argv`",
        ),
        (
            br#"{"version":1,"op":"exec","name":"w","argv":["a\u0000b"]}"#.to_vec(),
            BadRequest,
            "field `argv`",
        ),
        (
            br#"{"version":1,"op":"exec","name":"w","argv":"sh -c id"}"#.to_vec(),
            BadRequest,
            "field `argv` must be a non-empty array of strings without NUL, got \"sh -c id\"",
        ),
        (
            br#"{"version":1,"op":"exec","name":"w","argv":null}"#.to_vec(),
            BadRequest,
            "field `argv`",
        ),
        (
            br#"{"version":1,"op":"exec","name":"w"}"#.to_vec(),
            BadRequest,
            "exec: missing field `argv`",
        ),
        (
            br#"{"version":1,"op":"exec","argv":["id"]}"#.to_vec(),
            BadRequest,
            "exec: missing field `name`",
        ),
        (
            br#"{"version":1,"op":"exec","name":"","argv":["id"]}"#.to_vec(),
            BadRequest,
            "exec: field `name`",
        ),
        (
            br#"{"op":"status"}"#.to_vec(),
            BadRequest,
            "missing field `version`",
        ),
        (
            br#"{"version":"1","op":"status"}"#.to_vec(),
            BadRequest,
            "`version` must be an integer",
        ),
        (
            br#"{"version":null,"op":"status"}"#.to_vec(),
            BadRequest,
            "`version`",
        ),
        (
            br#"{"version":2,"op":"status"}"#.to_vec(),
            UnsupportedVersion,
            "version 2 is not",
        ),
        (
            br#"{"version":0,"op":"frob"}"#.to_vec(),
            UnsupportedVersion,
            "version 0",
        ),
        (
            br#"{"version":-1,"op":"status"}"#.to_vec(),
            UnsupportedVersion,
            "version -1",
        ),
    ]
}

fn size_rows() -> Vec<Row> {
    vec![
        (padded(MAX_REQUEST + 1), TooLarge, "65537 bytes"),
        (vec![b'x'; 1 << 20], TooLarge, "limit of 65536"),
        (
            b"{\"version\":1,\"op\":\"st\xffatus\"}".to_vec(),
            BadRequest,
            "not UTF-8 (invalid byte at offset 21)",
        ),
        (b"\xc3".to_vec(), BadRequest, "not UTF-8"),
        (b"\0".to_vec(), BadRequest, "not JSON"),
        (
            b"{\"version\":1,\0\"op\":\"status\"}".to_vec(),
            BadRequest,
            "not JSON",
        ),
        (
            b"{\"version\":1,\"op\":\"stop\",\"name\":\"a\0b\"}".to_vec(),
            BadRequest,
            "control character",
        ),
        (nested(10_000), BadRequest, "recursion limit"),
        (b"[".repeat(100_000).to_vec(), TooLarge, ""),
        (
            b"{\"a\":".repeat(10_000).to_vec(),
            BadRequest,
            "recursion limit",
        ),
    ]
}

#[test]
fn malformed_requests_get_the_right_code() {
    let table: Vec<Row> = [envelope_rows(), field_rows(), exec_rows(), size_rows()]
        .into_iter()
        .flatten()
        .collect();
    for (input, code, fragment) in &table {
        let shown = String::from_utf8_lossy(&input[..input.len().min(60)]);
        let err = match decode_request(input) {
            Ok(req) => panic!("{shown:?}: decoded as {req:?}"),
            Err(e) => e,
        };
        assert_eq!(err.code(), *code, "{shown:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(fragment),
            "{shown:?}: {msg:?} lacks {fragment:?}"
        );
        assert!(!msg.ends_with('.'), "{msg:?}");
    }
}

#[test]
fn limits_are_inclusive() {
    assert_eq!(decode_request(&padded(MAX_REQUEST)), Ok(Request::Status));
    assert_eq!(decode_request(&nested(100)), Ok(Request::Status));
}

#[test]
fn malformed_responses_are_rejected() {
    let table: &[(&str, &str)] = &[
        ("", "empty"),
        (r#"{"ok":true}"#, "missing field `version`"),
        (r#"{"version":7,"ok":true}"#, "version 7"),
        (r#"{"version":1}"#, "missing field `ok`"),
        (r#"{"version":1,"ok":"yes"}"#, "`ok` must be true or false"),
        (
            r#"{"version":1,"ok":true,"result":{}}"#,
            "missing field `op`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"status"}"#,
            "missing field `result`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"nope","result":{}}"#,
            "field `op`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"exec","result":{}}"#,
            "field `result`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"exec","result":{"exit_code":"1","stdout":"","stderr":"","truncated":false}}"#,
            "field `result`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"exec","result":{"exit_code":0,"stdout":"","stderr":""}}"#,
            "missing field `truncated`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"exec","result":{"exit_code":0,"stdout":null,"stderr":"","truncated":false}}"#,
            "field `result`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"exec","result":{"exit_code":4294967296,"stdout":"","stderr":"","truncated":false}}"#,
            "field `result`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"status","result":{}}"#,
            "field `result`",
        ),
        (
            r#"{"version":1,"ok":true,"op":"logs","result":{"lines":[{"seq":1}]}}"#,
            "field `result`",
        ),
        (r#"{"version":1,"ok":false}"#, "missing field `error`"),
        (
            r#"{"version":1,"ok":false,"error":"bad"}"#,
            "`error` must be an object",
        ),
        (
            r#"{"version":1,"ok":false,"error":{"code":"internal"}}"#,
            "missing field `message`",
        ),
        (
            r#"{"version":1,"ok":false,"error":{"code":3,"message":""}}"#,
            "error.code",
        ),
    ];
    for (line, fragment) in table {
        match decode_response(line.as_bytes()) {
            Ok(r) => panic!("{line}: decoded as {r:?}"),
            Err(e) => assert!(e.to_string().contains(fragment), "{line}: {e}"),
        }
    }
    for line in [
        r#"{"version":1}"#,
        r#"{"version":1,"line":{"seq":1}}"#,
        r#"{"line":{"seq":1,"time_ms":0,"stream":"stdout","text":""}}"#,
        r#"{"version":1,"line":{"seq":1,"time_ms":0,"stream":"stdin","text":""}}"#,
    ] {
        assert!(decode_follow_line(line.as_bytes()).is_err(), "{line}");
    }
}
