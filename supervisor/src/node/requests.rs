//! What an operator's start, stop, restart or power request means, from
//! any state a container can be in: backing off, crash-looped, waiting for
//! what it depends on, launching, or in a shutdown.

use super::*;
use crate::api::{ErrorCode, MessageResult, Outcome};

/// An operator's request that changes what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Start(String),
    Stop(String),
    Restart(String),
    Power(PowerAction),
}

impl Node {
    pub(super) fn request(&mut self, op: Op) -> Response {
        if let Op::Power(action) = op {
            self.request_shutdown(action, "requested through the control socket");
            let msg = format!("{} requested", action.as_str());
            return Response::Success(Outcome::Power(MessageResult::new(msg)));
        }
        let name = match &op {
            Op::Start(n) | Op::Stop(n) | Op::Restart(n) => n.clone(),
            Op::Power(_) => String::new(),
        };
        let Some(i) = self.index(&name) else {
            return Response::error(ErrorCode::NotFound, format!("no container named {name:?}"));
        };
        if let Some(sd) = self.shutdown {
            return Response::error(
                ErrorCode::InvalidState,
                format!("the node is shutting down ({})", sd.action.as_str()),
            );
        }
        match op {
            Op::Start(_) => self.operator_start(i),
            Op::Stop(_) => self.operator_stop(i),
            Op::Restart(_) => self.operator_restart(i),
            Op::Power(_) => Response::error(ErrorCode::Internal, "power is answered above"),
        }
    }

    fn invalid(&self, i: usize) -> Response {
        let u = &self.units[i];
        Response::error(
            ErrorCode::InvalidState,
            format!("{} is {}", u.spec.name, self.state_word(i)),
        )
    }

    fn operator_start(&mut self, i: usize) -> Response {
        let u = &self.units[i];
        if u.launching || u.stop_pending || !u.lifecycle.settled() {
            return self.invalid(i);
        }
        let name = u.spec.name.clone();
        if !self.deps_ready(i) {
            self.units[i].wanted = true;
            return Response::Success(Outcome::Start(MessageResult::new(format!(
                "{name} starts once {} is ready",
                self.waiting_on(i)
            ))));
        }
        self.units[i].wanted = false;
        let reason = "requested through the control socket".to_owned();
        self.lifecycle(i, LcEvent::Start { reason });
        Response::Success(Outcome::Start(MessageResult::new(format!(
            "{name} started"
        ))))
    }

    fn operator_stop(&mut self, i: usize) -> Response {
        let name = self.units[i].spec.name.clone();
        let u = &mut self.units[i];
        u.wanted = false;
        let up = u.launching
            || matches!(
                u.lifecycle.state(),
                State::Running { .. } | State::Backoff { .. }
            );
        if !up || u.stop_pending {
            return self.invalid(i);
        }
        u.stop_pending = true;
        self.stop_dependents(i, false);
        Response::Success(Outcome::Stop(MessageResult::new(format!(
            "stopping {name}"
        ))))
    }

    fn operator_restart(&mut self, i: usize) -> Response {
        let name = self.units[i].spec.name.clone();
        let u = &self.units[i];
        if u.launching || u.stop_pending || matches!(u.lifecycle.state(), State::Stopping { .. }) {
            return self.invalid(i);
        }
        self.units[i].wanted = false;
        let now = self.now;
        self.lifecycle(i, LcEvent::Restart { now });
        Response::Success(Outcome::Restart(MessageResult::new(format!(
            "restarting {name}"
        ))))
    }
}
