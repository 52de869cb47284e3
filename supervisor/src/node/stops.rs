//! Ordered stops. A stop that was asked for (by a shutdown, an operator,
//! or because a required container went down) marks the container
//! *pending*; it is carried out only once nothing that waits for it
//! (`after` ∪ `requires`) is still pending, launching or stopping. So a
//! chain stops most dependent first, each link after the one above it is
//! gone, and independent containers stop at once.

use super::*;

impl Node {
    /// A shutdown: every service and any run-once container still running.
    pub(super) fn stop_all(&mut self) {
        for u in &mut self.units {
            u.wanted = false;
            if u.spec.phase != Phase::OnShutdown {
                u.stop_pending = true;
            }
        }
    }

    /// Stops what requires container `i`, which just went down (`down`)
    /// or is about to, and marks it to start again once `i` is ready.
    pub(super) fn stop_dependents(&mut self, i: usize, down: bool) {
        if self.shutdown.is_some() {
            return;
        }
        let which = if down { "went down" } else { "is stopping" };
        let reason = format!("it requires {}, which {which}", self.units[i].spec.name);
        for d in self.graph.required_by(i) {
            let u = &mut self.units[d];
            let up = u.pid.is_some()
                || u.launching
                || matches!(u.lifecycle.state(), State::Backoff { .. });
            if up && !u.stop_pending {
                u.stop_pending = true;
                u.stop_reason = Some(reason.clone());
                u.wanted = true;
            }
        }
    }

    /// Whether something that waits for `i` must be gone before `i` stops.
    fn blocked(&self, i: usize) -> bool {
        (0..self.units.len()).any(|k| {
            let u = &self.units[k];
            self.graph.waits_for(k).contains(&i)
                && (u.stop_pending
                    || u.launching
                    || matches!(u.lifecycle.state(), State::Stopping { .. }))
        })
    }

    /// Carries out every pending stop that nothing blocks any more.
    pub(super) fn advance_stops(&mut self) {
        // Those that can go at once go in reverse start order (reverse
        // manifest order for independent services), then the rest.
        let mut order = self.graph.stop_order();
        let rest: Vec<usize> = (0..self.units.len())
            .rev()
            .filter(|i| !order.contains(i))
            .collect();
        order.extend(rest);
        for i in order {
            let u = &self.units[i];
            if !u.stop_pending || u.launching || self.blocked(i) {
                continue;
            }
            self.units[i].stop_pending = false;
            let reason = self.units[i].stop_reason.take();
            let now = self.now;
            let actions = self.units[i].lifecycle.next(LcEvent::Stop { now });
            let name = self.units[i].spec.name.clone();
            let mut logged = false;
            for action in actions {
                match action {
                    // One line per stop, with its reason when it has one.
                    Action::Log(line) => {
                        logged = true;
                        let line = match &reason {
                            Some(r) => line.replacen(
                                &format!("stopping {name}: "),
                                &format!("stopping {name}: {r}; "),
                                1,
                            ),
                            None => line,
                        };
                        self.log(line);
                    }
                    Action::Signal(sig) => self.signal(i, sig),
                    Action::Launch => self.launch(i),
                }
            }
            if let (false, Some(r)) = (logged, reason) {
                self.log(format!("stopping {name}: {r}"));
            }
            if self.units[i].pid.is_none() {
                // It had no process (backoff): it is down already.
                self.health(i, HealthEvent::Stopped);
            }
        }
    }

    /// During a shutdown, once every service (and run-once container) is
    /// down, the `onshutdown` containers run.
    pub(super) fn services_settled(&mut self) {
        if self.seq.stage() != Stage::StoppingServices {
            return;
        }
        let down = self.units.iter().all(|u| {
            u.spec.phase == Phase::OnShutdown
                || (u.lifecycle.settled() && !u.launching && !u.stop_pending)
        });
        if !down {
            return;
        }
        if let Some(sd) = self.shutdown {
            let ms = self.now.saturating_sub(sd.since).as_millis();
            self.log(format!("shutdown: containers stopped ({ms} ms)"));
        }
        let now = self.now;
        self.sequence(SeqEvent::ServicesSettled { now });
    }
}
