//! The check shared by the `control_decode` fuzz target
//! (`fuzz/fuzz_targets/control_decode.rs`) and the stable tests that
//! replay its corpus (`supervisor/tests/fuzz_replay.rs`).
//!
//! [`check_decode`] feeds arbitrary bytes to every decoder of the control
//! protocol, as a client (or a broken server) could send them, and asserts
//! what must hold for all of them: no panic; framing that never asks for
//! more than [`MAX_REQUEST`] bytes; a size check that comes before any
//! parsing; and for whatever decodes, an encoding that decodes back to the
//! same value and is not much longer than the input. A violated property
//! panics with a message naming it, which is how libFuzzer and `cargo test`
//! report a finding; nothing here runs in PID 1.

use super::{
    decode_follow_line, decode_request, decode_response, encode_follow_line, encode_request,
    encode_response, frame_request, ApiError, ExecResult, Frame, EXEC_OUTPUT_LIMIT, MAX_REQUEST,
};

/// Bytes an encoding may add to what it decoded from: `version` and the
/// defaulted fields (`"follow":false`) written out, and the newline.
const ENCODE_SLACK: usize = 64;

/// Runs every decoder on `data` and checks the outcomes.
pub fn check_decode(data: &[u8]) {
    check_frame(data);
    check_request(data);
    if let Frame::Complete(n) = frame_request(data) {
        // What the server decodes: the first line only.
        check_request(&data[..n]);
    }
    check_response(data);
    check_follow_line(data);
    check_exec_output(data);
}

/// `frame_request` on every prefix length a reader could stop at would be
/// quadratic; the whole buffer, and the buffer cut at the limit, cover
/// both answers for a line that is too long.
fn check_frame(data: &[u8]) {
    for buf in [data, &data[..data.len().min(MAX_REQUEST)]] {
        match frame_request(buf) {
            Frame::Complete(n) => {
                assert!(
                    (1..=MAX_REQUEST).contains(&n) && n <= buf.len(),
                    "frame of {n} bytes"
                );
                assert_eq!(buf[n - 1], b'\n', "frame does not end at a newline");
                assert!(!buf[..n - 1].contains(&b'\n'), "frame holds two lines");
            }
            Frame::TooLarge => {
                let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
                assert!(line_end >= MAX_REQUEST, "{line_end} bytes called too large");
            }
            Frame::Incomplete => {
                assert!(
                    buf.len() < MAX_REQUEST && !buf.contains(&b'\n'),
                    "{} bytes called incomplete",
                    buf.len()
                );
            }
        }
    }
}

/// Longest message of a request error: the server sends it back to a
/// client that may have sent 64 KiB, so it quotes excerpts only
/// (`envelope::show`).
const REQUEST_ERROR_MAX: usize = 1024;

/// Checks an error's message against `limit` bytes.
fn check_error(e: &ApiError, limit: usize) {
    let message = e.to_string();
    assert!(!message.is_empty(), "empty error message");
    assert!(
        message.len() <= limit,
        "error message of {} bytes: {}",
        message.len(),
        message.chars().take(200).collect::<String>()
    );
    let _ = e.response();
}

/// A client's own decoders may quote the server's answer in full (it is
/// trusted, and bounded by `MAX_RESPONSE`), escaped.
fn answer_error_limit(data: &[u8]) -> usize {
    8 * data.len() + 1024
}

fn check_request(data: &[u8]) {
    let decoded = decode_request(data);
    if data.len() > MAX_REQUEST {
        assert_eq!(
            decoded,
            Err(ApiError::TooLarge { len: data.len() }),
            "a request over the limit was parsed"
        );
        return;
    }
    match decoded {
        Ok(request) => {
            let line = encode_request(&request);
            assert!(
                line.len() <= data.len() + ENCODE_SLACK,
                "{} bytes decoded to {request:?}, which encodes to {} bytes",
                data.len(),
                line.len()
            );
            assert_eq!(
                decode_request(&line),
                Ok(request),
                "request does not survive encoding"
            );
        }
        Err(e) => check_error(&e, REQUEST_ERROR_MAX),
    }
}

fn check_response(data: &[u8]) {
    match decode_response(data) {
        Ok(response) => {
            let line = encode_response(&response);
            assert_eq!(
                decode_response(&line),
                Ok(response),
                "response does not survive encoding"
            );
        }
        Err(e) => check_error(&e, answer_error_limit(data)),
    }
}

fn check_follow_line(data: &[u8]) {
    match decode_follow_line(data) {
        Ok(line) => {
            let encoded = encode_follow_line(&line);
            assert_eq!(
                decode_follow_line(&encoded),
                Ok(line),
                "follow line does not survive encoding"
            );
        }
        Err(e) => check_error(&e, answer_error_limit(data)),
    }
}

/// The other bytes the server turns into protocol text: a command's
/// output, cut for an `exec` answer.
fn check_exec_output(data: &[u8]) {
    let (out, err) = data.split_at(data.len() / 2);
    let r = ExecResult::from_output(0, out, err);
    for (text, raw) in [(&r.stdout, out), (&r.stderr, err)] {
        assert!(text.len() <= EXEC_OUTPUT_LIMIT, "{} bytes kept", text.len());
        // One U+FFFD (3 bytes) per invalid byte at most.
        assert!(text.len() <= 3 * raw.len(), "output grew past 3x");
        if let Ok(valid) = std::str::from_utf8(raw) {
            if valid.len() <= EXEC_OUTPUT_LIMIT {
                assert_eq!(text.as_str(), valid, "valid output changed");
            }
        }
    }
    let fits = |raw: &[u8]| raw.len() <= EXEC_OUTPUT_LIMIT;
    if fits(out) && fits(err) {
        // Replacement can only grow text past the limit; nothing is cut
        // otherwise.
        let grown = r.stdout.len() + r.stderr.len() > out.len() + err.len();
        assert!(!r.truncated || grown, "cut output that fits");
    }
}
