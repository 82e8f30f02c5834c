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
    w.pte(mm, addr)
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
        let child = fork::do_fork(&k, &t, false, Box::new(|_t| Box::pin(async {}))).await.unwrap();
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
            // Dirty: the pte (2.3.99, and the model's 2.4 unuse_pte) or the
            // page (5.1 maps it clean; try_to_free_swap's SetPageDirty).
            let Pte::Present { page, dirty, .. } = pte(&k, pid, 0x10000 + i * PAGE_SIZE) else { panic!("{variant}") };
            assert!(dirty || k.w().pages[page].dirty, "{variant}");
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
fn unlisted_child_with_swap_pte(sim: &Rc<Sim>, k: &Rc<Kernel>, parent: Pid) -> (Pid, SwpEntry) {
    let child = k.create_process("child");
    k.map_anonymous(child, 0x10000, 1).unwrap();
    let mm = k.w().procs[&child].mm.unwrap();
    let outcome = run_as(sim, k, child, move |k, t| async move {
        assert_eq!(memory::pte_alloc(&k, &t, mm, 0x10000, "test:pte_alloc").await, Ok(true));
    });
    assert_eq!(outcome, Outcome::Finished);
    let Pte::Swap(entry) = pte(k, parent, 0x10000) else { panic!() };
    let mut w = k.w();
    w.procs[&child].linked = false;
    w.task_list.retain(|&p| p != child);
    w.set_pte(mm, 0x10000, Pte::Swap(entry));
    w.swap_info[0].swap_map.as_mut().unwrap()[entry.offset as usize] += 1;
    (child, entry)
}

#[test]
fn pre4_swapoff_misses_an_mm_off_the_task_list_and_forces_the_count() {
    let (sim, k) = boot(Variant::Pre4);
    let parent = swapped_process(&sim, &k, 1);
    let (_, entry) = unlisted_child_with_swap_pte(&sim, &k, parent);
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
    let (child, _) = unlisted_child_with_swap_pte(&sim, &k, parent);
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
        // 55 pages and their page table: one more and reclaim would free
        // less than a cluster (the next test).
        for i in 0..55 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, true).await, Ok(Access::Done), "write {i}");
        }
        // The swap-outs' writes complete: their pages become reclaimable.
        t.sleep_io("test:wait_for_writes", 100_000_000).await;
        for i in 0..55 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, false).await, Ok(Access::Done), "read {i}");
        }
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(k.w().stats.swap_outs >= 32, "{:?}", k.w().stats);
    assert!(k.w().stats.swap_ins >= 32, "{:?}", k.w().stats);
    assert_eq!(invariants::check_quiescent(&k), None);
}

/// The named points of the run's events (reached, locked, unlocked), in
/// order, each once where events repeat it.
fn points_reached(sim: &Sim) -> Vec<&'static str> {
    let mut points: Vec<&'static str> = sim.events().into_iter().map(|e| e.point).filter(|p| !p.is_empty()).collect();
    points.dedup();
    points
}

#[test]
fn swap_out_holds_the_chosen_mm_only_after_dropping_tasklist_lock() {
    // mm/vmscan.c:372 read_unlock(&tasklist_lock), then 384
    // atomic_inc(&best->mm_count): a point of its own between them, where
    // code without the BKL may drop the mm.
    let (sim, k) = boot(Variant::Pre4);
    let pid = k.create_process("p");
    k.map_anonymous(pid, 0x10000, 1).unwrap();
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        assert_eq!(user_access(&k, &t, 0x10000, true).await, Ok(Access::Done));
        // The first visit only ages the young pte; the second takes it.
        assert_eq!(vmscan::swap_out_pte(&k, &t, pid, 0x10000).await, Ok(vmscan::SwapOut::Failed));
        assert!(matches!(vmscan::swap_out_pte(&k, &t, pid, 0x10000).await, Ok(vmscan::SwapOut::Done(_))));
    });
    assert_eq!(outcome, Outcome::Finished);
    let points = points_reached(&sim);
    let unlock = points.iter().position(|&p| p == "swap_out:read_unlock_tasklist").expect("read_unlock");
    let hold = points.iter().position(|&p| p == "swap_out:atomic_inc_mm_count").expect("the mm_count point");
    assert!(unlock < hold, "mm_count is raised after the task list is unlocked: {points:?}");
}

#[test]
fn mmap_takes_the_big_kernel_lock_inside_mmap_sem() {
    // do_mmap2 (arch/i386/kernel/sys_i386.c:60-66): down(mmap_sem),
    // lock_kernel(), do_mmap_pgoff, unlock_kernel(), up(mmap_sem).
    let (sim, k) = boot(Variant::Pre4);
    let pid = k.create_process("p");
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        assert_eq!(mmap::sys_mmap(&k, &t, 0x40000, 2).await, Ok(0));
    });
    assert_eq!(outcome, Outcome::Finished);
    let points = points_reached(&sim);
    let order: Vec<&str> =
        points.iter().copied().filter(|p| p.starts_with("sys_mmap:") || p.starts_with("do_mmap2:")).collect();
    assert_eq!(
        order,
        ["sys_mmap:down_mmap_sem", "do_mmap2:lock_kernel", "do_mmap2:unlock_kernel", "sys_mmap:up_mmap_sem"],
        "{points:?}"
    );
}

/// The page's swap-cache state and the pte at 0x10000 after one access.
fn fault_once(variant: Variant, pages: u64, write: bool) -> (Rc<Kernel>, Pid, SwpEntry, Pte) {
    let (sim, k) = boot(variant);
    let pid = swapped_process(&sim, &k, pages);
    let Pte::Swap(entry) = pte(&k, pid, 0x10000) else { panic!("the page is not out") };
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        assert_eq!(user_access(&k, &t, 0x10000, write).await, Ok(Access::Done));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(invariants::check_quiescent(&k), None);
    let after = pte(&k, pid, 0x10000);
    (k, pid, entry, after)
}

#[test]
fn a_2_4_write_fault_maps_the_page_writable_and_leaves_it_in_the_swap_cache() {
    // 2.4.17 do_swap_page: can_share_swap_page only makes the pte writable;
    // pre4's "write and !is_page_shared -> delete_from_swap_cache" is gone.
    let (k, _, entry, after) = fault_once(Variant::Linux2_4_10, 1, true);
    let Pte::Present { page, write: true, dirty: true, .. } = after else { panic!("{after:?}") };
    assert_eq!(k.w().swap_cache.get(&entry), Some(&page), "the page stays in the swap cache");
    assert_eq!(swap_count(&k, entry), 1, "the cache's reference");
}

#[test]
fn a_5_1_write_fault_reuses_the_page_and_takes_it_out_of_the_swap_cache() {
    // 5.1 do_swap_page: reuse_swap_page on a page nobody else uses deletes it
    // from the swap cache (SetPageDirty) and the pte is writable.
    let (k, _, entry, after) = fault_once(Variant::Linux5_1, 1, true);
    let Pte::Present { page, write: true, .. } = after else { panic!("{after:?}") };
    assert!(!k.w().pages[page].swap_cache);
    assert_eq!(swap_count(&k, entry), 0);
}

#[test]
fn a_2_4_read_fault_with_swap_half_full_removes_the_exclusive_page_and_keeps_it_dirty() {
    // 9 of the 15 slots in use: vm_swap_full(), so do_swap_page runs
    // remove_exclusive_swap_page; the pte stays clean and read-only, and
    // PG_dirty makes the page stealer write the page out, not drop it.
    let (sim, k) = boot(Variant::Linux2_4_10);
    let pid = swapped_process(&sim, &k, 9);
    let Pte::Swap(entry) = pte(&k, pid, 0x10000) else { panic!("the page is not out") };
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert_eq!(user_access(&k, &t, 0x10000, false).await, Ok(Access::Done));
    });
    assert_eq!(outcome, Outcome::Finished);
    let Pte::Present { page, write: false, dirty: false, .. } = pte(&k, pid, 0x10000) else {
        panic!("not mapped clean")
    };
    assert!(!k.w().pages[page].swap_cache && k.w().pages[page].dirty);
    assert_eq!(swap_count(&k, entry), 0);
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert!(vmscan::page_out(&k, &t, 0x10000).await.unwrap().is_ok());
        // Read back: the data written before must come from the new slot.
        assert_eq!(user_access(&k, &t, 0x10000, false).await, Ok(Access::Done));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(invariants::check_quiescent(&k), None);
}

/// A process with one mapping of `pages` pages at `start`, each written.
fn written_process(sim: &Rc<Sim>, k: &Rc<Kernel>, start: u64, pages: u64) -> Pid {
    let pid = k.create_process("p");
    k.map_anonymous(pid, start, pages).unwrap();
    let outcome = run_as(sim, k, pid, move |k, t| async move {
        for i in 0..pages {
            assert_eq!(user_access(&k, &t, start + i * PAGE_SIZE, true).await, Ok(Access::Done));
        }
    });
    assert_eq!(outcome, Outcome::Finished);
    pid
}

fn page_tables_of(k: &Kernel, pid: Pid) -> Vec<u64> {
    let w = k.w();
    let mm = w.procs[&pid].mm.unwrap();
    w.page_tables[w.mms[mm].pgd.unwrap()].tables.keys().copied().collect()
}

#[test]
fn a_vma_across_4mb_has_two_page_tables_which_fork_copies_and_exit_frees() {
    let (sim, k) = boot(Variant::Pre4);
    // 0x3ff000 is the last page of page table 0, 0x400000 the first of 1.
    let pid = written_process(&sim, &k, 0x3ff000, 2);
    assert_eq!(page_tables_of(&k, pid), vec![0, 1]);
    assert_eq!(*k.w().free_pages, 64 - 2 - 2, "two pages and two page tables");
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert_eq!(fork::do_fork(&k, &t, false, Box::new(|_t| Box::pin(async {}))).await, Ok(2));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(page_tables_of(&k, 2), vec![0, 1], "pte_alloc for each table the parent has");
    assert_eq!(*k.w().free_pages, 64 - 2 - 4, "the pages are shared, the tables are not");
    // copy_page_range: set_pte(dst_pte, pte_mkold(pte)); the parent's stays young.
    assert!(matches!(pte(&k, 2, 0x400000), Pte::Present { young: false, write: false, .. }));
    assert!(matches!(pte(&k, pid, 0x400000), Pte::Present { young: true, write: false, .. }));
    assert_eq!(invariants::check_quiescent(&k), None);
    for p in [pid, 2] {
        assert_eq!(run_as(&sim, &k, p, |k, t| async move { exit::do_exit(&k, &t).await.unwrap() }), Outcome::Finished);
    }
    assert_eq!(*k.w().free_pages, 64, "clear_page_tables freed every page table");
}

#[test]
fn an_exited_task_stays_on_the_task_list_as_a_zombie_until_wait4_reaps_it() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = swapped_process(&sim, &k, 1);
    let outcome = run_as(&sim, &k, pid, |k, t| async move { exit::do_exit(&k, &t).await.unwrap() });
    assert_eq!(outcome, Outcome::Finished);
    {
        // for_each_task still meets it, with tsk->mm == NULL.
        let w = k.w();
        assert!(w.task_list.contains(&pid), "a zombie is still on the task list");
        assert_eq!(w.procs[&pid].mm, None);
        assert!(w.procs[&pid].exited && w.procs[&pid].linked);
    }
    // swapoff walks past the zombie (unuse_process(NULL) returns at once).
    let swapper = k.create_process("swapoff");
    let outcome = run_as(&sim, &k, swapper, |k, t| async move {
        assert_eq!(swapfile::sys_swapoff(&k, &t, 0).await, Ok(0));
        // wait4 reaps it: release → unhash_process.
        assert_eq!(exit::sys_wait4(&k, &t, pid).await, Ok(pid as i64));
        assert_eq!(exit::sys_wait4(&k, &t, pid).await, Ok(-10), "-ECHILD once reaped");
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(!k.w().task_list.contains(&pid), "reaped");
    assert_eq!(invariants::check_quiescent(&k), None);
}

#[test]
fn munmap_frees_the_page_tables_that_only_the_range_used() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = written_process(&sim, &k, 0x3ff000, 2);
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert_eq!(mmap::sys_munmap(&k, &t, 0x400000, 1).await, Ok(0));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(page_tables_of(&k, pid), vec![0], "free_pgtables: table 1 mapped only the hole");
    assert_eq!(*k.w().free_pages, 64 - 2);
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        assert_eq!(mmap::sys_munmap(&k, &t, 0x3ff000, 1).await, Ok(0));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(page_tables_of(&k, pid).is_empty());
    assert_eq!(*k.w().free_pages, 64);
    assert_eq!(invariants::check_quiescent(&k), None);
}

/// try_to_swap_out: "Don't look at this pte if it's been accessed
/// recently": the first visit of a young pte only makes it old, the second
/// takes the page. (The model before took it at the first visit.)
#[test]
fn the_page_stealer_takes_a_young_page_only_at_its_second_visit() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = written_process(&sim, &k, 0x10000, 1);
    assert!(matches!(pte(&k, pid, 0x10000), Pte::Present { young: true, dirty: true, .. }), "mk_pte is young");
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        assert_eq!(vmscan::swap_out_pte(&k, &t, pid, 0x10000).await, Ok(vmscan::SwapOut::Failed));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(matches!(pte(&k, pid, 0x10000), Pte::Present { young: false, dirty: true, .. }), "only aged");
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        assert!(matches!(vmscan::swap_out_pte(&k, &t, pid, 0x10000).await, Ok(vmscan::SwapOut::Done(_))));
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(matches!(pte(&k, pid, 0x10000), Pte::Swap(_)));
}

/// The ptes that unuse_pte and do_swap_page install are young (mk_pte with
/// vm_page_prot), so the page stealer needs two visits behind swapoff too.
#[test]
fn swapoff_and_swap_in_install_young_ptes() {
    for variant in [Variant::Pre4, Variant::Patched] {
        let (sim, k) = boot(variant);
        let pid = swapped_process(&sim, &k, 2);
        let outcome = run_as(&sim, &k, pid, |k, t| async move {
            assert_eq!(user_access(&k, &t, 0x11000, false).await, Ok(Access::Done));
        });
        assert_eq!(outcome, Outcome::Finished);
        assert!(matches!(pte(&k, pid, 0x11000), Pte::Present { young: true, .. }), "do_swap_page");
        let outcome = run_as(&sim, &k, pid, |k, t| async move {
            assert_eq!(swapfile::sys_swapoff(&k, &t, 0).await, Ok(0));
        });
        assert_eq!(outcome, Outcome::Finished);
        assert!(matches!(pte(&k, pid, 0x10000), Pte::Present { young: true, dirty: true, .. }), "unuse_pte");
    }
}

/// scan_swap_map hands slots out in sequence from `cluster_next`: a slot
/// freed behind the cursor is taken again only when the scan reaches
/// `highest_bit` and starts a new cluster from `lowest_bit`. (The model
/// before took the first free slot.)
#[test]
fn swap_slots_come_from_the_cluster_cursor_not_the_first_free_slot() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = k.create_process("p");
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(swapfile::get_swap_page(&k, &t).await.unwrap().offset);
        }
        assert_eq!(got, [1, 2, 3]);
        swapfile::swap_free(&k, &t, SwpEntry { type_: 0, offset: 2 }, "test:swap_free").await.unwrap();
        assert_eq!(swapfile::get_swap_page(&k, &t).await.unwrap().offset, 4, "not the freed slot 2");
        for offset in 5..16 {
            assert_eq!(swapfile::get_swap_page(&k, &t).await.unwrap().offset, offset);
        }
        assert_eq!(swapfile::get_swap_page(&k, &t).await.unwrap().offset, 2, "a new cluster from lowest_bit");
        assert_eq!(swapfile::get_swap_page(&k, &t).await, None, "the device is full");
    });
    assert_eq!(outcome, Outcome::Finished);
}

#[test]
fn an_allocation_at_pages_min_reclaims_in_the_caller_and_fails_when_it_frees_less_than_a_cluster() {
    let (sim, k) = boot_with(64, Variant::Pre4);
    let pid = k.create_process("hog");
    k.map_anonymous(pid, 0x10000, 100).unwrap();
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        // Down to pages_low + 1 free (the page table takes one page): no
        // reclaim, no wake-up.
        for i in 0..42 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, true).await, Ok(Access::Done));
        }
        assert_eq!(k.w().stats.swap_outs, 0);
        assert!(!*k.w().zone_wake_kswapd);
        // At pages_low kswapd would be woken; still no reclaim here.
        for i in 42..53 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, true).await, Ok(Access::Done));
        }
        assert!(*k.w().zone_wake_kswapd && !*k.w().low_on_memory);
        assert_eq!(k.w().stats.swap_outs, 0, "between pages_low and pages_min kswapd does the work");
        // At pages_min the faulting task itself swaps out a whole cluster.
        assert_eq!(user_access(&k, &t, 0x10000 + 53 * PAGE_SIZE, true).await, Ok(Access::Done));
        assert_eq!(k.w().stats.swap_outs, 32, "do_try_to_free_pages ran in the caller");
        assert!(*k.w().low_on_memory);
        assert_eq!(user_access(&k, &t, 0x10000 + 54 * PAGE_SIZE, true).await, Ok(Access::Done));
        // Now the reclaim finds fewer than SWAP_CLUSTER_MAX pages to free:
        // zone_balance_memory fails the allocation although pages are free.
        let failed = user_access(&k, &t, 0x10000 + 55 * PAGE_SIZE, true).await;
        assert!(matches!(failed, Ok(Access::Killed(_))), "{failed:?}");
        assert!(*k.w().free_pages > 0);
    });
    assert_eq!(outcome, Outcome::Finished);
}

#[test]
fn a_clone_vm_child_shares_the_mm_and_only_the_last_user_tears_it_down() {
    let (sim, k) = boot(Variant::Patched);
    let pid = swapped_process(&sim, &k, 1);
    let mm = k.w().procs[&pid].mm.unwrap();
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        let child = fork::do_fork(&k, &t, true, Box::new(|_t| Box::pin(async {}))).await.unwrap();
        assert!(child > 0);
    });
    assert_eq!(outcome, Outcome::Finished);
    let thread = *k.w().task_list.last().unwrap();
    assert_eq!(k.w().procs[&thread].mm, Some(mm), "CLONE_VM: the same mm");
    assert_eq!(k.w().mms[mm].mm_users, 2);
    // exec with mm_users > 1: a new mm, and the old one is only mmput.
    let outcome = run_as(&sim, &k, pid, |k, t| async move { mmap::exec_mmap(&k, &t).await.unwrap() });
    assert_eq!(outcome, Outcome::Finished);
    assert_ne!(k.w().procs[&pid].mm, Some(mm));
    assert_eq!(k.w().mms[mm].mm_users, 1);
    assert!(!k.w().mms[mm].mm_gone, "the thread still uses it");
    assert_eq!(k.w().mms[mm].mmap.len(), 1, "not torn down");
    assert!(k.w().mmlist.contains(&mm));
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
        // Two visits of the page stealer each: the first only ages the pte.
        assert_eq!(vmscan::swap_out_pte(&k, &t, 1, 0x10000).await, Ok(vmscan::SwapOut::Failed));
        assert!(matches!(vmscan::swap_out_pte(&k, &t, 1, 0x10000).await, Ok(vmscan::SwapOut::Done(_))));
        assert_eq!(vmscan::swap_out_pte(&k, &t, 1, 0x40000000).await, Ok(vmscan::SwapOut::Failed));
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

/// The patch's walk relies on mmap_sem from the first VMA to the last pte:
/// a walk without it (the fix half undone: `up` moved before the walk) is a
/// `lock-held` violation at once, whether or not another task races there.
#[test]
fn the_patched_walk_without_mmap_sem_is_a_lock_held_violation() {
    let (sim, k) = boot(Variant::Patched);
    let pid = swapped_process(&sim, &k, 1);
    let Pte::Swap(entry) = pte(&k, pid, 0x10000) else { panic!("the page is not out") };
    let mm = k.w().procs[&pid].mm.unwrap();
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        let _ = swapfile::unuse_vmas(&k, &t, mm, entry, PageId::default()).await;
    });
    let Outcome::Violation(v) = outcome else { panic!("no violation: {outcome:?}") };
    assert_eq!(v.invariant, "lock-held", "{}", v.message);
    assert!(v.message.contains("mmap_sem"), "{}", v.message);
}

/// pre4's walk has no mmap_sem to assert: the same walk is no violation.
#[test]
fn the_pre4_walk_asserts_no_mmap_sem() {
    let (sim, k) = boot(Variant::Pre4);
    let pid = swapped_process(&sim, &k, 1);
    let mm = k.w().procs[&pid].mm.unwrap();
    let outcome = run_as(&sim, &k, pid, move |k, t| async move {
        let other = SwpEntry { type_: 0, offset: 9 };
        let _ = swapfile::unuse_vmas(&k, &t, mm, other, PageId::default()).await;
    });
    assert_eq!(outcome, Outcome::Finished);
}
