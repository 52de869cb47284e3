//! The wording of the session's log lines.

use std::net::Ipv4Addr;

use super::super::describe;
use super::super::machine::{Action, State};
use super::fixtures::*;

fn line(action: Action) -> String {
    match action {
        Action::Send {
            request,
            to,
            attempt,
        } => describe::send("eth0", &request, to, attempt),
        other => panic!("not a send: {other:?}"),
    }
}

#[test]
fn sends_say_what_and_whether_repeated() {
    let table = [
        (discover(1, 0, 1), "eth0: dhcp discover"),
        (discover(1, 3, 3), "eth0: dhcp discover again (attempt 3)"),
        (
            select(1, 0, 1),
            "eth0: dhcp request 192.0.2.100 from 192.0.2.1",
        ),
        (
            renew(1, 0, 1, SERVER),
            "eth0: dhcp renew 192.0.2.100 with 192.0.2.1",
        ),
        (
            rebind(1, 0, 2),
            "eth0: dhcp rebind 192.0.2.100 again (attempt 2)",
        ),
    ];
    for (action, want) in table {
        assert_eq!(line(action), want);
    }
}

#[test]
fn leases_list_what_was_granted() {
    let mut full = lease(secs(0), 86400);
    full.mtu = Some(1400);
    let mut bare = lease(secs(0), 60);
    bare.router = None;
    bare.dns = vec![DNS, Ipv4Addr::new(192, 0, 2, 54)];
    bare.domain = None;
    let table = [
        (
            &full,
            false,
            "eth0: lease 192.0.2.100/24 for 86400s, router 192.0.2.254, dns 192.0.2.53, \
             domain example.test, mtu 1400",
        ),
        (
            &bare,
            true,
            "eth0: lease 192.0.2.100/24 renewed for 60s, dns 192.0.2.53 192.0.2.54",
        ),
    ];
    for (lease, renewed, want) in table {
        assert_eq!(describe::lease("eth0", lease, renewed), want);
    }
}

#[test]
fn replies_are_described_only_where_actions_do_not_say_it() {
    let mut anonymous = nak(1);
    anonymous.server_id = None;
    anonymous.message = None;
    let table = [
        (
            State::Selecting,
            offer(1),
            Some("eth0: dhcp offer 192.0.2.100 from 192.0.2.1"),
        ),
        (
            State::Requesting,
            nak(1),
            Some("eth0: dhcp nak from 192.0.2.1: wrong network, discovering again"),
        ),
        (
            State::Requesting,
            anonymous,
            Some("eth0: dhcp nak from a server, discovering again"),
        ),
        (State::Requesting, ack(1, 60), None),
        (State::Renewing, nak(1), None),
    ];
    for (state, reply, want) in table {
        assert_eq!(
            describe::reply("eth0", state, &reply).as_deref(),
            want,
            "{state:?} {reply:?}"
        );
    }
    assert_eq!(
        describe::lost("eth0", "lease on 192.0.2.100 expired"),
        "eth0: dhcp lease lost: lease on 192.0.2.100 expired"
    );
}
