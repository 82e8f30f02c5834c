//! 2.4.10's `try_to_unuse` (mm/swapfile.c, read in the 2.4.17 tree): the
//! design Hugh Dickins gave the mmlist its "second role" for, transplanted
//! into the 2.3.99 world.
//!
//! For each slot in use (wrapping around until none is): read the page
//! (or find it in the swap cache), wait for and lock it, then, while the
//! slot has references other than the cache's, walk the mmlist *around
//! the circle from `start_mm`* under mmlist_lock, each mm under its
//! page_table_lock (`unuse_process`), init_mm standing for shm
//! (`shmem_unuse`). `start_mm` is held through `mm_users` and moves to the
//! first mm where a reference went, so forked children (listed right after
//! their parent) are found next. Nothing is forced to zero: a reference
//! that remains is written out and the slot is found again on a later
//! pass ("Undead"s are fine, the rescan picks them up).

use engine::Task;

use crate::mm::{mmget, mmput};
use crate::page_alloc::free_page;
use crate::shm::shm_unuse;
use crate::swap_state::{delete_from_swap_cache_nolock, read_swap_cache_async, rw_swap_page_write_async};
use crate::swapfile::{swap_count, unuse_vmas, ENOMEM};
use crate::types::*;
use crate::{KResult, Kernel};

/// A position on the circular mmlist: `init_mm` (its head) or a listed mm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cursor {
    InitMm,
    Mm(MmId),
}

/// `try_to_unuse(type)` of 2.4.10; returns 0 or -ENOMEM.
pub async fn try_to_unuse(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    // start_mm = &init_mm; atomic_inc(&init_mm.mm_users): init_mm never goes.
    let mut start_mm = Cursor::InitMm;
    let mut i = 0u32;
    let mut retval = 0;
    let mut reset_overflow = false;
    loop {
        i = find_next_to_unuse(k, t, type_, i);
        if i == 0 {
            break;
        }
        let entry = SwpEntry { type_, offset: i };

        // Get a page for the entry, from the swap cache or read from disk
        // (asynchronously: wait_on_page below waits for the read).
        let Some(page) = read_swap_cache_async(k, t, entry, false).await? else {
            // Either the entry was freed independently (it will not be
            // reused: allocation from here is off), or no memory.
            if swap_count(k, entry) == 0 {
                continue;
            }
            retval = -ENOMEM;
            break;
        };
        t.point("try_to_unuse:after_read_swap_cache").await;

        // Don't hold on to start_mm if it looks like exiting.
        if let Cursor::Mm(mm) = start_mm {
            k.check_mm(t, mm, "try_to_unuse:start_mm")?;
            if k.w().mms[mm].mm_users == 1 {
                mmput(k, t, mm).await?;
                start_mm = Cursor::InitMm;
            }
        }

        // Wait for and lock the page: a racing do_swap_page finishes first.
        k.check_page(t, page, "try_to_unuse:wait_on_page")?;
        let page_lock = k.w().pages[page].lock;
        t.wait_on_page(page_lock, "try_to_unuse:wait_on_page").await;
        t.lock_page(page_lock, "try_to_unuse:lock_page").await;

        // Remove all references to the entry, without blocking.
        let swcount = swap_count(k, entry);
        if swcount > 1 {
            unuse_at(k, t, start_mm, entry, page).await?;
        }
        if swap_count(k, entry) > 1 {
            start_mm = walk_mmlist(k, t, start_mm, swcount, entry, page).await?;
        }

        if swap_count(k, entry) == SWAP_MAP_MAX {
            reset_swap_map_max(k, t, entry).await;
            reset_overflow = true;
        }

        // If a reference remains (rare), save the data to disk first: it
        // will be read into another page on a later pass. Then delete the
        // page from the swap cache even so ("Note shmem_unuse already
        // deleted its from swap cache" does not apply to SysV shm here).
        let swcount = swap_count(k, entry);
        k.check_page(t, page, "try_to_unuse:PageSwapCache")?;
        let in_cache = k.w().pages[page].swap_cache;
        if (swcount > 0) != in_cache {
            let what = crate::page_alloc::page_number(k, page);
            return Err(k.oops(
                t,
                "swap-cache",
                format!("try_to_unuse: {entry} has count {swcount} but {what} is in the swap cache: {in_cache}: BUG"),
            ));
        }
        if swcount > 1 && page_differs_from_disk(k, page, entry) {
            rw_swap_page_write_async(k, t, page, entry);
            t.lock_page(page_lock, "try_to_unuse:lock_page_after_write").await;
        }
        if k.w().pages[page].swap_cache {
            delete_from_swap_cache_nolock(k, t, page).await?;
        }
        // SetPageDirty(page), "so try_to_swap_out will preserve it": ptes
        // that mapped it before may be clean.
        crate::later_swap::set_page_dirty(k, page);
        t.unlock_page(page_lock, "try_to_unuse:UnlockPage");
        free_page(k, t, page, "try_to_unuse:page_cache_release")?;

        // if (current->need_resched) schedule();
        t.cond_resched("try_to_unuse:need_resched").await;
    }
    if let Cursor::Mm(mm) = start_mm {
        mmput(k, t, mm).await?;
    }
    if reset_overflow {
        k.printk(t, "try_to_unuse:reset_overflow", "swapoff: cleared swap entry overflow");
    }
    Ok(retval)
}

/// `find_next_to_unuse` (2.4.10): the next slot in use after `prev`,
/// wrapping round to the start once, 0 when none is. No lock: false hits
/// are fine and allocation from the device is already off.
fn find_next_to_unuse(k: &Kernel, t: &Task, type_: usize, prev: u32) -> u32 {
    let w = k.w();
    let map = w.swap_info[type_].swap_map.as_ref().expect("swapoff holds the device");
    let in_use = |i: usize| map[i] != 0 && map[i] != SWAP_MAP_BAD;
    let after = (prev as usize + 1..map.len()).find(|&i| in_use(i));
    let found = after.or_else(|| (1..=(prev as usize).min(map.len() - 1)).find(|&i| in_use(i)));
    let scanned = match found {
        Some(i) if i > prev as usize => i - prev as usize,
        Some(i) => map.len() - prev as usize + i,
        None => map.len(),
    };
    drop(w);
    t.work(scanned as u64 * k.costs.pte_scan);
    found.map_or(0, |i| i as u32)
}

/// Remove the references of one mm (`unuse_process`, under its
/// page_table_lock) or, at init_mm, of shm (`shmem_unuse`).
async fn unuse_at(k: &Kernel, t: &Task, at: Cursor, entry: SwpEntry, page: PageId) -> KResult<()> {
    match at {
        Cursor::InitMm => shm_unuse(k, t, entry, page).await,
        Cursor::Mm(mm) => {
            k.check_mm(t, mm, "unuse_process")?;
            let ptl = k.w().mms[mm].page_table_lock;
            t.spin_lock(ptl, "unuse_process:page_table_lock").await;
            unuse_vmas(k, t, mm, entry, page).await?;
            t.spin_unlock(ptl, "unuse_process:page_table_unlock");
            Ok(())
        }
    }
}

/// The mm after `at` on the circular list (read under mmlist_lock).
fn next_on_list(k: &Kernel, at: Cursor) -> Option<Cursor> {
    let w = k.w();
    let next_index = match at {
        Cursor::InitMm => 0,
        Cursor::Mm(mm) => w.mmlist.iter().position(|&x| x == mm)? + 1,
    };
    Some(w.mmlist.get(next_index).map_or(Cursor::InitMm, |&mm| Cursor::Mm(mm)))
}

/// The walk around the mmlist from `start_mm`, under mmlist_lock, while
/// the slot still has references besides the cache's. Returns the new
/// start_mm (held), having dropped the old one.
async fn walk_mmlist(
    k: &Kernel,
    t: &Task,
    start_mm: Cursor,
    swcount: u16,
    entry: SwpEntry,
    page: PageId,
) -> KResult<Cursor> {
    let mut set_start_mm = swap_count(k, entry) >= swcount;
    let mut new_start_mm = start_mm;
    t.spin_lock(k.mmlist_lock, "try_to_unuse:mmlist_lock").await;
    let mut p = start_mm;
    while swap_count(k, entry) > 1 {
        let Some(next) = next_on_list(k, p) else {
            t.spin_unlock(k.mmlist_lock, "try_to_unuse:mmlist_unlock");
            return Err(k.oops(t, "mm-existence", "try_to_unuse: the walk's mm left the mmlist under mmlist_lock"));
        };
        p = next;
        if p == start_mm {
            break;
        }
        let before = swap_count(k, entry);
        if p == Cursor::InitMm {
            set_start_mm = true;
        }
        unuse_at(k, t, p, entry, page).await?;
        if set_start_mm && swap_count(k, entry) < before {
            new_start_mm = p;
            set_start_mm = false;
        }
    }
    if let Cursor::Mm(mm) = new_start_mm {
        mmget(k, t, mm)?; // atomic_inc(&new_start_mm->mm_users)
    }
    t.spin_unlock(k.mmlist_lock, "try_to_unuse:mmlist_unlock");
    if let Cursor::Mm(mm) = start_mm {
        mmput(k, t, mm).await?;
    }
    Ok(new_start_mm)
}

/// `*swap_map = 1` for a slot stuck at SWAP_MAP_MAX, under both swap
/// locks ("We believe SWAP_MAP_MAX cannot occur in Linux 2.4").
async fn reset_swap_map_max(k: &Kernel, t: &Task, entry: SwpEntry) {
    let sdev_lock = k.w().swap_info[entry.type_].sdev_lock;
    t.spin_lock(k.swaplock, "try_to_unuse:swap_list_lock").await;
    t.spin_lock(sdev_lock, "try_to_unuse:swap_device_lock").await;
    {
        let mut w = k.w();
        *w.nr_swap_pages += 1;
        if let Some(map) = w.swap_info[entry.type_].swap_map.as_mut() {
            map[entry.offset as usize] = 1;
        }
    }
    t.spin_unlock(sdev_lock, "try_to_unuse:swap_device_unlock");
    t.spin_unlock(k.swaplock, "try_to_unuse:swap_list_unlock");
}

/// PageDirty, as this model keeps it: the page's contents differ from
/// the slot's on disk.
fn page_differs_from_disk(k: &Kernel, page: PageId, entry: SwpEntry) -> bool {
    let w = k.w();
    w.pages[page].data != w.swap_info[entry.type_].disk[entry.offset as usize]
}
