//! Turning a command's output into the text of an `exec` answer: JSON
//! strings are UTF-8, and the answer must stay within what a client
//! accepts, so invalid bytes are replaced and each stream is cut at a
//! limit, on a character boundary so the cut never makes a U+FFFD of its
//! own.

/// `bytes` as text of at most `limit` bytes, and whether anything was left
/// out. Walks the input only up to the limit, however long it is.
pub(super) fn cut_text(bytes: &[u8], limit: usize) -> (String, bool) {
    let mut text = String::with_capacity(bytes.len().min(limit));
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let room = limit - text.len();
        if valid.len() > room {
            text.push_str(&valid[..floor_boundary(valid, room)]);
            return (text, true);
        }
        text.push_str(valid);
        if !chunk.invalid().is_empty() {
            if char::REPLACEMENT_CHARACTER.len_utf8() > limit - text.len() {
                return (text, true);
            }
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    (text, false)
}

/// The largest character boundary of `s` at or below `at` (`at` <= len).
fn floor_boundary(s: &str, at: usize) -> usize {
    // Terminates: 0 is always a boundary.
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ExecResult, EXEC_OUTPUT_LIMIT};

    #[test]
    fn cuts() {
        // (input, limit, text, cut)
        let table: &[(&[u8], usize, &str, bool)] = &[
            (b"", 0, "", false),
            (b"", 4, "", false),
            (b"abcd", 4, "abcd", false),
            (b"abcde", 4, "abcd", true),
            (b"a", 0, "", true),
            // "é" is two bytes: never half of it.
            ("abcé".as_bytes(), 4, "abc", true),
            ("abé".as_bytes(), 4, "abé", false),
            ("€€".as_bytes(), 5, "€", true),
            // Invalid bytes become U+FFFD (three bytes), one per bad
            // sequence, and count as such against the limit.
            (b"a\xffb", 5, "a\u{fffd}b", false),
            (b"a\xffb", 4, "a\u{fffd}", true),
            (b"ab\xff", 4, "ab", true),
            (b"\xff\xfe", 6, "\u{fffd}\u{fffd}", false),
            // A sequence cut short by the end of the output.
            (b"ok\xe2\x82", 8, "ok\u{fffd}", false),
        ];
        for (input, limit, text, cut) in table {
            let got = cut_text(input, *limit);
            assert_eq!(got, ((*text).to_owned(), *cut), "{input:?} at {limit}");
            assert!(got.0.len() <= *limit, "{input:?} at {limit}");
        }
    }

    #[test]
    fn results_are_cut_per_stream() {
        let full = vec![b'x'; EXEC_OUTPUT_LIMIT];
        let over = vec![b'y'; 3 * EXEC_OUTPUT_LIMIT];
        let r = ExecResult::from_output(0, &full, b"warn\xff\n");
        assert_eq!(
            (r.stdout.len(), r.stderr.as_str()),
            (EXEC_OUTPUT_LIMIT, "warn\u{fffd}\n")
        );
        assert!(!r.truncated);
        let r = ExecResult::from_output(137, b"out", &over);
        assert_eq!(
            (r.stdout.as_str(), r.stderr.len()),
            ("out", EXEC_OUTPUT_LIMIT)
        );
        assert!(r.truncated);
        assert_eq!(r.exit_code, 137);
        let r = ExecResult::from_output(1, &over, b"");
        assert_eq!(r.stdout.len(), EXEC_OUTPUT_LIMIT);
        assert!(r.truncated);
    }
}
