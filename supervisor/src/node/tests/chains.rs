//! `requires` chains and diamonds: start order, a required container
//! failing and coming back, and stops that go most dependent first.

use super::*;

/// top requires mid requires base, listed top first.
fn chain() -> Node {
    Node::new(vec![
        svc("top", &[], &["mid"]),
        svc("mid", &[], &["base"]),
        svc("base", &[], &[]),
    ])
}

const SIGTERM_10S: &str = "SIGTERM, SIGKILL after 10.000 s";

#[test]
fn an_operator_stop_of_the_bottom_of_a_chain_goes_top_down() {
    let mut node = chain();
    let because = "it requires base, which is stopping";
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(2)]),
            Step(100, launched(2, 12), vec![launch(1)]),
            Step(200, launched(1, 11), vec![launch(0)]),
            Step(300, launched(0, 10), vec![supervising(3, 3)]),
            Step(
                1000,
                request(1, stop("base")),
                vec![
                    answer(1, Outcome::Stop, "stopping base"),
                    log(&format!("stopping top: {because}; {SIGTERM_10S}")),
                    signal(0, 10, TERM),
                    timer(11_000),
                ],
            ),
            Step(
                1500,
                killed(0, TERM),
                vec![
                    log("top stopped: killed by signal SIGTERM (15) after 0.500 s"),
                    log(&format!("stopping mid: {because}; {SIGTERM_10S}")),
                    signal(1, 11, TERM),
                    timer(11_500),
                ],
            ),
            Step(
                1600,
                killed(1, TERM),
                vec![
                    log("mid stopped: killed by signal SIGTERM (15) after 0.100 s"),
                    log(&format!("stopping base: {SIGTERM_10S}")),
                    signal(2, 12, TERM),
                    timer(11_600),
                ],
            ),
            Step(
                1700,
                exited(2, 0),
                vec![
                    log("base stopped: exited with code 0 after 0.100 s"),
                    no_timer(),
                ],
            ),
        ],
    );
    assert_eq!(states(&node), ["waiting", "waiting", "stopped"]);
    play(
        &mut node,
        vec![
            Step(
                2000,
                request(2, stop("base")),
                vec![refused(2, ErrorCode::InvalidState, "base is stopped")],
            ),
            Step(
                2000,
                request(3, start("top")),
                vec![answer(3, Outcome::Start, "top starts once mid is ready")],
            ),
            Step(
                2100,
                request(4, start("base")),
                vec![
                    log("starting base: requested through the control socket"),
                    launch(2),
                    answer(4, Outcome::Start, "base started"),
                ],
            ),
            Step(
                2200,
                launched(2, 22),
                vec![
                    log("starting mid: what it requires is ready again"),
                    launch(1),
                ],
            ),
            Step(
                2300,
                launched(1, 21),
                vec![
                    log("starting top: what it requires is ready again"),
                    launch(0),
                ],
            ),
            Step(2400, launched(0, 20), vec![]),
        ],
    );
    assert_eq!(states(&node), ["running", "running", "running"]);
}

#[test]
fn a_required_container_that_fails_takes_its_dependents_down_and_back() {
    let mut node = Node::new(vec![svc("db", &[], &[]), svc("api", &[], &["db"])]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(100, launched(0, 10), vec![launch(1)]),
            Step(200, launched(1, 11), vec![supervising(2, 2)]),
            Step(
                5000,
                exited(0, 1),
                vec![
                    log("db exited with code 1 after 4.900 s; restarting in 100 ms (restart 1, restart = always)"),
                    log(&format!(
                        "stopping api: it requires db, which went down; {SIGTERM_10S}"
                    )),
                    signal(1, 11, TERM),
                    timer(5100),
                ],
            ),
            Step(5100, Event::Tick, vec![launch(0), timer(15_000)]),
            // db is back, but api is still on its way down.
            Step(5200, launched(0, 20), vec![]),
            Step(
                5300,
                killed(1, TERM),
                vec![
                    log("api stopped: killed by signal SIGTERM (15) after 0.300 s"),
                    log("starting api: what it requires is ready again"),
                    launch(1),
                    no_timer(),
                ],
            ),
            Step(5400, launched(1, 21), vec![]),
        ],
    );
}

#[test]
fn a_diamond_starts_bottom_up_and_shuts_down_top_down() {
    let mut node = Node::new(vec![
        svc("web", &[], &["a", "b"]),
        svc("a", &[], &["base"]),
        svc("b", &[], &["base"]),
        svc("base", &[], &[]),
    ]);
    let stopped = |n: &str| {
        log(&format!(
            "{n} stopped: killed by signal SIGTERM (15) after 0.100 s"
        ))
    };
    let stopping = |n: &str| log(&format!("stopping {n}: {SIGTERM_10S}"));
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(3)]),
            Step(100, launched(3, 13), vec![launch(1), launch(2)]),
            Step(200, launched(1, 11), vec![]),
            Step(300, launched(2, 12), vec![launch(0)]),
            Step(400, launched(0, 10), vec![supervising(4, 4)]),
            Step(
                1000,
                Event::Shutdown {
                    action: PowerAction::Poweroff,
                    why: "power button pressed".into(),
                },
                vec![
                    log("power button pressed: poweroff requested; stopping containers"),
                    stopping("web"),
                    signal(0, 10, TERM),
                    timer(11_000),
                ],
            ),
            Step(
                1100,
                killed(0, TERM),
                vec![
                    stopped("web"),
                    stopping("b"),
                    signal(2, 12, TERM),
                    stopping("a"),
                    signal(1, 11, TERM),
                    timer(11_100),
                ],
            ),
            // base waits for b as well.
            Step(1200, killed(1, TERM), vec![stopped("a")]),
            Step(
                1300,
                killed(2, TERM),
                vec![
                    log("b stopped: killed by signal SIGTERM (15) after 0.200 s"),
                    stopping("base"),
                    signal(3, 13, TERM),
                    timer(11_300),
                ],
            ),
            Step(
                1400,
                killed(3, TERM),
                vec![
                    stopped("base"),
                    log("shutdown: containers stopped (400 ms)"),
                    Command::Finish(PowerAction::Poweroff),
                    no_timer(),
                ],
            ),
        ],
    );
}

#[test]
fn a_service_waiting_for_the_network_starts_when_it_is_online() {
    let mut node = Node::new(vec![svc("web", &["network-online"], &[])]);
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![supervising(0, 1)]),
            Step(
                10,
                request(1, start("web")),
                vec![answer(
                    1,
                    Outcome::Start,
                    "web starts once network-online is ready",
                )],
            ),
            Step(500, Event::Network { online: true }, vec![launch(0)]),
            Step(600, launched(0, 10), vec![]),
        ],
    );
}
