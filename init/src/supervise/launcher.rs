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
//! A job whose processes do not get going within its limit ([`LIMITS`])
//! has them killed by the loop ([`Launcher::enforce`]): a process entering
//! a running container (`exec`, a health check) joins the container's PID
//! namespace before it executes, so the container can stop it (`kill(-1,
//! SIGSTOP)`), and libcontainer would wait for it forever, holding the
//! worker and the loop's reaping with it. The processes a job made are the
//! worker thread's children that were not there when it began; none can
//! be reaped (and its pid reused) while the job runs. A container that
//! stopped what entered it gets no exec for a while
//! ([`Launcher::refusal`]): a minute, doubling at each stall up to an
//! hour, so that its health checks cannot hold the worker again and again.
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

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a job's processes may take to get going before the loop
/// kills them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A launch: creation, the loop's preparation, the start.
    pub launch: Duration,
    /// An `exec` or health check: until its program is executed.
    pub exec: Duration,
}

/// How long execs into a container are refused after its first stall,
/// and at most.
const REFUSAL_FIRST: Duration = Duration::from_secs(60);
const REFUSAL_MAX: Duration = Duration::from_secs(3600);

/// Far above what a launch or an exec takes even under emulation (well
/// under a second), and short enough that a container that stops what
/// enters it holds the worker for seconds, not for good.
pub(crate) const LIMITS: Limits = Limits {
    launch: Duration::from_secs(60),
    exec: Duration::from_secs(10),
};

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
    /// The worker thread's id, whose children a job's processes are.
    worker: i32,
    limits: Limits,
    /// The job in flight, while its limit is watched.
    watched: Option<Watched>,
    /// Containers that stopped what entered them: no exec until `until`;
    /// the next refusal lasts `next`.
    refused: std::collections::HashMap<String, Refusal>,
}

#[derive(Debug, Clone, Copy)]
struct Refusal {
    until: Instant,
    next: Duration,
}

/// A job in flight and what it found.
#[derive(Debug)]
struct Watched {
    what: String,
    /// The container an exec entered.
    entered: Option<String>,
    until: Instant,
    limit: Duration,
    /// The worker's children before the job.
    before: Vec<i32>,
}

impl Job {
    /// What the job is, for messages, and its limit (none for a removal,
    /// which makes no process).
    fn watch(&self, limits: Limits) -> Option<(String, Duration)> {
        match self {
            Job::Launch(j) => Some((format!("launch of {}", j.name), limits.launch)),
            Job::Exec { name, argv, .. } => Some((
                format!(
                    "exec of {} in {name}",
                    argv.first().map_or("?", String::as_str)
                ),
                limits.exec,
            )),
            Job::Remove { .. } => None,
        }
    }
}

/// The children of thread `tid` of this process (Linux's
/// `CONFIG_PROC_CHILDREN`); `None` if they cannot be read.
fn children(tid: i32) -> Option<Vec<i32>> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/children")).ok()?;
    Some(
        text.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
    )
}

impl Launcher {
    /// Starts the worker thread over `backend`.
    pub(crate) fn spawn(backend: Box<dyn Backend>) -> std::io::Result<Launcher> {
        Launcher::spawn_with(backend, LIMITS)
    }

    /// [`Launcher::spawn`] with other limits.
    pub(crate) fn spawn_with(
        backend: Box<dyn Backend>,
        limits: Limits,
    ) -> std::io::Result<Launcher> {
        let (wake_r, wake_w) = UnixStream::pair()?;
        wake_r.set_nonblocking(true)?;
        wake_w.set_nonblocking(true)?;
        let (jobs, job_rx) = channel();
        let (report_tx, reports) = channel();
        let (answers, answer_rx) = channel();
        let (tid_tx, tid_rx) = channel();
        std::thread::Builder::new()
            .name("launcher".into())
            .spawn(move || {
                // Container processes are cloned from this thread.
                crate::sys::clone_child::mark_launcher_thread();
                let _ = tid_tx.send(nix::unistd::gettid().as_raw());
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
            worker: tid_rx.recv().unwrap_or(0),
            limits,
            watched: None,
            refused: std::collections::HashMap::new(),
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
            // Without the worker's children nothing could be told apart:
            // the job then runs unwatched.
            let entered = match &job {
                Job::Exec { name, .. } => Some(name.clone()),
                _ => None,
            };
            self.watched = job
                .watch(self.limits)
                .zip(children(self.worker).filter(|_| self.worker > 0))
                .map(|((what, limit), before)| Watched {
                    what,
                    entered,
                    until: Instant::now() + limit,
                    limit,
                    before,
                });
            self.in_flight = self.jobs.send(job).is_ok();
        }
    }

    /// When the job in flight reaches its limit, if it is watched.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.watched.as_ref().map(|w| w.until)
    }

    /// Kills the processes of a job past its limit (the worker's children
    /// that came with it), once; the line to log, if it did.
    pub(crate) fn enforce(&mut self) -> Option<String> {
        // Most turns have no job in flight: no clock read then.
        let until = self.watched.as_ref()?.until;
        let now = Instant::now();
        if now < until {
            return None;
        }
        let w = self.watched.take()?;
        let made: Vec<i32> = children(self.worker)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !w.before.contains(p))
            .collect();
        for &pid in &made {
            // A stopped process dies of SIGKILL too.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let list: Vec<String> = made.iter().map(i32::to_string).collect();
        let mut line = format!(
            "{}: not under way after {} s; killed its process(es) {} (a container can stop what enters it)",
            w.what,
            w.limit.as_secs(),
            if list.is_empty() {
                "(none found)".to_owned()
            } else {
                list.join(", ")
            }
        );
        if let Some(name) = w.entered {
            let last = self.refused.get(&name).map(|r| r.next);
            let lasts = last.unwrap_or(REFUSAL_FIRST);
            self.refused.insert(
                name.clone(),
                Refusal {
                    until: now + lasts,
                    next: (lasts * 2).min(REFUSAL_MAX),
                },
            );
            line.push_str(&format!("; no exec into {name} for {} s", lasts.as_secs()));
        }
        Some(line)
    }

    /// Why an exec into container `name` is refused now, if it is: the
    /// container stopped the last process that entered it.
    pub(crate) fn refusal(&self, name: &str, now: Instant) -> Option<String> {
        let r = self.refused.get(name).filter(|r| now < r.until)?;
        let left = r.until.saturating_duration_since(now);
        Some(format!(
            "{name} stopped the last process that entered it; no exec into it for another {} s",
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        ))
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
                self.watched = None;
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Arc;

    use nix::sys::wait::{waitpid, WaitStatus};

    use super::*;

    /// Execs a process that is stopped at once, as a container can stop
    /// what enters it, and waits for it as libcontainer waits for its
    /// exec notice: until it ends.
    struct Stalling {
        pid: Arc<AtomicI32>,
    }

    impl Backend for Stalling {
        fn launch(
            &mut self,
            _job: &LaunchJob,
            _prepare: &mut dyn FnMut(i32) -> Result<(), String>,
        ) -> Result<Started, String> {
            Err("no launches here".to_owned())
        }

        fn exec(&mut self, _name: &str, _argv: &[String]) -> Result<Started, String> {
            let child = std::process::Command::new("/bin/sh")
                .args(["-c", "kill -STOP $$; exit 0"])
                .spawn()
                .map_err(|e| e.to_string())?;
            let pid = Pid::from_raw(child.id() as i32);
            self.pid.store(pid.as_raw(), Ordering::SeqCst);
            match waitpid(pid, None) {
                Ok(WaitStatus::Signaled(_, signal, _)) => Err(format!("ended by {signal}")),
                other => Err(format!("ended: {other:?}")),
            }
        }

        fn remove(&mut self, _name: &str) -> Result<(), String> {
            Ok(())
        }
    }

    /// Kills the stopped process if the test fails before the launcher did.
    struct Cleanup(Arc<AtomicI32>);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let pid = self.0.load(Ordering::SeqCst);
            if pid > 0 {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }

    /// Takes reports until one other than `Prepare` comes, within 5 s.
    fn next_report(launcher: &mut Launcher) -> Option<Report> {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Some(r) = launcher.take().into_iter().next() {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    #[test]
    fn a_stopped_exec_is_killed_at_its_limit_and_the_worker_goes_on() {
        let pid = Arc::new(AtomicI32::new(0));
        let _cleanup = Cleanup(pid.clone());
        let limits = Limits {
            launch: Duration::from_secs(60),
            exec: Duration::from_millis(300),
        };
        let backend = Stalling { pid: pid.clone() };
        let mut launcher = Launcher::spawn_with(Box::new(backend), limits).expect("worker");
        launcher.submit(Job::Exec {
            token: 7,
            name: "web".to_owned(),
            argv: vec!["probe".to_owned()],
        });
        launcher.submit(Job::Remove {
            name: "web".to_owned(),
        });
        launcher.start_next();
        assert!(launcher.busy());
        let deadline = launcher.deadline().expect("an exec is watched");
        assert!(launcher.enforce().is_none(), "before its limit");
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        // The process is stopped, and the worker waits for it.
        assert!(launcher.take().is_empty(), "the exec ended by itself");
        let stalled = pid.load(Ordering::SeqCst);
        assert!(stalled > 0, "the exec made no process");
        let line = launcher.enforce().expect("killed at its limit");
        assert_eq!(
            line,
            format!("exec of probe in web: not under way after 0 s; killed its process(es) {stalled} (a container can stop what enters it); no exec into web for 60 s")
        );
        assert!(launcher.enforce().is_none(), "once");
        let now = Instant::now();
        assert_eq!(
            launcher.refusal("web", now).as_deref(),
            Some("web stopped the last process that entered it; no exec into it for another 60 s")
        );
        assert_eq!(launcher.refusal("db", now), None);
        assert_eq!(launcher.refusal("web", now + REFUSAL_FIRST), None);
        match next_report(&mut launcher) {
            Some(Report::Exec { token: 7, result }) => {
                assert_eq!(result.err().as_deref(), Some("ended by SIGKILL"));
            }
            other => panic!("not the exec's report: {other:?}"),
        }
        assert!(!launcher.busy());
        // The next job runs, unwatched: a removal makes no process.
        launcher.start_next();
        assert!(launcher.deadline().is_none());
        match next_report(&mut launcher) {
            Some(Report::Removed { name, result }) => {
                assert_eq!((name.as_str(), result), ("web", Ok(())));
            }
            other => panic!("not the removal's report: {other:?}"),
        }
    }
}
