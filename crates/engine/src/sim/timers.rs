//! The timer queue: I/O completions and timed sleeps, earliest first.
//!
//! A binary heap over a vector: a run sets a few timers at a time, and the
//! heap keeps its room from run to run (a `BTreeMap` allocated a node for
//! every first timer and freed it with the last).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::TimerAction;

/// One pending timer: due at `due` ns (cost-model time), the `seq`-th set
/// (ties fire in the order they were set), `lag` the stalls of the CPU
/// that set it (its place on the timeline is `due + lag`).
pub(super) struct Timer {
    pub due: u64,
    seq: u64,
    pub lag: u64,
    pub action: TimerAction,
}

impl Timer {
    fn key(&self) -> (u64, u64) {
        (self.due, self.seq)
    }
}

// Ordered by (due, seq), reversed: the heap's greatest is the earliest.
impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> Ordering {
        other.key().cmp(&self.key())
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Timer {}

#[derive(Default)]
pub(super) struct TimerQueue {
    heap: BinaryHeap<Timer>,
}

impl TimerQueue {
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Set a timer; `seq` must be new (the queue's keys are unique).
    pub fn insert(&mut self, due: u64, seq: u64, lag: u64, action: TimerAction) {
        self.heap.push(Timer { due, seq, lag, action });
    }

    /// The earliest timer.
    pub fn first(&self) -> Option<&Timer> {
        self.heap.peek()
    }

    /// Take the earliest timer off the queue.
    pub fn pop_first(&mut self) -> Option<Timer> {
        self.heap.pop()
    }

    /// Every pending timer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Timer> {
        self.heap.iter()
    }

    /// Drop every timer, keeping the room.
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskId;

    #[test]
    fn timers_fire_earliest_first_and_ties_in_the_order_they_were_set() {
        let mut queue = TimerQueue::default();
        for (due, seq) in [(30, 0), (10, 1), (20, 2), (10, 3), (5, 4)] {
            queue.insert(due, seq, 0, TimerAction::Wake(TaskId(seq as u32)));
        }
        assert_eq!(queue.first().map(|t| t.due), Some(5));
        let mut fired = Vec::new();
        while let Some(timer) = queue.pop_first() {
            let TimerAction::Wake(task) = timer.action else { unreachable!() };
            fired.push((timer.due, task.0));
        }
        assert_eq!(fired, [(5, 4), (10, 1), (10, 3), (20, 2), (30, 0)]);
        assert!(queue.is_empty());
    }
}
