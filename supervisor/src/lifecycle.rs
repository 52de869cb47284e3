//! One container's lifecycle as a pure function: `(state, event) →
//! actions`. The supervisor loop feeds it what happened (a launch, an exit,
//! the clock, a stop request) and carries out what it returns (launch,
//! signal, log, wake me at). Nothing here touches the system, so every
//! transition is a row in a table test.

use std::collections::VecDeque;
use std::time::Duration;

use berth_config::{Backoff, Container, CrashLoop, RestartPolicy};

use crate::backoff;
use crate::exit::{signal_name, ExitStatus};

/// Where a container is. Times are durations since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Idle,
    /// Its process runs since `since`.
    Running { since: Duration },
    /// Waiting out the restart delay until `until`.
    Backoff { until: Duration },
    /// Ended and not restarted, by policy.
    Done,
    /// Asked to stop: the stop signal went out; SIGKILL at `deadline`
    /// unless it has `killed` already.
    Stopping {
        since: Duration,
        deadline: Duration,
        killed: bool,
        /// Start again once stopped (an operator's restart).
        restart: bool,
    },
    /// Stopped on request (shutdown, operator); not restarted by policy.
    Stopped,
    /// Crash-looping: too many starts within the window; not restarted.
    Failed,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The launch succeeded at `at`.
    Launched { at: Duration },
    /// The launch failed at `at`.
    LaunchFailed { at: Duration, error: String },
    /// The container's process ended.
    Exited { at: Duration, status: ExitStatus },
    /// Time passed; `now` is the current time.
    Tick { now: Duration },
    /// Stop for good (shutdown, operator).
    Stop { now: Duration },
    /// A start of a container that is down (stopped, done or failed),
    /// asked by the operator or because what it requires is back; the
    /// crash-loop history and backoff start over. `reason` goes into the log.
    Start { reason: String },
    /// The operator asks for a restart: stop (if running), then start with
    /// a clean history; clears `failed`.
    Restart { now: Duration },
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Launch the container now.
    Launch,
    /// Send this signal to the container's process.
    Signal(i32),
    /// One console line from berth about this container.
    Log(String),
}

const SIGKILL: i32 = 9;

/// Which request moved a running container to `Stopping`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Restart,
    Other,
}

/// The lifecycle of one container.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    name: String,
    policy: RestartPolicy,
    backoff: Backoff,
    stop_signal: i32,
    stop_grace: Duration,
    crash_loop: CrashLoop,
    state: State,
    /// Consecutive restarts since the last stable run.
    restarts: u32,
    /// Start times within the crash-loop window, oldest first.
    starts: VecDeque<Duration>,
}

impl Lifecycle {
    pub fn new(c: &Container) -> Lifecycle {
        Lifecycle {
            name: c.name.clone(),
            policy: c.restart,
            backoff: c.backoff,
            stop_signal: c.stop_signal,
            stop_grace: c.stop_grace,
            crash_loop: c.crash_loop,
            state: State::Idle,
            restarts: 0,
            starts: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the loop should start it at boot.
    pub fn wants_start(&self) -> bool {
        self.state == State::Idle
    }

    /// When the loop must call back with a `Tick`, if ever.
    pub fn wake_at(&self) -> Option<Duration> {
        match self.state {
            State::Backoff { until } => Some(until),
            State::Stopping {
                deadline,
                killed: false,
                ..
            } => Some(deadline),
            _ => None,
        }
    }

    /// Whether it has a process or may get one again (shutdown waits for
    /// every container to be settled).
    pub fn settled(&self) -> bool {
        matches!(
            self.state,
            State::Idle | State::Done | State::Stopped | State::Failed
        )
    }

    /// The transition function.
    pub fn next(&mut self, event: Event) -> Vec<Action> {
        let name = self.name.clone();
        let event_kind = if matches!(event, Event::Restart { .. }) {
            Kind::Restart
        } else {
            Kind::Other
        };
        match (self.state, event) {
            (State::Idle | State::Backoff { .. }, Event::Launched { at }) => {
                self.state = State::Running { since: at };
                self.starts.push_back(at);
                vec![]
            }
            (State::Idle | State::Backoff { .. }, Event::LaunchFailed { at, error }) => self
                .after_end(
                    at,
                    Duration::ZERO,
                    false,
                    format!("start {name} failed: {error}"),
                ),
            (State::Running { since }, Event::Exited { at, status }) => {
                let ran = at.saturating_sub(since);
                let what = format!("{name} {status} after {}", secs(ran));
                self.after_end(at, ran, status.success(), what)
            }
            (State::Backoff { until }, Event::Tick { now }) if now >= until => vec![Action::Launch],
            (State::Running { .. }, Event::Stop { now } | Event::Restart { now }) => {
                self.begin_stop(now, matches!(event_kind, Kind::Restart))
            }
            (
                State::Idle | State::Backoff { .. } | State::Done | State::Failed,
                Event::Stop { .. },
            ) => {
                self.state = State::Stopped;
                vec![]
            }
            (
                State::Stopping {
                    since,
                    deadline,
                    killed: false,
                    restart,
                },
                Event::Tick { now },
            ) if now >= deadline => {
                self.state = State::Stopping {
                    since,
                    deadline,
                    killed: true,
                    restart,
                };
                vec![
                    Action::Log(format!(
                        "{name} did not stop within {}: SIGKILL",
                        secs(self.stop_grace)
                    )),
                    Action::Signal(SIGKILL),
                ]
            }
            (State::Stopping { since, restart, .. }, Event::Exited { at, status }) => {
                let what = format!(
                    "{name} stopped: {status} after {}",
                    secs(at.saturating_sub(since))
                );
                self.stopped(restart, what)
            }
            (State::Idle, Event::Start { .. }) => {
                self.fresh_start();
                vec![Action::Launch]
            }
            (State::Stopped | State::Done | State::Failed, Event::Start { reason }) => {
                self.fresh_start();
                vec![
                    Action::Log(format!("starting {name}: {reason}")),
                    Action::Launch,
                ]
            }
            (
                State::Idle | State::Stopped | State::Done | State::Failed | State::Backoff { .. },
                Event::Restart { .. },
            ) => {
                self.fresh_start();
                vec![
                    Action::Log(format!("starting {name}: restart requested")),
                    Action::Launch,
                ]
            }
            // Everything else changes nothing: ticks before a deadline,
            // repeated stop requests, events for a state that has moved on.
            _ => vec![],
        }
    }

    /// A running container is asked to stop (or restart): the stop
    /// signal, and SIGKILL after the grace period.
    fn begin_stop(&mut self, now: Duration, restart: bool) -> Vec<Action> {
        self.state = State::Stopping {
            since: now,
            deadline: now + self.stop_grace,
            killed: false,
            restart,
        };
        vec![
            Action::Log(format!(
                "stopping {}: {}, SIGKILL after {}",
                self.name,
                signal_name(self.stop_signal),
                secs(self.stop_grace)
            )),
            Action::Signal(self.stop_signal),
        ]
    }

    /// A stopping container's process ended (`what` says how): stopped,
    /// or launched again for a restart.
    fn stopped(&mut self, restart: bool, what: String) -> Vec<Action> {
        let mut actions = vec![Action::Log(what)];
        if restart {
            self.fresh_start();
            actions.push(Action::Launch);
        } else {
            self.state = State::Stopped;
        }
        actions
    }

    /// Forgets the restart and crash-loop history: what an operator's start
    /// or restart means.
    fn fresh_start(&mut self) {
        self.state = State::Idle;
        self.restarts = 0;
        self.starts.clear();
    }

    /// After a run (or a failed launch) ended: restart per policy, with the
    /// backoff delay, or stay down.
    fn after_end(
        &mut self,
        at: Duration,
        ran: Duration,
        success: bool,
        what: String,
    ) -> Vec<Action> {
        let restart = match self.policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        };
        let policy = self.policy.as_str();
        if !restart {
            self.state = State::Done;
            return vec![Action::Log(format!(
                "{what}; not restarting (restart = {policy})"
            ))];
        }
        // Starts older than the window no longer count.
        let window = self.crash_loop.window;
        while self
            .starts
            .front()
            .is_some_and(|t| at.saturating_sub(*t) > window)
        {
            self.starts.pop_front();
        }
        let limit = self.crash_loop.starts;
        if limit > 0 && self.starts.len() >= limit as usize {
            self.state = State::Failed;
            return vec![Action::Log(format!(
                "{what}; {} is crash-looping ({} starts within {}): failed, not restarting",
                self.name,
                self.starts.len(),
                secs(window)
            ))];
        }
        self.restarts = backoff::count_after_run(&self.backoff, self.restarts, ran);
        let delay = backoff::delay(&self.backoff, self.restarts);
        self.restarts = self.restarts.saturating_add(1);
        self.state = State::Backoff { until: at + delay };
        vec![Action::Log(format!(
            "{what}; restarting in {} ms (restart {}, restart = {policy})",
            delay.as_millis(),
            self.restarts
        ))]
    }
}

/// `2.345 s`.
fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests;
