//! What `berth status` shows of the node's containers.

use super::*;
use crate::api::ContainerStatus;

impl Node {
    /// Every container's row, at `now`.
    pub fn statuses(&self, now: Duration) -> Vec<ContainerStatus> {
        (0..self.units.len())
            .map(|i| {
                let u = &self.units[i];
                ContainerStatus {
                    name: u.spec.name.clone(),
                    kind: u.spec.kind.into(),
                    phase: u.spec.phase.into(),
                    state: self.state_word(i).to_owned(),
                    pid: u.pid,
                    restarts: u.starts.saturating_sub(1),
                    uptime_ms: u
                        .pid
                        .and(u.started_at)
                        .map(|t| now.saturating_sub(t).as_millis() as u64),
                    last_exit: u.last_exit.map(|e| e.to_string()),
                    health: u
                        .checker
                        .as_ref()
                        .and_then(Checker::health)
                        .map(|h| h.as_str().to_owned()),
                }
            })
            .collect()
    }

    /// The node's phase in one word.
    pub fn stage_word(&self) -> &'static str {
        match self.seq.stage() {
            Stage::Idle => "starting",
            Stage::OnBoot(_) => "onboot",
            Stage::Halted => "halted",
            Stage::Services => "running",
            Stage::StoppingServices | Stage::OnShutdown { .. } | Stage::Finished => "shutting-down",
        }
    }

    /// Container `i`'s state in one word: `starting` while its launch is
    /// in flight, `stopping` once a stop is asked for, `waiting` while held
    /// back by what it depends on, `failed` for one that ran to its end
    /// unsuccessfully (a non-essential `onboot` container, a
    /// `restart = "never"` service), else its lifecycle state.
    pub(super) fn state_word(&self, i: usize) -> &'static str {
        let u = &self.units[i];
        if u.launching {
            return "starting";
        }
        if u.stop_pending {
            return "stopping";
        }
        if u.wanted && u.pid.is_none() {
            return "waiting";
        }
        match u.lifecycle.state() {
            State::Idle => "idle",
            State::Running { .. } => "running",
            State::Backoff { .. } => "backoff",
            State::Done if u.last_exit.is_some_and(|e| !e.success()) => "failed",
            State::Done => "done",
            State::Stopping { .. } => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}
