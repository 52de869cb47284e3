//! Finding the end of a request in the bytes read so far, so the server
//! can read in chunks and stop as soon as the limit is passed instead of
//! buffering whatever a client sends.

use super::MAX_REQUEST;

/// What the bytes read so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// No newline yet and still within the limit: read more.
    Incomplete,
    /// A whole request line: `buf[..n]`, its `\n` included.
    Complete(usize),
    /// The line is (or will be) longer than [`MAX_REQUEST`]: answer
    /// `too-large` without reading further.
    TooLarge,
}

/// Looks for the request line in `buf`.
pub fn frame_request(buf: &[u8]) -> Frame {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i < MAX_REQUEST => Frame::Complete(i + 1),
        Some(_) => Frame::TooLarge,
        // The newline would be byte MAX_REQUEST + 1.
        None if buf.len() >= MAX_REQUEST => Frame::TooLarge,
        None => Frame::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let exact = [vec![b' '; MAX_REQUEST - 1], b"\n".to_vec()].concat();
        let over = [vec![b' '; MAX_REQUEST], b"\n".to_vec()].concat();
        let table: &[(&[u8], Frame)] = &[
            (b"", Frame::Incomplete),
            (b"{\"op\"", Frame::Incomplete),
            (b"{}\n", Frame::Complete(3)),
            (b"{}\nrest", Frame::Complete(3)),
            (b"\n", Frame::Complete(1)),
            (&exact, Frame::Complete(MAX_REQUEST)),
            (&over, Frame::TooLarge),
            (&over[..MAX_REQUEST], Frame::TooLarge),
            (&over[..MAX_REQUEST - 1], Frame::Incomplete),
        ];
        for (buf, want) in table {
            assert_eq!(frame_request(buf), *want, "{} bytes", buf.len());
        }
    }
}
