//! Launches and `exec`s on a worker thread, so that PID 1's loop goes on
//! serving the console, the network, the control socket and its timers
//! while libcontainer creates a container (a few hundred milliseconds
//! each, under emulation more).
//!
//! The worker takes [`Job`]s in order and answers each with a [`Report`]
//! on a channel, writing one byte to a pipe the loop polls. Between a
//! container's creation and its start, the worker asks the loop to prepare
//! it ([`Report::Prepare`]: the bridge, loopback) and waits for the answer,
//! so everything about the network stays on the loop's thread.
//!
//! libcontainer waits for its own intermediate process with `waitpid` on
//! that pid, so the loop must not reap with `waitpid(-1)` while the worker
//! has a job: [`Launcher::busy`] tells it when reaping must wait. The
//! worker gets one job at a time, so reaping waits for one launch at most,
//! never for a whole queue of them.
//!
//! The worker never logs: what it has to say goes into its reports, and
//! the loop logs it. So the console's lock is never held by the thread
//! that clones the containers' processes. Those children allocate from
//! memory of their own ([`crate::sys::clone_child`]): a malloc lock the
//! loop held at the moment of the clone would stay locked in them.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

/// A container to create and start.
#[derive(Debug, Clone)]
pub(crate) struct LaunchJob {
    pub index: usize,
    pub name: String,
    pub bundle: PathBuf,
    /// The container's cgroup, as a path under `/sys/fs/cgroup`.
    pub cgroup: PathBuf,
    /// A writable layer over the image (`readonly = false`), this big.
    pub root_size: Option<usize>,
    /// Owner of the writable layer (the user namespace's root).
    pub owner: Option<u32>,
    /// Its user namespace's range this boot (`crate::id_ranges`).
    pub userns: Option<berth_config::UserNamespace>,
    /// Confine the container's devices (every non-privileged container).
    pub confine_devices: bool,
    /// `memory.max` to write when the manifest sets none.
    pub default_memory: Option<u64>,
    /// The named volumes it mounts, made before the launch.
    pub volumes: Vec<String>,
}

/// What the worker does.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    Launch(LaunchJob),
    /// Run `argv` in the running container `name`; `token` comes back in
    /// the report.
    Exec {
        token: u64,
        name: String,
        argv: Vec<String>,
    },
    /// Forget the container `name`, whose process is gone.
    Remove {
        name: String,
    },
}

/// A started process and its output pipes.
#[derive(Debug)]
pub(crate) struct Started {
    pub pid: i32,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Lines for the loop to log (the launcher never logs itself).
    pub notes: Vec<String>,
}

/// What the worker tells the loop.
#[derive(Debug)]
pub(crate) enum Report {
    /// Container `index`'s process `pid` exists and waits: prepare it and
    /// answer with [`Launcher::prepared`].
    Prepare { index: usize, pid: i32 },
    /// Container `index`'s launch ended, after `took`.
    Launched {
        index: usize,
        took: Duration,
        result: Result<Started, String>,
    },
    Exec {
        token: u64,
        result: Result<Started, String>,
    },
    /// Container `name` was forgotten, or could not be.
    Removed {
        name: String,
        result: Result<(), String>,
    },
}

/// What carries out launches: libcontainer in PID 1, a fake in tests.
pub(crate) trait Backend: Send {
    /// Creates the container, calls `prepare` with its process's pid
    /// before that process runs, then starts it. A failed `prepare` fails
    /// the launch, and the process never runs.
    fn launch(
        &mut self,
        job: &LaunchJob,
        prepare: &mut dyn FnMut(i32) -> Result<(), String>,
    ) -> Result<Started, String>;
    fn exec(&mut self, name: &str, argv: &[String]) -> Result<Started, String>;
    fn remove(&mut self, name: &str) -> Result<(), String>;
}

/// The loop's end of the worker.
#[derive(Debug)]
pub(crate) struct Launcher {
    jobs: Sender<Job>,
    reports: Receiver<Report>,
    answers: Sender<Result<(), String>>,
    wake: UnixStream,
    /// Jobs waiting for the worker to be free.
    queue: VecDeque<Job>,
    /// A job was sent and not yet reported back.
    in_flight: bool,
}

impl Launcher {
    /// Starts the worker thread over `backend`.
    pub(crate) fn spawn(backend: Box<dyn Backend>) -> std::io::Result<Launcher> {
        let (wake_r, wake_w) = UnixStream::pair()?;
        wake_r.set_nonblocking(true)?;
        wake_w.set_nonblocking(true)?;
        let (jobs, job_rx) = channel();
        let (report_tx, reports) = channel();
        let (answers, answer_rx) = channel();
        std::thread::Builder::new()
            .name("launcher".into())
            .spawn(move || {
                // Container processes are cloned from this thread.
                crate::sys::clone_child::mark_launcher_thread();
                Worker {
                    backend,
                    reports: report_tx,
                    answers: answer_rx,
                    wake: wake_w,
                }
                .run(&job_rx);
            })?;
        Ok(Launcher {
            jobs,
            reports,
            answers,
            wake: wake_r,
            queue: VecDeque::new(),
            in_flight: false,
        })
    }

    /// Queues a job; [`Launcher::start_next`] hands it to the worker.
    pub(crate) fn submit(&mut self, job: Job) {
        self.queue.push_back(job);
    }

    /// Hands the worker the next job, if it is free. One job at a time,
    /// so that the loop can reap between any two (see [`Launcher::busy`]).
    pub(crate) fn start_next(&mut self) {
        if self.in_flight {
            return;
        }
        if let Some(job) = self.queue.pop_front() {
            self.in_flight = self.jobs.send(job).is_ok();
        }
    }

    /// Whether the worker has a job: the loop must not reap meanwhile.
    pub(crate) fn busy(&self) -> bool {
        self.in_flight
    }

    /// Readable when reports wait.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// The reports that arrived.
    pub(crate) fn take(&mut self) -> Vec<Report> {
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut &self.wake, &mut buf), Ok(n) if n > 0) {}
        let mut out = Vec::new();
        while let Ok(r) = self.reports.try_recv() {
            if !matches!(r, Report::Prepare { .. }) {
                self.in_flight = false;
            }
            out.push(r);
        }
        out
    }

    /// The answer to the last [`Report::Prepare`].
    pub(crate) fn prepared(&self, result: Result<(), String>) {
        let _ = self.answers.send(result);
    }
}

struct Worker {
    backend: Box<dyn Backend>,
    reports: Sender<Report>,
    answers: Receiver<Result<(), String>>,
    wake: UnixStream,
}

impl Worker {
    fn run(mut self, jobs: &Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            let report = match job {
                Job::Launch(job) => self.launch(&job),
                Job::Exec { token, name, argv } => Report::Exec {
                    token,
                    result: self.backend.exec(&name, &argv),
                },
                Job::Remove { name } => {
                    let result = self.backend.remove(&name);
                    Report::Removed { name, result }
                }
            };
            self.send(report);
        }
    }

    fn launch(&mut self, job: &LaunchJob) -> Report {
        let t = Instant::now();
        let (reports, answers, wake) = (&self.reports, &self.answers, &self.wake);
        let index = job.index;
        let mut prepare = |pid: i32| {
            let _ = reports.send(Report::Prepare { index, pid });
            let _ = std::io::Write::write(&mut &*wake, &[1]);
            answers
                .recv()
                .unwrap_or_else(|_| Err("the supervisor loop is gone".to_owned()))
        };
        let result = self.backend.launch(job, &mut prepare);
        Report::Launched {
            index,
            took: t.elapsed(),
            result,
        }
    }

    fn send(&self, report: Report) {
        let _ = self.reports.send(report);
        // A full pipe already wakes the loop.
        let _ = std::io::Write::write(&mut &self.wake, &[1]);
    }
}
