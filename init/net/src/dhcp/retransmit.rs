//! When to send a client message again, as pure functions of time.
//!
//! - DISCOVER and the SELECTING REQUEST (RFC 2131 §4.1): 1 s after the
//!   first transmission, then doubling, 2, 4, 8, 16, and 32 s from then on.
//!   The RFC's ±1 s randomisation is left out: the delays stay exact for
//!   the tests, and nodes booting together are already spread by their
//!   boot timing. DISCOVER is retried forever (the caller decides when
//!   "network online" has failed); a REQUEST gives up after
//!   [`MAX_REQUEST_ATTEMPTS`] and discovery starts over (§4.4.1).
//! - After a NAK discovery restarts at once (§3.1), but after a second
//!   NAK in a row it waits 1 s, then 2, 4, … up to 32 s, so a server that
//!   offers and then refuses cannot make the client spin.
//! - REQUEST while RENEWING or REBINDING (§4.4.5): half the time left
//!   until T2 (resp. expiry), at least 60 s, but never past that moment,
//!   where the next phase takes over.

use std::time::Duration;

/// Delay before the first retransmission.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// Longest delay between retransmissions.
pub const MAX_DELAY: Duration = Duration::from_secs(32);
/// Transmissions of a SELECTING REQUEST before starting over (1+2+4+8 s).
pub const MAX_REQUEST_ATTEMPTS: u32 = 4;
/// Shortest wait between REQUESTs while renewing or rebinding.
pub const MIN_LEASE_RETRY: Duration = Duration::from_secs(60);

/// The wait after the `attempt`-th transmission (1-based) of a DISCOVER
/// or SELECTING REQUEST.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(5);
    (FIRST_DELAY * (1 << doublings)).min(MAX_DELAY)
}

/// When to send the next renewing or rebinding REQUEST, sent at `now`,
/// when the phase ends at `until`.
pub fn lease_retry(now: Duration, until: Duration) -> Duration {
    let wait = (until.saturating_sub(now) / 2).max(MIN_LEASE_RETRY);
    (now + wait).min(until)
}

/// The wait before discovering again after the `naks`-th NAK in a row.
pub fn after_nak(naks: u32) -> Duration {
    if naks <= 1 {
        Duration::ZERO
    } else {
        backoff(naks - 1)
    }
}
