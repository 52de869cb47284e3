//! Processes PID 1 runs on someone's behalf, next to the containers:
//! `berth exec` commands (their output and status go back to a control
//! connection) and health probes (their result goes to the core). Each has
//! a deadline after which it is killed; all are reaped by the one reaping
//! loop and read from the one `poll`. Exec probes and `berth exec` start
//! on the launcher's thread (libcontainer's tenant builder waits for its
//! own intermediate process); TCP probes fork here.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use berth_config::Probe;
use berth_supervisor::api::{
    ErrorCode, ExecResult, Outcome, Response, EXEC_OUTPUT_LIMIT, EXEC_TIMEOUT,
};
use nix::errno::Errno;

use super::launcher::Started;
use super::outputs::TURN_BYTES;
use super::*;
use berth_supervisor::control::ConnId;

/// Who waits for a session's result.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// A `berth exec` request on this connection.
    Api(ConnId),
    /// A health probe of container `index`'s run number `generation`.
    Probe { index: usize, generation: u64 },
}

#[derive(Debug)]
struct Session {
    id: u64,
    pid: Pid,
    purpose: Purpose,
    fds: [Option<OwnedFd>; 2],
    out: [Vec<u8>; 2],
    truncated: bool,
    deadline: Instant,
    timed_out: bool,
    status: Option<ExitStatus>,
}

/// The sessions in flight.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    list: Vec<Session>,
    next_id: u64,
}

impl Sessions {
    fn add(&mut self, pid: Pid, purpose: Purpose, fds: [Option<OwnedFd>; 2], timeout: Duration) {
        self.next_id += 1;
        self.list.push(Session {
            id: self.next_id,
            pid,
            purpose,
            fds,
            out: [Vec::new(), Vec::new()],
            truncated: false,
            deadline: Instant::now() + timeout,
            timed_out: false,
            status: None,
        });
    }

    /// The sessions' output fds, for `poll`.
    pub(crate) fn fds(&self) -> Vec<(u64, usize, BorrowedFd<'_>)> {
        let mut out = Vec::new();
        for s in &self.list {
            for (j, fd) in s.fds.iter().enumerate() {
                if let Some(fd) = fd {
                    out.push((s.id, j, fd.as_fd()));
                }
            }
        }
        out
    }

    /// The earliest deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter(|s| !s.timed_out)
            .map(|s| s.deadline)
            .min()
    }

    /// Reads what session `id`'s stream `j` has, a bounded amount: a
    /// command that writes without end (a health check rewritten to run
    /// `yes`) must not hold the loop; the rest waits for the next turn.
    pub(crate) fn read(&mut self, id: u64, j: usize) {
        let Some(s) = self.list.iter_mut().find(|s| s.id == id) else {
            return;
        };
        read_stream(s, j);
    }

    /// Routes a reaped pid to its session; false when it is none's.
    pub(crate) fn exited(&mut self, pid: Pid, status: ExitStatus) -> bool {
        match self.list.iter_mut().find(|s| s.pid == pid) {
            Some(s) => {
                s.status = Some(status);
                true
            }
            None => false,
        }
    }

    /// Kills sessions past their deadline (the kill is reaped as usual).
    fn expire(&mut self) {
        let now = Instant::now();
        for s in &mut self.list {
            if !s.timed_out && s.status.is_none() && now >= s.deadline {
                s.timed_out = true;
                let _ = kill(s.pid, Signal::SIGKILL);
            }
        }
    }

    /// Every session whose process ended, its pipes drained.
    fn take_finished(&mut self) -> Vec<Session> {
        let mut done = Vec::new();
        let mut k = 0;
        while k < self.list.len() {
            if self.list[k].status.is_none() {
                k += 1;
                continue;
            }
            let mut s = self.list.swap_remove(k);
            read_stream(&mut s, 0);
            read_stream(&mut s, 1);
            done.push(s);
        }
        done
    }
}

fn read_stream(s: &mut Session, j: usize) {
    let Some(fd) = s.fds[j].as_ref().map(AsRawFd::as_raw_fd) else {
        return;
    };
    let mut buf = [0u8; 16 * 1024];
    let mut taken = 0;
    while taken < TURN_BYTES {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => {
                s.fds[j] = None;
                return;
            }
            Ok(n) => {
                taken += n;
                let room = EXEC_OUTPUT_LIMIT.saturating_sub(s.out[j].len());
                if n > room {
                    s.truncated = true;
                }
                s.out[j].extend_from_slice(&buf[..n.min(room)]);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return,
            Err(_) => {
                s.fds[j] = None;
                return;
            }
        }
    }
}

impl Loop {
    /// Starts `berth exec` in container `i` on the launcher's thread; the
    /// answer goes out when the command ends.
    pub(super) fn start_exec(&mut self, conn: ConnId, i: usize, argv: Vec<String>) {
        self.submit_exec(i, argv, Purpose::Api(conn));
    }

    fn submit_exec(&mut self, i: usize, argv: Vec<String>, purpose: Purpose) {
        self.next_token += 1;
        let token = self.next_token;
        self.execs.insert(token, purpose);
        let name = self.name(i).to_owned();
        if let Some(why) = self.launcher.refusal(&name, Instant::now()) {
            self.exec_started(token, Err(why));
            return;
        }
        self.launcher.submit(Job::Exec { token, name, argv });
    }

    /// Runs container `index`'s health probe.
    pub(super) fn start_probe(&mut self, index: usize, generation: u64) {
        let Some(check) = self.node.container(index).and_then(|c| c.health.clone()) else {
            return;
        };
        let Some((pid, _)) = self.node.running(index) else {
            return;
        };
        let purpose = Purpose::Probe { index, generation };
        match &check.probe {
            Probe::Exec(argv) => self.submit_exec(index, argv.clone(), purpose),
            Probe::Tcp(port) => {
                let ms = i32::try_from(check.timeout.as_millis()).unwrap_or(i32::MAX);
                match crate::sys::spawn_tcp_probe(pid, *port, ms) {
                    Ok(pid) => self.sessions.add(pid, purpose, [None, None], check.timeout),
                    Err(e) => self.probe_failed_to_start(index, generation, &e.to_string()),
                }
            }
        }
    }

    fn probe_failed_to_start(&mut self, index: usize, generation: u64, error: &str) {
        log::warn!(
            "health probe of {} did not start: {error}",
            self.name(index)
        );
        self.feed(Event::ProbeResult {
            index,
            generation,
            ok: false,
        });
    }

    /// An `exec` job the launcher finished starting.
    pub(super) fn exec_started(&mut self, token: u64, result: Result<Started, String>) {
        let Some(purpose) = self.execs.remove(&token) else {
            return;
        };
        let timeout = match purpose {
            Purpose::Api(_) => EXEC_TIMEOUT,
            Purpose::Probe { index, .. } => self
                .node
                .container(index)
                .and_then(|c| c.health.as_ref())
                .map_or(EXEC_TIMEOUT, |h| h.timeout),
        };
        match (result, purpose) {
            (Ok(s), _) => {
                let fds = [Some(s.stdout), Some(s.stderr)];
                self.sessions
                    .add(Pid::from_raw(s.pid), purpose, fds, timeout);
            }
            (Err(e), Purpose::Api(conn)) => {
                self.control
                    .reply(conn, &Response::error(ErrorCode::Internal, e), None);
            }
            (Err(e), Purpose::Probe { index, generation }) => {
                self.probe_failed_to_start(index, generation, &e);
            }
        }
    }

    /// Kills sessions past their deadline and delivers those that ended.
    pub(super) fn sessions_turn(&mut self) {
        self.sessions.expire();
        for s in self.sessions.take_finished() {
            let Some(status) = s.status else { continue };
            match s.purpose {
                Purpose::Api(conn) => {
                    let response = if s.timed_out {
                        Response::error(
                            ErrorCode::Timeout,
                            format!(
                                "the command did not finish within {} s and was killed",
                                EXEC_TIMEOUT.as_secs()
                            ),
                        )
                    } else {
                        Response::Success(Outcome::Exec(ExecResult {
                            exit_code: status.code(),
                            stdout: String::from_utf8_lossy(&s.out[0]).into_owned(),
                            stderr: String::from_utf8_lossy(&s.out[1]).into_owned(),
                            truncated: s.truncated,
                        }))
                    };
                    self.control.reply(conn, &response, None);
                }
                Purpose::Probe { index, generation } => {
                    let ok = !s.timed_out && status.success();
                    self.feed(Event::ProbeResult {
                        index,
                        generation,
                        ok,
                    });
                }
            }
        }
    }
}
