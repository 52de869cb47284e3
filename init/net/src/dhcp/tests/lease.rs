//! Lease rules: prefix derivation, T1/T2 defaults, and the ACK mapping.

use std::net::Ipv4Addr;

use super::super::lease::{lease_times, prefix_len, Lease};
use super::fixtures::*;

#[test]
fn prefix_comes_from_a_contiguous_mask_else_classful() {
    let ip = Ipv4Addr::new;
    let table = [
        (ip(10, 0, 2, 15), Some(ip(255, 255, 255, 0)), 24),
        (ip(10, 0, 2, 15), Some(ip(255, 255, 240, 0)), 20),
        (ip(10, 0, 2, 15), Some(ip(255, 255, 255, 255)), 32),
        (ip(10, 0, 2, 15), Some(ip(0, 0, 0, 0)), 8),
        (ip(10, 0, 2, 15), Some(ip(255, 0, 255, 0)), 8),
        (ip(10, 0, 2, 15), None, 8),
        (ip(172, 16, 0, 5), None, 16),
        (ip(192, 0, 2, 100), None, 24),
        (ip(192, 0, 2, 100), Some(ip(0, 255, 255, 255)), 24),
        (ip(230, 0, 0, 1), None, 24),
    ];
    for (address, mask, prefix) in table {
        assert_eq!(prefix_len(address, mask), prefix, "{address} mask {mask:?}");
    }
}

#[test]
fn lease_times_follow_the_server_when_consistent() {
    let table = [
        // (option 51, 58, 59) → (lease, T1, T2) in milliseconds
        ((Some(100), None, None), (100_000, 50_000, 87_500)),
        ((Some(100), Some(30), Some(60)), (100_000, 30_000, 60_000)),
        ((Some(100), Some(30), None), (100_000, 30_000, 87_500)),
        ((Some(100), None, Some(40)), (100_000, 20_000, 40_000)),
        ((Some(100), Some(70), Some(60)), (100_000, 50_000, 60_000)),
        ((Some(100), Some(0), Some(0)), (100_000, 50_000, 87_500)),
        ((Some(100), Some(50), Some(100)), (100_000, 50_000, 87_500)),
        ((None, None, None), (3_600_000, 1_800_000, 3_150_000)),
        ((Some(0), None, None), (1_000, 500, 875)),
        ((Some(4), Some(2), None), (4_000, 2_000, 3_500)),
    ];
    for ((lease, t1, t2), (want_lease, want_t1, want_t2)) in table {
        assert_eq!(
            lease_times(lease, t1, t2),
            (millis(want_lease), millis(want_t1), millis(want_t2)),
            "options {lease:?} {t1:?} {t2:?}"
        );
    }
}

#[test]
fn an_ack_maps_to_a_lease() {
    let mut reply = ack(1, 100);
    reply.routers = vec![Ipv4Addr::UNSPECIFIED, ROUTER, SERVER];
    reply.dns = vec![DNS, Ipv4Addr::UNSPECIFIED, SERVER];
    reply.hostname = Some("node1".to_string());
    reply.mtu = Some(1400);
    let got = Lease::from_ack(&reply, OTHER_SERVER, secs(7));
    let mut want = lease(secs(7), 100);
    want.dns = vec![DNS, SERVER];
    want.hostname = Some("node1".to_string());
    want.mtu = Some(1400);
    assert_eq!(got, want);
    assert_eq!(
        (got.renew_at(), got.rebind_at(), got.expires_at()),
        (secs(57), millis(94_500), secs(107))
    );

    reply.server_id = None;
    reply.mtu = Some(67);
    reply.subnet_mask = None;
    reply.routers = vec![];
    let got = Lease::from_ack(&reply, OTHER_SERVER, secs(7));
    assert_eq!(
        (got.server, got.mtu, got.prefix_len, got.router),
        (OTHER_SERVER, None, 24, None)
    );
}
