//! The client machine as tables of (time, input) → (actions, state,
//! deadline), one table per scenario, each run from a fresh client.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::super::lease::Lease;
use super::super::machine::{Action, Client, State};
use super::super::message::Reply;
use super::fixtures::*;

enum Input {
    Start,
    Tick,
    Message(Reply),
}

struct Step {
    at: Duration,
    input: Input,
    actions: Vec<Action>,
    state: State,
    deadline: Option<Duration>,
}

fn step(at: Duration, input: Input, actions: Vec<Action>, state: State, deadline: u64) -> Step {
    Step {
        at,
        input,
        actions,
        state,
        deadline: Some(secs(deadline)),
    }
}

fn run(name: &str, steps: Vec<Step>) -> Client {
    let mut client = Client::new(config());
    for (i, step) in steps.into_iter().enumerate() {
        let actions = match &step.input {
            Input::Start => client.start(step.at),
            Input::Tick => client.on_tick(step.at),
            Input::Message(reply) => client.on_message(step.at, reply),
        };
        assert_eq!(actions, step.actions, "{name}, step {i}: actions");
        assert_eq!(client.state(), step.state, "{name}, step {i}: state");
        assert_eq!(
            client.deadline(),
            step.deadline,
            "{name}, step {i}: deadline"
        );
    }
    client
}

use Input::{Message as Msg, Start, Tick};
use State::*;

/// Discovery up to BOUND with a 100 s lease (T1 50 s, T2 87.5 s),
/// requested at `requested`.
fn bound_at(requested: Duration) -> Vec<Step> {
    vec![
        step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
        Step {
            deadline: Some(requested + secs(1)),
            ..step(
                requested,
                Msg(offer(x(0))),
                vec![select(x(0), requested.as_secs() as u16, 1)],
                Requesting,
                0,
            )
        },
        Step {
            deadline: Some(requested + secs(50)),
            ..step(
                requested + millis(100),
                Msg(ack(x(0), 100)),
                vec![Action::Bound(lease(requested, 100))],
                Bound,
                0,
            )
        },
    ]
}

#[test]
fn offer_request_ack_binds() {
    let client = run("happy path", bound_at(millis(300)));
    assert_eq!(client.lease(), Some(&lease(millis(300), 100)));
}

#[test]
fn start_twice_sends_once() {
    run(
        "start twice",
        vec![
            step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
            step(millis(10), Start, vec![], Selecting, 1),
        ],
    );
}

#[test]
fn replies_not_for_us_are_ignored() {
    let mut wrong_mac = offer(x(0));
    wrong_mac.chaddr = vec![0x52, 0x54, 0x00, 0x99, 0x99, 0x99];
    let mut no_server_id = offer(x(0));
    no_server_id.server_id = None;
    let mut zero_address = offer(x(0));
    zero_address.yiaddr = Ipv4Addr::UNSPECIFIED;
    let mut broadcast_address = offer(x(0));
    broadcast_address.yiaddr = Ipv4Addr::BROADCAST;
    let mut ack_from_other = ack(x(0), 100);
    ack_from_other.server_id = Some(OTHER_SERVER);
    let sel = |reply: Reply| step(secs(0), Msg(reply), vec![], Selecting, 1);
    run(
        "ignored in selecting",
        vec![
            step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
            sel(offer(x(0).wrapping_add(1))),
            sel(wrong_mac),
            sel(no_server_id),
            sel(zero_address),
            sel(broadcast_address),
            sel(ack(x(0), 100)),
            sel(nak(x(0))),
        ],
    );
    let req = |reply: Reply| step(secs(0), Msg(reply), vec![], Requesting, 1);
    run(
        "ignored in requesting",
        vec![
            step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
            step(
                secs(0),
                Msg(offer(x(0))),
                vec![select(x(0), 0, 1)],
                Requesting,
                1,
            ),
            req(offer(x(0))),
            req(ack(x(0).wrapping_add(1), 100)),
            req(ack_from_other),
            req(nak(x(1))),
        ],
    );
    let mut steps = bound_at(secs(0));
    steps.push(step(secs(1), Msg(ack(x(0), 100)), vec![], Bound, 50));
    steps.push(step(secs(1), Msg(nak(x(0))), vec![], Bound, 50));
    run("ignored in bound", steps);
}

#[test]
fn only_the_first_offer_is_taken() {
    let mut second = offer(x(0));
    second.yiaddr = OTHER_ADDRESS;
    second.server_id = Some(OTHER_SERVER);
    run(
        "first offer",
        vec![
            step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
            step(
                secs(0),
                Msg(offer(x(0))),
                vec![select(x(0), 0, 1)],
                Requesting,
                1,
            ),
            step(millis(10), Msg(second), vec![], Requesting, 1),
        ],
    );
}

#[test]
fn nak_while_requesting_restarts_discovery() {
    run(
        "nak in requesting",
        vec![
            step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
            step(
                secs(2),
                Msg(offer(x(0))),
                vec![select(x(0), 2, 1)],
                Requesting,
                3,
            ),
            step(
                secs(2),
                Msg(nak(x(0))),
                vec![discover(x(1), 0, 1)],
                Selecting,
                3,
            ),
        ],
    );
}

#[test]
fn naks_in_a_row_delay_discovery() {
    run(
        "naks in a row",
        vec![
            step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
            step(
                secs(0),
                Msg(offer(x(0))),
                vec![select(x(0), 0, 1)],
                Requesting,
                1,
            ),
            step(
                secs(0),
                Msg(nak(x(0))),
                vec![discover(x(1), 0, 1)],
                Selecting,
                1,
            ),
            step(
                secs(0),
                Msg(offer(x(1))),
                vec![select(x(1), 0, 1)],
                Requesting,
                1,
            ),
            step(secs(0), Msg(nak(x(1))), vec![], Selecting, 1),
            step(millis(999), Tick, vec![], Selecting, 1),
            step(secs(1), Tick, vec![discover(x(2), 0, 1)], Selecting, 2),
            step(
                secs(1),
                Msg(offer(x(2))),
                vec![select(x(2), 0, 1)],
                Requesting,
                2,
            ),
            step(secs(1), Msg(nak(x(2))), vec![], Selecting, 3),
            step(secs(3), Tick, vec![discover(x(3), 0, 1)], Selecting, 4),
            step(
                secs(3),
                Msg(offer(x(3))),
                vec![select(x(3), 0, 1)],
                Requesting,
                4,
            ),
            step(
                secs(3),
                Msg(ack(x(3), 100)),
                vec![Action::Bound(lease(secs(3), 100))],
                Bound,
                53,
            ),
            // The ACK reset the count: a NAK to the renewal rediscovers at once.
            Step {
                deadline: Some(millis(90_500)),
                ..step(secs(53), Tick, vec![renew(x(4), 0, 1, SERVER)], Renewing, 0)
            },
            step(
                secs(53),
                Msg(nak(x(4))),
                vec![
                    Action::Lost {
                        reason: "192.0.2.1 refused 192.0.2.100 (nak): wrong network".to_string(),
                    },
                    discover(x(5), 0, 1),
                ],
                Selecting,
                54,
            ),
        ],
    );
}

#[test]
fn discover_backs_off_to_32_seconds_forever() {
    let mut steps = vec![
        step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
        step(millis(999), Tick, vec![], Selecting, 1),
    ];
    // Sent at 1, 3, 7, 15, 31, 63, 95, 127: delays 2, 4, 8, 16, 32, 32…
    let sends = [
        (1, 3),
        (3, 7),
        (7, 15),
        (15, 31),
        (31, 63),
        (63, 95),
        (95, 127),
    ];
    for (attempt, (at, next)) in (2..).zip(sends) {
        steps.push(step(
            secs(at),
            Tick,
            vec![discover(x(0), at as u16, attempt)],
            Selecting,
            next,
        ));
    }
    run("discover backoff", steps);
}

#[test]
fn request_gives_up_after_four_attempts() {
    run(
        "request attempts",
        vec![
            step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
            step(secs(1), Tick, vec![discover(x(0), 1, 2)], Selecting, 3),
            step(
                secs(2),
                Msg(offer(x(0))),
                vec![select(x(0), 2, 1)],
                Requesting,
                3,
            ),
            step(secs(3), Tick, vec![select(x(0), 3, 2)], Requesting, 5),
            step(secs(5), Tick, vec![select(x(0), 5, 3)], Requesting, 9),
            step(secs(9), Tick, vec![select(x(0), 9, 4)], Requesting, 17),
            step(secs(17), Tick, vec![discover(x(1), 0, 1)], Selecting, 18),
        ],
    );
}

#[test]
fn t1_renews_by_unicast_and_an_ack_extends_the_lease() {
    let mut steps = bound_at(secs(0));
    steps.extend([
        step(millis(49_999), Tick, vec![], Bound, 50),
        // T2 is at 87.5 s, less than 60 s away: the retry waits for it.
        Step {
            deadline: Some(millis(87_500)),
            ..step(secs(50), Tick, vec![renew(x(1), 0, 1, SERVER)], Renewing, 0)
        },
        step(
            secs(51),
            Msg(ack(x(1), 100)),
            vec![Action::Renewed(lease(secs(50), 100))],
            Bound,
            100,
        ),
    ]);
    let client = run("renewal", steps);
    assert_eq!(client.lease().map(Lease::expires_at), Some(secs(150)));
}

#[test]
fn renewal_retries_at_half_the_time_left_but_60_seconds_at_least() {
    let mut steps = vec![
        step(secs(0), Start, vec![discover(x(0), 0, 1)], Selecting, 1),
        step(
            secs(0),
            Msg(offer(x(0))),
            vec![select(x(0), 0, 1)],
            Requesting,
            1,
        ),
        step(
            secs(0),
            Msg(ack(x(0), 3600)),
            vec![Action::Bound(lease(secs(0), 3600))],
            Bound,
            1800,
        ),
    ];
    // T1 1800, T2 3150: half the time left each time, then 60 s, then T2.
    let renewals = [
        (secs(1800), millis(2_475_000)),
        (millis(2_475_000), millis(2_812_500)),
        (millis(2_812_500), millis(2_981_250)),
        (millis(2_981_250), millis(3_065_625)),
        (millis(3_065_625), millis(3_125_625)),
        (millis(3_125_625), secs(3150)),
    ];
    for (attempt, (at, next)) in (1..).zip(renewals) {
        let secs_field = (at - secs(1800)).as_secs() as u16;
        steps.push(Step {
            at,
            input: Tick,
            actions: vec![renew(x(1), secs_field, attempt, SERVER)],
            state: Renewing,
            deadline: Some(next),
        });
    }
    run("renewal retries", steps);
}

#[test]
fn t2_rebinds_by_broadcast_and_expiry_loses_the_lease() {
    let mut steps = bound_at(secs(0));
    steps.extend([
        Step {
            deadline: Some(millis(87_500)),
            ..step(secs(50), Tick, vec![renew(x(1), 0, 1, SERVER)], Renewing, 0)
        },
        step(
            millis(87_500),
            Tick,
            vec![rebind(x(2), 0, 1)],
            Rebinding,
            100,
        ),
        step(millis(99_999), Tick, vec![], Rebinding, 100),
        step(
            secs(100),
            Tick,
            vec![
                Action::Lost {
                    reason: "lease on 192.0.2.100 expired".to_string(),
                },
                discover(x(3), 0, 1),
            ],
            Selecting,
            101,
        ),
    ]);
    let client = run("rebind and expire", steps);
    assert_eq!(client.lease(), None);
}

#[test]
fn an_ack_while_rebinding_may_come_from_another_server() {
    let mut other = ack(x(2), 100);
    other.server_id = Some(OTHER_SERVER);
    let mut renewed = lease(millis(87_500), 100);
    renewed.server = OTHER_SERVER;
    let mut steps = bound_at(secs(0));
    steps.extend([
        Step {
            deadline: Some(millis(87_500)),
            ..step(secs(50), Tick, vec![renew(x(1), 0, 1, SERVER)], Renewing, 0)
        },
        step(
            millis(87_500),
            Tick,
            vec![rebind(x(2), 0, 1)],
            Rebinding,
            100,
        ),
        Step {
            deadline: Some(millis(137_500)),
            ..step(
                secs(88),
                Msg(other),
                vec![Action::Renewed(renewed)],
                Bound,
                0,
            )
        },
        Step {
            deadline: Some(millis(175_000)),
            ..step(
                millis(137_500),
                Tick,
                vec![renew(x(3), 0, 1, OTHER_SERVER)],
                Renewing,
                0,
            )
        },
    ]);
    run("rebind to another server", steps);
}

#[test]
fn a_different_address_on_renewal_is_lost_then_bound() {
    let mut moved = ack(x(1), 100);
    moved.yiaddr = OTHER_ADDRESS;
    let mut new_lease = lease(secs(50), 100);
    new_lease.address = OTHER_ADDRESS;
    let mut steps = bound_at(secs(0));
    steps.extend([
        Step {
            deadline: Some(millis(87_500)),
            ..step(secs(50), Tick, vec![renew(x(1), 0, 1, SERVER)], Renewing, 0)
        },
        step(
            secs(50),
            Msg(moved),
            vec![
                Action::Lost {
                    reason: "server moved the lease from 192.0.2.100 to 192.0.2.101".to_string(),
                },
                Action::Bound(new_lease),
            ],
            Bound,
            100,
        ),
    ]);
    run("moved", steps);
}

#[test]
fn nak_while_renewing_loses_the_lease_and_rediscovers() {
    let mut steps = bound_at(secs(0));
    steps.extend([
        Step {
            deadline: Some(millis(87_500)),
            ..step(secs(50), Tick, vec![renew(x(1), 0, 1, SERVER)], Renewing, 0)
        },
        step(
            secs(51),
            Msg(nak(x(1))),
            vec![
                Action::Lost {
                    reason: "192.0.2.1 refused 192.0.2.100 (nak): wrong network".to_string(),
                },
                discover(x(2), 0, 1),
            ],
            Selecting,
            52,
        ),
    ]);
    run("nak in renewing", steps);
}

#[test]
fn a_late_tick_skips_to_the_phase_due() {
    let mut to_rebinding = bound_at(secs(0));
    to_rebinding.push(step(
        secs(90),
        Tick,
        vec![rebind(x(1), 0, 1)],
        Rebinding,
        100,
    ));
    run("bound past t2", to_rebinding);

    let mut to_expiry = bound_at(secs(0));
    to_expiry.push(step(
        secs(500),
        Tick,
        vec![
            Action::Lost {
                reason: "lease on 192.0.2.100 expired".to_string(),
            },
            discover(x(1), 0, 1),
        ],
        Selecting,
        501,
    ));
    run("bound past expiry", to_expiry);
}

#[test]
fn an_infinite_lease_has_a_far_deadline() {
    let mut client = Client::new(config());
    client.start(secs(0));
    client.on_message(secs(0), &offer(x(0)));
    let actions = client.on_message(secs(0), &ack(x(0), u32::MAX));
    assert!(matches!(actions.as_slice(), [Action::Bound(_)]));
    assert_eq!(
        client.deadline(),
        Some(Duration::from_secs(u64::from(u32::MAX)) / 2)
    );
    assert_eq!(client.on_tick(secs(10 * 365 * 24 * 3600)), vec![]);
}

#[test]
fn server_times_are_used() {
    let mut with_times = ack(x(0), 100);
    with_times.renewal_time = Some(10);
    with_times.rebinding_time = Some(20);
    let mut client = Client::new(config());
    client.start(secs(0));
    client.on_message(secs(0), &offer(x(0)));
    client.on_message(secs(0), &with_times);
    assert_eq!(client.deadline(), Some(secs(10)));
    assert_eq!(client.on_tick(secs(10)), vec![renew(x(1), 0, 1, SERVER)]);
    assert_eq!(client.deadline(), Some(secs(20)));
    assert_eq!(client.on_tick(secs(20)), vec![rebind(x(2), 0, 1)]);
}

#[test]
fn xids_differ_between_exchanges_and_seeds() {
    use super::super::machine::xid;
    let xids: std::collections::HashSet<u32> = (0..1000).map(|n| xid(SEED, n)).collect();
    assert_eq!(xids.len(), 1000);
    assert_ne!(xid(1, 0), xid(2, 0));
}
