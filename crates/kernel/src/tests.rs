//! The kernel routines, run alone (no interleaving) through the engine:
//! reference counts, data, and the mechanisms behind race 1.

use std::future::Future;
use std::rc::Rc;

use engine::{Outcome, ReplayChooser, Sim, SimConfig, Task};

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

#[test]
fn direct_reclaim_swaps_out_when_memory_runs_out_and_keeps_the_data() {
    let sim = Sim::new(SimConfig::default(), Box::new(ReplayChooser::new(Vec::new())));
    let machine = Machine {
        cpus: 1,
        memory_pages: 16,
        swap_devices: vec![64],
        faults: Default::default(),
        max_threads: 512,
        costs: Default::default(),
    };
    let k = Kernel::new(Rc::clone(&sim), &machine, Variant::Patched.fixes());
    let kk = Rc::clone(&k);
    sim.spawn("boot", move |t| async move {
        swapfile::sys_swapon(&kk, &t, 0).await.unwrap();
    });
    assert_eq!(sim.run(), Outcome::Finished);
    let pid = k.create_process("hog");
    k.map_anonymous(pid, 0x10000, 40).unwrap();
    let outcome = run_as(&sim, &k, pid, |k, t| async move {
        for i in 0..40 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, true).await, Ok(Access::Done));
        }
        for i in 0..40 {
            assert_eq!(user_access(&k, &t, 0x10000 + i * PAGE_SIZE, false).await, Ok(Access::Done));
        }
    });
    assert_eq!(outcome, Outcome::Finished);
    assert!(k.w().stats.swap_outs >= 24, "{:?}", k.w().stats);
    assert!(k.w().stats.swap_ins >= 24, "{:?}", k.w().stats);
    assert_eq!(invariants::check_quiescent(&k), None);
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
    let Pte::Present { page, write: true, dirty: true } = after else { panic!("{after:?}") };
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
    let Pte::Present { page, write: false, dirty: false } = pte(&k, pid, 0x10000) else { panic!("not mapped clean") };
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
