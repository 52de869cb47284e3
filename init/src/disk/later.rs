//! STATE as PID 1's loop holds it. When nothing in the manifest needs
//! STATE before the first container
//! ([`berth_config::state_use::needed_before_containers`]), stage 1 leaves
//! it to the loop, which sets it up on a thread once the boot's first
//! launches have ended, a request needs it, the node shuts down, or
//! [`STATE_LATEST`] has passed: on a one-CPU node, loading ext4 and
//! mounting STATE would otherwise come before the first container.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::state::State;

/// Sets STATE up: mounts it, or a tmpfs in its place.
pub type Job = Box<dyn FnOnce() -> State + Send>;

/// How long after the loop begins STATE is set up at the latest, even if
/// the boot's first launches are still going on (a long `onboot` job).
pub const STATE_LATEST: Duration = Duration::from_secs(5);

/// Where STATE is in its set-up.
pub enum Slot {
    /// Set up: mounted, or a tmpfs in its place.
    Ready(State),
    /// Not yet begun.
    Later(Job),
    /// Being set up on a thread; `done` reads end of file when it ends.
    Running {
        thread: JoinHandle<State>,
        done: UnixStream,
    },
    /// Taken out for a moment while it changes state.
    Moving,
}

impl Slot {
    /// STATE, once set up.
    pub fn ready(&self) -> Option<&State> {
        match self {
            Slot::Ready(s) => Some(s),
            _ => None,
        }
    }

    /// Starts the job if it has not begun. Without a thread (or a pipe
    /// for it) the job runs here and now.
    pub fn begin(&mut self) {
        if !matches!(self, Slot::Later(_)) {
            return;
        }
        let Slot::Later(job) = std::mem::replace(self, Slot::Moving) else {
            return;
        };
        *self = match UnixStream::pair() {
            Ok((done, tell)) => spawn(job, done, tell),
            Err(e) => {
                log::warn!("STATE: no pipe for its thread ({e}); setting it up now");
                Slot::Ready(job())
            }
        };
    }

    /// What to poll while the job runs.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Slot::Running { done, .. } => Some(done.as_fd()),
            _ => None,
        }
    }

    /// Collects the job's result once its thread has ended; true when
    /// STATE became ready by this call.
    pub fn collect(&mut self) -> bool {
        let finished = matches!(self, Slot::Running { thread, .. } if thread.is_finished());
        if !finished {
            return false;
        }
        let Slot::Running { thread, .. } = std::mem::replace(self, Slot::Moving) else {
            return false;
        };
        let state = thread.join().unwrap_or_else(|_| State::Memory {
            why: "STATE's set-up failed".into(),
            device: None,
        });
        *self = Slot::Ready(state);
        true
    }

    /// Begins the job if needed and waits for it, at most `limit`: the
    /// shutdown, which unmounts everything, must not cut a mount short.
    pub fn settle(&mut self, limit: Duration) {
        self.begin();
        let end = Instant::now() + limit;
        while matches!(self, Slot::Running { .. }) && !self.collect() {
            if Instant::now() >= end {
                log::warn!("STATE: still being set up after {limit:?}; going on");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `job` on its own thread, which closes `tell` when it ends.
fn spawn(job: Job, done: UnixStream, tell: UnixStream) -> Slot {
    // Shared so that the job can still run here if no thread is made.
    let job = Arc::new(Mutex::new(Some(job)));
    let theirs = job.clone();
    let spawned = std::thread::Builder::new()
        .name("berth-state".into())
        .spawn(move || {
            let state = run_once(&theirs);
            drop(tell);
            state
        });
    match spawned {
        Ok(thread) => Slot::Running { thread, done },
        Err(e) => {
            log::warn!("STATE: no thread for its set-up ({e}); setting it up now");
            Slot::Ready(run_once(&job))
        }
    }
}

fn run_once(job: &Mutex<Option<Job>>) -> State {
    let job = job.lock().unwrap_or_else(|p| p.into_inner()).take();
    job.map_or_else(
        || State::Memory {
            why: "STATE's set-up was lost".into(),
            device: None,
        },
        |j| j(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn memory(why: &str) -> State {
        State::Memory {
            why: why.into(),
            device: None,
        }
    }

    #[test]
    fn the_job_runs_only_when_begun_and_its_result_is_collected() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let mut slot = Slot::Later(Box::new(move || {
            flag.store(true, Ordering::SeqCst);
            memory("job")
        }));
        assert!(slot.ready().is_none());
        assert!(slot.fd().is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert!(!ran.load(Ordering::SeqCst), "ran before begin");
        slot.begin();
        assert!(slot.fd().is_some() || slot.ready().is_some());
        let end = Instant::now() + Duration::from_secs(10);
        while !slot.collect() && slot.ready().is_none() {
            assert!(Instant::now() < end, "the job never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(ran.load(Ordering::SeqCst));
        assert_eq!(slot.ready(), Some(&memory("job")));
        // Begun again: nothing happens.
        slot.begin();
        assert_eq!(slot.ready(), Some(&memory("job")));
    }

    #[test]
    fn the_done_stream_reads_end_of_file_when_the_job_ends() {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let mut slot = Slot::Later(Box::new(move || {
            let _ = go_rx.recv();
            memory("late")
        }));
        slot.begin();
        let readable = |slot: &Slot| {
            let fd = slot.fd().expect("running");
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0) > 0
        };
        assert!(!readable(&slot), "readable before the job ended");
        assert!(!slot.collect());
        go_tx.send(()).expect("send");
        assert!(readable(&slot), "not readable after the job ended");
        slot.settle(Duration::from_secs(10));
        assert_eq!(slot.ready(), Some(&memory("late")));
    }

    #[test]
    fn settle_begins_and_waits() {
        let mut slot = Slot::Later(Box::new(|| {
            std::thread::sleep(Duration::from_millis(100));
            memory("settled")
        }));
        slot.settle(Duration::from_secs(10));
        assert_eq!(slot.ready(), Some(&memory("settled")));
    }
}
