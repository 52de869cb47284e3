//! The kernel's log, read from `/dev/kmsg` for `berth dmesg`.
//!
//! Each read of `/dev/kmsg` returns one record, `PRI,SEQ,TIME_US,FLAGS;TEXT`
//! (Documentation/ABI/testing/dev-kmsg); a fresh descriptor starts at the
//! oldest record still in the buffer and `EAGAIN` ends it when opened
//! non-blocking.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;

/// One kernel log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub time_us: u64,
    /// syslog level 0 (emerg) to 7 (debug).
    pub level: u8,
    pub text: String,
}

/// Parses one record; `None` for anything else. Continuation lines (after
/// a newline, starting with a space: `KEY=value` dictionary entries) are
/// dropped; escapes like `\x0a` are left as the kernel wrote them.
pub fn parse(record: &str) -> Option<Record> {
    let (head, text) = record.split_once(';')?;
    let mut fields = head.split(',');
    let pri: u32 = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let time_us = fields.next()?.parse().ok()?;
    let text = text.split('\n').next().unwrap_or_default().to_owned();
    Some(Record {
        seq,
        time_us,
        level: (pri & 7) as u8,
        text,
    })
}

/// The last `n` records in the kernel's buffer.
pub fn read_last(n: usize) -> std::io::Result<Vec<Record>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/kmsg")?;
    let mut out = std::collections::VecDeque::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                if let Some(r) = parse(&String::from_utf8_lossy(&buf[..k])) {
                    if out.len() == n {
                        out.pop_front();
                    }
                    if n > 0 {
                        out.push_back(r);
                    }
                }
            }
            // EPIPE: the record we were at was overwritten; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (record, expected (seq, time_us, level, text))
    type Row = (&'static str, Option<(u64, u64, u8, &'static str)>);

    #[test]
    fn parse_table() {
        let table: &[Row] = &[
            (
                "6,339,5140900,-;NET: Registered protocol family 10\n",
                Some((339, 5_140_900, 6, "NET: Registered protocol family 10")),
            ),
            (
                "30,1,2000,-;berth: starting\n",
                Some((1, 2000, 6, "berth: starting")),
            ),
            (
                "3,12,99,c;oops\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n",
                Some((12, 99, 3, "oops")),
            ),
            (
                "4,7,1,-;semi;colons;kept\n",
                Some((7, 1, 4, "semi;colons;kept")),
            ),
            ("0,0,0,-;\n", Some((0, 0, 0, ""))),
            ("garbage", None),
            ("x,1,2,-;text", None),
            ("6,1;text", None),
            ("", None),
        ];
        for (raw, want) in table {
            let got = parse(raw).map(|r| (r.seq, r.time_us, r.level, r.text));
            let want = want.map(|(s, t, l, x)| (s, t, l, x.to_owned()));
            assert_eq!(got, want, "{raw:?}");
        }
    }
}
