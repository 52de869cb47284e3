//! Shutdown: with a launch in flight, past a grace period, and the
//! `onshutdown` containers after the last service.

use super::*;

fn shutdown(action: PowerAction, why: &str) -> Event {
    Event::Shutdown {
        action,
        why: why.to_owned(),
    }
}

#[test]
fn a_shutdown_during_a_launch_stops_the_container_once_it_runs() {
    let mut node = Node::new(vec![svc("a", &[], &[])]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(
                50,
                shutdown(PowerAction::Reboot, "received SIGTERM"),
                vec![log(
                    "received SIGTERM: reboot requested; stopping containers",
                )],
            ),
            Step(
                60,
                request(1, stop("a")),
                vec![refused(
                    1,
                    ErrorCode::InvalidState,
                    "the node is shutting down (reboot)",
                )],
            ),
            Step(
                70,
                shutdown(PowerAction::Poweroff, "power button pressed"),
                vec![log("power button pressed: already shutting down (reboot)")],
            ),
            Step(
                100,
                launched(0, 10),
                vec![
                    log("stopping a: SIGTERM, SIGKILL after 10.000 s"),
                    signal(0, 10, TERM),
                    timer(10_100),
                ],
            ),
            Step(
                10_100,
                Event::Tick,
                vec![
                    log("a did not stop within 10.000 s: SIGKILL"),
                    signal(0, 10, KILL),
                    no_timer(),
                ],
            ),
            Step(
                10_200,
                killed(0, KILL),
                vec![
                    log("a stopped: killed by signal SIGKILL (9) after 10.100 s"),
                    log("shutdown: containers stopped (10150 ms)"),
                    Command::Finish(PowerAction::Reboot),
                ],
            ),
        ],
    );
}

#[test]
fn a_launch_that_fails_during_a_shutdown_is_not_retried() {
    let mut node = Node::new(vec![svc("a", &[], &[])]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(
                50,
                shutdown(PowerAction::Halt, "received SIGUSR1"),
                vec![log("received SIGUSR1: halt requested; stopping containers")],
            ),
            Step(
                80,
                Event::LaunchFailed {
                    index: 0,
                    error: "boom".into(),
                },
                vec![
                    log("start a failed: boom; restarting in 100 ms (restart 1, restart = always)"),
                    log("shutdown: containers stopped (30 ms)"),
                    Command::Finish(PowerAction::Halt),
                ],
            ),
        ],
    );
}

/// One service and two `onshutdown` containers with a 2 s deadline.
fn with_onshutdown() -> Node {
    Node::new(vec![
        svc("s", &[], &[]),
        once("flush", Phase::OnShutdown, true),
        once("sync", Phase::OnShutdown, true),
    ])
}

#[test]
fn onshutdown_containers_run_after_the_last_service_one_by_one() {
    let mut node = with_onshutdown();
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(100, launched(0, 10), vec![supervising(1, 3)]),
            Step(
                1000,
                shutdown(PowerAction::Halt, "received SIGUSR1"),
                vec![
                    log("received SIGUSR1: halt requested; stopping containers"),
                    log("stopping s: SIGTERM, SIGKILL after 10.000 s"),
                    signal(0, 10, TERM),
                    timer(11_000),
                ],
            ),
            Step(
                1100,
                killed(0, TERM),
                vec![
                    log("s stopped: killed by signal SIGTERM (15) after 0.100 s"),
                    log("shutdown: containers stopped (100 ms)"),
                    launch(1),
                    timer(3100),
                ],
            ),
            Step(1200, launched(1, 11), vec![]),
            Step(
                1500,
                exited(1, 0),
                vec![
                    log("flush exited with code 0 after 0.300 s; not restarting (restart = never)"),
                    log("onshutdown flush exited with code 0"),
                    launch(2),
                    timer(3500),
                ],
            ),
            Step(1600, launched(2, 12), vec![]),
            Step(
                3500,
                Event::Tick,
                vec![
                    log("onshutdown sync still running after 2.000 s: SIGKILL"),
                    signal(2, 12, KILL),
                    no_timer(),
                ],
            ),
            Step(
                3600,
                killed(2, KILL),
                vec![
                    log("sync killed by signal SIGKILL (9) after 2.000 s; not restarting (restart = never)"),
                    log("onshutdown sync killed by signal SIGKILL (9)"),
                    Command::Finish(PowerAction::Halt),
                ],
            ),
        ],
    );
}

#[test]
fn independent_services_stop_together_in_reverse_manifest_order() {
    let mut node = Node::new(vec![svc("web", &[], &[]), svc("db", &[], &[])]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0), launch(1)]),
            Step(100, launched(0, 10), vec![]),
            Step(200, launched(1, 11), vec![supervising(2, 2)]),
            Step(
                1000,
                shutdown(PowerAction::Poweroff, "power button pressed"),
                vec![
                    log("power button pressed: poweroff requested; stopping containers"),
                    log("stopping db: SIGTERM, SIGKILL after 10.000 s"),
                    signal(1, 11, TERM),
                    log("stopping web: SIGTERM, SIGKILL after 10.000 s"),
                    signal(0, 10, TERM),
                    timer(11_000),
                ],
            ),
        ],
    );
}
