//! Judging the kernel's answers to a batch (pure).
//!
//! The kernel runs the whole batch inside our `sendmsg` and queues its
//! answers before that returns: an error for every command that failed,
//! and an ack for every command that asked for one (net/netfilter/
//! nfnetlink.c, `nfnetlink_rcv_batch`), in command order. It does not stop
//! at the first failure (later commands may fail only because an earlier
//! one did), then aborts the whole batch. Only the last command asks for
//! an ack: its answer, success or error, comes last, so it tells that all
//! answers are in, and a batch with a thousand published ports still
//! queues only its errors and one ack, not a datagram per command.
//!
//! The verdict is the failure with the lowest sequence number, named by
//! its command. A failure numbered as the batch's begin marker is about
//! the batch as a whole (malformed, or out of memory), and nothing else
//! comes after it. ENOENT on a chain or rule usually means its module is
//! not loaded (the kernel's own autoload needs modprobe, which the node
//! does not have), so such an error names the module.

use std::collections::BTreeMap;

use super::message::Batch;
use super::Error;
use crate::rtnl::reply::{Frame, Kind};
use crate::rtnl::KernelError;

#[derive(Debug)]
pub(crate) struct Tally<'a> {
    batch: &'a Batch,
    /// The last command, the one that asks for an ack.
    last: Option<u32>,
    answered: bool,
    failures: BTreeMap<u32, KernelError>,
}

impl<'a> Tally<'a> {
    pub(crate) fn new(batch: &'a Batch) -> Tally<'a> {
        // The labels are: begin marker, the commands, end marker.
        let last = batch
            .labels
            .len()
            .checked_sub(2)
            .filter(|n| *n > 0)
            .map(|n| batch.labels[n].0);
        Tally {
            batch,
            last,
            answered: last.is_none(),
            failures: BTreeMap::new(),
        }
    }

    pub(crate) fn record(&mut self, frame: Frame<'_>) {
        let known = self.batch.label(frame.seq).is_some();
        match frame.kind {
            Kind::Error(e) if known => {
                self.failures.entry(frame.seq).or_insert(e);
            }
            Kind::Ack | Kind::Error(_) | Kind::Data { .. } | Kind::Done | Kind::Noop => {}
        }
        if Some(frame.seq) == self.last {
            self.answered = true;
        }
    }

    /// Whether all answers are in: the last command's, or a failure of the
    /// batch as a whole.
    pub(crate) fn complete(&self) -> bool {
        self.answered || self.batch_failed()
    }

    pub(crate) fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }

    fn batch_failed(&self) -> bool {
        self.batch
            .labels
            .first()
            .is_some_and(|(begin, _)| self.failures.contains_key(begin))
    }

    pub(crate) fn verdict(self) -> Result<(), Error> {
        // The lowest sequence number first, allowing for wrap-around.
        let base = self.batch.labels.first().map_or(0, |(seq, _)| *seq);
        let first = self
            .failures
            .into_iter()
            .min_by_key(|(seq, _)| seq.wrapping_sub(base));
        if let Some((seq, cause)) = first {
            let mut what = self.batch.label(seq).unwrap_or("the batch").to_string();
            if let (libc::ENOENT, Some(module)) = (cause.errno, self.batch.module(seq)) {
                what.push_str(&format!(" (needs kernel module {module})"));
            }
            return Err(Error::Kernel { what, cause });
        }
        match self.last {
            Some(seq) if !self.answered => Err(Error::NoAnswer {
                what: self.batch.label(seq).unwrap_or("the batch").to_string(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        Batch {
            bytes: Vec::new(),
            labels: vec![
                (10, "start the batch".into()),
                (11, "create table ip berth".into()),
                (
                    12,
                    "add rule to prerouting (tcp port 8080 to 10.88.0.2:80)".into(),
                ),
                (13, "commit the batch".into()),
            ],
            modules: vec![(12, "nft_nat")],
        }
    }

    fn ack(seq: u32) -> Frame<'static> {
        Frame {
            seq,
            kind: Kind::Ack,
        }
    }

    fn fail(seq: u32, errno: i32) -> Frame<'static> {
        Frame {
            seq,
            kind: Kind::Error(KernelError {
                errno,
                message: None,
            }),
        }
    }

    /// Name, answers, complete afterwards, verdict.
    type Row = (
        &'static str,
        Vec<Frame<'static>>,
        bool,
        Result<(), &'static str>,
    );

    #[test]
    fn verdicts() {
        let table: Vec<Row> = vec![
            ("last command acked", vec![ack(12)], true, Ok(())),
            (
                "last command failed",
                vec![fail(12, libc::ENOENT)],
                true,
                Err("add rule to prerouting (tcp port 8080 to 10.88.0.2:80) (needs kernel module nft_nat): No such file or directory (os error 2)"),
            ),
            (
                "first failure wins",
                vec![fail(11, libc::EPERM), fail(12, libc::ENOENT)],
                true,
                Err("create table ip berth: Operation not permitted (os error 1)"),
            ),
            (
                "failure, then no more answers",
                vec![fail(11, libc::EPERM)],
                false,
                Err("create table ip berth: Operation not permitted (os error 1)"),
            ),
            (
                "batch refused",
                vec![fail(10, libc::EINVAL)],
                true,
                Err("start the batch: Invalid argument (os error 22)"),
            ),
            (
                "no answer",
                vec![],
                false,
                Err("the kernel did not answer add rule to prerouting (tcp port 8080 to 10.88.0.2:80)"),
            ),
            ("stale answers ignored", vec![fail(3, libc::EPERM), ack(12)], true, Ok(())),
        ];
        let batch = batch();
        for (name, frames, complete, want) in table {
            let mut tally = Tally::new(&batch);
            for frame in frames {
                tally.record(frame);
            }
            assert_eq!(tally.complete(), complete, "{name}");
            let got = tally.verdict().map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{name}");
        }
    }
}
