//! The node's phases as a pure function: `onboot` containers one after
//! another to completion, then every service at once; on shutdown the
//! services stop, then `onshutdown` containers run one after another, each
//! within its deadline, then the node goes down. The loop reports what
//! happened; the sequencer answers with what to start, stop or kill.

use std::time::Duration;

use berth_config::{Container, Phase};

use crate::exit::ExitStatus;

/// Where the node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Not begun.
    Idle,
    /// Running the onboot container at this position of the onboot list.
    OnBoot(usize),
    /// An essential onboot container failed: no service starts.
    Halted,
    /// Services started.
    Services,
    /// Shutting down: waiting for the services to stop.
    StoppingServices,
    /// Running the onshutdown container at this position, until the
    /// deadline.
    OnShutdown { pos: usize, deadline: Duration },
    /// Everything that runs on shutdown has run.
    Finished,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqEvent {
    /// The supervisor is up: begin the boot.
    Begin,
    /// A run-once container (by index) ended at `at`; `status` is `None`
    /// when it never started.
    Finished {
        index: usize,
        status: Option<ExitStatus>,
        at: Duration,
    },
    /// An orderly shutdown was requested.
    Shutdown,
    /// Every service has stopped.
    ServicesSettled { now: Duration },
    /// Time passed.
    Tick { now: Duration },
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqAction {
    /// Start this container.
    Start(usize),
    /// Stop every service (and a running onboot container), in reverse order.
    StopServices,
    /// SIGKILL this container (an onshutdown container past its deadline).
    Kill(usize),
    /// Shutdown may finish: nothing else will run.
    Finish,
    Log(String),
}

/// The sequencer over a manifest's containers.
#[derive(Debug, Clone)]
pub struct Sequencer {
    names: Vec<String>,
    onboot: Vec<usize>,
    services: Vec<usize>,
    onshutdown: Vec<(usize, Duration)>,
    essential: Vec<bool>,
    stage: Stage,
}

impl Sequencer {
    pub fn new(containers: &[Container]) -> Sequencer {
        let of = |p: Phase| -> Vec<usize> {
            containers
                .iter()
                .enumerate()
                .filter(|(_, c)| c.phase == p)
                .map(|(i, _)| i)
                .collect()
        };
        Sequencer {
            names: containers.iter().map(|c| c.name.clone()).collect(),
            onboot: of(Phase::OnBoot),
            services: of(Phase::Service),
            onshutdown: of(Phase::OnShutdown)
                .into_iter()
                .map(|i| (i, containers[i].stop_grace))
                .collect(),
            essential: containers.iter().map(|c| c.essential).collect(),
            stage: Stage::Idle,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// When the loop must call back with a `Tick`.
    pub fn wake_at(&self) -> Option<Duration> {
        match self.stage {
            Stage::OnShutdown { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    pub fn next(&mut self, event: SeqEvent) -> Vec<SeqAction> {
        match (self.stage, event) {
            (Stage::Idle, SeqEvent::Begin) => self.onboot_from(0),
            (Stage::OnBoot(pos), SeqEvent::Finished { index, status, .. })
                if self.onboot.get(pos) == Some(&index) =>
            {
                let name = &self.names[index];
                let ok = status.is_some_and(ExitStatus::success);
                let what = match status {
                    Some(s) => s.to_string(),
                    None => "did not start".to_owned(),
                };
                if ok {
                    let mut a = vec![SeqAction::Log(format!("onboot {name} {what}"))];
                    a.extend(self.onboot_from(pos + 1));
                    a
                } else if self.essential[index] {
                    self.stage = Stage::Halted;
                    vec![SeqAction::Log(format!(
                        "boot halted: essential onboot container {name} {what}; no service starts (mark it essential = false to go on)"
                    ))]
                } else {
                    let mut a = vec![SeqAction::Log(format!(
                        "onboot {name} {what}; not essential, boot goes on"
                    ))];
                    a.extend(self.onboot_from(pos + 1));
                    a
                }
            }
            (
                Stage::Idle | Stage::OnBoot(_) | Stage::Halted | Stage::Services,
                SeqEvent::Shutdown,
            ) => {
                self.stage = Stage::StoppingServices;
                vec![SeqAction::StopServices]
            }
            (Stage::StoppingServices, SeqEvent::ServicesSettled { now }) => {
                self.onshutdown_from(0, now)
            }
            (Stage::OnShutdown { pos, .. }, SeqEvent::Finished { index, status, at })
                if self.onshutdown.get(pos).map(|o| o.0) == Some(index) =>
            {
                let what = status.map_or_else(|| "did not start".to_owned(), |s| s.to_string());
                let mut a = vec![SeqAction::Log(format!(
                    "onshutdown {} {what}",
                    self.names[index]
                ))];
                a.extend(self.onshutdown_from(pos + 1, at));
                a
            }
            (Stage::OnShutdown { pos, deadline }, SeqEvent::Tick { now }) if now >= deadline => {
                let (index, grace) = self.onshutdown[pos];
                self.stage = Stage::OnShutdown {
                    pos,
                    deadline: Duration::MAX,
                };
                vec![
                    SeqAction::Log(format!(
                        "onshutdown {} still running after {:.3} s: SIGKILL",
                        self.names[index],
                        grace.as_secs_f64()
                    )),
                    SeqAction::Kill(index),
                ]
            }
            _ => vec![],
        }
    }

    fn onboot_from(&mut self, pos: usize) -> Vec<SeqAction> {
        match self.onboot.get(pos) {
            Some(&i) => {
                self.stage = Stage::OnBoot(pos);
                vec![SeqAction::Start(i)]
            }
            None => {
                self.stage = Stage::Services;
                self.services.iter().map(|&i| SeqAction::Start(i)).collect()
            }
        }
    }

    fn onshutdown_from(&mut self, pos: usize, now: Duration) -> Vec<SeqAction> {
        match self.onshutdown.get(pos) {
            Some(&(i, grace)) => {
                self.stage = Stage::OnShutdown {
                    pos,
                    deadline: now.saturating_add(grace),
                };
                vec![SeqAction::Start(i)]
            }
            None => {
                self.stage = Stage::Finished;
                vec![SeqAction::Finish]
            }
        }
    }
}

#[cfg(test)]
mod tests;
