//! Splits a container's output stream into lines for the console and the
//! ring buffer.
//!
//! Bytes arrive in arbitrary chunks from a pipe; a line is complete at `\n`.
//! A line longer than the limit is cut into pieces so a container that never
//! writes a newline cannot make PID 1 buffer without bound. Invalid UTF-8 is
//! replaced, control characters other than tab are escaped so a container
//! cannot drive the operator's terminal.

/// Longest line kept in one piece, in bytes.
pub const MAX_LINE: usize = 4096;

/// Accumulates bytes and yields whole lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feeds a chunk and returns the lines it completes, without newlines.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.take(&chunk[..i], &mut out);
                    out.push(render(&self.partial));
                    self.partial.clear();
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.take(chunk, &mut out);
                    chunk = &[];
                }
            }
        }
        out
    }

    /// Returns the unterminated rest, if any (at end of stream).
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            None
        } else {
            let line = render(&self.partial);
            self.partial.clear();
            Some(line)
        }
    }

    /// Appends bytes without a newline, cutting full-length pieces off.
    fn take(&mut self, mut bytes: &[u8], out: &mut Vec<String>) {
        while self.partial.len() + bytes.len() > MAX_LINE {
            let room = MAX_LINE - self.partial.len();
            self.partial.extend_from_slice(&bytes[..room]);
            out.push(render(&self.partial));
            self.partial.clear();
            bytes = &bytes[room..];
        }
        self.partial.extend_from_slice(bytes);
    }
}

fn render(bytes: &[u8]) -> String {
    // Fast path, most lines: printable ASCII (and tabs) as they are.
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
    {
        return bytes.iter().map(|b| char::from(*b)).collect();
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_control() && ch != '\t' {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (chunks fed, lines produced, rest at end of stream)
    type Row = (
        &'static [&'static [u8]],
        &'static [&'static str],
        Option<&'static str>,
    );

    #[test]
    fn split_table() {
        let table: &[Row] = &[
            (&[b"hello\n"], &["hello"], None),
            (&[b"a\nb\n"], &["a", "b"], None),
            (&[b"par", b"tial\n"], &["partial"], None),
            (&[b"no newline"], &[], Some("no newline")),
            (&[b"x\n", b"y"], &["x"], Some("y")),
            (&[b"\n\n"], &["", ""], None),
            (&[b"crlf\r\n"], &["crlf"], None),
            (&[b"tab\there\n"], &["tab\there"], None),
            (&[b"esc\x1b[31mred\n"], &["esc\\u{1b}[31mred"], None),
            (&[b"bad \xff utf8\n"], &["bad \u{fffd} utf8"], None),
            (&[b"\xe2\x82", b"\xac\n"], &["\u{20ac}"], None),
        ];
        for (chunks, lines, rest) in table {
            let mut s = LineSplitter::default();
            let mut got = Vec::new();
            for c in *chunks {
                got.extend(s.push(c));
            }
            assert_eq!(got, *lines, "chunks {chunks:?}");
            assert_eq!(s.finish().as_deref(), *rest, "rest of {chunks:?}");
        }
    }

    #[test]
    fn long_lines_are_cut_at_the_limit() {
        let mut s = LineSplitter::default();
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut got = s.push(&long[..100]);
        got.extend(s.push(&long[100..]));
        got.extend(s.push(b"\n"));
        let lens: Vec<usize> = got.iter().map(String::len).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 10]);
    }
}
