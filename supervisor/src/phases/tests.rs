//! Transition table of the node's phases.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn c(name: &str, phase: Phase, essential: bool) -> Container {
    Container {
        phase,
        essential,
        stop_grace: ms(2000),
        ..Container::new(name, "r")
    }
}

/// boot-a (onboot), web (service), boot-b (onboot, not essential),
/// db (service), flush (onshutdown), sync (onshutdown).
fn manifest() -> Vec<Container> {
    vec![
        c("boot-a", Phase::OnBoot, true),
        c("web", Phase::Service, true),
        c("boot-b", Phase::OnBoot, false),
        c("db", Phase::Service, true),
        c("flush", Phase::OnShutdown, true),
        c("sync", Phase::OnShutdown, true),
    ]
}

fn ok(index: usize, at: u64) -> SeqEvent {
    SeqEvent::Finished {
        index,
        status: Some(ExitStatus::Code(0)),
        at: ms(at),
    }
}

fn failed(index: usize, at: u64) -> SeqEvent {
    SeqEvent::Finished {
        index,
        status: Some(ExitStatus::Code(1)),
        at: ms(at),
    }
}

/// Expected action; logs compared by fragment.
#[derive(Debug)]
enum Want {
    Start(usize),
    StopServices,
    Kill(usize),
    Finish,
    Log(&'static str),
}

struct Row {
    name: &'static str,
    from: Stage,
    event: SeqEvent,
    to: Stage,
    actions: Vec<Want>,
}

fn rows() -> Vec<Row> {
    [boot_rows(), shutdown_rows(), onshutdown_rows()]
        .into_iter()
        .flatten()
        .collect()
}

/// Rows: boot.
fn boot_rows() -> Vec<Row> {
    vec![
        Row {
            name: "begin starts the first onboot container",
            from: Stage::Idle,
            event: SeqEvent::Begin,
            to: Stage::OnBoot(0),
            actions: vec![Want::Start(0)],
        },
        Row {
            name: "a successful onboot container starts the next",
            from: Stage::OnBoot(0),
            event: ok(0, 100),
            to: Stage::OnBoot(1),
            actions: vec![
                Want::Log("onboot boot-a exited with code 0"),
                Want::Start(2),
            ],
        },
        Row {
            name: "the last onboot container starts every service",
            from: Stage::OnBoot(1),
            event: ok(2, 200),
            to: Stage::Services,
            actions: vec![
                Want::Log("onboot boot-b exited with code 0"),
                Want::Start(1),
                Want::Start(3),
            ],
        },
        Row {
            name: "an essential failure halts the boot",
            from: Stage::OnBoot(0),
            event: failed(0, 100),
            to: Stage::Halted,
            actions: vec![Want::Log(
                "boot halted: essential onboot container boot-a exited with code 1",
            )],
        },
        Row {
            name: "an essential container that never started halts the boot",
            from: Stage::OnBoot(0),
            event: SeqEvent::Finished {
                index: 0,
                status: None,
                at: ms(5),
            },
            to: Stage::Halted,
            actions: vec![Want::Log("boot-a did not start")],
        },
        Row {
            name: "a non-essential failure is logged and boot goes on",
            from: Stage::OnBoot(1),
            event: failed(2, 300),
            to: Stage::Services,
            actions: vec![
                Want::Log("onboot boot-b exited with code 1; not essential, boot goes on"),
                Want::Start(1),
                Want::Start(3),
            ],
        },
        Row {
            name: "a finish of another container is not the onboot step's",
            from: Stage::OnBoot(0),
            event: ok(3, 100),
            to: Stage::OnBoot(0),
            actions: vec![],
        },
    ]
}

/// Rows: shutdown.
fn shutdown_rows() -> Vec<Row> {
    vec![
        Row {
            name: "shutdown while services run stops them",
            from: Stage::Services,
            event: SeqEvent::Shutdown,
            to: Stage::StoppingServices,
            actions: vec![Want::StopServices],
        },
        Row {
            name: "shutdown during onboot stops too",
            from: Stage::OnBoot(1),
            event: SeqEvent::Shutdown,
            to: Stage::StoppingServices,
            actions: vec![Want::StopServices],
        },
        Row {
            name: "shutdown of a halted boot",
            from: Stage::Halted,
            event: SeqEvent::Shutdown,
            to: Stage::StoppingServices,
            actions: vec![Want::StopServices],
        },
        Row {
            name: "a second shutdown request changes nothing",
            from: Stage::StoppingServices,
            event: SeqEvent::Shutdown,
            to: Stage::StoppingServices,
            actions: vec![],
        },
    ]
}

/// Rows: onshutdown.
fn onshutdown_rows() -> Vec<Row> {
    vec![
        Row {
            name: "services stopped: the first onshutdown container runs with its deadline",
            from: Stage::StoppingServices,
            event: SeqEvent::ServicesSettled { now: ms(10_000) },
            to: Stage::OnShutdown {
                pos: 0,
                deadline: ms(12_000),
            },
            actions: vec![Want::Start(4)],
        },
        Row {
            name: "an onshutdown container done: the next one, deadline from its end",
            from: Stage::OnShutdown {
                pos: 0,
                deadline: ms(12_000),
            },
            event: ok(4, 10_500),
            to: Stage::OnShutdown {
                pos: 1,
                deadline: ms(12_500),
            },
            actions: vec![
                Want::Log("onshutdown flush exited with code 0"),
                Want::Start(5),
            ],
        },
        Row {
            name: "a failing onshutdown container does not stop the others",
            from: Stage::OnShutdown {
                pos: 0,
                deadline: ms(12_000),
            },
            event: failed(4, 11_000),
            to: Stage::OnShutdown {
                pos: 1,
                deadline: ms(13_000),
            },
            actions: vec![
                Want::Log("onshutdown flush exited with code 1"),
                Want::Start(5),
            ],
        },
        Row {
            name: "the last onshutdown container done: finish",
            from: Stage::OnShutdown {
                pos: 1,
                deadline: ms(13_000),
            },
            event: ok(5, 11_200),
            to: Stage::Finished,
            actions: vec![
                Want::Log("onshutdown sync exited with code 0"),
                Want::Finish,
            ],
        },
        Row {
            name: "past the deadline: SIGKILL once",
            from: Stage::OnShutdown {
                pos: 0,
                deadline: ms(12_000),
            },
            event: SeqEvent::Tick { now: ms(12_000) },
            to: Stage::OnShutdown {
                pos: 0,
                deadline: Duration::MAX,
            },
            actions: vec![
                Want::Log("onshutdown flush still running after 2.000 s: SIGKILL"),
                Want::Kill(4),
            ],
        },
        Row {
            name: "before the deadline nothing happens",
            from: Stage::OnShutdown {
                pos: 0,
                deadline: ms(12_000),
            },
            event: SeqEvent::Tick { now: ms(11_999) },
            to: Stage::OnShutdown {
                pos: 0,
                deadline: ms(12_000),
            },
            actions: vec![],
        },
        Row {
            name: "ticks while services run do nothing",
            from: Stage::Services,
            event: SeqEvent::Tick { now: ms(99_000) },
            to: Stage::Services,
            actions: vec![],
        },
    ]
}

#[test]
fn transition_table() {
    for row in rows() {
        let mut seq = Sequencer::new(&manifest());
        seq.stage = row.from;
        let got = seq.next(row.event.clone());
        assert_eq!(seq.stage(), row.to, "{}: stage", row.name);
        assert_eq!(got.len(), row.actions.len(), "{}: {got:?}", row.name);
        for (g, w) in got.iter().zip(&row.actions) {
            let ok = match (g, w) {
                (SeqAction::Start(a), Want::Start(b)) | (SeqAction::Kill(a), Want::Kill(b)) => {
                    a == b
                }
                (SeqAction::StopServices, Want::StopServices)
                | (SeqAction::Finish, Want::Finish) => true,
                (SeqAction::Log(text), Want::Log(fragment)) => text.contains(fragment),
                _ => false,
            };
            assert!(ok, "{}: got {g:?}, want {w:?}", row.name);
        }
    }
}

#[test]
fn without_run_once_containers() {
    let only = vec![
        c("web", Phase::Service, true),
        c("db", Phase::Service, true),
    ];
    let mut seq = Sequencer::new(&only);
    assert_eq!(
        seq.next(SeqEvent::Begin),
        vec![SeqAction::Start(0), SeqAction::Start(1)]
    );
    assert_eq!(seq.next(SeqEvent::Shutdown), vec![SeqAction::StopServices]);
    assert_eq!(
        seq.next(SeqEvent::ServicesSettled { now: ms(1) }),
        vec![SeqAction::Finish]
    );
    assert_eq!(seq.stage(), Stage::Finished);
    assert_eq!(seq.wake_at(), None);
}
