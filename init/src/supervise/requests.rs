//! Answers to control-socket requests, from the supervisor's state. Each
//! request is answered at once (nothing here blocks); changes go through
//! the same lifecycle events as everything else.

use berth_supervisor::api::{
    encode_follow_line, ContainerStatus, DmesgResult, KernelLine, LogLine, LogsResult,
    MessageResult, NodeStatus, StatusResult, DEFAULT_LOG_LINES,
};
use berth_supervisor::phases::Stage;

use super::*;
use berth_supervisor::control::ConnId;

impl Supervisor {
    /// The answer to one request on connection `conn`, and a follow
    /// subscription for `logs -f`; `None` when the answer comes later
    /// (`exec` answers when its command ends).
    pub(super) fn handle(
        &mut self,
        conn: ConnId,
        request: Request,
    ) -> Option<(Response, Option<Follow>)> {
        if let Request::Exec { name, argv } = &request {
            let Some(i) = self.slots.iter().position(|x| &x.spec.name == name) else {
                return Some((
                    Response::error(ErrorCode::NotFound, format!("no container named {name:?}")),
                    None,
                ));
            };
            return self.start_exec(conn, i, argv).map(|r| (r, None));
        }
        Some(self.answer(request))
    }

    fn answer(&mut self, request: Request) -> (Response, Option<Follow>) {
        let found = |s: &Self, name: &str| s.slots.iter().position(|x| x.spec.name == name);
        let not_found = |name: &str| {
            Response::error(ErrorCode::NotFound, format!("no container named {name:?}"))
        };
        match request {
            Request::Status => (Response::Success(Outcome::Status(self.status())), None),
            Request::Logs {
                name,
                lines,
                follow,
            } => {
                let Some(i) = found(self, &name) else {
                    return (not_found(&name), None);
                };
                let ring = &self.slots[i].ring;
                let lines: Vec<LogLine> = ring
                    .tail(lines.unwrap_or(DEFAULT_LOG_LINES))
                    .map(LogLine::from)
                    .collect();
                let sub = follow.then(|| Follow {
                    slot: i,
                    seq: ring.last_seq(),
                });
                (Response::Success(Outcome::Logs(LogsResult { lines })), sub)
            }
            Request::Dmesg { lines } => match kmsg::read_last(lines.unwrap_or(usize::MAX)) {
                Ok(records) => {
                    let lines = records
                        .into_iter()
                        .map(|r| KernelLine {
                            seq: r.seq,
                            time_us: r.time_us,
                            level: r.level,
                            text: r.text,
                        })
                        .collect();
                    (
                        Response::Success(Outcome::Dmesg(DmesgResult { lines })),
                        None,
                    )
                }
                Err(e) => (
                    Response::error(ErrorCode::Internal, format!("read /dev/kmsg: {e}")),
                    None,
                ),
            },
            Request::Start { name } => {
                let Some(i) = found(self, &name) else {
                    return (not_found(&name), None);
                };
                (self.operator_start(i), None)
            }
            Request::Stop { name } => {
                let Some(i) = found(self, &name) else {
                    return (not_found(&name), None);
                };
                (self.operator_stop(i), None)
            }
            Request::Restart { name } => {
                let Some(i) = found(self, &name) else {
                    return (not_found(&name), None);
                };
                (self.operator_restart(i), None)
            }
            Request::Power { action } => {
                let action: PowerAction = action.into();
                self.request_shutdown(action, "requested through the control socket");
                let msg = format!("{} requested", action.as_str());
                (
                    Response::Success(Outcome::Power(MessageResult::new(msg))),
                    None,
                )
            }
            Request::Exec { .. } => (
                Response::error(ErrorCode::Internal, "exec is answered elsewhere"),
                None,
            ),
        }
    }

    fn refuse_during_shutdown(&self) -> Option<Response> {
        self.shutdown.map(|sd| {
            Response::error(
                ErrorCode::InvalidState,
                format!("the node is shutting down ({})", sd.action.as_str()),
            )
        })
    }

    fn operator_start(&mut self, i: usize) -> Response {
        if let Some(r) = self.refuse_during_shutdown() {
            return r;
        }
        let name = self.slots[i].spec.name.clone();
        match self.slots[i].lifecycle.state() {
            LcState::Stopped | LcState::Done | LcState::Failed | LcState::Idle => {}
            other => {
                return Response::error(
                    ErrorCode::InvalidState,
                    format!("{name} is {}", state_name(other)),
                );
            }
        }
        if !self.deps_ready(i) {
            self.slots[i].wanted = true;
            return Response::Success(Outcome::Start(MessageResult::new(format!(
                "{name} starts once {} is ready",
                self.waiting_on(i)
            ))));
        }
        self.feed(
            i,
            Event::Start {
                reason: "requested through the control socket".into(),
            },
        );
        Response::Success(Outcome::Start(MessageResult::new(format!(
            "{name} started"
        ))))
    }

    fn operator_stop(&mut self, i: usize) -> Response {
        if let Some(r) = self.refuse_during_shutdown() {
            return r;
        }
        let name = self.slots[i].spec.name.clone();
        self.slots[i].wanted = false;
        match self.slots[i].lifecycle.state() {
            LcState::Running { .. } | LcState::Backoff { .. } => {
                self.feed(i, Event::Stop { now: uptime() });
                self.stop_dependents(i);
                Response::Success(Outcome::Stop(MessageResult::new(format!(
                    "stopping {name}"
                ))))
            }
            other => Response::error(
                ErrorCode::InvalidState,
                format!("{name} is {}", state_name(other)),
            ),
        }
    }

    fn operator_restart(&mut self, i: usize) -> Response {
        if let Some(r) = self.refuse_during_shutdown() {
            return r;
        }
        let name = self.slots[i].spec.name.clone();
        if matches!(self.slots[i].lifecycle.state(), LcState::Stopping { .. }) {
            return Response::error(ErrorCode::InvalidState, format!("{name} is stopping"));
        }
        self.feed(i, Event::Restart { now: uptime() });
        Response::Success(Outcome::Restart(MessageResult::new(format!(
            "restarting {name}"
        ))))
    }

    fn status(&self) -> StatusResult {
        let now = uptime();
        let containers = self
            .slots
            .iter()
            .map(|s| {
                let state = s.lifecycle.state();
                let running = s.running.as_ref();
                ContainerStatus {
                    name: s.spec.name.clone(),
                    kind: s.spec.kind.into(),
                    phase: s.spec.phase.into(),
                    state: status_word(state, s.wanted && running.is_none(), s.last_exit)
                        .to_owned(),
                    pid: running.map(|r| r.pid.as_raw()),
                    restarts: s.starts.saturating_sub(1),
                    uptime_ms: running
                        .and(s.started_at)
                        .map(|t| now.saturating_sub(t).as_millis() as u64),
                    last_exit: s.last_exit.map(|e| e.to_string()),
                    health: s
                        .checker
                        .as_ref()
                        .and_then(|c| c.health())
                        .map(|h| h.as_str().to_owned()),
                }
            })
            .collect();
        let stage = match self.seq.stage() {
            Stage::Idle => "starting",
            Stage::OnBoot(_) => "onboot",
            Stage::Halted => "halted",
            Stage::Services => "running",
            Stage::StoppingServices | Stage::OnShutdown { .. } | Stage::Finished => "shutting-down",
        };
        StatusResult {
            node: NodeStatus {
                hostname: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                uptime_ms: now.as_millis() as u64,
                berth_version: env!("CARGO_PKG_VERSION").to_owned(),
                pid1_rss_kib: rss_kib().unwrap_or(0),
                stage: stage.to_owned(),
                root: self.root.clone(),
            },
            containers,
        }
    }

    /// Sends each `logs -f` client the lines its container printed since.
    pub(super) fn feed_followers(&mut self) {
        for (id, f) in self.control.followers() {
            let Some(slot) = self.slots.get(f.slot) else {
                continue;
            };
            let mut bytes = Vec::new();
            let mut last = f.seq;
            for e in slot.ring.after(f.seq) {
                bytes.extend(encode_follow_line(&LogLine::from(e)));
                last = e.seq;
            }
            if last != f.seq {
                self.control.push_follow(id, &bytes, last);
            }
        }
    }
}

/// The state `berth status` shows: `waiting` for a container held back by
/// what it depends on, `failed` for one that ran to its end unsuccessfully
/// (a non-essential `onboot` container, a `restart = "never"` service), else
/// its lifecycle state.
fn status_word(state: LcState, waiting: bool, last_exit: Option<ExitStatus>) -> &'static str {
    match state {
        _ if waiting => "waiting",
        LcState::Done if last_exit.is_some_and(|e| !e.success()) => "failed",
        other => state_name(other),
    }
}

/// The status word of a lifecycle state.
fn state_name(s: LcState) -> &'static str {
    match s {
        LcState::Idle => "idle",
        LcState::Running { .. } => "running",
        LcState::Backoff { .. } => "backoff",
        LcState::Done => "done",
        LcState::Stopping { .. } => "stopping",
        LcState::Stopped => "stopped",
        LcState::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words() {
        let code = ExitStatus::Code;
        let killed = ExitStatus::Signal {
            signal: libc::SIGKILL,
            core_dumped: false,
        };
        // (state, waiting, last exit, word)
        let table = [
            (LcState::Done, false, Some(code(0)), "done"),
            (LcState::Done, false, Some(code(3)), "failed"),
            (LcState::Done, false, Some(killed), "failed"),
            (LcState::Done, false, None, "done"),
            (LcState::Idle, true, None, "waiting"),
            (LcState::Stopped, true, Some(code(1)), "waiting"),
            (LcState::Stopped, false, Some(code(1)), "stopped"),
            (LcState::Failed, false, Some(code(1)), "failed"),
            (LcState::Idle, false, None, "idle"),
        ];
        for (state, waiting, exit, want) in table {
            assert_eq!(
                status_word(state, waiting, exit),
                want,
                "{state:?} {exit:?}"
            );
        }
    }
}
