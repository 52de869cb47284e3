//! Answers to control-socket requests. What changes what runs (start,
//! stop, restart, power) goes to the core as an operator request; the
//! rest is read from the loop's state and answered at once, except `exec`,
//! answered when its command ends.

use berth_supervisor::api::{
    encode_follow_line, DmesgResult, ErrorCode, KernelLine, LogLine, LogsResult, MessageResult,
    NodeStatus, Outcome, Request, Response, StatusResult, DEFAULT_LOG_LINES,
};
use berth_supervisor::node::Op;

use super::*;
use crate::kmsg;
use berth_supervisor::control::{ConnId, Follow};

impl Loop {
    /// Handles one request on connection `conn`.
    pub(super) fn handle(&mut self, conn: ConnId, request: Request) {
        if self.state.ready().is_none() && reads_state(&request) {
            // Answered once STATE is set up, which begins now if it had
            // not: it takes a moment, and the answer needs it.
            self.state_waiters.push((conn, request));
            self.begin_state();
            return;
        }
        let op = match request {
            Request::Start { name } => Op::Start(name),
            Request::Stop { name } => Op::Stop(name),
            Request::Restart { name } => Op::Restart(name),
            Request::Power { action } => Op::Power(action.into()),
            Request::Exec { name, argv } => return self.exec_request(conn, &name, argv),
            Request::Status => {
                let response = Response::Success(Outcome::Status(self.status()));
                return self.control.reply(conn, &response, None);
            }
            Request::Logs {
                name,
                lines,
                follow,
            } => return self.logs(conn, &name, lines, follow),
            Request::Dmesg { lines } => {
                let response = dmesg(lines);
                return self.control.reply(conn, &response, None);
            }
            Request::Reset { state } => return self.reset(conn, state),
            Request::Revoke { serial } => {
                let response = match crate::remote::revoke(&serial) {
                    Ok(msg) => {
                        log::warn!("api: {msg}");
                        Response::Success(Outcome::Revoke(MessageResult::new(msg)))
                    }
                    Err(e) => Response::error(ErrorCode::BadRequest, format!("revoke: {e}")),
                };
                return self.control.reply(conn, &response, None);
            }
            Request::BootLog { boot, name, lines } => {
                if let Err(busy) = self.readers.boot_log(conn, boot, name, lines) {
                    self.control.reply(conn, &busy, None);
                }
                return;
            }
        };
        self.feed(Event::Request { id: conn, op });
    }

    /// `reset --state`: checked now (root asks, STATE has a partition, the
    /// template reads), carried out by the shutdown it starts.
    fn reset(&mut self, conn: ConnId, state: bool) {
        let refuse = |code, msg: String| Response::error(code, format!("reset: {msg}"));
        let response = if !state {
            refuse(
                ErrorCode::BadRequest,
                "nothing to reset (`state` is false; `berth reset --state` empties STATE)".into(),
            )
        } else if let Some(who) = match self.control.peer_uid(conn) {
            Some(0) => None,
            Some(uid) => Some(format!("this client runs as uid {uid}")),
            None => Some("the client's user is unknown".to_owned()),
        } {
            refuse(
                ErrorCode::InvalidState,
                format!("only root on the node may reset STATE ({who})"),
            )
        } else if let Some(action) = self.node.shutting_down() {
            refuse(
                ErrorCode::InvalidState,
                format!("the node is shutting down ({})", action.as_str()),
            )
        } else {
            match crate::disk::reset::Reset::for_node(self.state.ready().and_then(|s| s.device())) {
                Err(e) => refuse(ErrorCode::InvalidState, crate::fatal::chain(&e)),
                Ok(reset) => {
                    let msg = format!(
                        "stopping every container, then emptying STATE {} and rebooting",
                        reset.device
                    );
                    self.reset = Some(reset);
                    self.control.reply(
                        conn,
                        &Response::Success(Outcome::Reset(MessageResult::new(msg))),
                        None,
                    );
                    self.feed(Event::Shutdown {
                        action: PowerAction::Reboot,
                        why: "reset --state requested through the control socket".into(),
                    });
                    return;
                }
            }
        };
        self.control.reply(conn, &response, None);
    }

    fn not_found(&mut self, conn: ConnId, name: &str) {
        let response = Response::error(ErrorCode::NotFound, format!("no container named {name:?}"));
        self.control.reply(conn, &response, None);
    }

    fn exec_request(&mut self, conn: ConnId, name: &str, argv: Vec<String>) {
        let Some(i) = self.node.index(name) else {
            return self.not_found(conn, name);
        };
        if self.node.running(i).is_none() {
            let response =
                Response::error(ErrorCode::InvalidState, format!("{name} is not running"));
            return self.control.reply(conn, &response, None);
        }
        self.start_exec(conn, i, argv);
    }

    fn logs(&mut self, conn: ConnId, name: &str, lines: Option<usize>, follow: bool) {
        let Some(i) = self.node.index(name) else {
            return self.not_found(conn, name);
        };
        let ring = &self.outputs[i].ring;
        let lines: Vec<LogLine> = ring
            .tail(lines.unwrap_or(DEFAULT_LOG_LINES))
            .map(LogLine::from)
            .collect();
        let sub = follow.then(|| Follow {
            slot: i,
            seq: ring.last_seq(),
        });
        let response = Response::Success(Outcome::Logs(LogsResult { lines }));
        self.control.reply(conn, &response, sub);
    }

    /// STATE as `berth status` says it.
    fn state_status(&self) -> String {
        match self.state.ready() {
            Some(state) => state.status(),
            None => "being set up".to_owned(),
        }
    }

    fn status(&self) -> StatusResult {
        let now = uptime();
        StatusResult {
            node: NodeStatus {
                hostname: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                uptime_ms: now.as_millis() as u64,
                berth_version: env!("CARGO_PKG_VERSION").to_owned(),
                pid1_rss_kib: rss_kib().unwrap_or(0),
                stage: self.node.stage_word().to_owned(),
                root: self.root.clone(),
                state: self.state_status(),
                api: crate::remote::status(),
            },
            containers: self.node.statuses(now),
        }
    }

    /// Sends each `logs -f` client the lines its container printed since.
    pub(super) fn feed_followers(&mut self) {
        for (id, f) in self.control.followers() {
            let Some(out) = self.outputs.get(f.slot) else {
                continue;
            };
            let mut bytes = Vec::new();
            let mut last = f.seq;
            for e in out.ring.after(f.seq) {
                bytes.extend(encode_follow_line(&LogLine::from(e)));
                last = e.seq;
            }
            if last != f.seq {
                self.control.push_follow(id, &bytes, last);
            }
        }
    }
}

/// The kernel's last `lines` records.
fn dmesg(lines: Option<usize>) -> Response {
    match kmsg::read_last(lines.unwrap_or(usize::MAX)) {
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
            Response::Success(Outcome::Dmesg(DmesgResult { lines }))
        }
        Err(e) => Response::error(ErrorCode::Internal, format!("read /dev/kmsg: {e}")),
    }
}

/// Whether answering `request` reads or writes STATE: the status (its
/// usage), an earlier boot's log, a reset, a revocation.
fn reads_state(request: &Request) -> bool {
    matches!(
        request,
        Request::Status | Request::BootLog { .. } | Request::Reset { .. } | Request::Revoke { .. }
    )
}
