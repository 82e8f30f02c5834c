//! A lockdep-style check across the runs of a command: the order in which
//! lock classes were taken (held A, then took B), and any cycle in that
//! graph: an order that can deadlock even if no run deadlocked. A cycle is
//! printed as the kernel's lockdep prints "possible circular locking
//! dependency detected" (kernel/locking/lockdep.c, print_circular_bug and
//! print_circular_lock_scenario), with named points for stack lines and the
//! command that replays each order's witness run.
//!
//! Like the kernel's lockdep (which came later than 2.3.99), it works on
//! classes ("mm->mmap_sem", not one mm's), leaves out the BKL (dropped when
//! its holder sleeps) and nesting within a class; a trylock orders nothing.

use std::collections::BTreeMap;

use engine::fast_hash::{ByAddress, FastMap};
use std::fmt::Write as _;

type Point = &'static str;

/// One order: where the held lock was taken, where the other one was, and
/// the lowest witness (a seed, or a dfs schedule number) whose run did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Witness {
    pub seed: u64,
    pub held_at: Point,
    pub taken_at: Point,
}

/// The lock-class order graph of a command's runs.
#[derive(Default)]
pub struct LockOrder {
    /// A hash map, for explore's every run; read in sorted order
    /// ([`LockOrder::sorted`]) wherever the order shows.
    edges: FastMap<(&'static str, &'static str), Witness>,
    /// The lowest seed each order was added with, by the names' addresses:
    /// a run's orders seen before cost a pointer's hash, not its text's.
    seen: FastMap<(ByAddress, ByAddress), u64>,
}

impl LockOrder {
    pub fn add_run(&mut self, seed: u64, orders: &[(&'static str, &'static str, Point, Point)]) {
        for &(held, taken, held_at, taken_at) in orders {
            let first = self.seen.entry((ByAddress(held), ByAddress(taken))).or_insert(u64::MAX);
            if seed < *first {
                *first = seed;
                self.add((held, taken), Witness { seed, held_at, taken_at });
            }
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

    /// The orders, sorted by (held, taken).
    fn sorted(&self) -> BTreeMap<(&'static str, &'static str), Witness> {
        self.edges.iter().map(|(&edge, &w)| (edge, w)).collect()
    }

    /// Every elementary cycle, each once, starting at its smallest class.
    pub fn cycles(&self) -> Vec<Vec<&'static str>> {
        let mut next: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
        for &(a, b) in self.sorted().keys() {
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

    /// The summary line, then a splat per cycle (see [`LockOrder::splat`]);
    /// `replay` gives the command that replays a witness.
    pub fn report(&self, replay: &dyn Fn(u64) -> String) -> String {
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
            text.push_str(&self.splat(&cycle, replay));
        }
        text
    }

    /// A cycle `c0 -> c1 -> ... -> c(n-1) -> c0` as lockdep prints it: the
    /// run that took the closing order c(n-1) -> c0 is "trying to acquire"
    /// c0 while holding c(n-1); the existing chain c0 -> ... -> c(n-1) is
    /// listed in reverse (`-> #n-1` down to `-> #0`), each entry with the
    /// named points where that order was first taken (the kernel's stack
    /// lines) and the command that replays the run that took it; then the
    /// CPU0/CPU1 scenario, `*** DEADLOCK ***` and the lock held.
    pub fn splat(&self, cycle: &[&'static str], replay: &dyn Fn(u64) -> String) -> String {
        let n = cycle.len();
        let edge = |i: usize| self.edges[&(cycle[i], cycle[(i + 1) % n])];
        let (source, target) = (cycle[0], cycle[n - 1]);
        let closing = edge(n - 1);
        let witness = |w: Witness| format!("seed {}", w.seed);
        let mut out = String::new();
        let rule = |c: char| c.to_string().repeat(54);
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", rule('='));
        let _ = writeln!(out, "WARNING: possible circular locking dependency detected");
        let _ = writeln!(out, "swapsim {} (lock-class orders of the runs)", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "{}", rule('-'));
        let _ = writeln!(out, "{} is trying to acquire lock:", witness(closing));
        let _ = writeln!(out, "({source}), at: {}", closing.taken_at);
        let _ = writeln!(out);
        let _ = writeln!(out, "but task is already holding lock:");
        let _ = writeln!(out, "({target}), at: {}", closing.held_at);
        let _ = writeln!(out);
        let _ = writeln!(out, "which lock already depends on the new lock.");
        let _ = writeln!(out);
        let _ = writeln!(out);
        let _ = writeln!(out, "the existing dependency chain (in reverse order) is:");
        // -> #k: class cycle[k+1]'s entry is the order cycle[k] -> cycle[k+1]
        // (where it was taken while cycle[k] was held); #0 is the new lock.
        for k in (0..n).rev() {
            let (class, w) = if k == 0 { (source, closing) } else { (cycle[k], edge(k - 1)) };
            let held = if k == 0 { target } else { cycle[k - 1] };
            let _ = writeln!(out);
            let _ = writeln!(out, "-> #{k} ({class}):");
            let _ = writeln!(out, "       {}", w.taken_at);
            let _ = writeln!(out, "       (holding {held}, taken at {})", w.held_at);
            let _ = writeln!(out, "       {}: {}", witness(w), replay(w.seed));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "other info that might help us debug this:");
        let _ = writeln!(out);
        // The class the target was taken under in the chain (the source
        // itself when the chain is one order long).
        let parent = cycle[n.saturating_sub(2)];
        if n > 2 {
            let _ = writeln!(out, "Chain exists of:");
            let _ = writeln!(out, "  {source} --> {parent} --> {target}");
            let _ = writeln!(out);
        }
        let _ = writeln!(out, " Possible unsafe locking scenario:");
        let _ = writeln!(out);
        let _ = writeln!(out, "       CPU0                    CPU1");
        let _ = writeln!(out, "       ----                    ----");
        let _ = writeln!(out, "  lock({target});");
        let _ = writeln!(out, "                               lock({parent});");
        let _ = writeln!(out, "                               lock({target});");
        let _ = writeln!(out, "  lock({source});");
        let _ = writeln!(out);
        let _ = writeln!(out, " *** DEADLOCK ***");
        let _ = writeln!(out);
        let _ = writeln!(out, "1 lock held by {}:", witness(closing));
        let _ = writeln!(out, " #0: ({target}), at: {}", closing.held_at);
        let _ = writeln!(out);
        let _ = writeln!(out, "replay:   {}", replay(closing.seed));
        out
    }

    /// The graph in Graphviz DOT: a node per class, an edge per order
    /// (held -> taken) labelled with where each was taken and the witness;
    /// the edges of a cycle are red.
    pub fn dot(&self) -> String {
        let in_cycle: std::collections::BTreeSet<(&str, &str)> =
            self.cycles().iter().flat_map(|c| (0..c.len()).map(move |i| (c[i], c[(i + 1) % c.len()]))).collect();
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut out = String::from("digraph lockdep {\n  rankdir=LR;\n  node [shape=box];\n");
        let classes: std::collections::BTreeSet<&str> = self.edges.keys().flat_map(|&(a, b)| [a, b]).collect();
        for class in classes {
            let _ = writeln!(out, "  {};", quote(class));
        }
        for (&(held, taken), w) in &self.sorted() {
            let label = format!("{} -> {} (seed {})", w.held_at, w.taken_at, w.seed);
            let color = if in_cycle.contains(&(held, taken)) { ", color=red" } else { "" };
            let _ = writeln!(out, "  {} -> {} [label={}{color}];", quote(held), quote(taken), quote(&label));
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(seed: u64) -> String {
        format!("swapsim run scenarios/x.lua --kernel pre4 --seed {seed}")
    }

    #[test]
    fn an_ab_ba_pair_is_a_cycle_with_both_witnesses_and_the_lowest_seeds() {
        let mut order = LockOrder::default();
        order.add_run(7, &[("a", "b", "f:lock_a", "f:lock_b")]);
        order.add_run(3, &[("a", "b", "g:lock_a", "g:lock_b"), ("b", "c", "g:lock_b", "g:lock_c")]);
        let mut other = LockOrder::default();
        other.add_run(9, &[("b", "a", "h:lock_b", "h:lock_a")]);
        order.merge(other);
        assert_eq!(order.cycles(), vec![vec!["a", "b"]]);
        let report = order.report(&replay);
        assert!(report.starts_with("lockdep:  3 lock classes, 3 orders taken (held A, took B); 1 cycle"), "{report}");
        assert!(report.contains("       g:lock_b\n       (holding a, taken at g:lock_a)\n       seed 3: "), "{report}");
        assert!(report.contains("       h:lock_a\n       (holding b, taken at h:lock_b)\n       seed 9: "), "{report}");
    }

    #[test]
    fn the_splat_has_the_kernels_layout() {
        let mut order = LockOrder::default();
        order.add_run(3, &[("mmap_sem", "i_sem", "do_a:down_mmap_sem", "do_a:down_i_sem")]);
        order.add_run(5, &[("i_sem", "mmap_sem", "do_b:down_i_sem", "do_b:down_mmap_sem")]);
        let text = order.report(&replay);
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/lockdep_splat.txt");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden, &text).unwrap();
        }
        let expected = std::fs::read_to_string(golden).expect("the golden splat");
        assert_eq!(text, expected);
    }

    #[test]
    fn longer_cycles_are_found_once_and_orders_alone_are_not_cycles() {
        let mut order = LockOrder::default();
        order.add_run(1, &[("a", "b", "", ""), ("b", "c", "", ""), ("c", "a", "", ""), ("a", "c", "", "")]);
        assert_eq!(order.cycles(), vec![vec!["a", "b", "c"], vec!["a", "c"]]);
        let three = order.splat(&["a", "b", "c"], &replay);
        assert!(three.contains("Chain exists of:\n  a --> b --> c\n"), "{three}");
        assert!(
            three.contains(
                "                               lock(b);\n                               lock(c);\n  lock(a);"
            ),
            "{three}"
        );
        let dot = order.dot();
        assert!(
            dot.starts_with("digraph lockdep {") && dot.contains("\"c\" -> \"a\" [label=") && dot.contains("color=red")
        );
        let mut chain = LockOrder::default();
        chain.add_run(1, &[("a", "b", "", ""), ("b", "c", "", ""), ("a", "c", "", "")]);
        assert!(chain.cycles().is_empty());
        assert!(chain.report(&replay).contains("no cycle"));
        assert!(!chain.dot().contains("red"));
    }
}
