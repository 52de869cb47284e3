//! Answers that read from the disk (an earlier boot's log: up to 8 MiB
//! from STATE, filtered) are made on a short-lived thread, so neither a
//! slow disk nor a client asking again and again holds up PID 1's loop.
//! The answer comes back on a channel, with one byte on a socket pair the
//! loop polls; at most [`MAX_READERS`] run at once, and a request beyond
//! that is answered at once with an error to try again.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use berth_supervisor::api::{BootLogResult, ErrorCode, Outcome, Response};
use berth_supervisor::control::ConnId;

/// Reader threads at once.
const MAX_READERS: usize = 2;

#[derive(Debug)]
pub(crate) struct Readers {
    tx: Sender<(ConnId, Response)>,
    rx: Receiver<(ConnId, Response)>,
    wake_r: UnixStream,
    wake_w: UnixStream,
    running: Arc<AtomicUsize>,
}

impl Readers {
    pub fn new() -> std::io::Result<Readers> {
        let (wake_r, wake_w) = UnixStream::pair()?;
        wake_r.set_nonblocking(true)?;
        wake_w.set_nonblocking(true)?;
        let (tx, rx) = channel();
        Ok(Readers {
            tx,
            rx,
            wake_r,
            wake_w,
            running: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// What the loop polls for answers.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake_r.as_fd()
    }

    /// Starts reading boot `boot`'s lines for connection `conn`; the error
    /// to answer at once when no reader can start.
    pub fn boot_log(
        &mut self,
        conn: ConnId,
        boot: i32,
        name: Option<String>,
        lines: Option<usize>,
    ) -> Result<(), Box<Response>> {
        let busy = || {
            Box::new(Response::error(
                ErrorCode::Timeout,
                format!("boot-log: {MAX_READERS} earlier boots' logs are being read; ask again"),
            ))
        };
        if self.running.load(Ordering::Acquire) >= MAX_READERS {
            return Err(busy());
        }
        let (tx, running) = (self.tx.clone(), self.running.clone());
        let wake = self.wake_w.try_clone().map_err(|_| busy())?;
        running.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name("berth-reader".into())
            .spawn(move || {
                let dir = crate::journal::dir();
                let response = match crate::journal::read(&dir, boot, name.as_deref(), lines) {
                    Ok(lines) => Response::Success(Outcome::BootLog(BootLogResult { boot, lines })),
                    Err(e) => Response::error(ErrorCode::NotFound, crate::fatal::chain(&e)),
                };
                let _ = tx.send((conn, response));
                running.fetch_sub(1, Ordering::AcqRel);
                let _ = (&wake).write(&[1]);
            });
        if spawned.is_err() {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        Ok(())
    }

    /// The answers ready.
    pub fn take(&mut self) -> Vec<(ConnId, Response)> {
        let mut buf = [0u8; 64];
        while matches!((&self.wake_r).read(&mut buf), Ok(n) if n > 0) {}
        self.rx.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_through_the_wake_socket() {
        let mut readers = Readers::new().expect("readers");
        // No STATE in a host test: the read fails, and the failure is the
        // answer.
        readers.boot_log(7, -1, None, None).expect("start");
        let mut fds = [nix::poll::PollFd::new(
            readers.fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).expect("poll");
        assert_eq!(n, 1, "no wake-up within 5 s");
        let mut answers = Vec::new();
        for _ in 0..50 {
            answers.extend(readers.take());
            if !answers.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].0, 7);
        assert!(
            matches!(answers[0].1, Response::Failure(_)),
            "{:?}",
            answers[0].1
        );
    }
}
