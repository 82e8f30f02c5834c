//! Semantics of each primitive, run through the real scheduler.

use std::cell::RefCell;
use std::rc::Rc;

use crate::*;

fn sim(cpus: usize, seed: u64) -> Rc<Sim> {
    Sim::new(SimConfig { cpus, ..SimConfig::default() }, Box::new(RandomChooser::new(seed, 0.0)))
}

type Trace = Rc<RefCell<Vec<String>>>;

fn trace() -> Trace {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(trace: &Trace, s: impl Into<String>) {
    trace.borrow_mut().push(s.into());
}

#[test]
fn spinlock_excludes_across_cpus_for_every_seed() {
    for seed in 0..200 {
        let sim = sim(2, seed);
        let lock = sim.new_lock(LockKind::Spin, "l", "l".into());
        let inside = Rc::new(RefCell::new(0));
        for name in ["a", "b", "c"] {
            let inside = Rc::clone(&inside);
            sim.spawn(name, move |t| async move {
                t.spin_lock(lock, "t:lock").await;
                *inside.borrow_mut() += 1;
                assert_eq!(*inside.borrow(), 1, "two tasks inside the spinlock");
                t.point("t:inside").await;
                *inside.borrow_mut() -= 1;
                t.spin_unlock(lock, "t:unlock");
            });
        }
        assert_eq!(sim.run(), Outcome::Finished, "seed {seed}");
        sim.shutdown();
    }
}

#[test]
fn spinning_keeps_the_cpu_so_a_single_cpu_cannot_run_another_task() {
    // a takes the lock and sleeps holding it (a bug the engine must report).
    let sim = sim(1, 1);
    let lock = sim.new_lock(LockKind::Spin, "pagecache_lock", "pagecache_lock".into());
    sim.spawn("a", move |t| async move {
        t.spin_lock(lock, "a:lock").await;
        t.sleep_io("a:io", 1000).await;
        t.spin_unlock(lock, "a:unlock");
    });
    match sim.run() {
        Outcome::Violation(v) => {
            assert_eq!(v.invariant, "sleep-in-atomic");
            assert!(v.message.contains("pagecache_lock"), "{}", v.message);
        }
        other => panic!("expected a sleep-in-atomic violation, got {other:?}"),
    }
}

#[test]
fn semaphore_sleeper_runs_after_up() {
    for seed in 0..50 {
        let sim = sim(1, seed);
        let sem = sim.new_lock(LockKind::Semaphore, "mmap_sem", "mm1.mmap_sem".into());
        let log = trace();
        for name in ["a", "b"] {
            let log = Rc::clone(&log);
            sim.spawn(name, move |t| async move {
                t.down(sem, "t:down").await;
                push(&log, format!("{name} in"));
                t.sleep_io("t:io", 5000).await; // sleeping while holding a semaphore is fine
                push(&log, format!("{name} out"));
                t.up(sem, "t:up");
            });
        }
        assert_eq!(sim.run(), Outcome::Finished);
        let log = log.borrow();
        assert!(log[0].ends_with("in") && log[1].ends_with("out") && log[2].ends_with("in"), "{log:?}");
        assert_eq!(log[0][..1], log[1][..1], "the holder leaves before the other enters: {log:?}");
        sim.shutdown();
    }
}

/// An rw_semaphore (5.x's mmap_sem): readers share it and sleep (not
/// spin) under a writer, which sleeps holding it and wakes them all.
#[test]
fn rwsem_readers_share_sleep_under_a_writer_and_log_their_side() {
    let mut saw_two_readers = false;
    for seed in 0..100 {
        let sim = sim(3, seed);
        let sem = sim.new_lock(LockKind::RwSem, "mmap_sem", "mm1.mmap_sem".into());
        let readers = Rc::new(RefCell::new(0));
        let max_readers = Rc::new(RefCell::new(0));
        for name in ["r1", "r2"] {
            let (readers, max_readers) = (Rc::clone(&readers), Rc::clone(&max_readers));
            sim.spawn(name, move |t| async move {
                t.down_read(sem, "r:down_read").await;
                *readers.borrow_mut() += 1;
                let now = *readers.borrow();
                max_readers.replace_with(|&mut m| m.max(now));
                t.sleep_io("r:io", 1000).await; // a reader may sleep holding it
                *readers.borrow_mut() -= 1;
                t.up_read(sem, "r:up_read");
            });
        }
        let readers_w = Rc::clone(&readers);
        sim.spawn("w", move |t| async move {
            t.down_write(sem, "w:down_write").await;
            assert_eq!(*readers_w.borrow(), 0, "writer inside with readers");
            t.sleep_io("w:io", 1000).await;
            assert_eq!(*readers_w.borrow(), 0, "reader entered under the writer");
            t.up_write(sem, "w:up_write");
        });
        assert_eq!(sim.run(), Outcome::Finished);
        saw_two_readers |= *max_readers.borrow() == 2;
        let events = sim.events();
        let side =
            |point: &str| events.iter().find(|e| e.point == point && e.kind == EventKind::Acquired).map(|e| e.read);
        assert_eq!(side("r:down_read"), Some(true), "a read acquisition is logged as read");
        assert_eq!(side("w:down_write"), Some(false), "a write acquisition is logged as write");
        sim.shutdown();
    }
    assert!(saw_two_readers, "no seed let two readers in at once");
}

#[test]
fn rwlock_readers_share_and_a_writer_excludes() {
    let mut saw_two_readers = false;
    for seed in 0..100 {
        let sim = sim(3, seed);
        let rw = sim.new_lock(LockKind::RwSpin, "tasklist_lock", "tasklist_lock".into());
        let readers = Rc::new(RefCell::new(0));
        let max_readers = Rc::new(RefCell::new(0));
        for name in ["r1", "r2"] {
            let (readers, max_readers) = (Rc::clone(&readers), Rc::clone(&max_readers));
            sim.spawn(name, move |t| async move {
                t.read_lock(rw, "r:lock").await;
                *readers.borrow_mut() += 1;
                let now = *readers.borrow();
                max_readers.replace_with(|&mut m| m.max(now));
                t.point("r:inside").await;
                *readers.borrow_mut() -= 1;
                t.read_unlock(rw, "r:unlock");
            });
        }
        let readers_w = Rc::clone(&readers);
        sim.spawn("w", move |t| async move {
            t.write_lock(rw, "w:lock").await;
            assert_eq!(*readers_w.borrow(), 0, "writer inside with readers");
            t.point("w:inside").await;
            assert_eq!(*readers_w.borrow(), 0, "reader entered under the writer");
            t.write_unlock(rw, "w:unlock");
        });
        assert_eq!(sim.run(), Outcome::Finished);
        saw_two_readers |= *max_readers.borrow() == 2;
        sim.shutdown();
    }
    assert!(saw_two_readers, "no seed let two readers in at once");
}

#[test]
fn unlock_page_wakes_every_waiter_and_try_lock_never_sleeps() {
    let sim = sim(1, 3);
    let page = sim.new_lock(LockKind::PageBit, "PG_locked", "page#1".into());
    let log = trace();
    let log_owner = Rc::clone(&log);
    sim.spawn("owner", move |t| async move {
        t.lock_page(page, "owner:lock_page").await;
        t.sleep_io("owner:io", 100_000).await; // I/O holding the page lock
        push(&log_owner, "owner unlocks");
        t.unlock_page(page, "owner:unlock");
    });
    for name in ["w1", "w2"] {
        let log = Rc::clone(&log);
        sim.spawn(name, move |t| async move {
            if t.try_lock_page(page, "w:trylock") {
                push(&log, format!("{name} trylock won"));
                t.unlock_page(page, "w:unlock");
                return;
            }
            t.wait_on_page(page, "w:wait").await;
            push(&log, format!("{name} saw it unlocked"));
        });
    }
    assert_eq!(sim.run(), Outcome::Finished);
    let log = log.borrow().clone();
    assert!(log.contains(&"owner unlocks".to_string()), "{log:?}");
    let after: Vec<_> = log.iter().skip_while(|s| *s != "owner unlocks").cloned().collect();
    let woken = after.iter().filter(|s| s.ends_with("saw it unlocked")).count();
    let won = log.iter().filter(|s| s.ends_with("trylock won")).count();
    assert_eq!(woken + won, 2, "{log:?}");
}

#[test]
fn bkl_holder_that_sleeps_lets_another_task_take_the_bkl_meanwhile() {
    // One CPU. a takes the BKL and sleeps on I/O; b must be able to take
    // the BKL and finish while a sleeps; a then takes the BKL back.
    let mut b_ran_while_a_slept = 0;
    for seed in 0..50 {
        let sim = sim(1, seed);
        let log = trace();
        let log_a = Rc::clone(&log);
        sim.spawn("a", move |t| async move {
            t.lock_kernel("a:lock_kernel").await;
            push(&log_a, "a has bkl");
            t.sleep_io("a:io", 1_000_000).await;
            assert_eq!(t.lock_depth(), 0);
            push(&log_a, "a has bkl again");
            t.unlock_kernel("a:unlock_kernel");
        });
        let log_b = Rc::clone(&log);
        sim.spawn("b", move |t| async move {
            t.lock_kernel("b:lock_kernel").await;
            t.lock_kernel("b:nested").await; // recursive
            push(&log_b, "b has bkl");
            t.unlock_kernel("b:nested");
            t.unlock_kernel("b:unlock_kernel");
            push(&log_b, "b released bkl");
        });
        assert_eq!(sim.run(), Outcome::Finished, "seed {seed}");
        let log = log.borrow().clone();
        let pos = |s: &str| log.iter().position(|x| x == s).unwrap();
        if pos("a has bkl") < pos("b has bkl") && pos("b has bkl") < pos("a has bkl again") {
            // b got the BKL while a slept, and a took it back only after b let go.
            assert!(pos("b released bkl") < pos("a has bkl again"), "seed {seed}: {log:?}");
            b_ran_while_a_slept += 1;
        }
        let dropped = sim.events().iter().filter(|e| e.kind == EventKind::BklDropped).count();
        assert!(dropped >= 1, "schedule() must drop the BKL of a sleeping holder");
        sim.shutdown();
    }
    assert!(b_ran_while_a_slept > 0, "no seed ran b while a slept holding the BKL");
}

#[test]
fn sleeping_with_the_bkl_while_another_needs_it_is_not_a_deadlock() {
    // The patched swapoff shape: S holds the BKL and sleeps on a semaphore
    // held by F; F needs the BKL to finish and release the semaphore.
    for seed in 0..50 {
        let sim = sim(2, seed);
        let sem = sim.new_lock(LockKind::Semaphore, "mmap_sem", "mm1.mmap_sem".into());
        sim.spawn("fault", move |t| async move {
            t.down(sem, "f:down").await;
            t.point("f:work").await;
            t.lock_kernel("f:lock_kernel").await;
            t.unlock_kernel("f:unlock_kernel");
            t.up(sem, "f:up");
        });
        sim.spawn("swapoff", move |t| async move {
            t.lock_kernel("s:lock_kernel").await;
            t.down(sem, "s:down").await;
            t.up(sem, "s:up");
            t.unlock_kernel("s:unlock_kernel");
        });
        assert_eq!(sim.run(), Outcome::Finished, "seed {seed}");
        sim.shutdown();
    }
}

#[test]
fn abba_on_semaphores_is_reported_as_a_deadlock_not_a_hang() {
    let mut found = false;
    for seed in 0..100 {
        let sim = sim(2, seed);
        let a = sim.new_lock(LockKind::Semaphore, "sem", "A".into());
        let b = sim.new_lock(LockKind::Semaphore, "sem", "B".into());
        for (name, first, second) in [("t1", a, b), ("t2", b, a)] {
            sim.spawn(name, move |t| async move {
                t.down(first, "x:first").await;
                t.down(second, "x:second").await;
                t.up(second, "x:up2");
                t.up(first, "x:up1");
            });
        }
        match sim.run() {
            Outcome::Finished => {}
            Outcome::Deadlock(waiters) => {
                assert_eq!(waiters.len(), 2);
                assert!(waiters.iter().any(|w| w.contains("sleeps on B held by t2")), "{waiters:?}");
                found = true;
            }
            other => panic!("unexpected {other:?}"),
        }
        sim.shutdown();
    }
    assert!(found, "no seed interleaved the ABBA");
}

#[test]
fn step_budget_turns_a_livelock_into_a_report() {
    let sim = Sim::new(SimConfig { step_budget: 500, ..SimConfig::default() }, Box::new(RandomChooser::new(1, 0.0)));
    sim.spawn("spinner", |t| async move {
        loop {
            t.point("loop").await;
        }
    });
    assert_eq!(sim.run(), Outcome::StepLimit(500));
    sim.shutdown();
}

#[test]
fn taking_a_held_spinlock_again_is_an_aa_deadlock() {
    let sim = sim(1, 0);
    let lock = sim.new_lock(LockKind::Spin, "mm_lock", "mm_lock".into());
    sim.spawn("t", move |t| async move {
        t.spin_lock(lock, "first").await;
        t.spin_lock(lock, "second").await;
    });
    match sim.run() {
        Outcome::Violation(v) => assert!(v.message.contains("AA deadlock"), "{}", v.message),
        other => panic!("{other:?}"),
    }
    sim.shutdown();
}

#[test]
fn returning_to_user_space_with_a_lock_held_is_reported() {
    let sim = sim(1, 0);
    let sem = sim.new_lock(LockKind::Semaphore, "mmap_sem", "mm1.mmap_sem".into());
    sim.spawn("t", move |t| async move {
        t.down(sem, "down").await;
        t.return_to_user("syscall_exit").await;
    });
    match sim.run() {
        Outcome::Violation(v) => {
            assert_eq!(v.invariant, "lock-discipline");
            assert!(v.message.contains("mm1.mmap_sem"));
        }
        other => panic!("{other:?}"),
    }
    sim.shutdown();
}

#[test]
fn may_sleep_is_a_recorded_choice_and_replays() {
    let run = |chooser: Box<dyn Chooser>| {
        let sim = Sim::new(SimConfig { cpus: 2, ..SimConfig::default() }, chooser);
        for name in ["a", "b", "c"] {
            sim.spawn(name, |t| async move {
                for _ in 0..5 {
                    t.may_sleep("alloc", 10_000).await;
                    t.point("work").await;
                }
            });
        }
        assert_eq!(sim.run(), Outcome::Finished);
        let result = (sim.choices(), sim.events(), sim.now());
        sim.shutdown();
        result
    };
    let (choices, events, now) = run(Box::new(RandomChooser::new(42, 0.5)));
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::Sleep(_))));
    let (choices2, events2, now2) = run(Box::new(ReplayChooser::new(choices.clone())));
    assert_eq!(choices, choices2);
    assert_eq!(events, events2);
    assert_eq!(now, now2);
    let (choices3, _, _) = run(Box::new(RandomChooser::new(43, 0.5)));
    assert_ne!(choices, choices3, "another seed gives another schedule");
}

#[test]
fn irq_completion_unlocks_the_page_and_wakes_waiters() {
    let sim = sim(1, 0);
    let page = sim.new_lock(LockKind::PageBit, "PG_locked", "page#7".into());
    let sim2 = Rc::clone(&sim);
    sim.spawn("writer", move |t| async move {
        t.lock_page(page, "rw_swap_page:lock").await;
        t.give_page_lock_to_io(page);
        let s = Rc::clone(&sim2);
        sim2.after(t.id(), 50_000, move || s.irq_unlock_page(page, "end_swap_io"));
    });
    sim.spawn("waiter", move |t| async move {
        t.lock_page(page, "waiter:lock_page").await;
        t.unlock_page(page, "waiter:unlock");
    });
    assert_eq!(sim.run(), Outcome::Finished);
    assert!(sim.now() >= 50_000);
    sim.shutdown();
}

#[test]
fn a_wait_queue_sleeper_runs_after_wake_up() {
    let sim = sim(1, 5);
    let queue = sim.new_lock(LockKind::WaitQueue, "wait", "wait".into());
    let log = trace();
    let log_a = Rc::clone(&log);
    sim.spawn("sleeper", move |t| async move {
        t.lock_kernel("s:lock_kernel").await;
        t.sleep_on(queue, "s:sleep_on").await;
        assert_eq!(t.lock_depth(), 0, "the BKL is taken back after the wake");
        push(&log_a, "woken");
        t.unlock_kernel("s:unlock_kernel");
    });
    let log_b = Rc::clone(&log);
    sim.spawn("waker", move |t| async move {
        t.point("w:work").await;
        push(&log_b, "waking");
        t.wake_up(queue, "w:wake_up");
    });
    assert_eq!(sim.run(), Outcome::Finished);
    assert_eq!(*log.borrow(), vec!["waking".to_string(), "woken".to_string()]);
    sim.shutdown();
}

#[test]
fn a_sleeper_nobody_wakes_is_a_deadlock() {
    let sim = sim(1, 5);
    let queue = sim.new_lock(LockKind::WaitQueue, "wait", "wait".into());
    sim.spawn("sleeper", move |t| async move { t.sleep_on(queue, "s:sleep_on").await });
    match sim.run() {
        Outcome::Deadlock(waiters) => assert!(waiters[0].contains("sleeps on wait"), "{waiters:?}"),
        other => panic!("{other:?}"),
    }
    sim.shutdown();
}

#[test]
fn a_daemon_neither_keeps_a_run_alive_nor_hides_a_deadlock() {
    // A periodic daemon (like a kswapd with a timeout) ticks forever.
    let daemon = |sim: &Rc<Sim>| {
        let id = sim.spawn("daemon", |t| async move {
            loop {
                t.sleep_io("daemon:tick", 1_000).await;
            }
        });
        sim.set_daemon(id);
    };
    let sim = sim(1, 3);
    daemon(&sim);
    sim.spawn("worker", |t| async move { t.point("w").await });
    assert_eq!(sim.run(), Outcome::Finished, "the run ends when only the daemon is left");
    sim.shutdown();

    let sim = self::sim(1, 3);
    daemon(&sim);
    let queue = sim.new_lock(LockKind::WaitQueue, "wait", "wait".into());
    sim.spawn("stuck", move |t| async move { t.sleep_on(queue, "s").await });
    assert!(matches!(sim.run(), Outcome::Deadlock(_)), "the daemon's ticks do not hide the deadlock");
    sim.shutdown();
}

#[test]
fn the_lock_order_graph_records_held_then_taken_by_class_but_not_trylocks() {
    let sim =
        Sim::new(SimConfig { cpus: 1, lock_order: true, ..SimConfig::default() }, Box::new(RandomChooser::new(1, 0.0)));
    let a = sim.new_lock(LockKind::Spin, "a", "a of mm#1".into());
    let b = sim.new_lock(LockKind::Spin, "b", "b".into());
    let page = sim.new_lock(LockKind::PageBit, "PG_locked", "page 1".into());
    sim.spawn("t", move |t| async move {
        t.spin_lock(a, "t:lock_a").await;
        t.spin_lock(b, "t:lock_b").await;
        // A trylock never waits: it orders nothing after a or b.
        assert!(t.try_lock_page(page, "t:trylock"));
        t.spin_unlock(b, "t:unlock_b");
        t.spin_unlock(a, "t:unlock_a");
        // Taken while the page is held: page before a.
        t.spin_lock(a, "t:lock_a_again").await;
        t.spin_unlock(a, "t:unlock_a_again");
        t.unlock_page(page, "t:unlock_page");
    });
    assert_eq!(sim.run(), Outcome::Finished);
    assert_eq!(
        sim.lock_order(),
        vec![("a", "b", "t:lock_a", "t:lock_b"), ("PG_locked", "a", "t:trylock", "t:lock_a_again")]
    );
    sim.shutdown();
}

/// Two tasks on two CPUs interleave their points and allocations (and one
/// forks a child that sleeps on I/O); with `extra`, a bystander task is
/// spawned first, so every task id and option index shifts. Returns the
/// order in which a, b and a's child did their work, the run's semantic
/// events and its choices.
fn labeled_run(chooser: Box<dyn Chooser>, extra: bool) -> (Vec<String>, Vec<SemanticEvent>, Vec<u32>) {
    let sim = Sim::new(SimConfig { cpus: 2, record_labels: true, ..SimConfig::default() }, chooser);
    let order = trace();
    if extra {
        sim.spawn("bystander", |t| async move {
            for _ in 0..3 {
                t.point("bystander:loop").await;
            }
        });
    }
    for name in ["a", "b"] {
        let order = Rc::clone(&order);
        sim.spawn(name, move |t| async move {
            for i in 0..4 {
                t.point(if i % 2 == 0 { "w:even" } else { "w:odd" }).await;
                push(&order, format!("{name}{i}"));
                t.may_sleep("w:alloc", 1_000).await;
            }
            if name == "a" {
                let order = Rc::clone(&order);
                t.spawn("a.child", move |c| async move {
                    c.sleep_io("child:io", 5_000).await;
                    push(&order, "child");
                });
            }
        });
    }
    assert_eq!(sim.run(), Outcome::Finished);
    let (events, choices) = (sim.semantic_events(), sim.choices());
    assert_eq!(events.len(), choices.len(), "one event per decision");
    sim.shutdown();
    let order = order.borrow().clone();
    (order, events, choices)
}

#[test]
fn a_semantic_replay_follows_the_recorded_events_when_an_unrelated_task_is_added() {
    let mut index_differs = 0;
    for seed in 0..20 {
        let (order, events, choices) = labeled_run(Box::new(RandomChooser::new(seed, 0.5)), false);
        assert!(events.iter().any(|e| e.task == "a/1" && e.class == EventClass::Timer), "{events:?}");
        let (_, again, _) = labeled_run(Box::new(RandomChooser::new(seed, 0.5)), false);
        assert_eq!(again, events, "labels are a function of the run");
        // By index, the added task changes the run.
        let (by_index, _, _) = labeled_run(Box::new(ReplayChooser::new(choices.clone())), true);
        // By events, the same order, every event matched.
        let log = SemanticLog::default();
        let chooser = SemanticReplayChooser::new(events.clone(), choices, Rc::clone(&log));
        let (replayed, _, _) = labeled_run(Box::new(chooser), true);
        assert_eq!(replayed, order, "seed {seed} (by index: {by_index:?})");
        index_differs += usize::from(by_index != order);
        let report = log.borrow().clone();
        assert_eq!((report.matched, &report.divergence), (events.len(), &None), "seed {seed}: {report:?}");
    }
    assert!(index_differs >= 10, "by index the bystander changes most runs: {index_differs} of 20");
}

#[test]
fn cond_resched_lets_a_queued_task_run_on_a_single_cpu() {
    // a loops until b has run; without cond_resched giving up the CPU, b
    // (queued) would never run on the one CPU and a would spin forever.
    let sim = sim(1, 1);
    let done = Rc::new(RefCell::new(false));
    let seen = Rc::clone(&done);
    sim.spawn("a", move |t| async move {
        while !*seen.borrow() {
            t.cond_resched("a:cond_resched").await;
        }
    });
    let set = Rc::clone(&done);
    sim.spawn("b", move |_t| async move {
        *set.borrow_mut() = true;
    });
    assert_eq!(sim.run(), Outcome::Finished);
    assert!(*done.borrow());
    sim.shutdown();
}

#[test]
fn cond_resched_holding_a_spinlock_is_sleep_in_atomic() {
    let sim = sim(1, 1);
    let lock = sim.new_lock(LockKind::Spin, "mmlist_lock", "mmlist_lock".into());
    sim.spawn("a", move |t| async move {
        t.spin_lock(lock, "a:lock").await;
        // b is queued for the one CPU: need_resched is set.
        t.spawn("b", |t| async move { t.point("b:run").await });
        t.cond_resched("a:cond_resched").await;
        t.spin_unlock(lock, "a:unlock");
    });
    match sim.run() {
        Outcome::Violation(v) => assert_eq!(v.invariant, "sleep-in-atomic", "{}", v.message),
        other => panic!("expected sleep-in-atomic, got {other:?}"),
    }
    sim.shutdown();
}

#[test]
fn a_waking_task_goes_to_the_idle_cpu_with_the_earliest_clock() {
    // cpu0 runs 50 ms of work and goes idle at 50 ms; b sleeps 1 ms on
    // cpu1. When b wakes, both CPUs are idle: it must resume on cpu1 at
    // about 1 ms, not on cpu0 at 50 ms.
    let sim = Sim::new(SimConfig { cpus: 2, ..SimConfig::default() }, Box::new(TimedChooser::new(1, 0.0)));
    let resumed = Rc::new(RefCell::new(0u64));
    let at = Rc::clone(&resumed);
    sim.spawn("a", |t| async move { t.work(50_000_000) });
    sim.spawn("b", move |t| async move {
        t.sleep_io("b:io", 1_000_000).await;
        *at.borrow_mut() = t.now();
        t.point("b:run").await;
    });
    assert_eq!(sim.run(), Outcome::Finished);
    assert!(*resumed.borrow() < 2_000_000, "b resumed at {} ns", resumed.borrow());
    sim.shutdown();
}

/// Picks the first option of every decision and keeps each step's kind and
/// footprint.
struct FootprintLog(Rc<RefCell<Vec<(StepKind, Footprint)>>>, Option<StepKind>);

impl Chooser for FootprintLog {
    fn choose(&mut self, decision: Decision<'_>, _n: usize) -> usize {
        if let Decision::Step { options, .. } = decision {
            self.1 = options.first().copied();
        }
        0
    }

    fn stepped(&mut self, footprint: Footprint) {
        let kind = self.1.take().expect("a step was chosen");
        self.0.borrow_mut().push((kind, footprint));
    }
}

/// A task that yielded in cond_resched is dispatched again only once the
/// tasks it yielded to have stepped (or cannot): its dispatch depends on
/// their steps, so its footprint reads them. Without that, a partial-order
/// search could take the dispatch and their steps for independent.
#[test]
fn the_dispatch_of_a_task_that_yielded_reads_the_tasks_it_yielded_to() {
    let steps = Rc::new(RefCell::new(Vec::new()));
    let config = SimConfig { cpus: 1, record_footprints: true, ..SimConfig::default() };
    let sim = Sim::new(config, Box::new(FootprintLog(Rc::clone(&steps), None)));
    let a = sim.spawn("a", move |t| async move {
        t.cond_resched("a:cond_resched").await;
        t.point("a:after").await;
        t.point("a:later").await;
    });
    let b = sim.spawn("b", move |t| async move {
        t.point("b:one").await;
    });
    assert_eq!(sim.run(), Outcome::Finished);
    sim.shutdown();
    let steps = steps.borrow();
    // a's steps: its first dispatch, the step on to cond_resched (where it
    // yields to the queued b: a sleep of no length), and its dispatch after
    // b has stepped and the timer woke it.
    let a_steps: Vec<&Footprint> = steps.iter().filter(|(k, _)| *k == StepKind::Task(a)).map(|(_, f)| f).collect();
    assert_eq!(a_steps.len(), 5, "{steps:?}");
    let reads_b =
        |f: &Footprint| f.accesses().iter().any(|x| x.space == footprint::TASK && x.key == u64::from(b.0) && !x.write);
    assert!(!reads_b(a_steps[0]), "a's first dispatch yielded to nobody");
    assert!(reads_b(a_steps[2]), "a's dispatch after yielding reads b: {:?}", a_steps[2]);
    assert!(!reads_b(a_steps[3]), "only the dispatch reads b");
}
