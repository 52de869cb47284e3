//! The `control_decode` fuzz target's check on stable: every committed
//! input of `fuzz/corpus/control_decode` replayed through
//! [`berth_supervisor::api::fuzz::check_decode`], then property tests:
//! random bytes, JSON token soup and mutated seeds never make a decoder
//! panic; generated requests survive encoding; and a client that never
//! sends a newline is cut off at [`MAX_REQUEST`] bytes, whatever size it
//! claims or sends. The seed is fixed so CI runs are reproducible;
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` widen a local run.

use berth_supervisor::api::fuzz::check_decode;
use berth_supervisor::api::{
    decode_request, encode_request, frame_request, ApiError, Frame, Power, Request, MAX_REQUEST,
};
use proptest::prelude::*;

#[path = "../../fuzz/support.rs"]
mod support;
use support::{mutated, run};

#[test]
fn corpus_replays() {
    support::replay("control_decode", check_decode);
}

#[test]
fn random_bytes() {
    run(512, prop::collection::vec(any::<u8>(), 0..256), |bytes| {
        check_decode(&bytes)
    });
}

#[test]
fn json_token_soup() {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\"version\":1",
        "\"version\":",
        "1",
        "2",
        "-1",
        "1e400",
        "18446744073709551616",
        "0.5",
        "null",
        "true",
        "false",
        "\"op\":",
        "\"status\"",
        "\"logs\"",
        "\"exec\"",
        "\"power\"",
        "\"halt\"",
        "\"name\":",
        "\"web\"",
        "\"\"",
        "\"lines\":",
        "\"follow\":",
        "\"argv\":",
        "[\"sh\"]",
        "\"action\":",
        "\"ok\":",
        "\"result\":",
        "\"error\":",
        "{\"code\":\"not-found\",\"message\":\"x\"}",
        "\"line\":",
        "{\"seq\":1,\"time_ms\":2,\"stream\":\"stdout\",\"text\":\"t\"}",
        "\\u0000",
        "\\ud800",
        "\\n",
        "\n",
        "\r\n",
        " ",
        "\u{0}",
        "é",
        "\u{feff}",
    ];
    let soup = prop::collection::vec(prop::sample::select(TOKENS), 0..64)
        .prop_map(|t| t.concat().into_bytes());
    run(1024, soup, |bytes| check_decode(&bytes));
}

#[test]
fn mutated_seeds() {
    mutated("control_decode", 384, check_decode);
}

fn request() -> impl Strategy<Value = Request> {
    let name = "[^\\x00]{1,16}";
    let lines = prop::option::of(any::<usize>());
    let argv = prop::collection::vec("[^\\x00]{0,8}", 1..4);
    prop_oneof![
        Just(Request::Status),
        (name, lines.clone(), any::<bool>()).prop_map(|(name, lines, follow)| Request::Logs {
            name,
            lines,
            follow
        }),
        lines.prop_map(|lines| Request::Dmesg { lines }),
        name.prop_map(|name| Request::Start { name }),
        name.prop_map(|name| Request::Stop { name }),
        name.prop_map(|name| Request::Restart { name }),
        prop::sample::select(Power::ALL.to_vec()).prop_map(|action| Request::Power { action }),
        (name, argv).prop_map(|(name, argv)| Request::Exec { name, argv }),
        any::<bool>().prop_map(|state| Request::Reset { state }),
        name.prop_map(|serial| Request::Revoke { serial }),
    ]
}

#[test]
fn generated_requests_round_trip() {
    run(512, request(), |request| {
        let line = encode_request(&request);
        assert_eq!(frame_request(&line), Frame::Complete(line.len()));
        assert_eq!(decode_request(&line), Ok(request));
        check_decode(&line);
    });
}

/// What the server's read loop does: append each chunk as it arrives and
/// stop as soon as the frame is complete or too large. However the
/// client sends its bytes, the buffer never holds more than the limit
/// plus one read.
#[test]
fn a_client_without_newline_is_cut_off_at_the_limit() {
    const READ: usize = 4096;
    let strategy = (
        prop::collection::vec(1usize..=READ, 1..64),
        any::<u8>(),
        any::<bool>(),
    );
    run(64, strategy, |(chunks, fill, newline_late)| {
        // A client claiming a line far past the limit: 1 MiB of bytes
        // without a newline, maybe one at the very end.
        let fill = if fill == b'\n' { b' ' } else { fill };
        let mut sent = vec![fill; 1 << 20];
        if newline_late {
            sent.push(b'\n');
        }
        let mut buf = Vec::new();
        let mut at = 0;
        let mut sizes = chunks.iter().cycle();
        let verdict = loop {
            let size = sizes.next().copied().unwrap_or(READ);
            let end = sent.len().min(at + size);
            buf.extend_from_slice(&sent[at..end]);
            at = end;
            match frame_request(&buf) {
                Frame::Incomplete if at < sent.len() => {}
                other => break other,
            }
        };
        assert_eq!(verdict, Frame::TooLarge);
        assert!(
            buf.len() < MAX_REQUEST + READ,
            "buffered {} bytes",
            buf.len()
        );
    });
}

#[test]
fn an_oversized_line_is_refused_before_parsing() {
    // 16 MiB of nesting would take serde_json's recursion check a while
    // to reach and a lot of memory to hold as values; the size check
    // answers first (a parse would answer a syntax or depth error, not
    // TooLarge).
    for filler in [b'[', b'{', b' ', b'"'] {
        let mut line = vec![filler; 16 << 20];
        line.push(b'\n');
        assert_eq!(
            decode_request(&line),
            Err(ApiError::TooLarge { len: line.len() })
        );
    }
    let limit = [vec![b' '; MAX_REQUEST], b"\n".to_vec()].concat();
    assert_eq!(frame_request(&limit), Frame::TooLarge);
    check_decode(&limit);
}
