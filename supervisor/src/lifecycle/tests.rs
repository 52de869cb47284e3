//! Transition table of the lifecycle: each row is a starting state, an
//! event, the state after and the actions (log lines compared by a
//! fragment).

use super::*;
use RestartPolicy::{Always, Never, OnFailure};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn container(policy: RestartPolicy) -> Container {
    Container {
        command: vec!["/x".into()],
        restart: policy,
        ..Container::new("web", "r")
    }
}

fn code(c: i32) -> ExitStatus {
    ExitStatus::Code(c)
}

fn killed(s: i32) -> ExitStatus {
    ExitStatus::Signal {
        signal: s,
        core_dumped: false,
    }
}

/// Expected action: a launch, a signal, or a log line containing the text.
#[derive(Debug)]
enum Want {
    Launch,
    Signal(i32),
    Log(&'static str),
}

struct Row {
    name: &'static str,
    policy: RestartPolicy,
    restarts: u32,
    from: State,
    event: Event,
    to: State,
    actions: Vec<Want>,
}

fn running(since: u64) -> State {
    State::Running { since: ms(since) }
}

fn stopping(since: u64, deadline: u64, killed: bool) -> State {
    State::Stopping {
        since: ms(since),
        deadline: ms(deadline),
        killed,
        restart: false,
    }
}

fn exited(at: u64, status: ExitStatus) -> Event {
    Event::Exited { at: ms(at), status }
}

fn tick(now: u64) -> Event {
    Event::Tick { now: ms(now) }
}

fn rows() -> Vec<Row> {
    [
        restart_policy_rows(),
        on_failure_and_never_rows(),
        backoff_rows(),
        stop_rows(),
        grace_period_rows(),
        operator_restart_rows(),
        operator_start_rows(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Rows: restart policies.
fn restart_policy_rows() -> Vec<Row> {
    vec![
        Row {
            name: "launch from idle runs",
            policy: Always,
            restarts: 0,
            from: State::Idle,
            event: Event::Launched { at: ms(1000) },
            to: running(1000),
            actions: vec![],
        },
        Row {
            name: "always restarts after exit 0 with the initial delay",
            policy: Always,
            restarts: 0,
            from: running(1000),
            event: exited(1500, code(0)),
            to: State::Backoff { until: ms(1600) },
            actions: vec![Want::Log("web exited with code 0 after 0.500 s; restarting in 100 ms (restart 1, restart = always)")],
        },
        Row {
            name: "always doubles the delay on a quick crash",
            policy: Always,
            restarts: 3,
            from: running(1000),
            event: exited(1200, code(1)),
            to: State::Backoff { until: ms(2000) },
            actions: vec![Want::Log("restarting in 800 ms (restart 4")],
        },
        Row {
            name: "delay is capped",
            policy: Always,
            restarts: 12,
            from: running(1000),
            event: exited(1200, code(1)),
            to: State::Backoff { until: ms(31_200) },
            actions: vec![Want::Log("restarting in 30000 ms (restart 13")],
        },
        Row {
            name: "a stable run resets the delay",
            policy: Always,
            restarts: 7,
            from: running(1000),
            event: exited(61_000, code(1)),
            to: State::Backoff { until: ms(61_100) },
            actions: vec![Want::Log("after 60.000 s; restarting in 100 ms (restart 1,")],
        },
        Row {
            name: "just short of the reset period keeps counting",
            policy: Always,
            restarts: 2,
            from: running(1000),
            event: exited(60_999, code(1)),
            to: State::Backoff { until: ms(61_399) },
            actions: vec![Want::Log("restarting in 400 ms (restart 3")],
        },
        Row {
            name: "always restarts after a signal death",
            policy: Always,
            restarts: 0,
            from: running(0),
            event: exited(10, killed(9)),
            to: State::Backoff { until: ms(110) },
            actions: vec![Want::Log("web killed by signal SIGKILL (9) after 0.010 s; restarting in 100 ms")],
        },
    ]
}

/// Rows: on-failure and never.
fn on_failure_and_never_rows() -> Vec<Row> {
    vec![
        Row {
            name: "on-failure stays down after exit 0",
            policy: OnFailure,
            restarts: 0,
            from: running(0),
            event: exited(100, code(0)),
            to: State::Done,
            actions: vec![Want::Log(
                "web exited with code 0 after 0.100 s; not restarting (restart = on-failure)",
            )],
        },
        Row {
            name: "on-failure restarts after exit 1",
            policy: OnFailure,
            restarts: 0,
            from: running(0),
            event: exited(100, code(1)),
            to: State::Backoff { until: ms(200) },
            actions: vec![Want::Log(
                "restarting in 100 ms (restart 1, restart = on-failure)",
            )],
        },
        Row {
            name: "on-failure restarts after a signal death",
            policy: OnFailure,
            restarts: 1,
            from: running(0),
            event: exited(100, killed(11)),
            to: State::Backoff { until: ms(300) },
            actions: vec![Want::Log(
                "SIGSEGV (11) after 0.100 s; restarting in 200 ms",
            )],
        },
        Row {
            name: "never stays down after a failure",
            policy: Never,
            restarts: 0,
            from: running(0),
            event: exited(100, code(3)),
            to: State::Done,
            actions: vec![Want::Log(
                "web exited with code 3 after 0.100 s; not restarting (restart = never)",
            )],
        },
        Row {
            name: "never stays down after success",
            policy: Never,
            restarts: 0,
            from: running(0),
            event: exited(100, code(0)),
            to: State::Done,
            actions: vec![Want::Log("not restarting (restart = never)")],
        },
    ]
}

/// Rows: backoff.
fn backoff_rows() -> Vec<Row> {
    vec![
        Row {
            name: "a failed launch is retried with backoff",
            policy: Always,
            restarts: 1,
            from: State::Backoff { until: ms(500) },
            event: Event::LaunchFailed {
                at: ms(600),
                error: "no such bundle".into(),
            },
            to: State::Backoff { until: ms(800) },
            actions: vec![Want::Log(
                "start web failed: no such bundle; restarting in 200 ms (restart 2",
            )],
        },
        Row {
            name: "a failed launch under never is final",
            policy: Never,
            restarts: 0,
            from: State::Idle,
            event: Event::LaunchFailed {
                at: ms(600),
                error: "boom".into(),
            },
            to: State::Done,
            actions: vec![Want::Log("start web failed: boom; not restarting")],
        },
        Row {
            name: "tick before the delay is over does nothing",
            policy: Always,
            restarts: 1,
            from: State::Backoff { until: ms(500) },
            event: tick(499),
            to: State::Backoff { until: ms(500) },
            actions: vec![],
        },
        Row {
            name: "tick at the end of the delay launches",
            policy: Always,
            restarts: 1,
            from: State::Backoff { until: ms(500) },
            event: tick(500),
            to: State::Backoff { until: ms(500) },
            actions: vec![Want::Launch],
        },
        Row {
            name: "launch after backoff runs",
            policy: Always,
            restarts: 1,
            from: State::Backoff { until: ms(500) },
            event: Event::Launched { at: ms(700) },
            to: running(700),
            actions: vec![],
        },
        Row {
            name: "tick while running does nothing",
            policy: Always,
            restarts: 0,
            from: running(0),
            event: tick(5000),
            to: running(0),
            actions: vec![],
        },
    ]
}

/// Rows: stop requests.
fn stop_rows() -> Vec<Row> {
    vec![
        Row {
            name: "stop sends the stop signal and arms the grace period",
            policy: Always,
            restarts: 0,
            from: running(0),
            event: Event::Stop { now: ms(1000) },
            to: stopping(1000, 11_000, false),
            actions: vec![
                Want::Log("stopping web: SIGTERM, SIGKILL after 10.000 s"),
                Want::Signal(15),
            ],
        },
        Row {
            name: "stop during backoff cancels the restart",
            policy: Always,
            restarts: 2,
            from: State::Backoff { until: ms(5000) },
            event: Event::Stop { now: ms(1000) },
            to: State::Stopped,
            actions: vec![],
        },
        Row {
            name: "stop of a finished container",
            policy: Never,
            restarts: 0,
            from: State::Done,
            event: Event::Stop { now: ms(1000) },
            to: State::Stopped,
            actions: vec![],
        },
        Row {
            name: "stop of a never-started container",
            policy: Always,
            restarts: 0,
            from: State::Idle,
            event: Event::Stop { now: ms(1000) },
            to: State::Stopped,
            actions: vec![],
        },
        Row {
            name: "exit while stopping is final, whatever the policy",
            policy: Always,
            restarts: 0,
            from: stopping(1000, 11_000, false),
            event: exited(1200, killed(15)),
            to: State::Stopped,
            actions: vec![Want::Log(
                "web stopped: killed by signal SIGTERM (15) after 0.200 s",
            )],
        },
    ]
}

/// Rows: grace period.
fn grace_period_rows() -> Vec<Row> {
    vec![
        Row {
            name: "grace period over: SIGKILL",
            policy: Always,
            restarts: 0,
            from: stopping(1000, 11_000, false),
            event: tick(11_000),
            to: stopping(1000, 11_000, true),
            actions: vec![
                Want::Log("web did not stop within 10.000 s: SIGKILL"),
                Want::Signal(9),
            ],
        },
        Row {
            name: "tick before the grace period ends does nothing",
            policy: Always,
            restarts: 0,
            from: stopping(1000, 11_000, false),
            event: tick(10_999),
            to: stopping(1000, 11_000, false),
            actions: vec![],
        },
        Row {
            name: "SIGKILL is sent once",
            policy: Always,
            restarts: 0,
            from: stopping(1000, 11_000, true),
            event: tick(20_000),
            to: stopping(1000, 11_000, true),
            actions: vec![],
        },
        Row {
            name: "exit after SIGKILL",
            policy: Always,
            restarts: 0,
            from: stopping(1000, 11_000, true),
            event: exited(11_050, killed(9)),
            to: State::Stopped,
            actions: vec![Want::Log(
                "web stopped: killed by signal SIGKILL (9) after 10.050 s",
            )],
        },
        Row {
            name: "a second stop request changes nothing",
            policy: Always,
            restarts: 0,
            from: stopping(1000, 11_000, false),
            event: Event::Stop { now: ms(2000) },
            to: stopping(1000, 11_000, false),
            actions: vec![],
        },
        Row {
            name: "stopped stays stopped on tick",
            policy: Always,
            restarts: 0,
            from: State::Stopped,
            event: tick(99_000),
            to: State::Stopped,
            actions: vec![],
        },
    ]
}

/// Rows: operator restarts.
fn operator_restart_rows() -> Vec<Row> {
    vec![
        Row {
            name: "operator restart of a running container stops it first",
            policy: Always,
            restarts: 0,
            from: running(0),
            event: Event::Restart { now: ms(1000) },
            to: State::Stopping {
                since: ms(1000),
                deadline: ms(11_000),
                killed: false,
                restart: true,
            },
            actions: vec![Want::Log("stopping web: SIGTERM"), Want::Signal(15)],
        },
        Row {
            name: "restarting container that stopped is launched again",
            policy: Never,
            restarts: 3,
            from: State::Stopping {
                since: ms(1000),
                deadline: ms(11_000),
                killed: false,
                restart: true,
            },
            event: exited(1100, killed(15)),
            to: State::Idle,
            actions: vec![
                Want::Log("web stopped: killed by signal SIGTERM (15)"),
                Want::Launch,
            ],
        },
        Row {
            name: "operator restart clears failed",
            policy: Always,
            restarts: 4,
            from: State::Failed,
            event: Event::Restart { now: ms(1000) },
            to: State::Idle,
            actions: vec![Want::Log("starting web: restart requested"), Want::Launch],
        },
        Row {
            name: "operator restart during backoff starts at once",
            policy: Always,
            restarts: 2,
            from: State::Backoff { until: ms(5000) },
            event: Event::Restart { now: ms(1000) },
            to: State::Idle,
            actions: vec![Want::Log("starting web: restart requested"), Want::Launch],
        },
    ]
}

/// Rows: operator starts.
fn operator_start_rows() -> Vec<Row> {
    vec![
        Row {
            name: "operator start of a stopped container",
            policy: Always,
            restarts: 0,
            from: State::Stopped,
            event: Event::Start {
                reason: "requested by the operator".into(),
            },
            to: State::Idle,
            actions: vec![
                Want::Log("starting web: requested by the operator"),
                Want::Launch,
            ],
        },
        Row {
            name: "operator start of a finished container",
            policy: Never,
            restarts: 0,
            from: State::Done,
            event: Event::Start {
                reason: "db is ready again".into(),
            },
            to: State::Idle,
            actions: vec![Want::Log("starting web: db is ready again"), Want::Launch],
        },
        Row {
            name: "operator start of a running container does nothing",
            policy: Always,
            restarts: 0,
            from: running(0),
            event: Event::Start { reason: "x".into() },
            to: running(0),
            actions: vec![],
        },
        Row {
            name: "first start of an idle container is silent",
            policy: Always,
            restarts: 0,
            from: State::Idle,
            event: Event::Start {
                reason: "boot".into(),
            },
            to: State::Idle,
            actions: vec![Want::Launch],
        },
        Row {
            name: "operator stop of a running container",
            policy: Always,
            restarts: 0,
            from: running(0),
            event: Event::Stop { now: ms(500) },
            to: stopping(500, 10_500, false),
            actions: vec![Want::Log("stopping web"), Want::Signal(15)],
        },
        Row {
            name: "done ignores ticks",
            policy: OnFailure,
            restarts: 0,
            from: State::Done,
            event: tick(99_000),
            to: State::Done,
            actions: vec![],
        },
    ]
}

#[test]
fn transition_table() {
    let rows = rows();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    for row in rows {
        let mut lc = Lifecycle::new(&container(row.policy));
        lc.state = row.from;
        lc.restarts = row.restarts;
        let got = lc.next(row.event.clone());
        assert_eq!(lc.state(), row.to, "{}: state", row.name);
        assert_eq!(
            got.len(),
            row.actions.len(),
            "{}: actions {got:?}",
            row.name
        );
        for (g, w) in got.iter().zip(&row.actions) {
            let ok = match (g, w) {
                (Action::Launch, Want::Launch) => true,
                (Action::Signal(a), Want::Signal(b)) => a == b,
                (Action::Log(text), Want::Log(fragment)) => text.contains(fragment),
                _ => false,
            };
            assert!(ok, "{}: got {g:?}, want {w:?}", row.name);
        }
    }
}

#[test]
fn crash_loop_follows_the_schedule() {
    // A container that dies 10 ms after every start: the delays double
    // from 100 ms and stop at the 30 s cap (crash-loop protection off).
    let mut c = container(RestartPolicy::Always);
    c.crash_loop.starts = 0;
    let mut lc = Lifecycle::new(&c);
    let mut now = ms(0);
    let mut delays = Vec::new();
    assert_eq!(lc.next(Event::Launched { at: now }), vec![]);
    for _ in 0..11 {
        now += ms(10);
        lc.next(Event::Exited {
            at: now,
            status: code(1),
        });
        let until = lc.wake_at().expect("a restart is scheduled");
        delays.push((until - now).as_millis());
        assert_eq!(lc.next(Event::Tick { now: until }), vec![Action::Launch]);
        now = until;
        lc.next(Event::Launched { at: now });
    }
    assert_eq!(
        delays,
        vec![100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]
    );
}

#[test]
fn wake_and_settled() {
    let mut lc = Lifecycle::new(&container(RestartPolicy::Always));
    assert!(lc.wants_start() && lc.settled());
    lc.next(Event::Launched { at: ms(0) });
    assert!(!lc.settled());
    assert_eq!(lc.wake_at(), None);
    lc.next(Event::Stop { now: ms(100) });
    assert_eq!(lc.wake_at(), Some(ms(10_100)));
    lc.next(Event::Tick { now: ms(10_100) });
    assert_eq!(lc.wake_at(), None, "no wake after SIGKILL");
    assert!(!lc.settled());
    lc.next(Event::Exited {
        at: ms(10_200),
        status: killed(9),
    });
    assert!(lc.settled());
}

/// Runs a container through `starts` launches at the given times (ms), each
/// followed by a quick failing exit, and returns the final state and the
/// last log line.
fn run_starts(limit: u32, window_ms: u64, starts: &[u64]) -> (State, String) {
    let mut c = container(RestartPolicy::Always);
    c.crash_loop.starts = limit;
    c.crash_loop.window = ms(window_ms);
    let mut lc = Lifecycle::new(&c);
    let mut last = String::new();
    for &t in starts {
        if let State::Backoff { until } = lc.state() {
            assert!(ms(t) >= until, "start at {t} ms is before the backoff ends");
            assert_eq!(lc.next(Event::Tick { now: ms(t) }), vec![Action::Launch]);
        }
        assert_eq!(lc.next(Event::Launched { at: ms(t) }), vec![]);
        for a in lc.next(Event::Exited {
            at: ms(t + 10),
            status: code(1),
        }) {
            if let Action::Log(l) = a {
                last = l;
            }
        }
    }
    (lc.state(), last)
}

#[test]
fn crash_loop_table() {
    // (limit, window ms, start times ms, failed?)
    let table: &[(u32, u64, &[u64], bool)] = &[
        // The default: the 5th quick exit within 60 s is the last.
        (5, 60_000, &[0, 110, 320, 730, 1_540], true),
        (5, 60_000, &[0, 110, 320, 730], false),
        // Spread out: never 5 within the window.
        (
            5,
            60_000,
            &[0, 20_000, 40_000, 60_020, 80_030, 100_040],
            false,
        ),
        // Exactly at the window's edge the oldest start still counts.
        (3, 1_000, &[0, 500, 990], true),
        (3, 1_000, &[0, 500, 1_011], false),
        (1, 60_000, &[0], true),
        // 0 turns the protection off.
        (0, 60_000, &[0, 110, 320, 730, 1_540, 3_150, 6_360], false),
    ];
    for (limit, window, starts, failed) in table {
        let (state, last) = run_starts(*limit, *window, starts);
        assert_eq!(
            state == State::Failed,
            *failed,
            "{limit}/{window} {starts:?}: {state:?}, {last}"
        );
        if *failed {
            assert!(last.contains("web is crash-looping"), "{last}");
            assert!(last.contains("failed, not restarting"), "{last}");
        } else {
            assert!(matches!(state, State::Backoff { .. }), "{state:?}");
        }
    }
}

#[test]
fn failed_is_settled_and_stops_quietly() {
    let mut c = container(RestartPolicy::Always);
    c.crash_loop.starts = 1;
    let mut lc = Lifecycle::new(&c);
    lc.next(Event::Launched { at: ms(0) });
    lc.next(Event::Exited {
        at: ms(5),
        status: code(2),
    });
    assert_eq!(lc.state(), State::Failed);
    assert!(lc.settled());
    assert_eq!(lc.wake_at(), None);
    assert_eq!(lc.next(Event::Tick { now: ms(100_000) }), vec![]);
    assert_eq!(lc.next(Event::Stop { now: ms(100_000) }), vec![]);
    assert_eq!(lc.state(), State::Stopped);
}

#[test]
fn on_failure_success_is_done_not_failed() {
    let mut c = container(RestartPolicy::OnFailure);
    c.crash_loop.starts = 1;
    let mut lc = Lifecycle::new(&c);
    lc.next(Event::Launched { at: ms(0) });
    lc.next(Event::Exited {
        at: ms(5),
        status: code(0),
    });
    assert_eq!(lc.state(), State::Done);
}
