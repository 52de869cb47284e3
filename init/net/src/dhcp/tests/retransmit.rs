//! Retransmission timing tables.

use super::super::retransmit::{after_nak, backoff, lease_retry};
use super::fixtures::{millis, secs};

#[test]
fn backoff_doubles_from_one_second_up_to_32() {
    let table = [
        (0, 1),
        (1, 1),
        (2, 2),
        (3, 4),
        (4, 8),
        (5, 16),
        (6, 32),
        (7, 32),
        (1000, 32),
        (u32::MAX, 32),
    ];
    for (attempt, delay) in table {
        assert_eq!(backoff(attempt), secs(delay), "attempt {attempt}");
    }
}

#[test]
fn lease_retry_waits_half_the_time_left_at_least_60_s_up_to_the_end() {
    let table = [
        // (now, until, next)
        (secs(1800), secs(3150), secs(2475)),
        (secs(3000), secs(3150), secs(3075)),
        (secs(3100), secs(3200), secs(3160)),
        (secs(3100), secs(3150), secs(3150)),
        (secs(50), millis(87_500), millis(87_500)),
        (secs(200), secs(100), secs(100)),
    ];
    for (now, until, next) in table {
        assert_eq!(
            lease_retry(now, until),
            next,
            "now {now:?}, until {until:?}"
        );
    }
}

#[test]
fn a_first_nak_rediscovers_at_once_later_ones_back_off() {
    let table = [(0, 0), (1, 0), (2, 1), (3, 2), (4, 4), (7, 32), (100, 32)];
    for (naks, delay) in table {
        assert_eq!(after_nak(naks), secs(delay), "naks {naks}");
    }
}
