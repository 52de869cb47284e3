//! A container's log: every line it printed, in a ring bounded in bytes,
//! kept across its restarts. Each line carries a sequence number (for
//! `logs -f` to continue where it left off), its time since boot and its
//! stream.

use std::collections::VecDeque;
use std::time::Duration;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One recorded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub time: Duration,
    pub stream: Stream,
    pub text: String,
}

/// What a line costs against the bound: its text plus a fixed overhead
/// for the entry itself, so a flood of empty lines is bounded too.
fn cost(text: &str) -> usize {
    text.len() + 32
}

/// The ring. Oldest lines go first when a new one does not fit.
#[derive(Debug, Clone)]
pub struct Ring {
    capacity: usize,
    used: usize,
    entries: VecDeque<Entry>,
    next_seq: u64,
}

impl Ring {
    /// A ring that holds about `capacity` bytes of lines.
    pub fn new(capacity: usize) -> Ring {
        Ring {
            capacity,
            used: 0,
            entries: VecDeque::new(),
            next_seq: 1,
        }
    }

    /// Records a line; returns its sequence number. A line larger than the
    /// whole ring is kept alone (cut to the capacity), so the newest line
    /// is always there.
    pub fn push(&mut self, time: Duration, stream: Stream, text: impl Into<String>) -> u64 {
        let mut text = text.into();
        if cost(&text) > self.capacity {
            let mut cut = self.capacity.saturating_sub(cost(""));
            while cut > 0 && !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let c = cost(&text);
        while self.used + c > self.capacity {
            match self.entries.pop_front() {
                Some(old) => self.used -= cost(&old.text),
                None => break,
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.used += c;
        self.entries.push_back(Entry {
            seq,
            time,
            stream,
            text,
        });
        seq
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .skip(self.entries.len().saturating_sub(n))
    }

    /// Every line after sequence number `seq`, oldest first.
    pub fn after(&self, seq: u64) -> impl Iterator<Item = &Entry> {
        let start = self.entries.partition_point(|e| e.seq <= seq);
        self.entries.iter().skip(start)
    }

    /// The sequence number of the newest line (0 when none yet).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes charged against the capacity.
    pub fn used(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(it: impl Iterator<Item = &'a Entry>) -> Vec<&'a str> {
        it.map(|e| e.text.as_str()).collect()
    }

    #[test]
    fn keeps_newest_within_capacity() {
        // (capacity, lines pushed, lines kept)
        let table: &[(usize, &[&str], &[&str])] = &[
            (1000, &["a", "b", "c"], &["a", "b", "c"]),
            (33 * 2, &["a", "b", "c"], &["b", "c"]),
            (33, &["a", "b", "c"], &["c"]),
            (40, &["0123456789", "x"], &["x"]),
            (100, &[], &[]),
        ];
        for (cap, pushed, kept) in table {
            let mut r = Ring::new(*cap);
            for (i, t) in pushed.iter().enumerate() {
                assert_eq!(
                    r.push(Duration::from_millis(i as u64), Stream::Stdout, *t),
                    i as u64 + 1
                );
            }
            assert_eq!(texts(r.tail(usize::MAX)), *kept, "cap {cap}");
            assert!(r.used() <= *cap, "cap {cap}: used {}", r.used());
        }
    }

    #[test]
    fn a_line_larger_than_the_ring_is_cut_and_kept_alone() {
        let mut r = Ring::new(64);
        r.push(Duration::ZERO, Stream::Stdout, "old");
        r.push(Duration::ZERO, Stream::Stderr, "é".repeat(100));
        assert_eq!(r.len(), 1);
        let e = r.tail(1).next().expect("entry");
        assert_eq!(e.stream, Stream::Stderr);
        assert!(e.text.len() <= 32 && e.text.chars().all(|c| c == 'é'));
        assert!(r.used() <= 64);
    }

    #[test]
    fn tail_and_after() {
        let mut r = Ring::new(10_000);
        for i in 0..10 {
            r.push(Duration::from_secs(i), Stream::Stdout, format!("l{i}"));
        }
        assert_eq!(texts(r.tail(3)), ["l7", "l8", "l9"]);
        assert_eq!(texts(r.tail(0)), Vec::<&str>::new());
        assert_eq!(texts(r.after(8)), ["l8", "l9"]);
        assert_eq!(texts(r.after(10)), Vec::<&str>::new());
        assert_eq!(texts(r.after(0)).len(), 10);
        assert_eq!(r.last_seq(), 10);
    }

    #[test]
    fn sequence_numbers_survive_eviction() {
        let mut r = Ring::new(33 * 3);
        for i in 0..10 {
            r.push(Duration::ZERO, Stream::Stdout, i.to_string());
        }
        let seqs: Vec<u64> = r.tail(10).map(|e| e.seq).collect();
        assert_eq!(seqs, [8, 9, 10]);
        assert_eq!(texts(r.after(8)), ["8", "9"]);
        // A follower that fell behind the ring gets what is left.
        assert_eq!(texts(r.after(2)), ["7", "8", "9"]);
    }
}
