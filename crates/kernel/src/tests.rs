//! The kernel routines, run alone (no interleaving) through the engine:
//! reference counts, data, and the mechanisms behind race 1.

use std::future::Future;
use std::rc::Rc;

use engine::{EventKind, Outcome, ReplayChooser, Sim, SimConfig, Task};

use crate::memory::{user_access, Access};
use crate::*;

fn boot(variant: Variant) -> (Rc<Sim>, Rc<Kernel>) {
    let sim = Sim::new(SimConfig::default(), Box::new(ReplayChooser::new(Vec::new())));
    let machine = Machine {
        cpus: 1,
        memory_pages: 64,
        swap_devices: vec![16],
        faults: Default::default(),
        max_threads: 512,
        costs: Default::default(),
    };
    let k = Kernel::new(Rc::clone(&sim), &machine, variant.fixes());
    let kk = Rc::clone(&k);
    sim.spawn("boot", move |t| async move {
        assert_eq!(swapfile::sys_swapon(&kk, &t, 0).await, Ok(0));
    });
    assert_eq!(sim.run(), Outcome::Finished);
    (sim, k)
}

/// Run `body` as process `pid` until the machine is idle.
fn run_as<F, Fut>(sim: &Rc<Sim>, k: &Rc<Kernel>, pid: Pid, body: F) -> Outcome
where
    F: FnOnce(Rc<Kernel>, Task) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let kk = Rc::clone(k);
    let task = sim.spawn(format!("pid{pid}"), move |t| body(kk, t));
    k.bind(task, pid);
    sim.run()
}

fn swap_count(k: &Kernel, entry: SwpEntry) -> u16 {
    k.w().swap_info[entry.type_].swap_map.as_ref().unwrap()[entry.offset as usize]
}

fn pte(k: &Kernel, pid: Pid, addr: u64) -> Pte {
    let w = k.w();
    let mm = w.procs[&pid].mm.unwrap();
    w.page_tables[w.mms[mm].pgd.unwrap()].ptes.get(&addr).copied().unwrap_or(Pte::None)
}

/// A process with `pages` pages at 0x10000, written and pushed out to swap.
fn swapped_process(sim: &Rc<Sim>, k: &Rc<Kernel>, pages: u64) -> Pid {
    let pid = k.create_process("p");
    k.map_anonymous(pid, 0x10000, pages).unwrap();
    let outcome = run_as(sim, k, pid, move |k, t| async move {
        for i in 0..pages {
            let addr = 0x10000 + i * PAGE_SIZE;
            assert_eq!(user_access(&k, &t, addr, true).await, Ok(Access::Done));
            assert!(vmscan::page_out(&k, &t, addr).await.unwrap().is_ok());
        }
    });
    assert_eq!(outcome, Outcome::Finished);
    pid
}

#[test]
fn page_out_and_swap_in_keep_counts_and_data() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = swapped_process(&sim, &k, 2);
    let Pte::Swap(entry) = pte(&k, pid, 0x10000) else { panic!("the page is not out") };
    assert_eq!(swap_count(&k, entry), 1, "only the pte holds the slot");
    assert!(k.w().swap_cache.is_empty(), "shrink_mmap reclaimed the cache copy");
    assert_eq!(invariants::check_quiescent(&k), None);

    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        // A read fault swaps the page in and checks its contents.
        assert_eq!(user_access(&k, &t, 0x10000, false).await, Ok(Access::Done));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(matches!(pte(&k, pid, 0x10000), Pte::Present { write: false, .. }));
    assert_eq!(swap_count(&k, entry), 1, "the swap cache now holds the slot");
    assert_eq!(k.w().stats.swap_ins, 1);
    assert_eq!(invariants::check_quiescent(&k), None);
}

#[test]
fn fork_duplicates_swap_entries_and_exit_frees_them() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = swapped_process(&sim, &k, 1);
    let Pte::Swap(entry) = pte(&k, pid, 0x10000) else { panic!() };
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        let child = fork::do_fork(&k, &t, Box::new(|_t| Box::pin(async {}))).await.unwrap();
        assert_eq!(child, 2);
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(swap_count(&k, entry), 2, "parent and child ptes");
    assert_eq!(pte(&k, 2, 0x10000), Pte::Swap(entry));
    assert_eq!(invariants::check_quiescent(&k), None);
    for p in [pid, 2] {
        assert_eq!(run_as(&sim, &k, p, |k, t| async move { exit::do_exit(&k, &t).await.unwrap() }), Outcome::Finished);
    }
    assert_eq!(swap_count(&k, entry), 0);
    assert!(k.w().mms.is_empty(), "both mm_structs were freed");
    assert_eq!(*k.w().free_pages, 64);
    assert_eq!(invariants::check_quiescent(&k), None);
}

#[test]
fn swapoff_without_a_race_brings_every_page_back_in_both_kernels() {
    for variant in Variant::ALL {
        let (sim, k) = boot(variant);
        let pid = swapped_process(&sim, &k, 3);
        let outcome = run_as(&sim, &k, pid, |k, t| async move {
            assert_eq!(swapfile::sys_swapoff(&k, &t, 0).await, Ok(0));
        });
        assert_eq!(outcome, Outcome::Finished, "{variant}");
        assert_eq!(invariants::check_swapoff_complete(&k, 0, true), None, "{variant}");
        assert!(k.w().printk.is_empty(), "{variant}: no Undead entry: {:?}", k.w().printk);
        for i in 0..3 {
            assert!(matches!(pte(&k, pid, 0x10000 + i * PAGE_SIZE), Pte::Present { dirty: true, .. }));
        }
        // The data came back: reading checks it against what was written.
        let outcome = run_as(&sim, &k, pid, |k, t| async move {
            for i in 0..3 {
                assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, false).await, Ok(Access::Done));
            }
        });
        assert_eq!(outcome, Outcome::Finished);
        assert_eq!(invariants::check_quiescent(&k), None);
        assert_eq!(*k.w().nr_swap_pages, 0, "the device is off");
    }
}

/// The state race 1 leaves: a child mm holding a copy of the swap pte
/// whose task is not on the task list yet.
fn unlisted_child_with_swap_pte(k: &Kernel, parent: Pid) -> (Pid, SwpEntry) {
    let child = k.create_process("child");
    k.map_anonymous(child, 0x10000, 1).unwrap();
    let Pte::Swap(entry) = pte(k, parent, 0x10000) else { panic!() };
    let mut w = k.w();
    w.procs[&child].linked = false;
    w.task_list.retain(|&p| p != child);
    let mm = w.procs[&child].mm.unwrap();
    let pgd = w.mms[mm].pgd.unwrap();
    w.page_tables[pgd].ptes.insert(0x10000, Pte::Swap(entry));
    w.swap_info[0].swap_map.as_mut().unwrap()[entry.offset as usize] += 1;
    (child, entry)
}

#[test]
fn pre4_swapoff_misses_an_mm_off_the_task_list_and_forces_the_count() {
    let (sim, k) = boot(Variant::Pre4);
    let parent = swapped_process(&sim, &k, 1);
    let (_, entry) = unlisted_child_with_swap_pte(&k, parent);
    let outcome = run_as(&sim, &k, parent, |k, t| async move {
        assert_eq!(swapfile::sys_swapoff(&k, &t, 0).await, Ok(0));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(k.w().printk, vec![format!("VM: Undead swap entry {entry} (count 1 forced to 0)")]);
    let (invariant, message) = invariants::check_swapoff_complete(&k, 0, true).expect("the child's pte was missed");
    assert_eq!(invariant, "swapoff-completeness");
    assert!(message.contains("not on the task list"), "{message}");
}

#[test]
fn patched_swapoff_crabs_the_mm_list_and_finds_that_mm() {
    let (sim, k) = boot(Variant::Patched);
    let parent = swapped_process(&sim, &k, 1);
    let (child, _) = unlisted_child_with_swap_pte(&k, parent);
    let outcome = run_as(&sim, &k, parent, |k, t| async move {
        assert_eq!(swapfile::sys_swapoff(&k, &t, 0).await, Ok(0));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(k.w().printk.is_empty(), "{:?}", k.w().printk);
    assert_eq!(invariants::check_swapoff_complete(&k, 0, true), None);
    assert!(matches!(pte(&k, child, 0x10000), Pte::Present { .. }));
    // The crab's holds were all released.
    let w = k.w();
    assert!(w.mms.values().all(|m| m.mm_count == 1), "hold_mm/release_mm balance");
}

#[test]
fn hold_mm_refuses_an_mm_marked_gone() {
    let (sim, k) = boot(Variant::Patched);
    let pid = k.create_process("p");
    let mm = k.w().procs[&pid].mm.unwrap();
    k.w().mms[mm].mm_gone = true;
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        assert_eq!(mm::hold_mm(&k, &t, mm), Ok(false));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(k.w().mms[mm].mm_count, 1);
}

#[test]
fn patched_exit_marks_the_mm_gone_and_unlinks_it_from_the_mm_list() {
    let (sim, k) = boot(Variant::Patched);
    let pid = swapped_process(&sim, &k, 1);
    let mm = k.w().procs[&pid].mm.unwrap();
    assert_eq!(*k.w().mmlist, vec![mm]);
    let outcome = run_as(&sim, &k, pid, |k, t| async move { exit::do_exit(&k, &t).await.unwrap() });
    assert_eq!(outcome, Outcome::Finished);
    assert!(k.w().mmlist.is_empty(), "__mmdrop unlinked it");
    assert!(!k.w().mms.contains_key(mm));
}

#[test]
fn deleting_a_page_from_the_swap_cache_twice_is_a_bug() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = swapped_process(&sim, &k, 1);
    let Pte::Swap(entry) = pte(&k, pid, 0x10000) else { panic!() };
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        let page = swap_state::read_swap_cache(&k, &t, entry).await.unwrap().unwrap();
        swap_state::delete_from_swap_cache(&k, &t, page).await.unwrap();
        let _ = swap_state::delete_from_swap_cache(&k, &t, page).await;
    });
    match outcome {
        Outcome::Violation(v) => {
            assert_eq!(v.invariant, "swap-cache");
            assert!(v.message.contains("deleted twice"), "{}", v.message);
        }
        other => panic!("expected a BUG, got {other:?}"),
    }
}

#[test]
fn freeing_a_swap_entry_twice_is_reported() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = swapped_process(&sim, &k, 1);
    let Pte::Swap(entry) = pte(&k, pid, 0x10000) else { panic!() };
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        swapfile::swap_free(&k, &t, entry, "test:first").await.unwrap();
        let _ = swapfile::swap_free(&k, &t, entry, "test:second").await;
    });
    match outcome {
        Outcome::Violation(v) => assert!(v.message.contains("Bad swap entry"), "{}", v.message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shm_pages_go_out_through_shm_swap_and_come_back_through_shm_nopage() {
    let (sim, k) = boot(Variant::Patched);
    let seg = k.shmget(2);
    let pid = k.create_process("shmuser");
    k.shmat(pid, seg, 0x4000_0000).unwrap();
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert_eq!(user_access(&k, &t, 0x4000_0000, true).await, Ok(Access::Done));
        assert!(vmscan::page_out(&k, &t, 0x4000_0000).await.unwrap().is_ok());
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(matches!(k.w().shm_segs[seg].entries[0], Pte::Swap(_)), "the segment holds a swap entry");
    let counts = {
        let w = k.w();
        (*w.shm_rss, *w.shm_swp)
    };
    assert_eq!(counts, (0, 1));
    assert_eq!(invariants::check_quiescent(&k), None);
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        // shm_nopage reads it back (and the data check passes).
        assert_eq!(user_access(&k, &t, 0x4000_0000, false).await, Ok(Access::Done));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(matches!(k.w().shm_segs[seg].entries[0], Pte::Present { .. }));
    assert!(k.w().swap_cache.is_empty(), "shm_nopage deletes the page from the swap cache");
    let counts = {
        let w = k.w();
        (*w.shm_rss, *w.shm_swp)
    };
    assert_eq!(counts, (1, 0));
    assert_eq!(invariants::check_quiescent(&k), None);
}

#[test]
fn munmap_of_a_swap_cache_page_frees_page_and_slot() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = swapped_process(&sim, &k, 2);
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert_eq!(user_access(&k, &t, 0x10000, false).await, Ok(Access::Done)); // back in, in the swap cache
        assert_eq!(mmap::sys_munmap(&k, &t, 0x10000, 1).await, Ok(0));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(k.w().swap_cache.is_empty(), "free_page_and_swap_cache took it out of the cache");
    assert_eq!(pte(&k, pid, 0x10000), Pte::None);
    assert!(matches!(pte(&k, pid, 0x11000), Pte::Swap(_)), "the rest of the mapping is untouched");
    let w = k.w();
    let mm = w.procs[&pid].mm.unwrap();
    assert_eq!(w.mms[mm].mmap.len(), 1, "unmap_fixup kept the second page mapped");
    drop(w);
    assert_eq!(invariants::check_quiescent(&k), None);
}

#[test]
fn exec_with_one_user_empties_the_mm_in_place_and_keeps_it_holdable() {
    let (sim, k) = boot(Variant::Patched);
    let pid = swapped_process(&sim, &k, 1);
    let mm = k.w().procs[&pid].mm.unwrap();
    let outcome = run_as(&sim, &k, pid, |k, t| async move { mmap::exec_mmap(&k, &t).await.unwrap() });
    assert_eq!(outcome, Outcome::Finished);
    let w = k.w();
    assert_eq!(w.procs[&pid].mm, Some(mm), "the same mm");
    assert!(w.mms[mm].mmap.is_empty());
    assert!(!w.mms[mm].mm_gone, "\"Execing mm's are still holdable\"");
    assert_eq!(*w.mmlist, vec![mm]);
    drop(w);
    assert_eq!(invariants::check_quiescent(&k), None);
}

/// A machine of `memory_pages` pages with one 256-slot device, booted.
fn boot_with(memory_pages: u32, variant: Variant) -> (Rc<Sim>, Rc<Kernel>) {
    let sim = Sim::new(SimConfig::default(), Box::new(ReplayChooser::new(Vec::new())));
    let machine = Machine {
        cpus: 1,
        memory_pages,
        swap_devices: vec![256],
        faults: Default::default(),
        max_threads: 512,
        costs: Default::default(),
    };
    let k = Kernel::new(Rc::clone(&sim), &machine, variant.fixes());
    let kk = Rc::clone(&k);
    sim.spawn("boot", move |t| async move {
        swapfile::sys_swapon(&kk, &t, 0).await.unwrap();
    });
    assert_eq!(sim.run(), Outcome::Finished);
    (sim, k)
}

#[test]
fn direct_reclaim_swaps_out_when_memory_runs_out_and_keeps_the_data() {
    // 64 pages: pages_min 10, pages_low 20, pages_high 30.
    let (sim, k) = boot_with(64, Variant::Patched);
    assert_eq!((k.pages_min(), k.pages_low(), k.pages_high()), (10, 20, 30));
    let pid = k.create_process("hog");
    k.map_anonymous(pid, 0x10000, 100).unwrap();
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        for i in 0..56 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, true).await, Ok(Access::Done), "write {i}");
        }
        // The swap-outs' writes complete: their pages become reclaimable.
        t.sleep_io("test:wait_for_writes", 100_000_000).await;
        for i in 0..56 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, false).await, Ok(Access::Done), "read {i}");
        }
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(k.w().stats.swap_outs >= 32, "{:?}", k.w().stats);
    assert!(k.w().stats.swap_ins >= 32, "{:?}", k.w().stats);
    assert_eq!(invariants::check_quiescent(&k), None);
}

#[test]
fn an_allocation_at_pages_min_reclaims_in_the_caller_and_fails_when_it_frees_less_than_a_cluster() {
    let (sim, k) = boot_with(64, Variant::Pre4);
    let pid = k.create_process("hog");
    k.map_anonymous(pid, 0x10000, 100).unwrap();
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        // Down to pages_low + 1 free: no reclaim, no wake-up.
        for i in 0..43 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, true).await, Ok(Access::Done));
        }
        assert_eq!(k.w().stats.swap_outs, 0);
        assert!(!*k.w().zone_wake_kswapd);
        // At pages_low kswapd would be woken; still no reclaim here.
        for i in 43..54 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, true).await, Ok(Access::Done));
        }
        assert!(*k.w().zone_wake_kswapd && !*k.w().low_on_memory);
        assert_eq!(k.w().stats.swap_outs, 0, "between pages_low and pages_min kswapd does the work");
        // At pages_min the faulting task itself swaps out a whole cluster.
        assert_eq!(user_access(&k, &t, 0x10000 + 54 * PAGE_SIZE, true).await, Ok(Access::Done));
        assert_eq!(k.w().stats.swap_outs, 32, "do_try_to_free_pages ran in the caller");
        assert!(*k.w().low_on_memory);
        assert_eq!(user_access(&k, &t, 0x10000 + 55 * PAGE_SIZE, true).await, Ok(Access::Done));
        // Now the reclaim finds fewer than SWAP_CLUSTER_MAX pages to free:
        // zone_balance_memory fails the allocation although pages are free.
        let failed = user_access(&k, &t, 0x10000 + 56 * PAGE_SIZE, true).await;
        assert!(matches!(failed, Ok(Access::Killed(_))), "{failed:?}");
        assert!(*k.w().free_pages > 0);
    });
    assert_eq!(outcome, Outcome::Finished);
}

/// Whether `task` holds the BKL when it first reaches `point` (the lock's
/// acquisitions, releases and drops in the event log before it).
fn holds_bkl_at(sim: &Sim, task: engine::TaskId, point: &str) -> Option<bool> {
    let bkl = sim.bkl();
    let mut held = false;
    for e in sim.events().iter().filter(|e| e.task == Some(task)) {
        if e.point == point {
            return Some(held);
        }
        match e.kind {
            EventKind::Acquired if e.lock == Some(bkl) => held = true,
            EventKind::Released | EventKind::BklDropped if e.lock == Some(bkl) => held = false,
            _ => {}
        }
    }
    None
}

/// A swap-cache page nobody maps (for shrink_mmap) and a shm page only its
/// segment holds (for shm_swap), in a machine of 64 pages.
fn reclaimable_pages(sim: &Rc<Sim>, k: &Rc<Kernel>) {
    let pid = k.create_process("p");
    k.map_anonymous(pid, 0x10000, 1).unwrap();
    let seg = k.shmget(1);
    k.shmat(pid, seg, 0x40000000).unwrap();
    let outcome = run_as(sim, k, pid, |k, t| async move {
        assert_eq!(user_access(&k, &t, 0x10000, true).await, Ok(Access::Done));
        assert_eq!(user_access(&k, &t, 0x40000000, true).await, Ok(Access::Done));
        assert!(matches!(vmscan::swap_out_pte(&k, &t, 1, 0x10000).await, Ok(vmscan::SwapOut::Done(_))));
        assert_eq!(vmscan::swap_out_pte(&k, &t, 1, 0x40000000).await, Ok(vmscan::SwapOut::Unmapped));
        t.sleep_io("test:wait_for_write", 100_000_000).await;
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(k.w().swap_cache.len(), 1, "the swap-cache page only the cache holds, for shrink_mmap");
}

#[test]
fn kswapd_reclaims_with_no_bkl_but_swap_out_and_shm_swaps_pre_and_postop() {
    let (sim, k) = boot(Variant::Pre4);
    reclaimable_pages(&sim, &k);
    // Keep shm_swap's page: a second attach would map it; here it is only
    // in the segment. Wake kswapd as an allocation at pages_low does.
    *k.w().zone_wake_kswapd = true;
    let pid = k.create_kernel_thread("kswapd");
    let kk = Rc::clone(&k);
    let task = sim.spawn("kswapd", move |t| async move {
        let _ = vmscan::kswapd(&kk, &t).await;
    });
    k.bind(task, pid);
    sim.set_daemon(task);
    assert_eq!(sim.run(), Outcome::Finished);
    assert!(k.w().swap_cache.len() == 1 && k.w().stats.swap_outs == 2, "{:?}", k.w().stats);
    assert_eq!(holds_bkl_at(&sim, task, "shrink_mmap:TryLockPage"), Some(false), "shrink_mmap runs without the BKL");
    assert_eq!(holds_bkl_at(&sim, task, "get_swap_page:swap_list_lock"), Some(true), "shm_swap_preop holds it");
    assert_eq!(holds_bkl_at(&sim, task, "shm_swap:shm_lockall"), Some(false), "shm_swap_core runs without it");
    assert_eq!(holds_bkl_at(&sim, task, "shm_swap_postop:lock_kernel"), Some(false));
}

#[test]
fn direct_reclaim_keeps_its_callers_bkl_depth() {
    let (sim, k) = boot(Variant::Pre4);
    reclaimable_pages(&sim, &k);
    let pid = k.create_process("allocator");
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        t.lock_kernel("test:lock_kernel").await;
        // Allocate down to pages_min: that allocation reclaims in this task.
        let mut pages = Vec::new();
        while k.w().stats.swap_outs < 2 {
            let page = page_alloc::alloc_page(&k, &t, "test:alloc_page").await.unwrap();
            assert_eq!(t.lock_depth(), 0, "shm_swap's unlock_kernel only lowered the depth");
            pages.extend(page);
        }
        assert!(*k.w().low_on_memory);
        for page in pages {
            page_alloc::free_page(&k, &t, page, "test:free_page").unwrap();
        }
        t.unlock_kernel("test:unlock_kernel");
    });
    assert_eq!(outcome, Outcome::Finished);
    let task = *k.w().by_task.iter().find(|(_, &p)| p == pid).unwrap().0;
    assert_eq!(holds_bkl_at(&sim, task, "shrink_mmap:TryLockPage"), Some(true), "the caller's BKL stays held");
    assert_eq!(holds_bkl_at(&sim, task, "shm_swap:shm_lockall"), Some(true));
}

/// A process with a shm attach at 0x10000 (its page written) and a page
/// on swap at 0x20000.
fn attached_process(sim: &Rc<Sim>, k: &Rc<Kernel>) -> (Pid, ShmId) {
    let pid = k.create_process("exiter");
    let seg = k.shmget(1);
    k.shmat(pid, seg, 0x10000).unwrap();
    k.map_anonymous(pid, 0x20000, 1).unwrap();
    let outcome = run_as(sim, k, pid, |k, t| async move {
        assert_eq!(user_access(&k, &t, 0x10000, true).await, Ok(Access::Done));
        assert_eq!(user_access(&k, &t, 0x20000, true).await, Ok(Access::Done));
        assert!(vmscan::page_out(&k, &t, 0x20000).await.unwrap().is_ok());
    });
    assert_eq!(outcome, Outcome::Finished);
    (pid, seg)
}

/// The sleeps of `task` before it reaches `point`.
fn sleeps_before(sim: &Sim, task: engine::TaskId, point: &str) -> Vec<&'static str> {
    let events = sim.events();
    let end = events.iter().position(|e| e.task == Some(task) && e.point == point).unwrap_or(events.len());
    events[..end]
        .iter()
        .filter(|e| e.task == Some(task) && matches!(e.kind, EventKind::Sleep(_)))
        .map(|e| e.point)
        .collect()
}

#[test]
fn an_ordinary_shm_detach_in_exit_does_not_sleep() {
    let (sim, k) = boot(Variant::Pre4);
    let (pid, seg) = attached_process(&sim, &k);
    // From here every alloc_sleep decision sleeps: a sleep the model has is taken.
    sim.set_chooser(Box::new(engine::RandomChooser::new(1, 1.0)));
    let kk = Rc::clone(&k);
    let task = sim.spawn("exiter", move |t| async move { exit::do_exit(&kk, &t).await.unwrap() });
    k.bind(task, pid);
    assert_eq!(sim.run(), Outcome::Finished);
    assert_eq!(sleeps_before(&sim, task, "do_exit:__exit_files"), Vec::<&str>::new(), "exit_mmap never slept");
    let w = k.w();
    assert!(!w.shm_segs[seg].deleted && w.shm_segs[seg].nattch == 0, "the segment stays");
    assert!(matches!(w.shm_segs[seg].entries[0], Pte::Present { .. }));
}

#[test]
fn the_last_detach_of_a_removed_segment_sleeps_on_shm_ids_sem_and_deletes_it() {
    let (sim, k) = boot(Variant::Pre4);
    let (pid, seg) = attached_process(&sim, &k);
    // The segment's page goes to swap too: shm_delete must free its slot.
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert!(vmscan::page_out(&k, &t, 0x10000).await.unwrap().is_ok());
        assert_eq!(shm::sys_shmctl_rmid(&k, &t, 0).await, Ok(0));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(k.w().shm_segs[seg].dest && !k.w().shm_segs[seg].unlinked);
    // Another task holds shm_ids.sem across a sleep (no BKL) while the exit runs.
    let holder = k.create_process("ipc");
    let kk = Rc::clone(&k);
    let htask = sim.spawn("ipc", move |t| async move {
        t.down(kk.shm_ids_sem, "test:down_shm_ids_sem").await;
        t.sleep_io("test:hold", 1_000_000).await;
        t.up(kk.shm_ids_sem, "test:up_shm_ids_sem");
    });
    k.bind(htask, holder);
    let kk = Rc::clone(&k);
    let task = sim.spawn("exiter", move |t| async move { exit::do_exit(&kk, &t).await.unwrap() });
    k.bind(task, pid);
    assert_eq!(sim.run(), Outcome::Finished);
    let slept = sleeps_before(&sim, task, "do_exit:__exit_files");
    assert_eq!(slept, vec!["shm_unlink:down_shm_ids_sem"], "the SHM_DEST teardown slept, dropping the BKL");
    let w = k.w();
    assert!(w.shm_segs[seg].deleted && w.shm_segs[seg].entries.is_empty());
    assert_eq!((*w.shm_tot, *w.shm_rss, *w.shm_swp), (0, 0, 0));
    assert!(w.swap_info[0].swap_map.as_ref().unwrap().iter().skip(1).all(|&c| c == 0), "every slot freed");
    drop(w);
    assert_eq!(invariants::check_quiescent(&k), None);
}
