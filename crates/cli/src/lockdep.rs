//! A lockdep-style check across the runs of a search: the order in which
//! lock classes were taken (held A, then took B), and any cycle in that
//! graph: an order that can deadlock even if no run deadlocked.
//!
//! Like the kernel's lockdep (kernel/locking/lockdep.c, which came later
//! than 2.3.99), it works on classes ("mm->mmap_sem", not one mm's), leaves
//! out the BKL (dropped when its holder sleeps) and nesting within a class.

use std::collections::BTreeMap;

type Point = &'static str;

/// One order: where the held lock was taken, where the other one was, and
/// the lowest seed whose run did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Witness {
    pub seed: u64,
    pub held_at: Point,
    pub taken_at: Point,
}

/// The lock-class order graph of a search.
#[derive(Default)]
pub struct LockOrder {
    edges: BTreeMap<(&'static str, &'static str), Witness>,
}

impl LockOrder {
    pub fn add_run(&mut self, seed: u64, orders: &[(&'static str, &'static str, Point, Point)]) {
        for &(held, taken, held_at, taken_at) in orders {
            self.add((held, taken), Witness { seed, held_at, taken_at });
        }
    }

    fn add(&mut self, edge: (&'static str, &'static str), witness: Witness) {
        let slot = self.edges.entry(edge).or_insert(witness);
        if witness.seed < slot.seed {
            *slot = witness;
        }
    }

    /// Combine the graph of another part of the search (another thread).
    pub fn merge(&mut self, other: LockOrder) {
        for (edge, witness) in other.edges {
            self.add(edge, witness);
        }
    }

    /// Every elementary cycle, each once, starting at its smallest class.
    pub fn cycles(&self) -> Vec<Vec<&'static str>> {
        let mut next: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
        for &(a, b) in self.edges.keys() {
            next.entry(a).or_default().push(b);
        }
        let mut cycles = Vec::new();
        for &start in next.keys() {
            // Paths from `start` through classes greater than it only: each
            // cycle is found once, from its smallest class.
            let mut stack: Vec<(Vec<&'static str>, usize)> = vec![(vec![start], 0)];
            while let Some((path, i)) = stack.pop() {
                let last = *path.last().expect("never empty");
                let Some(&to) = next.get(last).and_then(|n| n.get(i)) else { continue };
                stack.push((path.clone(), i + 1));
                if to == start {
                    cycles.push(path);
                } else if to > start && !path.contains(&to) {
                    let mut longer = path;
                    longer.push(to);
                    stack.push((longer, 0));
                }
            }
        }
        cycles.sort();
        cycles
    }

    /// The summary explore prints: the graph's size, then each cycle with
    /// the named points and seeds that took each of its orders.
    pub fn report(&self) -> String {
        let classes: std::collections::BTreeSet<&str> = self.edges.keys().flat_map(|&(a, b)| [a, b]).collect();
        let cycles = self.cycles();
        let mut text = format!(
            "lockdep:  {} lock classes, {} orders taken (held A, took B); {}\n",
            classes.len(),
            self.edges.len(),
            match cycles.len() {
                0 => "no cycle".to_string(),
                1 => "1 cycle: possible deadlock".to_string(),
                n => format!("{n} cycles: possible deadlocks"),
            }
        );
        for cycle in cycles {
            text.push_str(&format!("  cycle: {} -> {}\n", cycle.join(" -> "), cycle[0]));
            for (i, &held) in cycle.iter().enumerate() {
                let taken = cycle[(i + 1) % cycle.len()];
                let w = self.edges[&(held, taken)];
                text.push_str(&format!(
                    "    {held} (taken at {}) then {taken} (at {}): seed {}\n",
                    w.held_at, w.taken_at, w.seed
                ));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ab_ba_pair_is_a_cycle_with_both_witnesses_and_the_lowest_seeds() {
        let mut order = LockOrder::default();
        order.add_run(7, &[("a", "b", "f:lock_a", "f:lock_b")]);
        order.add_run(3, &[("a", "b", "g:lock_a", "g:lock_b"), ("b", "c", "g:lock_b", "g:lock_c")]);
        let mut other = LockOrder::default();
        other.add_run(9, &[("b", "a", "h:lock_b", "h:lock_a")]);
        order.merge(other);
        assert_eq!(order.cycles(), vec![vec!["a", "b"]]);
        let report = order.report();
        assert!(report.starts_with("lockdep:  3 lock classes, 3 orders taken (held A, took B); 1 cycle"), "{report}");
        assert!(report.contains("a (taken at g:lock_a) then b (at g:lock_b): seed 3"), "{report}");
        assert!(report.contains("b (taken at h:lock_b) then a (at h:lock_a): seed 9"), "{report}");
    }

    #[test]
    fn longer_cycles_are_found_once_and_orders_alone_are_not_cycles() {
        let mut order = LockOrder::default();
        order.add_run(1, &[("a", "b", "", ""), ("b", "c", "", ""), ("c", "a", "", ""), ("a", "c", "", "")]);
        assert_eq!(order.cycles(), vec![vec!["a", "b", "c"], vec!["a", "c"]]);
        let mut chain = LockOrder::default();
        chain.add_run(1, &[("a", "b", "", ""), ("b", "c", "", ""), ("a", "c", "", "")]);
        assert!(chain.cycles().is_empty());
        assert!(chain.report().contains("no cycle"));
    }
}
