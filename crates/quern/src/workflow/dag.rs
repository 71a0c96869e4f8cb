//! The task graph: a deterministic topological order (Kahn's algorithm, ties broken by task
//! id), execution levels (the longest path from a root) and cycles with their full path.
//!
//! Hand-written rather than petgraph so that the order is reproducible and a cycle error can
//! print every task on the cycle (`a → b → c → a`), not just one of them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A directed graph over tasks `0..n`; an edge `d → t` means `t` depends on `d`.
#[derive(Clone, Debug, Default)]
pub struct Dag {
    ids: Vec<String>,
    /// `deps[t]`: the tasks `t` depends on.
    deps: Vec<Vec<usize>>,
    /// `dependents[d]`: the tasks that depend on `d`.
    dependents: Vec<Vec<usize>>,
}

impl Dag {
    /// A graph over these task ids with no edges yet.
    pub fn new(ids: Vec<String>) -> Dag {
        let n = ids.len();
        Dag {
            ids,
            deps: vec![Vec::new(); n],
            dependents: vec![Vec::new(); n],
        }
    }

    /// Records that `task` depends on `dep` (both indices). Repeated edges are ignored.
    pub fn add_edge(&mut self, dep: usize, task: usize) {
        if !self.deps[task].contains(&dep) {
            self.deps[task].push(dep);
            self.dependents[dep].push(task);
        }
    }

    /// The number of tasks.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of task `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// The tasks `i` depends on.
    pub fn deps(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    /// The tasks that depend on `i`.
    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// A topological order (every task after all its dependencies); among tasks that are
    /// ready at the same time the smallest id comes first. `Err` lists the cycles, each as a
    /// path of task indices that starts and ends with the same task.
    pub fn topo_order(&self) -> Result<Vec<usize>, Vec<Vec<usize>>> {
        let n = self.len();
        let mut indegree: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut ready: BinaryHeap<Reverse<(&str, usize)>> = (0..n)
            .filter(|&i| indegree[i] == 0)
            .map(|i| Reverse((self.ids[i].as_str(), i)))
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse((_, i))) = ready.pop() {
            order.push(i);
            for &t in &self.dependents[i] {
                indegree[t] -= 1;
                if indegree[t] == 0 {
                    ready.push(Reverse((self.ids[t].as_str(), t)));
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            let left: Vec<bool> = indegree.iter().map(|d| *d > 0).collect();
            Err(self.cycles(&left))
        }
    }

    /// Execution levels for a topological `order`: roots are level 0, every other task is
    /// one more than its deepest dependency (the longest path from a root).
    pub fn levels(&self, order: &[usize]) -> Vec<usize> {
        let mut level = vec![0; self.len()];
        for &t in order {
            level[t] = self.deps[t]
                .iter()
                .map(|&d| level[d] + 1)
                .max()
                .unwrap_or(0);
        }
        level
    }

    /// Tasks grouped by level, each group sorted by id.
    pub fn level_groups(&self, levels: &[usize]) -> Vec<Vec<usize>> {
        let depth = levels.iter().max().map_or(0, |m| m + 1);
        let mut groups = vec![Vec::new(); if self.is_empty() { 0 } else { depth }];
        for (i, &l) in levels.iter().enumerate() {
            groups[l].push(i);
        }
        for g in &mut groups {
            g.sort_by(|a, b| self.ids[*a].cmp(&self.ids[*b]));
        }
        groups
    }

    /// Every task that `t` depends on, directly or through others.
    pub fn ancestors(&self, t: usize) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<usize> = self.deps[t].clone();
        while let Some(d) = stack.pop() {
            if !seen[d] {
                seen[d] = true;
                stack.extend(&self.deps[d]);
            }
        }
        seen
    }

    /// One cycle per strongly connected component among the `left` tasks (those Kahn could
    /// not order), each the shortest cycle through the component's smallest id, written in
    /// the direction work flows (dependency → dependent) and ordered by that id.
    fn cycles(&self, left: &[bool]) -> Vec<Vec<usize>> {
        let comps = self.components(left);
        let mut out = Vec::new();
        for comp in comps {
            let in_comp = |x: usize| comp.binary_search(&x).is_ok();
            let self_loop = comp.len() == 1 && self.deps[comp[0]].contains(&comp[0]);
            if comp.len() < 2 && !self_loop {
                continue;
            }
            let start = *comp
                .iter()
                .min_by(|a, b| self.ids[**a].cmp(&self.ids[**b]))
                .expect("components are not empty");
            // Breadth-first search along dependent edges back to `start`, visiting
            // neighbours in id order, gives a short and reproducible cycle.
            let mut prev = vec![usize::MAX; self.len()];
            let mut queue = std::collections::VecDeque::from([start]);
            let mut found = false;
            'bfs: while let Some(x) = queue.pop_front() {
                let mut next: Vec<usize> = self.dependents[x]
                    .iter()
                    .copied()
                    .filter(|&y| in_comp(y))
                    .collect();
                next.sort_by(|a, b| self.ids[*a].cmp(&self.ids[*b]));
                for y in next {
                    if y == start {
                        prev[start] = x;
                        found = true;
                        break 'bfs;
                    }
                    if prev[y] == usize::MAX {
                        prev[y] = x;
                        queue.push_back(y);
                    }
                }
            }
            if !found {
                continue;
            }
            let mut path = vec![start];
            let mut x = prev[start];
            while x != start {
                path.push(x);
                x = prev[x];
            }
            path.push(start);
            path.reverse();
            out.push(path);
        }
        out.sort_by(|a, b| self.ids[a[0]].cmp(&self.ids[b[0]]));
        out
    }

    /// Strongly connected components of the subgraph of `left` tasks (Kosaraju), each
    /// sorted by index.
    fn components(&self, left: &[bool]) -> Vec<Vec<usize>> {
        let n = self.len();
        let mut seen = vec![false; n];
        let mut finish = Vec::new();
        for s in (0..n).filter(|&i| left[i]) {
            if seen[s] {
                continue;
            }
            // Iterative DFS recording finish order.
            let mut stack = vec![(s, 0usize)];
            seen[s] = true;
            while let Some((x, k)) = stack.pop() {
                if let Some(&y) = self.dependents[x].get(k) {
                    stack.push((x, k + 1));
                    if left[y] && !seen[y] {
                        seen[y] = true;
                        stack.push((y, 0));
                    }
                } else {
                    finish.push(x);
                }
            }
        }
        let mut comp_of = vec![usize::MAX; n];
        let mut comps: Vec<Vec<usize>> = Vec::new();
        for &s in finish.iter().rev() {
            if comp_of[s] != usize::MAX {
                continue;
            }
            let c = comps.len();
            let mut members = Vec::new();
            let mut stack = vec![s];
            comp_of[s] = c;
            while let Some(x) = stack.pop() {
                members.push(x);
                for &y in &self.deps[x] {
                    if left[y] && comp_of[y] == usize::MAX {
                        comp_of[y] = c;
                        stack.push(y);
                    }
                }
            }
            members.sort_unstable();
            comps.push(members);
        }
        comps
    }

    /// Writes a cycle path as `a → b → c → a`.
    pub fn format_cycle(&self, path: &[usize]) -> String {
        path.iter()
            .map(|&i| self.ids[i].as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn dag(ids: &[&str], edges: &[(&str, &str)]) -> Dag {
        let mut d = Dag::new(ids.iter().map(|s| s.to_string()).collect());
        let ix = |s: &str| ids.iter().position(|x| *x == s).unwrap();
        for (a, b) in edges {
            d.add_edge(ix(a), ix(b));
        }
        d
    }

    fn names(d: &Dag, v: &[usize]) -> Vec<String> {
        v.iter().map(|&i| d.id(i).to_owned()).collect()
    }

    #[test]
    fn the_etl_levels() {
        let d = dag(
            &[
                "fetch_data",
                "validate_data",
                "clean_data",
                "generate_report",
                "process_data",
                "final_output",
            ],
            &[
                ("fetch_data", "validate_data"),
                ("validate_data", "clean_data"),
                ("validate_data", "generate_report"),
                ("clean_data", "process_data"),
                ("process_data", "final_output"),
                ("generate_report", "final_output"),
            ],
        );
        let order = d.topo_order().unwrap();
        assert_eq!(
            names(&d, &order),
            [
                "fetch_data",
                "validate_data",
                "clean_data",
                "generate_report",
                "process_data",
                "final_output"
            ]
        );
        let levels = d.levels(&order);
        let groups: Vec<Vec<String>> = d
            .level_groups(&levels)
            .iter()
            .map(|g| names(&d, g))
            .collect();
        assert_eq!(
            groups,
            vec![
                vec!["fetch_data"],
                vec!["validate_data"],
                vec!["clean_data", "generate_report"],
                vec!["process_data"],
                vec!["final_output"],
            ]
        );
    }

    #[test]
    fn ties_break_by_id_not_by_insertion() {
        let d = dag(&["c", "b", "a", "z"], &[("c", "z")]);
        assert_eq!(names(&d, &d.topo_order().unwrap()), ["a", "b", "c", "z"]);
    }

    #[test]
    fn cycles_print_their_full_path() {
        let d = dag(
            &["x", "c", "a", "b", "root"],
            &[
                ("root", "a"),
                ("a", "b"),
                ("b", "c"),
                ("c", "a"),
                ("c", "x"),
            ],
        );
        let cycles = d.topo_order().unwrap_err();
        assert_eq!(cycles.len(), 1);
        assert_eq!(d.format_cycle(&cycles[0]), "a → b → c → a");

        let d = dag(&["s"], &[("s", "s")]);
        let cycles = d.topo_order().unwrap_err();
        assert_eq!(d.format_cycle(&cycles[0]), "s → s");

        // Two separate cycles, and a task downstream of one that is not itself on a cycle.
        let d = dag(
            &["p", "q", "m", "n", "o", "after"],
            &[
                ("p", "q"),
                ("q", "p"),
                ("m", "n"),
                ("n", "o"),
                ("o", "m"),
                ("o", "after"),
            ],
        );
        let cycles: Vec<String> = d
            .topo_order()
            .unwrap_err()
            .iter()
            .map(|c| d.format_cycle(c))
            .collect();
        assert_eq!(cycles, ["m → n → o → m", "p → q → p"]);
    }

    #[test]
    fn ancestors_are_transitive() {
        let d = dag(&["a", "b", "c", "d"], &[("a", "b"), ("b", "c")]);
        let anc = d.ancestors(2);
        assert_eq!(anc, [true, true, false, false]);
    }

    /// A random DAG: edges only go from a lower to a higher position in a random permutation.
    fn random_dag() -> impl Strategy<Value = Dag> {
        (1usize..40)
            .prop_flat_map(|n| {
                (
                    Just(n),
                    Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                    proptest::collection::vec((0..n, 0..n), 0..n * 3),
                )
            })
            .prop_map(|(n, perm, pairs)| {
                let mut d = Dag::new((0..n).map(|i| format!("t{i:02}")).collect());
                for (a, b) in pairs {
                    let (pa, pb) = (perm[a], perm[b]);
                    if pa < pb {
                        d.add_edge(a, b);
                    } else if pb < pa {
                        d.add_edge(b, a);
                    }
                }
                d
            })
    }

    proptest! {
        #[test]
        fn topo_order_and_levels_respect_edges(d in random_dag()) {
            let order = d.topo_order().expect("a DAG has an order");
            prop_assert_eq!(order.len(), d.len());
            let mut pos = vec![usize::MAX; d.len()];
            for (k, &t) in order.iter().enumerate() {
                prop_assert_eq!(pos[t], usize::MAX, "task listed twice");
                pos[t] = k;
            }
            let levels = d.levels(&order);
            for t in 0..d.len() {
                for &dep in d.deps(t) {
                    prop_assert!(pos[dep] < pos[t], "dependency after dependent");
                    prop_assert!(levels[dep] < levels[t], "level not above the dependency's");
                }
                // The longest path: one more than the deepest dependency, 0 for roots.
                let want = d.deps(t).iter().map(|&x| levels[x] + 1).max().unwrap_or(0);
                prop_assert_eq!(levels[t], want);
            }
            // Deterministic: the same graph gives the same order.
            prop_assert_eq!(d.topo_order().unwrap(), order);
        }

        #[test]
        fn an_added_back_edge_is_reported_as_a_cycle(d in random_dag(), pick in 0usize..1000) {
            let order = d.topo_order().unwrap();
            // Find an edge dep → t and add t → dep to close a cycle.
            let edges: Vec<(usize, usize)> = (0..d.len())
                .flat_map(|t| d.deps(t).iter().map(move |&dep| (dep, t)))
                .collect();
            prop_assume!(!edges.is_empty());
            let (dep, t) = edges[pick % edges.len()];
            let mut d2 = d.clone();
            d2.add_edge(t, dep);
            let cycles = d2.topo_order().unwrap_err();
            prop_assert!(!cycles.is_empty());
            for c in &cycles {
                prop_assert_eq!(c.first(), c.last());
                // Every step of the path is a real edge.
                for w in c.windows(2) {
                    prop_assert!(d2.deps(w[1]).contains(&w[0]), "{} is not an edge", d2.format_cycle(w));
                }
            }
            let _ = order;
        }
    }
}
