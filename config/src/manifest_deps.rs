//! `after` and `requires`: start ordering between services.
//!
//! Checked in two steps. While a container table is walked, each list is
//! read index by index and checked on its own (names, duplicates, the
//! container naming itself, the container's phase). Once every container
//! is known, [`check_graph`] checks what needs them all: names that are
//! not declared, names of run-once containers, and cycles.
//!
//! A list stays aligned with its TOML array so the second step can name
//! `after[i]`: an element already reported (not a string, not a valid
//! name) is kept as an empty string, which the second step skips. Such a
//! placeholder never reaches a caller, since its error fails the parse.

use toml::{Table, Value};

use crate::manifest::{Container, Phase};
use crate::manifest_rules as rules;
use crate::network::NETWORK_ONLINE;
use crate::toml_walk::{index_path, key_path, quote, Walker};

/// The two keys, in the order their lists are checked and cycles named.
const KEYS: [&str; 2] = ["after", "requires"];

/// Marks an element that was already reported.
const REPORTED: &str = "";

/// `after` or `requires`: an array of container names.
pub(crate) fn walk_list(path: &str, value: &Value, w: &mut Walker) -> Vec<String> {
    let Value::Array(array) = value else {
        w.wrong_type(path, "an array", value);
        return Vec::new();
    };
    let mut names = Vec::with_capacity(array.len());
    for (i, element) in array.iter().enumerate() {
        let element_path = index_path(path, i);
        let name = match w.string(&element_path, element) {
            Some(s) => match rules::container_name_problem(s) {
                Some(problem) => {
                    w.error(&element_path, problem);
                    REPORTED
                }
                None => s,
            },
            None => REPORTED,
        };
        names.push(name.to_owned());
    }
    names
}

/// After the whole container table is walked (the phase may come after
/// the lists): only services have them, a service cannot name itself, and
/// a list names each container once.
pub(crate) fn check_container(path: &str, table: &Table, c: &Container, w: &mut Walker) {
    for (key, list) in KEYS.into_iter().zip([&c.after, &c.requires]) {
        let list_path = key_path(path, key);
        if c.phase != Phase::Service {
            if table.contains_key(key) {
                w.error(
                    &list_path,
                    format!(
                        "{key} is only for phase = \"service\" ({} containers run one after another in manifest order)",
                        c.phase.as_str()
                    ),
                );
            }
            continue;
        }
        for (i, name) in list.iter().enumerate() {
            if name == REPORTED {
                continue;
            }
            let element_path = index_path(&list_path, i);
            if *name == c.name {
                w.error(
                    &element_path,
                    format!("{} cannot wait for itself", quote(name)),
                );
            } else if let Some(first) = list[..i].iter().position(|n| n == name) {
                w.error(
                    &element_path,
                    format!(
                        "duplicate container {} (already listed at {})",
                        quote(name),
                        index_path(&list_path, first)
                    ),
                );
            }
        }
    }
}

/// Checks every service's lists against the whole manifest: each name is
/// a declared service, and the dependencies form no cycle. Run-once
/// containers' lists were already refused and are not looked at.
pub(crate) fn check_graph(containers: &[Container], w: &mut Walker) {
    let index = |name: &str| containers.iter().position(|c| c.name == name);
    // edges[i]: (key, target) for every usable dependency of service i.
    let mut edges: Vec<Vec<(&str, usize)>> = vec![Vec::new(); containers.len()];
    for (i, c) in containers.iter().enumerate() {
        if c.phase != Phase::Service {
            continue;
        }
        let path = key_path("container", &c.name);
        for (key, list) in KEYS.into_iter().zip([&c.after, &c.requires]) {
            for (pos, name) in list.iter().enumerate() {
                // Placeholders, self-references and duplicates were
                // reported by `check_container`.
                if name == REPORTED || *name == c.name || list[..pos].contains(name) {
                    continue;
                }
                let element_path = index_path(&key_path(&path, key), pos);
                if name == NETWORK_ONLINE {
                    // A readiness target, not a container: only to wait for.
                    if key != "after" {
                        w.error(
                            &element_path,
                            format!("{NETWORK_ONLINE} is a readiness target: list it in after"),
                        );
                    }
                    continue;
                }
                match index(name) {
                    None => w.error(&element_path, format!("unknown container {}", quote(name))),
                    Some(j) if containers[j].phase != Phase::Service => w.error(
                        &element_path,
                        format!(
                            "{} is an {} container (after and requires name services only; every onboot container runs before the first service, every onshutdown container after the last)",
                            quote(name),
                            containers[j].phase.as_str()
                        ),
                    ),
                    Some(j) => edges[i].push((key, j)),
                }
            }
        }
    }
    for cycle in cycles(&edges) {
        let first = cycle[0];
        let key = edges[first]
            .iter()
            .find(|(_, j)| *j == cycle[1])
            .map_or("after", |(key, _)| *key);
        let names: Vec<&str> = cycle.iter().map(|&i| containers[i].name.as_str()).collect();
        w.error(
            &key_path(&key_path("container", &containers[first].name), key),
            format!("dependency cycle {}", names.join(" → ")),
        );
    }
}

/// One cycle per group of containers that wait for each other (a strongly
/// connected component), as a path from its first member in manifest
/// order back to itself: `[a, b, c, a]`. Reporting one cycle per group
/// keeps the report short where many overlapping cycles exist, and the
/// shortest one through the first member is the easiest to read.
fn cycles(edges: &[Vec<(&str, usize)>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let reach: Vec<Vec<bool>> = (0..n).map(|i| reachable(edges, i)).collect();
    let mut reported = vec![false; n];
    let mut out = Vec::new();
    for i in 0..n {
        if reported[i] || !reach[i][i] {
            continue;
        }
        for j in 0..n {
            if reach[i][j] && reach[j][i] {
                reported[j] = true;
            }
        }
        if let Some(cycle) = shortest_cycle(edges, i) {
            out.push(cycle);
        }
    }
    out
}

/// `r[j]`: whether a path of at least one edge leads from `from` to `j`.
fn reachable(edges: &[Vec<(&str, usize)>], from: usize) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut stack: Vec<usize> = edges[from].iter().map(|(_, j)| *j).collect();
    while let Some(j) = stack.pop() {
        if !seen[j] {
            seen[j] = true;
            stack.extend(edges[j].iter().map(|(_, k)| *k));
        }
    }
    seen
}

/// Breadth-first from `start` back to `start`, edges in list order.
fn shortest_cycle(edges: &[Vec<(&str, usize)>], start: usize) -> Option<Vec<usize>> {
    let mut parent: Vec<Option<usize>> = vec![None; edges.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for &(_, j) in &edges[i] {
            if j == start {
                // Walk back from the last member to `start`, then turn
                // the path around.
                let mut path = vec![start];
                let mut k = i;
                while k != start {
                    path.push(k);
                    // Every node queued but `start` got a parent.
                    k = parent[k]?;
                }
                path.push(start);
                path.reverse();
                return Some(path);
            }
            if parent[j].is_none() {
                parent[j] = Some(i);
                queue.push_back(j);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edges as (from, to) pairs over `n` nodes.
    fn graph(n: usize, pairs: &[(usize, usize)]) -> Vec<Vec<(&'static str, usize)>> {
        let mut edges = vec![Vec::new(); n];
        for &(a, b) in pairs {
            edges[a].push(("after", b));
        }
        edges
    }

    /// (case, node count, edges, the cycles reported).
    type Row = (
        &'static str,
        usize,
        &'static [(usize, usize)],
        &'static [&'static [usize]],
    );

    #[test]
    fn cycles_one_per_group() {
        let table: &[Row] = &[
            ("no edges", 3, &[], &[]),
            ("chain", 3, &[(0, 1), (1, 2)], &[]),
            ("diamond", 4, &[(0, 1), (0, 2), (1, 3), (2, 3)], &[]),
            ("two", 2, &[(0, 1), (1, 0)], &[&[0, 1, 0]]),
            ("three", 3, &[(0, 1), (1, 2), (2, 0)], &[&[0, 1, 2, 0]]),
            (
                "starts at the first member",
                3,
                &[(2, 1), (1, 2), (0, 1)],
                &[&[1, 2, 1]],
            ),
            (
                "shortest through the first member",
                4,
                &[(0, 1), (1, 2), (2, 3), (3, 0), (2, 0)],
                &[&[0, 1, 2, 0]],
            ),
            (
                "two groups",
                4,
                &[(0, 1), (1, 0), (2, 3), (3, 2)],
                &[&[0, 1, 0], &[2, 3, 2]],
            ),
            (
                "overlapping cycles are one group",
                3,
                &[(0, 1), (1, 0), (1, 2), (2, 1)],
                &[&[0, 1, 0]],
            ),
        ];
        for (name, n, pairs, want) in table {
            let got = cycles(&graph(*n, pairs));
            let want: Vec<Vec<usize>> = want.iter().map(|c| c.to_vec()).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
