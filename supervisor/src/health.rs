//! One container's health check as a pure function: `(state, event) →
//! actions`, like [`crate::lifecycle`]. The loop reports starts, stops,
//! the clock and probe results; the checker answers when to probe, when
//! the container becomes ready and when it is unhealthy.
//!
//! Rules, per run of the container (a `Started` begins a run, `Stopped`
//! ends it and forgets everything):
//!
//! - The first probe runs at the start, then each one `interval` after the
//!   previous result. Never two at once: while a probe is in flight there
//!   is no wake-up; the loop enforces `timeout` and reports a timed-out
//!   probe as a failure.
//! - The first pass makes the container *ready* (`Ready`, once per run)
//!   and healthy, and ends the start period early.
//! - A failure within `start-period` of the start, before the first pass,
//!   does not count. After that, `retries` consecutive failures make it
//!   unhealthy (`Unhealthy`, once until it passes again); the loop
//!   restarts it by its restart policy. A pass resets the count.
//!
//! A container without a health check has no checker: the loop treats it
//! as ready as soon as its process runs.

use std::time::Duration;

use berth_config::HealthCheck;

/// A running container's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Started, no probe passed yet.
    Starting,
    /// The last counted result was a pass, or too few failures since.
    Healthy,
    /// `retries` consecutive failures.
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// What happened. Times are durations since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// The container's process started at `at`.
    Started { at: Duration },
    /// Time passed.
    Tick { now: Duration },
    /// The probe asked for by the last `RunProbe` ended at `at`: `ok` when
    /// it passed, false when it failed or timed out. The loop drops
    /// results of probes begun before a `Stopped`.
    Result { at: Duration, ok: bool },
    /// The container's process ended, or is being stopped.
    Stopped,
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthAction {
    /// Run the probe now, within [`Checker::timeout`], and report a
    /// `Result`.
    RunProbe,
    /// The container just became ready: dependents may start.
    Ready,
    /// The container is unhealthy, for this reason: restart it by policy.
    Unhealthy(String),
    /// One console line about the check (the loop prefixes the name).
    Log(String),
}

/// Where the current run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    started: Duration,
    health: Health,
    /// When the next probe is due; meaningless while one is in flight.
    due: Duration,
    in_flight: bool,
    /// Consecutive counted failures.
    failures: u32,
    /// Whether `Ready` went out in this run (a first pass ends the start
    /// period too).
    ready: bool,
}

/// The health check of one container.
#[derive(Debug, Clone)]
pub struct Checker {
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
    /// `None` while the container is not running.
    run: Option<Run>,
}

impl Checker {
    pub fn new(check: &HealthCheck) -> Checker {
        Checker {
            interval: check.interval,
            timeout: check.timeout,
            // The manifest refuses 0; a pass-through 0 would never fail.
            retries: check.retries.max(1),
            start_period: check.start_period,
            run: None,
        }
    }

    /// The current run's health; `None` while not running.
    pub fn health(&self) -> Option<Health> {
        self.run.map(|r| r.health)
    }

    /// Whether the container passed a probe since it started.
    pub fn is_ready(&self) -> bool {
        self.run.is_some_and(|r| r.ready)
    }

    /// How long a probe may take before the loop reports it failed.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// When the loop must call back with a `Tick`: the next probe, unless
    /// one is in flight or the container is not running.
    pub fn wake_at(&self) -> Option<Duration> {
        self.run.filter(|r| !r.in_flight).map(|r| r.due)
    }

    /// The transition function.
    pub fn next(&mut self, event: HealthEvent) -> Vec<HealthAction> {
        match (self.run.as_mut(), event) {
            // A start without a stop in between is a new run all the same.
            (_, HealthEvent::Started { at }) => {
                self.run = Some(Run {
                    started: at,
                    health: Health::Starting,
                    due: at,
                    in_flight: true,
                    failures: 0,
                    ready: false,
                });
                vec![HealthAction::RunProbe]
            }
            (_, HealthEvent::Stopped) => {
                self.run = None;
                vec![]
            }
            (Some(run), HealthEvent::Tick { now }) if !run.in_flight && now >= run.due => {
                run.in_flight = true;
                vec![HealthAction::RunProbe]
            }
            (Some(run), HealthEvent::Result { at, ok }) if run.in_flight => {
                run.in_flight = false;
                run.due = at + self.interval;
                if ok {
                    passed(run)
                } else {
                    self.failed(at)
                }
            }
            // Ticks before the due time or during a probe, results nobody
            // asked for, anything while not running.
            _ => vec![],
        }
    }

    fn failed(&mut self, at: Duration) -> Vec<HealthAction> {
        let (start_period, retries) = (self.start_period, self.retries);
        let Some(run) = self.run.as_mut() else {
            return vec![];
        };
        if !run.ready && at < run.started + start_period {
            return vec![];
        }
        run.failures = run.failures.saturating_add(1);
        if run.failures < retries {
            return vec![HealthAction::Log(format!(
                "health check failed ({} of {retries})",
                run.failures
            ))];
        }
        if run.health == Health::Unhealthy {
            return vec![];
        }
        run.health = Health::Unhealthy;
        vec![HealthAction::Unhealthy(format!(
            "{} consecutive health checks failed",
            run.failures
        ))]
    }
}

fn passed(run: &mut Run) -> Vec<HealthAction> {
    let mut actions = Vec::new();
    if run.health == Health::Unhealthy {
        actions.push(HealthAction::Log(format!(
            "healthy again after {} failed health checks",
            run.failures
        )));
    }
    run.failures = 0;
    run.health = Health::Healthy;
    if !run.ready {
        run.ready = true;
        actions.push(HealthAction::Ready);
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_config::Probe;
    use HealthAction::{Log, Ready, RunProbe};

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn start(at: u64) -> HealthEvent {
        HealthEvent::Started { at: s(at) }
    }

    fn tick(now: u64) -> HealthEvent {
        HealthEvent::Tick { now: s(now) }
    }

    fn pass(at: u64) -> HealthEvent {
        HealthEvent::Result {
            at: s(at),
            ok: true,
        }
    }

    fn fail(at: u64) -> HealthEvent {
        HealthEvent::Result {
            at: s(at),
            ok: false,
        }
    }

    fn unhealthy(n: u32) -> HealthAction {
        HealthAction::Unhealthy(format!("{n} consecutive health checks failed"))
    }

    fn failed(n: u32, of: u32) -> HealthAction {
        Log(format!("health check failed ({n} of {of})"))
    }

    /// interval 10 s, timeout 5 s, `retries`, `start_period` seconds.
    fn check(retries: u32, start_period: u64) -> HealthCheck {
        HealthCheck {
            retries,
            start_period: s(start_period),
            ..HealthCheck::new(Probe::Tcp(80))
        }
    }

    /// One step: the event, the actions it must give, and the health and
    /// wake-up time after it (wake `None`: in flight or not running).
    type Step = (HealthEvent, Vec<HealthAction>, Option<Health>, Option<u64>);
    /// A row of the transition table: its name, the check, its steps.
    type Row = (&'static str, HealthCheck, Vec<Step>);

    use Health::{Healthy, Starting, Unhealthy};

    fn probe_rows() -> Vec<Row> {
        vec![
            (
                "a start probes at once; no wake-up while in flight",
                check(3, 0),
                vec![(start(5), vec![RunProbe], Some(Starting), None)],
            ),
            (
                "the first pass makes it ready and healthy",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(1), vec![Ready], Some(Healthy), Some(11)),
                ],
            ),
            (
                "the next probe is due an interval after the result",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(4), vec![Ready], Some(Healthy), Some(14)),
                    (tick(13), vec![], Some(Healthy), Some(14)),
                    (tick(14), vec![RunProbe], Some(Healthy), None),
                ],
            ),
            (
                "no second probe while one is in flight",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (tick(10), vec![], Some(Starting), None),
                    (tick(60), vec![], Some(Starting), None),
                    (fail(61), vec![failed(1, 3)], Some(Starting), Some(71)),
                    (tick(71), vec![RunProbe], Some(Starting), None),
                    (tick(72), vec![], Some(Starting), None),
                ],
            ),
        ]
    }

    fn start_period_rows() -> Vec<Row> {
        vec![
            (
                "failures in the start period do not count",
                check(3, 30),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (fail(0), vec![], Some(Starting), Some(10)),
                    (tick(10), vec![RunProbe], Some(Starting), None),
                    (fail(10), vec![], Some(Starting), Some(20)),
                    (tick(20), vec![RunProbe], Some(Starting), None),
                    (fail(29), vec![], Some(Starting), Some(39)),
                    (tick(39), vec![RunProbe], Some(Starting), None),
                    (fail(39), vec![failed(1, 3)], Some(Starting), Some(49)),
                ],
            ),
            (
                "a pass ends the start period early",
                check(1, 60),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(1), vec![Ready], Some(Healthy), Some(11)),
                    (tick(11), vec![RunProbe], Some(Healthy), None),
                    (fail(12), vec![unhealthy(1)], Some(Unhealthy), Some(22)),
                ],
            ),
            (
                "the start period counts from each start",
                check(1, 30),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (fail(40), vec![unhealthy(1)], Some(Unhealthy), Some(50)),
                    (HealthEvent::Stopped, vec![], None, None),
                    (start(100), vec![RunProbe], Some(Starting), None),
                    (fail(120), vec![], Some(Starting), Some(130)),
                ],
            ),
        ]
    }

    fn failure_rows() -> Vec<Row> {
        vec![
            (
                "retries consecutive failures make it unhealthy, once",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(0), vec![Ready], Some(Healthy), Some(10)),
                    (tick(10), vec![RunProbe], Some(Healthy), None),
                    (fail(10), vec![failed(1, 3)], Some(Healthy), Some(20)),
                    (tick(20), vec![RunProbe], Some(Healthy), None),
                    (fail(20), vec![failed(2, 3)], Some(Healthy), Some(30)),
                    (tick(30), vec![RunProbe], Some(Healthy), None),
                    (fail(30), vec![unhealthy(3)], Some(Unhealthy), Some(40)),
                    (tick(40), vec![RunProbe], Some(Unhealthy), None),
                    (fail(40), vec![], Some(Unhealthy), Some(50)),
                ],
            ),
            (
                "a pass resets the failure count",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (fail(0), vec![failed(1, 3)], Some(Starting), Some(10)),
                    (tick(10), vec![RunProbe], Some(Starting), None),
                    (fail(10), vec![failed(2, 3)], Some(Starting), Some(20)),
                    (tick(20), vec![RunProbe], Some(Starting), None),
                    (pass(20), vec![Ready], Some(Healthy), Some(30)),
                    (tick(30), vec![RunProbe], Some(Healthy), None),
                    (fail(30), vec![failed(1, 3)], Some(Healthy), Some(40)),
                    (tick(40), vec![RunProbe], Some(Healthy), None),
                    (fail(40), vec![failed(2, 3)], Some(Healthy), Some(50)),
                ],
            ),
            (
                "never passing: unhealthy without ever being ready",
                check(2, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (fail(0), vec![failed(1, 2)], Some(Starting), Some(10)),
                    (tick(10), vec![RunProbe], Some(Starting), None),
                    (fail(10), vec![unhealthy(2)], Some(Unhealthy), Some(20)),
                ],
            ),
            (
                "a pass after unhealthy: healthy again, no second Ready",
                check(1, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(0), vec![Ready], Some(Healthy), Some(10)),
                    (tick(10), vec![RunProbe], Some(Healthy), None),
                    (fail(10), vec![unhealthy(1)], Some(Unhealthy), Some(20)),
                    (tick(20), vec![RunProbe], Some(Unhealthy), None),
                    (
                        pass(20),
                        vec![Log("healthy again after 1 failed health checks".into())],
                        Some(Healthy),
                        Some(30),
                    ),
                ],
            ),
            (
                "unhealthy again after a recovery",
                check(1, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (fail(0), vec![unhealthy(1)], Some(Unhealthy), Some(10)),
                    (tick(10), vec![RunProbe], Some(Unhealthy), None),
                    (
                        pass(10),
                        vec![
                            Log("healthy again after 1 failed health checks".into()),
                            Ready,
                        ],
                        Some(Healthy),
                        Some(20),
                    ),
                    (tick(20), vec![RunProbe], Some(Healthy), None),
                    (fail(20), vec![unhealthy(1)], Some(Unhealthy), Some(30)),
                ],
            ),
        ]
    }

    fn restart_rows() -> Vec<Row> {
        vec![
            (
                "Stopped clears everything; later events do nothing",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(0), vec![Ready], Some(Healthy), Some(10)),
                    (HealthEvent::Stopped, vec![], None, None),
                    (tick(10), vec![], None, None),
                    (fail(11), vec![], None, None),
                    (pass(12), vec![], None, None),
                    (HealthEvent::Stopped, vec![], None, None),
                ],
            ),
            (
                "Ready once per start",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(0), vec![Ready], Some(Healthy), Some(10)),
                    (tick(10), vec![RunProbe], Some(Healthy), None),
                    (pass(10), vec![], Some(Healthy), Some(20)),
                    (HealthEvent::Stopped, vec![], None, None),
                    (start(30), vec![RunProbe], Some(Starting), None),
                    (pass(31), vec![Ready], Some(Healthy), Some(41)),
                ],
            ),
            (
                "a start without a stop begins a new run",
                check(3, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (fail(0), vec![failed(1, 3)], Some(Starting), Some(10)),
                    (start(5), vec![RunProbe], Some(Starting), None),
                    (fail(5), vec![failed(1, 3)], Some(Starting), Some(15)),
                ],
            ),
            (
                "results nobody asked for are ignored",
                check(1, 0),
                vec![
                    (start(0), vec![RunProbe], Some(Starting), None),
                    (pass(0), vec![Ready], Some(Healthy), Some(10)),
                    (fail(3), vec![], Some(Healthy), Some(10)),
                    (pass(4), vec![], Some(Healthy), Some(10)),
                ],
            ),
            (
                "nothing happens before the first start",
                check(3, 0),
                vec![
                    (tick(0), vec![], None, None),
                    (pass(1), vec![], None, None),
                    (HealthEvent::Stopped, vec![], None, None),
                ],
            ),
        ]
    }

    #[test]
    fn transitions() {
        let table: Vec<Row> = [
            probe_rows(),
            start_period_rows(),
            failure_rows(),
            restart_rows(),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(table.len() >= 15, "only {} rows", table.len());
        for (name, check, steps) in table {
            let mut c = Checker::new(&check);
            // Whether `Ready` went out since the last start or stop.
            let mut ready = false;
            for (i, (event, actions, health, wake)) in steps.into_iter().enumerate() {
                if matches!(event, HealthEvent::Started { .. } | HealthEvent::Stopped) {
                    ready = false;
                }
                ready |= actions.contains(&Ready);
                assert_eq!(c.next(event), actions, "{name}: step {i} ({event:?})");
                assert_eq!(c.health(), health, "{name}: health after step {i}");
                assert_eq!(c.wake_at(), wake.map(s), "{name}: wake after step {i}");
                assert_eq!(c.is_ready(), ready, "{name}: ready after step {i}");
            }
        }
    }

    #[test]
    fn accessors() {
        let c = Checker::new(&HealthCheck {
            timeout: Duration::from_millis(1500),
            ..check(3, 0)
        });
        assert_eq!(c.timeout(), Duration::from_millis(1500));
        assert_eq!(c.health(), None);
        assert!(!c.is_ready());
        let names: Vec<&str> = [Starting, Healthy, Unhealthy]
            .into_iter()
            .map(Health::as_str)
            .collect();
        assert_eq!(names, ["starting", "healthy", "unhealthy"]);
    }
}
