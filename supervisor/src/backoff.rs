//! The restart delay: `initial`, doubling with each consecutive restart,
//! capped at `max`; the count starts over once a run lasted `reset`.

use std::time::Duration;

use berth_config::Backoff;

/// The delay before restart number `restarts` (0-based, counted since the
/// last reset).
pub fn delay(b: &Backoff, restarts: u32) -> Duration {
    // 2^31 * anything overflows long before; saturate instead of wrapping.
    let factor = 1u32.checked_shl(restarts.min(31)).unwrap_or(u32::MAX);
    b.initial.checked_mul(factor).unwrap_or(b.max).min(b.max)
}

/// The consecutive-restart count after a run of `ran`: kept when the run
/// was short, back to 0 when it was stable for at least `reset`.
pub fn count_after_run(b: &Backoff, restarts: u32, ran: Duration) -> u32 {
    if ran >= b.reset {
        0
    } else {
        restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn default_schedule() {
        let b = Backoff::default();
        // (restarts so far, delay): 100 ms doubling, capped at 30 s.
        let table = [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1_600),
            (5, 3_200),
            (6, 6_400),
            (7, 12_800),
            (8, 25_600),
            (9, 30_000),
            (10, 30_000),
            (31, 30_000),
            (32, 30_000),
            (u32::MAX, 30_000),
        ];
        for (n, want) in table {
            assert_eq!(delay(&b, n), ms(want), "restart {n}");
        }
    }

    #[test]
    fn configured_schedules() {
        // (initial, max, restarts, delay)
        let table = [
            (0, 0, 5, 0),
            (0, 1_000, 3, 0),
            (1_000, 1_000, 0, 1_000),
            (1_000, 1_000, 7, 1_000),
            (250, 5_000, 4, 4_000),
            (250, 5_000, 5, 5_000),
            (3_000, 3_600_000, 20, 3_600_000),
        ];
        for (initial, max, n, want) in table {
            let b = Backoff {
                initial: ms(initial),
                max: ms(max),
                reset: ms(60_000),
            };
            assert_eq!(delay(&b, n), ms(want), "{initial}/{max} restart {n}");
        }
    }

    #[test]
    fn reset_after_a_stable_run() {
        let b = Backoff::default();
        // (count before, ran for, count after)
        let table = [
            (5, 59_999, 5),
            (5, 60_000, 0),
            (5, 600_000, 0),
            (0, 10, 0),
            (9, 1, 9),
        ];
        for (before, ran, after) in table {
            assert_eq!(
                count_after_run(&b, before, ms(ran)),
                after,
                "{before} after {ran} ms"
            );
        }
    }
}
