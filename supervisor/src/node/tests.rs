//! The node's rules as scenarios: each step is one row, an event at a
//! time, and the whole list of commands it must give, in order.

use super::*;
use crate::api::{ErrorCode, MessageResult, Outcome};
use berth_config::{CrashLoop, HealthCheck, Probe, RestartPolicy};

mod chains;
mod health;
mod operator;
mod shutdown;

const TERM: i32 = 15;
const KILL: i32 = 9;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A service that waits for `after` and requires `requires`.
fn svc(name: &str, after: &[&str], requires: &[&str]) -> Container {
    Container {
        after: after.iter().map(|s| s.to_string()).collect(),
        requires: requires.iter().map(|s| s.to_string()).collect(),
        ..Container::new(name, "r")
    }
}

/// A run-once container of `phase`, never restarted.
fn once(name: &str, phase: Phase, essential: bool) -> Container {
    Container {
        phase,
        essential,
        restart: RestartPolicy::Never,
        stop_grace: ms(2000),
        ..Container::new(name, "r")
    }
}

/// One row: at `t` ms, `event` gives exactly `want`.
struct Step(u64, Event, Vec<Command>);

/// Plays the rows in order against `node`, asserting each whole list.
fn play(node: &mut Node, steps: Vec<Step>) {
    for (n, Step(t, event, want)) in steps.into_iter().enumerate() {
        let shown = format!("{event:?}");
        let got = node.next(ms(t), event);
        assert_eq!(got, want, "row {} at {t} ms: {shown}", n + 1);
    }
}

fn launched(index: usize, pid: i32) -> Event {
    Event::Launched { index, pid }
}

fn exited(index: usize, code: i32) -> Event {
    Event::Exited {
        index,
        status: ExitStatus::Code(code),
    }
}

fn killed(index: usize, signal: i32) -> Event {
    Event::Exited {
        index,
        status: ExitStatus::Signal {
            signal,
            core_dumped: false,
        },
    }
}

fn request(id: u64, op: Op) -> Event {
    Event::Request { id, op }
}

fn stop(name: &str) -> Op {
    Op::Stop(name.to_owned())
}

fn start(name: &str) -> Op {
    Op::Start(name.to_owned())
}

fn restart(name: &str) -> Op {
    Op::Restart(name.to_owned())
}

fn launch(i: usize) -> Command {
    Command::Launch(i)
}

fn signal(index: usize, pid: i32, signal: i32) -> Command {
    Command::Signal { index, pid, signal }
}

fn log(line: &str) -> Command {
    Command::Log(line.to_owned())
}

fn timer(t: u64) -> Command {
    Command::Timer(Some(ms(t)))
}

fn no_timer() -> Command {
    Command::Timer(None)
}

fn supervising(running: usize, total: usize) -> Command {
    Command::Supervising { running, total }
}

fn answer(id: u64, outcome: fn(MessageResult) -> Outcome, msg: &str) -> Command {
    Command::Answer {
        id,
        response: Response::Success(outcome(MessageResult::new(msg.to_owned()))),
    }
}

fn refused(id: u64, code: ErrorCode, msg: &str) -> Command {
    Command::Answer {
        id,
        response: Response::error(code, msg),
    }
}

/// The state words of `berth status`, in manifest order.
fn states(node: &Node) -> Vec<String> {
    node.statuses(Duration::ZERO)
        .into_iter()
        .map(|s| s.state)
        .collect()
}
