//! The supervisor's decisions for a whole node, as one pure function:
//! [`Node::next`] takes what happened (a container exited, a launch ended,
//! the clock, a probe result, an operator request, a shutdown request, the
//! network) and returns what the loop must do ([`Command`]s: launch, signal,
//! probe, answer, log, arm the timer, finish the shutdown).
//!
//! It drives the per-container machines ([`Lifecycle`], [`Checker`]) and
//! the node's ([`Sequencer`], [`Graph`]) and owns every rule between
//! containers:
//!
//! - **Readiness gating.** A service starts once everything it waits for
//!   (`after` ∪ `requires`, and `network-online`) is ready: running, and
//!   past its first passing health check if it has one.
//! - **Ordered stops.** A container whose stop was asked for is signalled
//!   only once everything that waits for it and is stopping too is gone:
//!   most dependent first, for a `requires` stop as for a shutdown.
//! - **`requires`.** When a container goes down, what requires it stops
//!   (in that order) and starts again once it is ready.
//! - **Run-once settling, operator requests, shutdown order and
//!   `onshutdown`**, through the sequencer and the lifecycles.
//!
//! A launch is asynchronous: [`Command::Launch`] goes out, and the loop
//! reports [`Event::Launched`] or [`Event::LaunchFailed`] later, with other
//! events in between. A container with a launch in flight is neither
//! launched again nor signalled; a stop asked for meanwhile waits for the
//! launch to end.
//!
//! Times are durations since boot; the loop passes the current one to
//! every call. Nothing here touches the system.

use std::time::Duration;

use berth_config::network::NETWORK_ONLINE;
use berth_config::{Container, Phase};

use crate::api::Response;
use crate::deps::Graph;
use crate::exit::ExitStatus;
use crate::health::{Checker, HealthAction, HealthEvent};
use crate::lifecycle::{Action, Event as LcEvent, Lifecycle, State};
use crate::phases::{SeqAction, SeqEvent, Sequencer, Stage};
use crate::power::PowerAction;

mod requests;
mod status;
mod stops;

pub use requests::Op;

const SIGKILL: i32 = 9;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The loop is up: begin the boot.
    Begin,
    /// Container `index`'s launch succeeded; its process is `pid`.
    Launched { index: usize, pid: i32 },
    /// Container `index`'s launch failed.
    LaunchFailed { index: usize, error: String },
    /// Container `index`'s process ended.
    Exited { index: usize, status: ExitStatus },
    /// The timer armed by the last [`Command::Timer`] fired (or any time
    /// passed: early ticks change nothing).
    Tick,
    /// The probe asked for by [`Command::Probe`] ended; `ok` when it
    /// passed, false when it failed, timed out or did not start.
    ProbeResult {
        index: usize,
        generation: u64,
        ok: bool,
    },
    /// An operator's request, to be answered with [`Command::Answer`] and
    /// this `id`.
    Request { id: u64, op: Op },
    /// An orderly shutdown was asked for (a signal, the power button).
    Shutdown { action: PowerAction, why: String },
    /// The network came online or went offline (`network-online`).
    Network { online: bool },
}

/// What the loop must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Launch container `index` and report how it went.
    Launch(usize),
    /// Send `signal` to container `index`'s process `pid`.
    Signal { index: usize, pid: i32, signal: i32 },
    /// Run container `index`'s health probe and report the result with
    /// this `generation` (results of an earlier run are dropped).
    Probe { index: usize, generation: u64 },
    /// Answer the operator's request `id`.
    Answer { id: u64, response: Response },
    /// One console line from the supervisor.
    Log(String),
    /// Tick at this time since boot (`None`: nothing to wait for). Goes
    /// out whenever the earliest deadline changes.
    Timer(Option<Duration>),
    /// The boot reached its services and the launches that set off
    /// ended: `running` of `total` containers run (the loop adds its own
    /// figures to the line).
    Supervising { running: usize, total: usize },
    /// Shutdown may finish: nothing else will run.
    Finish(PowerAction),
}

/// One container as the node sees it.
#[derive(Debug, Clone)]
struct Unit {
    spec: Container,
    lifecycle: Lifecycle,
    checker: Option<Checker>,
    /// Should run, but waits for what it depends on.
    wanted: bool,
    /// A launch is in flight.
    launching: bool,
    /// A stop was asked for and waits for its dependents to be gone.
    stop_pending: bool,
    /// Why, when it is not the container's own stop (a `requires` stop).
    stop_reason: Option<String>,
    pid: Option<i32>,
    /// Counts its runs, so a late probe result of an old run is dropped.
    generation: u64,
    starts: u32,
    started_at: Option<Duration>,
    last_exit: Option<ExitStatus>,
}

/// A shutdown in progress.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    action: PowerAction,
    since: Duration,
}

/// Every container of a node and the node's phase.
#[derive(Debug, Clone)]
pub struct Node {
    units: Vec<Unit>,
    graph: Graph,
    seq: Sequencer,
    shutdown: Option<Shutdown>,
    online: bool,
    /// The last deadline sent in a [`Command::Timer`].
    armed: Option<Duration>,
    /// The services were just started: say so once their launches end.
    announce: bool,
    /// What the current call returns.
    out: Vec<Command>,
    /// The current call's time.
    now: Duration,
}

impl Node {
    pub fn new(containers: Vec<Container>) -> Node {
        let graph = Graph::new(&containers);
        let seq = Sequencer::new(&containers);
        let units = containers
            .into_iter()
            .map(|spec| Unit {
                lifecycle: Lifecycle::new(&spec),
                checker: spec.health.as_ref().map(Checker::new),
                wanted: false,
                launching: false,
                stop_pending: false,
                stop_reason: None,
                pid: None,
                generation: 0,
                starts: 0,
                started_at: None,
                last_exit: None,
                spec,
            })
            .collect();
        Node {
            units,
            graph,
            seq,
            shutdown: None,
            online: false,
            armed: None,
            announce: false,
            out: Vec::new(),
            now: Duration::ZERO,
        }
    }

    /// The containers, in manifest order (indices as in events).
    pub fn container(&self, index: usize) -> Option<&Container> {
        self.units.get(index).map(|u| &u.spec)
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The index of the container called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.units.iter().position(|u| u.spec.name == name)
    }

    /// Container `index`'s process and the generation of its run, while it
    /// has one.
    pub fn running(&self, index: usize) -> Option<(i32, u64)> {
        let u = self.units.get(index)?;
        u.pid.map(|p| (p, u.generation))
    }

    /// The node's phase.
    pub fn stage(&self) -> Stage {
        self.seq.stage()
    }

    /// Whether a shutdown is under way, and which.
    pub fn shutting_down(&self) -> Option<PowerAction> {
        self.shutdown.map(|s| s.action)
    }

    /// The transition function: what the loop must do after `event`,
    /// happening at `now`.
    pub fn next(&mut self, now: Duration, event: Event) -> Vec<Command> {
        self.now = now;
        self.out.clear();
        self.handle(event);
        self.settle();
        let wake = self.wake_at();
        if wake != self.armed {
            self.armed = wake;
            self.out.push(Command::Timer(wake));
        }
        std::mem::take(&mut self.out)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Begin => {
                if self.units.is_empty() {
                    self.log("no containers to start".to_owned());
                }
                self.sequence(SeqEvent::Begin);
            }
            Event::Launched { index, pid } => self.launched(index, pid),
            Event::LaunchFailed { index, error } => self.launch_failed(index, error),
            Event::Exited { index, status } => self.exited(index, status),
            Event::Tick => self.tick(),
            Event::ProbeResult {
                index,
                generation,
                ok,
            } => {
                if self
                    .units
                    .get(index)
                    .is_some_and(|u| u.generation == generation && u.pid.is_some())
                {
                    let at = self.now;
                    self.health(index, HealthEvent::Result { at, ok });
                }
            }
            Event::Request { id, op } => {
                let response = self.request(op);
                self.out.push(Command::Answer { id, response });
            }
            Event::Shutdown { action, why } => self.request_shutdown(action, &why),
            Event::Network { online } => self.online = online,
        }
    }

    /// What follows from any event: stops whose dependents are gone go
    /// out, waiting services whose dependencies became ready start, and a
    /// shutdown moves on once every service is down.
    fn settle(&mut self) {
        loop {
            let before = self.out.len();
            self.advance_stops();
            self.start_waiting();
            self.services_settled();
            if self.out.len() == before {
                break;
            }
        }
        if self.announce && !self.units.iter().any(|u| u.launching) {
            self.announce = false;
            if self.shutdown.is_none() {
                let running = self.units.iter().filter(|u| u.pid.is_some()).count();
                self.out.push(Command::Supervising {
                    running,
                    total: self.units.len(),
                });
            }
        }
    }

    fn log(&mut self, line: String) {
        self.out.push(Command::Log(line));
    }

    /// Gives the phase sequencer an event and carries out its actions.
    fn sequence(&mut self, event: SeqEvent) {
        let before = self.seq.stage();
        for action in self.seq.next(event) {
            match action {
                SeqAction::Log(line) => self.log(line),
                SeqAction::Start(i) => {
                    if self.units[i].spec.phase == Phase::Service {
                        // Services start as soon as what they wait for is
                        // ready; independent ones at once.
                        self.units[i].wanted = true;
                    } else {
                        self.launch(i);
                    }
                }
                SeqAction::StopServices => self.stop_all(),
                SeqAction::Kill(i) => self.signal(i, SIGKILL),
                SeqAction::Finish => {
                    if let Some(sd) = self.shutdown {
                        self.out.push(Command::Finish(sd.action));
                    }
                }
            }
        }
        if before != Stage::Services && self.seq.stage() == Stage::Services {
            // Said once the launches this sets off have ended.
            self.announce = true;
        }
    }

    /// Whether container `i` counts as ready for those that wait on it:
    /// running, and past its first passing health check if it has one.
    fn is_ready(&self, i: usize) -> bool {
        let u = &self.units[i];
        matches!(u.lifecycle.state(), State::Running { .. })
            && u.checker.as_ref().is_none_or(Checker::is_ready)
    }

    fn waits_for_network(&self, i: usize) -> bool {
        self.units[i].spec.after.iter().any(|a| a == NETWORK_ONLINE)
    }

    fn deps_ready(&self, i: usize) -> bool {
        self.graph.can_start(i, &|j| self.is_ready(j))
            && (self.online || !self.waits_for_network(i))
    }

    /// The names of what `i` waits for that is not ready yet.
    fn waiting_on(&self, i: usize) -> String {
        let mut names: Vec<&str> = self
            .graph
            .waits_for(i)
            .iter()
            .filter(|j| !self.is_ready(**j))
            .map(|j| self.units[*j].spec.name.as_str())
            .collect();
        if self.waits_for_network(i) && !self.online {
            names.push(NETWORK_ONLINE);
        }
        names.join(", ")
    }

    /// Starts every wanted container whose dependencies are ready.
    fn start_waiting(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        while let Some(i) = (0..self.units.len()).find(|&i| self.can_start_now(i)) {
            self.units[i].wanted = false;
            let reason = "what it requires is ready again".to_owned();
            self.lifecycle(i, LcEvent::Start { reason });
        }
    }

    /// Whether a wanted container `i` may start: it is down for good
    /// (not launching, stopping or waiting to stop) and what it depends on
    /// is ready.
    fn can_start_now(&self, i: usize) -> bool {
        let u = &self.units[i];
        u.wanted && !u.launching && !u.stop_pending && u.lifecycle.settled() && self.deps_ready(i)
    }

    /// Asks for container `i`'s launch, unless what it depends on is down:
    /// then it waits (a restart by policy while a requirement is down).
    fn launch(&mut self, i: usize) {
        if self.units[i].launching {
            return;
        }
        if !self.deps_ready(i) {
            let line = format!(
                "{} waits for {}",
                self.units[i].spec.name,
                self.waiting_on(i)
            );
            self.log(line);
            let now = self.now;
            self.lifecycle(i, LcEvent::Stop { now });
            self.units[i].wanted = self.shutdown.is_none();
            return;
        }
        self.units[i].wanted = false;
        self.units[i].launching = true;
        self.out.push(Command::Launch(i));
    }

    fn launched(&mut self, i: usize, pid: i32) {
        let Some(u) = self.units.get_mut(i).filter(|u| u.launching) else {
            return;
        };
        u.launching = false;
        u.pid = Some(pid);
        u.starts += 1;
        u.started_at = Some(self.now);
        u.generation += 1;
        let at = self.now;
        self.lifecycle(i, LcEvent::Launched { at });
        self.health(i, HealthEvent::Started { at });
    }

    fn launch_failed(&mut self, i: usize, error: String) {
        let Some(u) = self.units.get_mut(i).filter(|u| u.launching) else {
            return;
        };
        u.launching = false;
        let at = self.now;
        self.lifecycle(i, LcEvent::LaunchFailed { at, error });
        self.run_once_settled(i, None);
    }

    fn exited(&mut self, i: usize, status: ExitStatus) {
        let Some(u) = self.units.get_mut(i).filter(|u| u.pid.is_some()) else {
            return;
        };
        u.pid = None;
        u.last_exit = Some(status);
        let at = self.now;
        self.lifecycle(i, LcEvent::Exited { at, status });
        self.health(i, HealthEvent::Stopped);
        self.run_once_settled(i, Some(status));
        self.stop_dependents(i, true);
    }

    /// Gives container `i`'s lifecycle an event and carries out its actions.
    fn lifecycle(&mut self, i: usize, event: LcEvent) {
        for action in self.units[i].lifecycle.next(event) {
            match action {
                Action::Log(line) => self.log(line),
                Action::Launch => self.launch(i),
                Action::Signal(sig) => self.signal(i, sig),
            }
        }
    }

    /// Gives container `i`'s health checker an event and carries out what
    /// it says.
    fn health(&mut self, i: usize, event: HealthEvent) {
        let Some(checker) = self.units[i].checker.as_mut() else {
            return;
        };
        let actions = checker.next(event);
        let name = self.units[i].spec.name.clone();
        for action in actions {
            match action {
                HealthAction::RunProbe => {
                    let generation = self.units[i].generation;
                    self.out.push(Command::Probe {
                        index: i,
                        generation,
                    });
                }
                HealthAction::Ready => self.log(format!("{name} is ready (health check passed)")),
                HealthAction::Unhealthy(reason) => {
                    let policy = self.units[i].spec.restart.as_str();
                    self.log(format!(
                        "{name} is unhealthy: {reason}; killing it (restart = {policy})"
                    ));
                    self.signal(i, SIGKILL);
                }
                HealthAction::Log(line) => self.log(format!("{name}: {line}")),
            }
        }
    }

    fn signal(&mut self, i: usize, signal: i32) {
        if let Some(pid) = self.units[i].pid {
            self.out.push(Command::Signal {
                index: i,
                pid,
                signal,
            });
        }
    }

    /// A run-once container that has settled tells the sequencer.
    fn run_once_settled(&mut self, i: usize, status: Option<ExitStatus>) {
        let u = &self.units[i];
        if u.spec.phase != Phase::Service && u.lifecycle.settled() {
            let at = self.now;
            self.sequence(SeqEvent::Finished {
                index: i,
                status,
                at,
            });
        }
    }

    /// Lets every machine see the time (restart delays, grace periods,
    /// probes, `onshutdown` deadlines).
    fn tick(&mut self) {
        let now = self.now;
        if self.seq.wake_at().is_some_and(|t| t <= now) {
            self.sequence(SeqEvent::Tick { now });
        }
        for i in 0..self.units.len() {
            if self.units[i].lifecycle.wake_at().is_some_and(|t| t <= now) {
                self.lifecycle(i, LcEvent::Tick { now });
            }
            let due = self.units[i]
                .checker
                .as_ref()
                .and_then(Checker::wake_at)
                .is_some_and(|t| t <= now);
            if due {
                self.health(i, HealthEvent::Tick { now });
            }
        }
    }

    /// The earliest deadline of any machine. A restart delay that ran out
    /// while the launch it asked for is in flight is no deadline any more;
    /// the sequencer's "never" (`Duration::MAX`) is none either.
    fn wake_at(&self) -> Option<Duration> {
        self.units
            .iter()
            .filter(|u| !u.launching)
            .filter_map(|u| u.lifecycle.wake_at())
            .chain(self.seq.wake_at())
            .chain(
                self.units
                    .iter()
                    .filter_map(|u| u.checker.as_ref().and_then(Checker::wake_at)),
            )
            .filter(|t| *t != Duration::MAX)
            .min()
    }

    /// Starts an orderly shutdown.
    fn request_shutdown(&mut self, action: PowerAction, why: &str) {
        if let Some(sd) = self.shutdown {
            self.log(format!(
                "{why}: already shutting down ({})",
                sd.action.as_str()
            ));
            return;
        }
        self.log(format!(
            "{why}: {} requested; stopping containers",
            action.as_str()
        ));
        self.shutdown = Some(Shutdown {
            action,
            since: self.now,
        });
        self.sequence(SeqEvent::Shutdown);
    }
}

#[cfg(test)]
mod tests;
