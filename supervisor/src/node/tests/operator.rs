//! Operator requests against backoff, crash-loop `failed`, a launch in
//! flight and unknown names; run-once settling of the boot.

use super::*;

/// One service that fails after two starts within a minute.
fn flaky() -> Node {
    Node::new(vec![Container {
        crash_loop: CrashLoop {
            starts: 2,
            window: Duration::from_secs(60),
        },
        ..Container::new("w", "r")
    }])
}

fn exit_line(restart: u32) -> Command {
    log(&format!(
        "w exited with code 1 after 0.100 s; restarting in 100 ms (restart {restart}, restart = always)"
    ))
}

#[test]
fn an_operator_stop_during_backoff_cancels_the_restart() {
    let mut node = flaky();
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(100, launched(0, 10), vec![supervising(1, 1)]),
            Step(200, exited(0, 1), vec![exit_line(1), timer(300)]),
            Step(
                250,
                request(1, stop("w")),
                vec![answer(1, Outcome::Stop, "stopping w"), no_timer()],
            ),
            Step(300, Event::Tick, vec![]),
            Step(
                310,
                request(2, stop("w")),
                vec![refused(2, ErrorCode::InvalidState, "w is stopped")],
            ),
        ],
    );
    assert_eq!(states(&node), ["stopped"]);
}

#[test]
fn a_crash_looped_service_is_failed_until_an_operator_restarts_it() {
    let mut node = flaky();
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(400, launched(0, 11), vec![supervising(1, 1)]),
            Step(500, exited(0, 1), vec![exit_line(1), timer(600)]),
            Step(600, Event::Tick, vec![launch(0), no_timer()]),
            Step(700, launched(0, 12), vec![]),
            Step(
                800,
                exited(0, 1),
                vec![log(
                    "w exited with code 1 after 0.100 s; w is crash-looping (2 starts within 60.000 s): failed, not restarting",
                )],
            ),
            Step(
                900,
                request(3, restart("w")),
                vec![
                    log("starting w: restart requested"),
                    launch(0),
                    answer(3, Outcome::Restart, "restarting w"),
                ],
            ),
            Step(1000, launched(0, 13), vec![]),
            // The history started over: one more crash is a restart again.
            Step(1100, exited(0, 1), vec![exit_line(1), timer(1200)]),
        ],
    );
}

#[test]
fn a_stop_asked_for_during_a_launch_waits_for_the_launch() {
    let mut node = Node::new(vec![svc("a", &[], &[])]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(
                10,
                request(1, restart("a")),
                vec![refused(1, ErrorCode::InvalidState, "a is starting")],
            ),
            Step(
                20,
                request(2, stop("a")),
                vec![answer(2, Outcome::Stop, "stopping a")],
            ),
            Step(
                30,
                request(3, Op::Start("nope".into())),
                vec![refused(
                    3,
                    ErrorCode::NotFound,
                    "no container named \"nope\"",
                )],
            ),
            Step(
                100,
                launched(0, 10),
                vec![
                    log("stopping a: SIGTERM, SIGKILL after 10.000 s"),
                    signal(0, 10, TERM),
                    supervising(1, 1),
                    timer(10_100),
                ],
            ),
            Step(
                200,
                killed(0, TERM),
                vec![
                    log("a stopped: killed by signal SIGTERM (15) after 0.100 s"),
                    no_timer(),
                ],
            ),
        ],
    );
}

#[test]
fn a_failed_launch_is_retried_by_policy_and_a_late_report_is_ignored() {
    let mut node = Node::new(vec![svc("a", &[], &[])]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(
                50,
                Event::LaunchFailed {
                    index: 0,
                    error: "no such file".into(),
                },
                vec![
                    log("start a failed: no such file; restarting in 100 ms (restart 1, restart = always)"),
                    supervising(0, 1),
                    timer(150),
                ],
            ),
            // Nothing is in flight: a stray report changes nothing.
            Step(60, launched(0, 99), vec![]),
            Step(70, exited(0, 0), vec![]),
            Step(150, Event::Tick, vec![launch(0), no_timer()]),
        ],
    );
}

#[test]
fn onboot_containers_run_in_order_and_an_essential_failure_halts_the_boot() {
    let mut node = Node::new(vec![
        once("fmt", Phase::OnBoot, false),
        once("seed", Phase::OnBoot, true),
        svc("web", &[], &[]),
    ]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(100, launched(0, 10), vec![]),
            Step(
                300,
                exited(0, 2),
                vec![
                    log("fmt exited with code 2 after 0.200 s; not restarting (restart = never)"),
                    log("onboot fmt exited with code 2; not essential, boot goes on"),
                    launch(1),
                ],
            ),
            Step(
                400,
                Event::LaunchFailed {
                    index: 1,
                    error: "no such file".into(),
                },
                vec![
                    log("start seed failed: no such file; not restarting (restart = never)"),
                    log("boot halted: essential onboot container seed did not start; no service starts (mark it essential = false to go on)"),
                ],
            ),
        ],
    );
    assert_eq!(node.stage_word(), "halted");
    assert_eq!(states(&node), ["failed", "done", "idle"]);
}

#[test]
fn services_start_once_the_onboot_containers_succeeded() {
    let mut node = Node::new(vec![
        once("seed", Phase::OnBoot, true),
        svc("web", &[], &[]),
    ]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(100, launched(0, 10), vec![]),
            Step(
                200,
                exited(0, 0),
                vec![
                    log("seed exited with code 0 after 0.100 s; not restarting (restart = never)"),
                    log("onboot seed exited with code 0"),
                    launch(1),
                ],
            ),
            Step(300, launched(1, 11), vec![supervising(1, 2)]),
        ],
    );
    assert_eq!(node.stage_word(), "running");
}
