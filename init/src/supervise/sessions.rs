//! Processes PID 1 runs on someone's behalf, next to the containers:
//! `berth exec` commands (their output and status go back to a control
//! connection) and health probes (their result goes to the container's
//! checker). Each has a deadline after which it is killed; all are reaped
//! by the one reaping loop and read from the one `poll`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use berth_supervisor::api::{ExecResult, EXEC_OUTPUT_LIMIT, EXEC_TIMEOUT};
use berth_supervisor::health::HealthEvent;

use super::*;
use berth_supervisor::control::ConnId;

/// Who waits for a session's result.
#[derive(Debug, Clone, Copy)]
pub(super) enum Purpose {
    /// A `berth exec` request on this connection.
    Api(ConnId),
    /// A health probe of container `slot`'s run number `generation`.
    Probe { slot: usize, generation: u64 },
}

#[derive(Debug)]
pub(super) struct Session {
    pid: Pid,
    purpose: Purpose,
    fds: [Option<OwnedFd>; 2],
    out: [Vec<u8>; 2],
    truncated: bool,
    deadline: Instant,
    timed_out: bool,
    status: Option<ExitStatus>,
}

impl Supervisor {
    /// Starts `berth exec` in container `i`; `Some` is an immediate error
    /// answer, `None` means the answer comes when the command ends.
    pub(super) fn start_exec(
        &mut self,
        conn: ConnId,
        i: usize,
        argv: &[String],
    ) -> Option<Response> {
        let name = self.slots[i].spec.name.clone();
        if self.slots[i].running.is_none() {
            return Some(Response::error(
                ErrorCode::InvalidState,
                format!("{name} is not running"),
            ));
        }
        let started = self.runtime.exec(&name, argv);
        system::protect_pid1();
        match started {
            Ok(exec) => {
                self.sessions.push(Session {
                    pid: exec.pid,
                    purpose: Purpose::Api(conn),
                    fds: [Some(exec.stdout), Some(exec.stderr)],
                    out: [Vec::new(), Vec::new()],
                    truncated: false,
                    deadline: Instant::now() + EXEC_TIMEOUT,
                    timed_out: false,
                    status: None,
                });
                None
            }
            Err(e) => Some(Response::error(ErrorCode::Internal, chain(&e))),
        }
    }

    /// Runs container `i`'s health probe.
    pub(super) fn start_probe(&mut self, i: usize) {
        let slot = &self.slots[i];
        let (Some(check), Some(running), Some(checker)) =
            (&slot.spec.health, &slot.running, &slot.checker)
        else {
            return;
        };
        let timeout = checker.timeout();
        let generation = slot.generation;
        let name = slot.spec.name.clone();
        let started = match &check.probe {
            Probe::Exec(argv) => {
                let argv = argv.clone();
                let r = self
                    .runtime
                    .exec(&name, &argv)
                    .map(|e| (e.pid, [Some(e.stdout), Some(e.stderr)]));
                system::protect_pid1();
                r.map_err(|e| chain(&e))
            }
            Probe::Tcp(port) => {
                let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
                crate::sys::spawn_tcp_probe(running.pid.as_raw(), *port, ms)
                    .map(|pid| (pid, [None, None]))
                    .map_err(|e| e.to_string())
            }
        };
        match started {
            Ok((pid, fds)) => self.sessions.push(Session {
                pid,
                purpose: Purpose::Probe {
                    slot: i,
                    generation,
                },
                fds,
                out: [Vec::new(), Vec::new()],
                truncated: false,
                deadline: Instant::now() + timeout,
                timed_out: false,
                status: None,
            }),
            Err(e) => {
                log::warn!("health probe of {name} did not start: {e}");
                self.health_feed(
                    i,
                    HealthEvent::Result {
                        at: uptime(),
                        ok: false,
                    },
                );
            }
        }
    }

    /// The sessions' output fds, for `poll`.
    pub(super) fn session_fds(&self) -> Vec<(usize, usize, BorrowedFd<'_>)> {
        let mut out = Vec::new();
        for (k, s) in self.sessions.iter().enumerate() {
            for (j, fd) in s.fds.iter().enumerate() {
                if let Some(fd) = fd {
                    out.push((k, j, fd.as_fd()));
                }
            }
        }
        out
    }

    /// The earliest session deadline.
    pub(super) fn session_deadline(&self) -> Option<Instant> {
        self.sessions
            .iter()
            .filter(|s| !s.timed_out)
            .map(|s| s.deadline)
            .min()
    }

    /// Reads what session `k`'s stream `j` has.
    pub(super) fn read_session(&mut self, k: usize, j: usize) {
        let Some(s) = self.sessions.get_mut(k) else {
            return;
        };
        let Some(fd) = s.fds[j].as_ref() else { return };
        let mut buf = [0u8; 16 * 1024];
        // A bounded turn, as for a container's own output: a command that
        // writes without end (a health check rewritten to run `yes`) must
        // not hold the loop; the rest waits for the next turn.
        let mut taken = 0;
        while taken < super::TURN_BYTES {
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
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

    /// Routes a reaped pid to its session; false when it is none's.
    pub(super) fn session_exited(&mut self, pid: Pid, status: ExitStatus) -> bool {
        match self.sessions.iter_mut().find(|s| s.pid == pid) {
            Some(s) => {
                s.status = Some(status);
                true
            }
            None => false,
        }
    }

    /// Kills sessions past their deadline (the kill is reaped as usual).
    pub(super) fn expire_sessions(&mut self) {
        let now = Instant::now();
        for s in &mut self.sessions {
            if !s.timed_out && s.status.is_none() && now >= s.deadline {
                s.timed_out = true;
                let _ = kill(s.pid, Signal::SIGKILL);
            }
        }
    }

    /// Delivers every session whose process ended: drains its pipes (what
    /// is left after the process is gone comes at once) and answers.
    pub(super) fn finish_sessions(&mut self) {
        let mut k = 0;
        while k < self.sessions.len() {
            if self.sessions[k].status.is_none() {
                k += 1;
                continue;
            }
            self.read_session(k, 0);
            self.read_session(k, 1);
            let s = self.sessions.swap_remove(k);
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
                Purpose::Probe { slot, generation } => {
                    // A probe of an earlier run says nothing about this one.
                    if self
                        .slots
                        .get(slot)
                        .is_some_and(|x| x.generation == generation)
                    {
                        let ok = !s.timed_out && status.success();
                        self.health_feed(slot, HealthEvent::Result { at: uptime(), ok });
                    }
                }
            }
        }
    }

    /// Gives container `i`'s health checker an event and carries out what
    /// it says.
    pub(super) fn health_feed(&mut self, i: usize, event: HealthEvent) {
        let Some(checker) = self.slots[i].checker.as_mut() else {
            return;
        };
        let actions = checker.next(event);
        let name = self.slots[i].spec.name.clone();
        for action in actions {
            match action {
                HealthAction::RunProbe => self.start_probe(i),
                HealthAction::Ready => {
                    log::info!("{name} is ready (health check passed)");
                    self.start_waiting();
                }
                HealthAction::Unhealthy(reason) => {
                    log::info!(
                        "{name} is unhealthy: {reason}; killing it (restart = {})",
                        self.slots[i].spec.restart.as_str()
                    );
                    self.signal(i, libc::SIGKILL);
                }
                HealthAction::Log(line) => log::info!("{name}: {line}"),
            }
        }
    }
}
