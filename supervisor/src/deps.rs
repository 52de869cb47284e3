//! Start ordering between services (`after`, `requires`) as a pure graph
//! over the manifest's container list, addressed by index.
//!
//! A service may start once everything it waits for (`after` ∪
//! `requires`) is *ready*: running, and past its first passing health
//! check if it has one. A service without a health check counts as ready
//! as soon as it runs; the loop decides readiness and passes it in, so
//! this module never looks at states. When a required service stops or
//! fails, [`Graph::required_by`] lists what must stop with it, in an order
//! safe to stop; those start again once [`Graph::can_start`] allows.
//!
//! The manifest parser has already refused unknown names, run-once
//! containers in the lists and cycles; names that do not resolve are
//! ignored here, and a cycle would only leave its members at the end of
//! [`Graph::start_order`] instead of losing them.

use berth_config::{Container, Phase};

/// The dependencies of a manifest's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Which containers are services (only they take part in ordering).
    service: Vec<bool>,
    /// `waits[i]`: the containers `i` waits for, `after` then `requires`,
    /// each once.
    waits: Vec<Vec<usize>>,
    /// `requires[i]`: the containers `i` requires directly.
    requires: Vec<Vec<usize>>,
    /// Services in start order, computed once.
    order: Vec<usize>,
}

impl Graph {
    pub fn new(containers: &[Container]) -> Graph {
        let index = |name: &String| containers.iter().position(|c| &c.name == name);
        let resolve = |names: &[String], own: usize| -> Vec<usize> {
            let mut out = Vec::with_capacity(names.len());
            for j in names.iter().filter_map(index) {
                if j != own && !out.contains(&j) {
                    out.push(j);
                }
            }
            out
        };
        let mut waits = Vec::with_capacity(containers.len());
        let mut requires = Vec::with_capacity(containers.len());
        for (i, c) in containers.iter().enumerate() {
            let all: Vec<String> = c.after.iter().chain(&c.requires).cloned().collect();
            waits.push(resolve(&all, i));
            requires.push(resolve(&c.requires, i));
        }
        let service = containers
            .iter()
            .map(|c| c.phase == Phase::Service)
            .collect();
        let mut graph = Graph {
            service,
            waits,
            requires,
            order: Vec::new(),
        };
        graph.order = graph.topological();
        graph
    }

    /// The containers `i` waits for before it starts (`after` ∪
    /// `requires`), each once, in the order the manifest lists them.
    pub fn waits_for(&self, i: usize) -> &[usize] {
        self.waits.get(i).map_or(&[], Vec::as_slice)
    }

    /// Whether `i` may start now: everything it waits for is ready.
    pub fn can_start(&self, i: usize, ready: &dyn Fn(usize) -> bool) -> bool {
        self.waits_for(i).iter().all(|&j| ready(j))
    }

    /// The containers that require `i`, directly or through others: what
    /// must stop when `i` stops or fails. Ordered to stop safely, each
    /// before anything it waits for (a subsequence of
    /// [`Graph::stop_order`]).
    pub fn required_by(&self, i: usize) -> Vec<usize> {
        let mut hit = vec![false; self.requires.len()];
        let mut stack = vec![i];
        while let Some(k) = stack.pop() {
            for (d, reqs) in self.requires.iter().enumerate() {
                if !hit[d] && d != i && reqs.contains(&k) {
                    hit[d] = true;
                    stack.push(d);
                }
            }
        }
        self.stop_order().into_iter().filter(|&d| hit[d]).collect()
    }

    /// Every service, each after everything it waits for; independent
    /// services keep manifest order.
    pub fn start_order(&self) -> Vec<usize> {
        self.order.clone()
    }

    /// The reverse of [`Graph::start_order`]: each service stops before
    /// anything it waits for.
    pub fn stop_order(&self) -> Vec<usize> {
        self.order.iter().rev().copied().collect()
    }

    /// Kahn's algorithm, taking the earliest declared service whose
    /// dependencies are all placed, so the manifest order holds wherever
    /// the dependencies leave a choice. O(n²), fine for a manifest.
    fn topological(&self) -> Vec<usize> {
        let n = self.waits.len();
        let mut placed = vec![false; n];
        let mut order = Vec::with_capacity(n);
        let services = || (0..n).filter(|&i| self.service[i]);
        while let Some(next) =
            services().find(|&i| !placed[i] && self.waits[i].iter().all(|&j| placed[j]))
        {
            placed[next] = true;
            order.push(next);
        }
        // Only a cycle (refused by the parser) leaves services unplaced.
        order.extend(services().filter(|&i| !placed[i]));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service named `name` with these `after` and `requires` lists.
    fn svc(name: &str, after: &[&str], requires: &[&str]) -> Container {
        Container {
            after: after.iter().map(|s| s.to_string()).collect(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            ..Container::new(name, "r")
        }
    }

    fn phase(name: &str, phase: Phase) -> Container {
        Container {
            phase,
            ..Container::new(name, "r")
        }
    }

    fn names(cs: &[Container], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| cs[i].name.clone()).collect()
    }

    #[test]
    fn start_and_stop_orders() {
        // (case, manifest, start order by name)
        let table: Vec<(&str, Vec<Container>, &[&str])> = vec![
            (
                "independent services keep manifest order",
                vec![svc("c", &[], &[]), svc("a", &[], &[]), svc("b", &[], &[])],
                &["c", "a", "b"],
            ),
            (
                "a chain declared backwards",
                vec![
                    svc("web", &["app"], &[]),
                    svc("app", &[], &["db"]),
                    svc("db", &[], &[]),
                ],
                &["db", "app", "web"],
            ),
            (
                "a diamond",
                vec![
                    svc("top", &["left", "right"], &[]),
                    svc("left", &[], &["base"]),
                    svc("right", &["base"], &[]),
                    svc("base", &[], &[]),
                ],
                &["base", "left", "right", "top"],
            ),
            (
                "a dependent moves just after its dependency",
                vec![
                    svc("web", &["db"], &[]),
                    svc("x", &[], &[]),
                    svc("db", &[], &[]),
                    svc("y", &[], &[]),
                ],
                &["x", "db", "web", "y"],
            ),
            (
                "run-once containers are left out",
                vec![
                    phase("setup", Phase::OnBoot),
                    svc("web", &[], &[]),
                    phase("flush", Phase::OnShutdown),
                ],
                &["web"],
            ),
            (
                "unknown names and self-references are ignored",
                vec![svc("a", &["ghost", "a"], &[]), svc("b", &[], &[])],
                &["a", "b"],
            ),
            (
                "a cycle keeps its members, at the end",
                vec![
                    svc("a", &["b"], &[]),
                    svc("b", &["a"], &[]),
                    svc("c", &[], &[]),
                ],
                &["c", "a", "b"],
            ),
        ];
        for (case, cs, want) in table {
            let g = Graph::new(&cs);
            assert_eq!(names(&cs, &g.start_order()), *want, "{case}: start");
            let mut rev: Vec<&str> = want.to_vec();
            rev.reverse();
            assert_eq!(names(&cs, &g.stop_order()), rev, "{case}: stop");
        }
    }

    #[test]
    fn waits_for_and_can_start() {
        let cs = vec![
            svc("web", &["cache", "db"], &["db", "auth"]),
            svc("db", &[], &[]),
            svc("cache", &[], &[]),
            svc("auth", &[], &[]),
        ];
        let g = Graph::new(&cs);
        assert_eq!(g.waits_for(0), &[2, 1, 3], "after then requires, once each");
        assert_eq!(g.waits_for(1), &[] as &[usize]);
        assert_eq!(g.waits_for(99), &[] as &[usize], "out of range");
        // (ready containers, can web start)
        let table: &[(&[usize], bool)] = &[
            (&[], false),
            (&[1, 2], false),
            (&[1, 3], false),
            (&[1, 2, 3], true),
            (&[0, 1, 2, 3], true),
        ];
        for (ready, want) in table {
            let is_ready = |j: usize| ready.contains(&j);
            assert_eq!(g.can_start(0, &is_ready), *want, "ready {ready:?}");
        }
        assert!(g.can_start(1, &|_| false), "no dependencies: always");
    }

    #[test]
    fn required_by_is_transitive_and_stop_safe() {
        // db ← app (requires) ← web (requires); worker requires db too;
        // report only waits for app (after): it is not stopped with db.
        let cs = vec![
            svc("web", &[], &["app"]),
            svc("report", &["app"], &[]),
            svc("app", &[], &["db"]),
            svc("db", &[], &[]),
            svc("worker", &["web"], &["db"]),
            svc("lone", &[], &[]),
        ];
        let g = Graph::new(&cs);
        // (stopped container, what must stop, in order)
        let table: &[(&str, &[&str])] = &[
            ("db", &["worker", "web", "app"]),
            ("app", &["web"]),
            ("web", &[]),
            ("report", &[]),
            ("lone", &[]),
        ];
        for (stopped, want) in table {
            let i = cs
                .iter()
                .position(|c| c.name == *stopped)
                .expect("name in manifest");
            assert_eq!(names(&cs, &g.required_by(i)), *want, "{stopped}");
        }
    }
}
