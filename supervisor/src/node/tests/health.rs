//! Health checks: readiness gates dependents, failures within the start
//! period do not count, an unhealthy container is killed and restarted
//! with what requires it.

use super::*;

/// db with an exec check (interval 10 s, 3 retries, start period 30 s);
/// api requires db.
fn checked() -> Node {
    let health = HealthCheck {
        probe: Probe::Exec(vec!["/check".into()]),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        retries: 3,
        start_period: Duration::from_secs(30),
    };
    Node::new(vec![
        Container {
            health: Some(health),
            ..Container::new("db", "r")
        },
        svc("api", &[], &["db"]),
    ])
}

fn probe(index: usize, generation: u64) -> Command {
    Command::Probe { index, generation }
}

fn result(index: usize, generation: u64, ok: bool) -> Event {
    Event::ProbeResult {
        index,
        generation,
        ok,
    }
}

#[test]
fn a_failure_in_the_start_period_does_not_count_and_a_pass_makes_it_ready() {
    let mut node = checked();
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(100, launched(0, 10), vec![probe(0, 1), supervising(1, 2)]),
            // Within the start period: no count, no log, next probe due.
            Step(200, result(0, 1, false), vec![timer(10_200)]),
            Step(10_200, Event::Tick, vec![probe(0, 1), no_timer()]),
            Step(
                10_300,
                result(0, 1, true),
                vec![
                    log("db is ready (health check passed)"),
                    launch(1),
                    timer(20_300),
                ],
            ),
            Step(10_400, launched(1, 11), vec![]),
            // A result of another run is dropped.
            Step(10_500, result(0, 0, false), vec![]),
        ],
    );
    let health: Vec<_> = node.statuses(ms(0)).into_iter().map(|s| s.health).collect();
    assert_eq!(health, [Some("healthy".to_owned()), None]);
}

#[test]
fn an_unhealthy_container_is_killed_and_restarted_with_its_dependents() {
    let mut node = checked();
    let failed = |n: u32| log(&format!("db: health check failed ({n} of 3)"));
    play(
        &mut node,
        vec![
            Step(0, Event::Begin, vec![launch(0)]),
            Step(100, launched(0, 10), vec![probe(0, 1), supervising(1, 2)]),
            Step(
                200,
                result(0, 1, true),
                vec![log("db is ready (health check passed)"), launch(1), timer(10_200)],
            ),
            Step(300, launched(1, 11), vec![]),
            Step(10_200, Event::Tick, vec![probe(0, 1), no_timer()]),
            Step(10_300, result(0, 1, false), vec![failed(1), timer(20_300)]),
            Step(20_300, Event::Tick, vec![probe(0, 1), no_timer()]),
            Step(20_400, result(0, 1, false), vec![failed(2), timer(30_400)]),
            Step(30_400, Event::Tick, vec![probe(0, 1), no_timer()]),
            Step(
                30_500,
                result(0, 1, false),
                vec![
                    log("db is unhealthy: 3 consecutive health checks failed; killing it (restart = always)"),
                    signal(0, 10, KILL),
                    timer(40_500),
                ],
            ),
            Step(
                30_600,
                killed(0, KILL),
                vec![
                    log("db killed by signal SIGKILL (9) after 30.500 s; restarting in 100 ms (restart 1, restart = always)"),
                    log("stopping api: it requires db, which went down; SIGTERM, SIGKILL after 10.000 s"),
                    signal(1, 11, TERM),
                    timer(30_700),
                ],
            ),
            Step(30_700, Event::Tick, vec![launch(0), timer(40_600)]),
            // The new run starts its checks over, with a new generation.
            Step(30_800, launched(0, 20), vec![probe(0, 2)]),
            Step(
                30_900,
                killed(1, TERM),
                vec![
                    log("api stopped: killed by signal SIGTERM (15) after 0.300 s"),
                    no_timer(),
                ],
            ),
            Step(
                31_000,
                result(0, 2, true),
                vec![
                    log("db is ready (health check passed)"),
                    log("starting api: what it requires is ready again"),
                    launch(1),
                    timer(41_000),
                ],
            ),
        ],
    );
}
