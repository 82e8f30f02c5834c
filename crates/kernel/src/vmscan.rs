//! The page stealer (mm/vmscan.c): swap_out → try_to_swap_out for a
//! chosen pte, and shrink_mmap's reclaim of an unused swap-cache page.

use engine::Task;

use crate::mm::mmdrop;
use crate::page_alloc::{free_page, page_number};
use crate::swap_state::{add_to_swap_cache, delete_from_swap_cache_core, rw_swap_page_write_async};
use crate::swapfile::{get_swap_page, swap_duplicate};
use crate::types::*;
use crate::{KResult, Kernel};

/// Whether try_to_swap_out took the pte away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapOut {
    /// The pte now holds a swap entry.
    Done(SwpEntry),
    /// Nothing done (not present, locked, no swap space, or refused).
    Failed,
}

/// `swap_out` (mm/vmscan.c) aimed at one pte of the current process: under
/// the BKL, hold the mm (mm_count), take its page_table_lock and run
/// `try_to_swap_out` on the pte at `addr`.
pub async fn swap_out_pte(k: &Kernel, t: &Task, addr: u64) -> KResult<SwapOut> {
    let addr = addr & !(PAGE_SIZE - 1);
    t.lock_kernel("swap_out:lock_kernel").await;
    let pid = k.current(t);
    let Some(mm) = k.w().procs[&pid].mm else {
        t.unlock_kernel("swap_out:unlock_kernel");
        return Ok(SwapOut::Failed);
    };
    k.check_mm(t, mm, "swap_out")?;
    k.w().mms[mm].mm_count += 1;
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_lock(ptl, "swap_out_mm:vmlist_access_lock").await;
    let (result, unlocked) = try_to_swap_out(k, t, mm, addr).await?;
    if !unlocked {
        t.spin_unlock(ptl, "swap_out_mm:vmlist_access_unlock");
    }
    mmdrop(k, t, mm).await?;
    t.unlock_kernel("swap_out:unlock_kernel");
    Ok(result)
}

/// `try_to_swap_out` (mm/vmscan.c), page_table_lock held. Returns whether
/// it dropped the lock itself. A page already in the swap cache just gets
/// one more swap reference for the pte (`swap_duplicate`, or with the
/// patch `acquire_swap_entry`, which refuses a device being swapped off); a
/// dirty page gets a new slot, joins the swap cache and is written out
/// asynchronously.
async fn try_to_swap_out(k: &Kernel, t: &Task, mm: MmId, addr: u64) -> KResult<(SwapOut, bool)> {
    let pgd = k.w().mms[mm].pgd.expect("a live mm has a pgd");
    let pte = k.w().page_tables[pgd].ptes.get(&addr).copied().unwrap_or(Pte::None);
    let Pte::Present { page, dirty, .. } = pte else { return Ok((SwapOut::Failed, false)) };
    k.check_page(t, page, "try_to_swap_out")?;
    let (page_lock, in_cache, index) = {
        let w = k.w();
        (w.pages[page].lock, w.pages[page].swap_cache, w.pages[page].index)
    };
    if t.page_locked(page_lock) {
        return Ok((SwapOut::Failed, false));
    }
    if in_cache {
        let entry = index.expect("a swap-cache page has an index");
        if k.fixes.no_new_refs {
            // The patch: acquire_swap_entry refuses a device being deleted.
            let writeok = k.w().swap_info[entry.type_].flags & SWP_WRITEOK == SWP_WRITEOK;
            if !writeok {
                return Ok((SwapOut::Failed, false));
            }
        }
        swap_duplicate(k, t, entry, "try_to_swap_out:swap_duplicate").await?;
        set_pte(k, pgd, addr, Pte::Swap(entry));
        k.w().mms[mm].rss -= 1;
        free_page(k, t, page, "try_to_swap_out:__free_page")?;
        return Ok((SwapOut::Done(entry), false));
    }
    if !dirty {
        // A clean anonymous page holds only zeroes: drop it.
        set_pte(k, pgd, addr, Pte::None);
        k.w().mms[mm].rss -= 1;
        free_page(k, t, page, "try_to_swap_out:__free_page_clean")?;
        return Ok((SwapOut::Failed, false));
    }
    let Some(entry) = acquire_swap_entry(k, t, page).await else { return Ok((SwapOut::Failed, false)) };
    // One for the process, one for the swap cache.
    swap_duplicate(k, t, entry, "try_to_swap_out:swap_duplicate_new").await?;
    add_to_swap_cache(k, t, page, entry).await?;
    k.w().mms[mm].rss -= 1;
    set_pte(k, pgd, addr, Pte::Swap(entry));
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_unlock(ptl, "try_to_swap_out:vmlist_access_unlock");
    rw_swap_page_write_async(k, t, page, entry);
    free_page(k, t, page, "try_to_swap_out:__free_page_written")?;
    Ok((SwapOut::Done(entry), true))
}

/// `acquire_swap_entry` (mm/swapfile.c, pre4-5): reuse the page's old slot
/// (PG_swap_entry) if its device is WRITEOK and the slot is free, else
/// `get_swap_page`.
async fn acquire_swap_entry(k: &Kernel, t: &Task, page: PageId) -> Option<SwpEntry> {
    let (swap_entry, index) = {
        let w = k.w();
        (w.pages[page].swap_entry, w.pages[page].index)
    };
    if let (true, Some(entry)) = (swap_entry, index) {
        let (usable, sdev_lock) = {
            let w = k.w();
            let p = &w.swap_info[entry.type_];
            (p.flags & SWP_WRITEOK == SWP_WRITEOK && entry.offset < p.max, p.sdev_lock)
        };
        if usable {
            t.spin_lock(k.swaplock, "acquire_swap_entry:swap_list_lock").await;
            t.spin_lock(sdev_lock, "acquire_swap_entry:swap_device_lock").await;
            let reused = {
                let mut w = k.w();
                let World { swap_info, nr_swap_pages, .. } = &mut *w;
                match swap_info[entry.type_].swap_map.as_mut() {
                    Some(map) if map[entry.offset as usize] == 0 => {
                        map[entry.offset as usize] = 1;
                        *nr_swap_pages -= 1;
                        true
                    }
                    _ => false,
                }
            };
            t.spin_unlock(sdev_lock, "acquire_swap_entry:swap_device_unlock");
            t.spin_unlock(k.swaplock, "acquire_swap_entry:swap_list_unlock");
            if reused {
                return Some(entry);
            }
        }
    }
    get_swap_page(k, t).await
}

use crate::world::World;

fn set_pte(k: &Kernel, pgd: PgdId, addr: u64, pte: Pte) {
    let mut w = k.w();
    let table = &mut w.page_tables[pgd];
    if pte == Pte::None {
        table.ptes.remove(&addr);
    } else {
        table.ptes.insert(addr, pte);
    }
}

/// `shrink_mmap` (mm/filemap.c) reclaiming the swap-cache page of `entry`
/// once nobody but the cache uses it: TryLockPage, check the count,
/// `__delete_from_swap_cache` (drops the cache's swap reference) and
/// release the cache's page reference. Returns whether it was reclaimed.
pub async fn shrink_swap_cache_page(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<bool> {
    let Some(page) = k.w().swap_cache.get(&entry).copied() else { return Ok(false) };
    let (page_lock, count) = {
        let w = k.w();
        (w.pages[page].lock, w.pages[page].count)
    };
    if count != 1 || !t.try_lock_page(page_lock, "shrink_mmap:TryLockPage") {
        return Ok(false);
    }
    delete_from_swap_cache_core(k, t, page).await?;
    t.unlock_page(page_lock, "shrink_mmap:UnlockPage");
    free_page(k, t, page, "shrink_mmap:page_cache_release")?;
    Ok(true)
}

/// Push the page at `addr` of the current process all the way out: the
/// page stealer swaps the pte out, the write completes, and shrink_mmap
/// reclaims the swap-cache copy. A scenario set-up step.
pub async fn page_out(k: &Kernel, t: &Task, addr: u64) -> KResult<Result<SwpEntry, String>> {
    let entry = match swap_out_pte(k, t, addr).await? {
        SwapOut::Done(entry) => entry,
        SwapOut::Failed => {
            return Ok(Err(format!("the page at {addr:#x} could not be swapped out (not present, or no swap space)")))
        }
    };
    let cached = k.w().swap_cache.get(&entry).copied();
    if let Some(page) = cached {
        let page_lock = k.w().pages[page].lock;
        t.wait_on_page(page_lock, "page_out:wait_for_write").await;
        if !shrink_swap_cache_page(k, t, entry).await? {
            let what = page_number(k, page);
            return Ok(Err(format!("{what} for {entry} is still in use and stays in the swap cache")));
        }
    }
    Ok(Ok(entry))
}
