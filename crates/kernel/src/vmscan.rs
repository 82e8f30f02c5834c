//! The page stealer (mm/vmscan.c): swap_out → try_to_swap_out for a
//! chosen pte, and shrink_mmap's reclaim of an unused swap-cache page.

use engine::Task;

use crate::mm::mmdrop;
use crate::page_alloc::{free_page, page_number};
use crate::swap_state::{
    add_to_swap_cache_locked, delete_from_swap_cache_core, rw_swap_page_write, rw_swap_page_write_async,
    try_add_to_swap_cache,
};
use crate::swapfile::{get_swap_page, swap_duplicate, swap_free, swap_free_count};
use crate::types::*;
use crate::{KResult, Kernel};

/// Whether try_to_swap_out took the pte away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapOut {
    /// The pte now holds a swap entry.
    Done(SwpEntry),
    /// A shm page's pte was dropped; the segment still has the page.
    Unmapped,
    /// Nothing done (not present, locked, no swap space, or refused).
    Failed,
}

/// `swap_out` (mm/vmscan.c) aimed at one pte of process `victim`: under
/// the BKL, find the victim's mm under tasklist_lock and hold it
/// (mm_count), take its page_table_lock and run `try_to_swap_out` on the
/// pte at `addr` if a VMA maps it. One visit: a young pte is only aged.
pub async fn swap_out_pte(k: &Kernel, t: &Task, victim: Pid, addr: u64) -> KResult<SwapOut> {
    let addr = addr & !(PAGE_SIZE - 1);
    t.lock_kernel("swap_out:lock_kernel").await;
    t.read_lock(k.tasklist_lock, "swap_out:read_lock_tasklist").await;
    let mm = k.w().procs.get(&victim).filter(|p| p.linked).and_then(|p| p.mm);
    t.read_unlock(k.tasklist_lock, "swap_out:read_unlock_tasklist");
    let Some(mm) = mm else {
        t.unlock_kernel("swap_out:unlock_kernel");
        return Ok(SwapOut::Failed);
    };
    hold_best_mm(k, t, mm).await?;
    let result = swap_out_mm(k, t, mm, Some(addr)).await?;
    mmdrop(k, t, mm).await?;
    t.unlock_kernel("swap_out:unlock_kernel");
    Ok(result)
}

/// `swap_out_mm` → `swap_out_vma` → `swap_out_pgd` → `swap_out_pmd`
/// (mm/vmscan.c:180-315): under the mm's page_table_lock (vmlist_access_lock),
/// from `swap_address` on, each pte of each VMA in turn goes to
/// `try_to_swap_out` (`swap_address` first set past it), until one of them
/// drops the lock (a page went out: the C's 1); a pte it only aged, or put
/// back to its swap-cache entry, or dropped clean, does not stop the scan
/// (the C's 0). A scan that finds nothing restarts from 0 next time.
/// `aim` (the scenario's `swap_out(addr)`) visits the one pte at that
/// address instead, if a VMA maps it, and says what became of it.
async fn swap_out_mm(k: &Kernel, t: &Task, mm: MmId, aim: Option<u64>) -> KResult<SwapOut> {
    k.check_mm(t, mm, "swap_out_mm")?;
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_lock(ptl, "swap_out_mm:vmlist_access_lock").await;
    k.check_mm(t, mm, "swap_out_mm")?;
    if let Some(addr) = aim {
        if crate::memory::find_vma(k, mm, addr).is_none() {
            t.spin_unlock(ptl, "swap_out_mm:vmlist_access_unlock");
            return Ok(SwapOut::Failed);
        }
        t.work(k.costs.pte_scan);
        let (result, unlocked) = try_to_swap_out(k, t, mm, addr).await?;
        if !unlocked {
            t.spin_unlock(ptl, "swap_out_mm:vmlist_access_unlock");
        }
        return Ok(result);
    }
    // find_vma(mm, swap_address), then each VMA after it from its start.
    let from = k.w().mms[mm].swap_address;
    let ranges: Vec<(u64, u64)> = {
        let w = k.w();
        w.mms[mm]
            .mmap
            .iter()
            .map(|&v| &w.vmas[v])
            .filter(|v| v.end > from)
            .map(|v| (v.start.max(from), v.end))
            .collect()
    };
    for (start, end) in ranges {
        let mut cursor = start;
        loop {
            // The next present pte of the VMA (none and swap ptes fail at once).
            let next = k.w().ptes_in(mm, cursor, end).find(|(_, pte)| matches!(pte, Pte::Present { .. }));
            let Some((addr, _)) = next else { break };
            cursor = addr + PAGE_SIZE;
            t.work(k.costs.pte_scan);
            k.check_mm(t, mm, "swap_out_pmd")?;
            k.w().mms[mm].swap_address = addr + PAGE_SIZE;
            let (result, unlocked) = try_to_swap_out(k, t, mm, addr).await?;
            if unlocked {
                return Ok(result);
            }
        }
    }
    t.spin_unlock(ptl, "swap_out_mm:vmlist_access_unlock");
    k.check_mm(t, mm, "swap_out_mm")?;
    // "We didn't find anything for the process."
    let mut w = k.w();
    w.mms[mm].swap_cnt = 0;
    w.mms[mm].swap_address = 0;
    Ok(SwapOut::Failed)
}

/// `swap_out` (mm/vmscan.c:324-400) as kswapd and direct reclaim run it,
/// under the BKL: up to `nr_threads / (priority + 1)` (at least 1) times
/// plus one, pick the mm with the largest `swap_cnt` (its "shadow rss")
/// among the tasks under tasklist_lock, refilling every `swap_cnt` from
/// `rss` once when none has any left; hold it and scan it. A scan that
/// finds nothing to take (every pte it met was young and is now old)
/// clears the mm's `swap_cnt`, so the next pick passes it over until the
/// refill: a second pick in the same call then takes the pages the first
/// scan aged. (The `swappable` flag and kill_proc on an error are not
/// modelled: every task with an mm is swappable.)
async fn swap_out(k: &Kernel, t: &Task, priority: u32) -> KResult<bool> {
    t.lock_kernel("swap_out:lock_kernel").await;
    let result = swap_out_locked(k, t, priority).await;
    t.unlock_kernel("swap_out:unlock_kernel");
    result
}

async fn swap_out_locked(k: &Kernel, t: &Task, priority: u32) -> KResult<bool> {
    let nr_threads = k.w().task_list.len() as u32;
    let mut counter = (nr_threads / (priority + 1)).max(1) as i64;
    let mut assign = 0;
    while counter >= 0 {
        let best = loop {
            t.read_lock(k.tasklist_lock, "swap_out:read_lock_tasklist").await;
            let best = {
                let mut w = k.w();
                let World { procs, mms, task_list, .. } = &mut *w;
                let mut best: Option<(i64, MmId)> = None;
                for pid in task_list.iter() {
                    let Some(mm) = procs[pid].mm else { continue };
                    let Some(m) = mms.get_mut(mm) else { continue };
                    if m.rss <= 0 {
                        continue;
                    }
                    if assign == 1 {
                        m.swap_cnt = m.rss; // refresh swap_cnt
                    }
                    if m.swap_cnt > best.map_or(0, |(c, _)| c) {
                        best = Some((m.swap_cnt, mm));
                    }
                }
                best.map(|(_, mm)| mm)
            };
            t.read_unlock(k.tasklist_lock, "swap_out:read_unlock_tasklist");
            if assign == 1 {
                assign = 2;
            }
            if best.is_none() && assign == 0 {
                assign = 1; // goto select
                continue;
            }
            break best;
        };
        let Some(mm) = best else { return Ok(false) };
        hold_best_mm(k, t, mm).await?;
        let result = swap_out_mm(k, t, mm, None).await?;
        mmdrop(k, t, mm).await?;
        if result != SwapOut::Failed {
            return Ok(true);
        }
        counter -= 1;
    }
    Ok(false)
}

/// `atomic_inc(&best->mm_count)` in `swap_out` (mm/vmscan.c:384): after
/// `read_unlock(&tasklist_lock)` (372), so only the BKL keeps the chosen mm
/// alive in between; code that runs without it (exec_mmap's mmput) can drop
/// the mm there, and the increment is then a use-after-free.
async fn hold_best_mm(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    t.point("swap_out:atomic_inc_mm_count").await;
    k.check_mm(t, mm, "swap_out")?;
    k.w().mms[mm].mm_count += 1;
    Ok(())
}

/// `shrink_mmap` (mm/filemap.c) over the swap cache, oldest first: reclaim
/// the first page that only the cache uses and that is not locked.
async fn shrink_mmap(k: &Kernel, t: &Task) -> KResult<bool> {
    let candidates: Vec<SwpEntry> = {
        let w = k.w();
        w.swap_cache
            .iter()
            .filter(|(_, &p)| w.pages.get(p).is_some_and(|p| p.count == 1))
            .map(|(&e, _)| e)
            .take(8)
            .collect()
    };
    for entry in candidates {
        t.work(k.costs.pte_scan);
        if shrink_swap_cache_page(k, t, entry).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `do_try_to_free_pages` (mm/vmscan.c:411-460), in the caller's context
/// and BKL state: it takes no BKL of its own. From priority 6 down to 0:
/// `shrink_mmap` (no BKL), `shm_swap` (the BKL only in its preop and
/// postop), `swap_out` (under the BKL), each for as long as it succeeds,
/// until SWAP_CLUSTER_MAX pages went. Returns whether they all did
/// (`priority >= 0`), which is all an allocation's direct reclaim asks.
/// (kmem_cache_reap and the dcache/icache shrinkers, which free no page
/// the model has and count nothing, are not modelled.)
pub async fn do_try_to_free_pages(k: &Kernel, t: &Task) -> KResult<bool> {
    let mut count = SWAP_CLUSTER_MAX;
    for priority in (0..=6).rev() {
        while shrink_mmap(k, t).await? {
            count -= 1;
            if count == 0 {
                return Ok(true);
            }
        }
        // gfp_mask & __GFP_IO: GFP_KERNEL, GFP_USER and GFP_KSWAPD all have it.
        while crate::shm::shm_swap(k, t, priority, None).await? {
            count -= 1;
            if count == 0 {
                return Ok(true);
            }
        }
        while swap_out(k, t, priority).await? {
            count -= 1;
            if count == 0 {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `SWAP_CLUSTER_MAX` (include/linux/swap.h:44): pages freed per call.
pub const SWAP_CLUSTER_MAX: usize = 32;

/// `kswapd` (mm/vmscan.c:470-520): a kernel thread started by
/// kernel_thread, so with no BKL (do_fork sets lock_depth to -1), and with
/// PF_MEMALLOC for good. While the zone has `zone_wake_kswapd` it runs
/// do_try_to_free_pages, then sleeps on `kswapd_wait` until an allocation
/// at or below `pages_low` wakes it (interruptible_sleep_on: a wake-up
/// while it is reclaiming is lost, as in the C). Runs as a daemon: a run
/// ends when only kswapd is left.
pub async fn kswapd(k: &Kernel, t: &Task) -> KResult<()> {
    k.w().pf_memalloc.push(t.id());
    loop {
        if *k.w().zone_wake_kswapd {
            // kswapd is inside the kernel while it reclaims: the quiescent
            // invariants must not look at its transient references.
            k.enter_kernel();
            do_try_to_free_pages(k, t).await?;
            k.leave_kernel();
        }
        t.sleep_on(k.kswapd_wait, "kswapd:interruptible_sleep_on").await;
    }
}

/// `try_to_swap_out` (mm/vmscan.c:37-174), page_table_lock held. Returns
/// whether it dropped the lock itself. A young pte is only made old
/// (`pte_mkold`; the C also sets PG_referenced, which only shrink_mmap's
/// LRU aging reads, and the model has no LRU), so taking a page that was
/// used takes two visits. A page already in the swap cache just gets one
/// more swap reference for the pte (`swap_duplicate`, or with the patch
/// `acquire_swap_entry`, which refuses a device being swapped off); a dirty
/// page gets a new slot, joins the swap cache and is written out
/// asynchronously.
async fn try_to_swap_out(k: &Kernel, t: &Task, mm: MmId, addr: u64) -> KResult<(SwapOut, bool)> {
    // swap_out_mm's vmlist_access_lock: the seed's argument that the
    // victim is not in free_page_and_swap_cache or do_wp_page meanwhile.
    let ptl = k.w().mms[mm].page_table_lock;
    k.assert_held(t, ptl, "the victim's page_table_lock", "try_to_swap_out")?;
    let pte = k.w().pte(mm, addr);
    let Pte::Present { page, write, dirty, young } = pte else { return Ok((SwapOut::Failed, false)) };
    k.check_page(t, page, "try_to_swap_out")?;
    if young {
        // "Don't look at this pte if it's been accessed recently."
        k.w().set_pte(mm, addr, Pte::Present { page, write, dirty, young: false });
        t.note("try_to_swap_out:pte_mkold", || format!("pte {addr:#x} of {} was young: aged", k.describe_mm(mm)));
        return Ok((SwapOut::Failed, false));
    }
    if k.fixes.era.is_later() {
        return try_to_swap_out_later(k, t, mm, addr, page, dirty).await;
    }
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
        mmlist_add_on_first_entry(k, t, mm).await;
        set_pte(k, mm, addr, Pte::Swap(entry));
        k.key(t, crate::signatures::KeyEvent::SwapPteSet { mm, addr, entry, by: "try_to_swap_out" });
        k.w().mms[mm].rss -= 1;
        free_page(k, t, page, "try_to_swap_out:__free_page")?;
        return Ok((SwapOut::Done(entry), false));
    }
    let vma = crate::memory::find_vma(k, mm, addr);
    let shm = vma.and_then(|v| k.w().vmas[v].shm);
    if !dirty {
        // A clean page can be dropped: anonymous ones hold only zeroes,
        // shm ones stay in their segment.
        set_pte(k, mm, addr, Pte::None);
        k.w().mms[mm].rss -= 1;
        free_page(k, t, page, "try_to_swap_out:__free_page_clean")?;
        return Ok((SwapOut::Failed, false));
    }
    if shm.is_some() {
        // vm_ops->swapout = shm_swapout, which does nothing: the pte goes,
        // the segment keeps the page for shm_swap.
        set_pte(k, mm, addr, Pte::None);
        k.w().mms[mm].rss -= 1;
        let ptl = k.w().mms[mm].page_table_lock;
        t.spin_unlock(ptl, "try_to_swap_out:vmlist_access_unlock_swapout");
        free_page(k, t, page, "try_to_swap_out:__free_page_swapout")?;
        return Ok((SwapOut::Unmapped, true));
    }
    let Some(entry) = acquire_swap_entry(k, t, page).await else { return Ok((SwapOut::Failed, false)) };
    // One for the process, one for the swap cache.
    swap_duplicate(k, t, entry, "try_to_swap_out:swap_duplicate_new").await?;
    if !try_add_to_swap_cache(k, t, page, entry).await? {
        swap_free_count(k, t, entry, 2, "try_to_swap_out:eexist_swap_free").await?;
        return Ok((SwapOut::Failed, false));
    }
    mmlist_add_on_first_entry(k, t, mm).await;
    k.w().mms[mm].rss -= 1;
    set_pte(k, mm, addr, Pte::Swap(entry));
    k.key(t, crate::signatures::KeyEvent::SwapPteSet { mm, addr, entry, by: "try_to_swap_out" });
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_unlock(ptl, "try_to_swap_out:vmlist_access_unlock");
    rw_swap_page_write(k, t, page, entry).await;
    free_page(k, t, page, "try_to_swap_out:__free_page_written")?;
    Ok((SwapOut::Done(entry), true))
}

/// 2.4's `try_to_swap_out` (mm/vmscan.c, 2.4.17 lines 45-152, standing
/// for 2.4.10), page_table_lock held: `TryLockPage` at its top, else leave
/// the page, and the page lock held to the end, so nobody (swapoff,
/// do_swap_page) takes the page into or out of the swap cache meanwhile.
/// A swap-cache page gets one more swap reference for the pte; a clean one
/// is dropped; a dirty one gets a new slot (`get_swap_page`, no
/// acquire_swap_entry since 2.3.99-pre7-2), joins the swap cache
/// (`add_to_swap_cache`, trying another slot on -EEXIST) and is written.
/// 5.1's page stealer holds the page lock the same way (shrink_page_list:
/// trylock_page, add_to_swap, try_to_unmap, pageout). The model writes a
/// dirty page here, under the lock, where 2.4 leaves it dirty in the swap
/// cache for page_launder's writepage (which takes the lock again).
async fn try_to_swap_out_later(
    k: &Kernel,
    t: &Task,
    mm: MmId,
    addr: u64,
    page: PageId,
    dirty: bool,
) -> KResult<(SwapOut, bool)> {
    let page_lock = k.w().pages[page].lock;
    if !t.try_lock_page(page_lock, "try_to_swap_out:TryLockPage") {
        return Ok((SwapOut::Failed, false));
    }
    let ptl = k.w().mms[mm].page_table_lock;
    let cached = {
        let w = k.w();
        w.pages[page].index.filter(|_| w.pages[page].swap_cache)
    };
    if let Some(entry) = cached {
        // 2.4's swap_duplicate cannot fail here (the locked cache page holds
        // the slot); 5.1's try_to_unmap_one puts the pte back if it does.
        if !swap_duplicate(k, t, entry, "try_to_swap_out:swap_duplicate").await? {
            t.unlock_page(page_lock, "try_to_swap_out:UnlockPage_dup_failed");
            return Ok((SwapOut::Failed, false));
        }
        mmlist_add_on_first_entry(k, t, mm).await;
        set_pte(k, mm, addr, Pte::Swap(entry));
        k.key(t, crate::signatures::KeyEvent::SwapPteSet { mm, addr, entry, by: "try_to_swap_out" });
        k.w().mms[mm].rss -= 1;
        if dirty || page_differs_from_disk(k, page, entry) {
            // set_page_dirty: the data reaches the slot before the page can
            // leave the cache (2.4's page_launder would write it).
            t.spin_unlock(ptl, "try_to_swap_out:vmlist_access_unlock_dirty");
            rw_swap_page_write_async(k, t, page, entry);
            free_page(k, t, page, "try_to_swap_out:page_cache_release_dirty")?;
            return Ok((SwapOut::Done(entry), true));
        }
        t.unlock_page(page_lock, "try_to_swap_out:UnlockPage");
        free_page(k, t, page, "try_to_swap_out:page_cache_release")?;
        return Ok((SwapOut::Done(entry), false));
    }
    let vma = crate::memory::find_vma(k, mm, addr);
    let shm = vma.and_then(|v| k.w().vmas[v].shm);
    let dirty = dirty || k.w().pages[page].dirty; // set_page_dirty, PageDirty
    if !dirty || shm.is_some() {
        // drop_pte: a clean anonymous page holds only zeroes; a shm page
        // stays in its segment for shm_swap (page->mapping).
        set_pte(k, mm, addr, Pte::None);
        k.w().mms[mm].rss -= 1;
        t.unlock_page(page_lock, "try_to_swap_out:UnlockPage_drop_pte");
        free_page(k, t, page, "try_to_swap_out:page_cache_release_drop_pte")?;
        let result = if dirty { SwapOut::Unmapped } else { SwapOut::Failed };
        return Ok((result, false));
    }
    let entry = loop {
        let Some(entry) = get_swap_page(k, t).await else {
            // No swap space left (preserve): the pte stays.
            t.unlock_page(page_lock, "try_to_swap_out:UnlockPage_preserve");
            return Ok((SwapOut::Failed, false));
        };
        if add_to_swap_cache_locked(k, t, page, entry).await? {
            break entry;
        }
        // Raced with "speculative" read_swap_cache_async.
        swap_free(k, t, entry, "try_to_swap_out:swap_free_eexist").await?;
    };
    mmlist_add_on_first_entry(k, t, mm).await;
    k.w().mms[mm].rss -= 1;
    k.w().pages[page].dirty = false; // written now
    set_pte(k, mm, addr, Pte::Swap(entry));
    k.key(t, crate::signatures::KeyEvent::SwapPteSet { mm, addr, entry, by: "try_to_swap_out" });
    t.spin_unlock(ptl, "try_to_swap_out:vmlist_access_unlock");
    rw_swap_page_write_async(k, t, page, entry);
    free_page(k, t, page, "try_to_swap_out:page_cache_release_written")?;
    Ok((SwapOut::Done(entry), true))
}

/// PageDirty, as this model keeps it: the page differs from its slot.
fn page_differs_from_disk(k: &Kernel, page: PageId, entry: SwpEntry) -> bool {
    let w = k.w();
    w.pages[page].data != w.swap_info[entry.type_].disk[entry.offset as usize]
}

/// 5.1 (try_to_unmap_one): an mm that gets its first swap entry joins the
/// mmlist, right after init_mm, under mmlist_lock (page_table_lock held).
async fn mmlist_add_on_first_entry(k: &Kernel, t: &Task, mm: MmId) {
    if k.fixes.era != crate::Era::Linux5_1 || k.w().mmlist.contains(&mm) {
        return;
    }
    t.spin_lock(k.mmlist_lock, "try_to_unmap_one:mmlist_lock").await;
    {
        let mut w = k.w();
        if !w.mmlist.contains(&mm) {
            w.mmlist.insert(0, mm);
        }
    }
    t.spin_unlock(k.mmlist_lock, "try_to_unmap_one:mmlist_unlock");
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
                let p = &mut swap_info[entry.type_];
                match p.swap_map.as_mut() {
                    Some(map) if map[entry.offset as usize] == 0 => {
                        map[entry.offset as usize] = 1;
                        p.inuse_pages += 1;
                        **nr_swap_pages -= 1;
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

use crate::memory::set_pte;
use crate::world::World;

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
    let pid = k.current(t);
    // The page stealer's first visit of a young pte only ages it; the
    // second takes the page, as two passes of kswapd would.
    let young = {
        let w = k.w();
        let mm = w.procs[&pid].mm;
        mm.is_some_and(|mm| matches!(w.pte(mm, addr & !(PAGE_SIZE - 1)), Pte::Present { young: true, .. }))
    };
    let mut result = swap_out_pte(k, t, pid, addr).await?;
    if young && result == SwapOut::Failed {
        result = swap_out_pte(k, t, pid, addr).await?;
    }
    let entry = match result {
        SwapOut::Done(entry) => entry,
        SwapOut::Unmapped => {
            // A shm page: now shm_swap can take it from its segment.
            let mm = k.w().procs[&pid].mm.expect("a process with a pte has an mm");
            let vma = crate::memory::find_vma(k, mm, addr & !(PAGE_SIZE - 1)).expect("a mapped address");
            let (seg, idx) = {
                let w = k.w();
                let v = &w.vmas[vma];
                let (seg, pgoff) = v.shm.expect("a shm VMA");
                (seg, (pgoff + ((addr & !(PAGE_SIZE - 1)) - v.start) / PAGE_SIZE) as usize)
            };
            if !crate::shm::shm_swap(k, t, 0, Some((seg, idx))).await? {
                return Ok(Err(format!(
                    "shm page {idx} of segment {seg} is still mapped elsewhere and stays in memory"
                )));
            }
            match k.w().shm_segs[seg].entries[idx] {
                Pte::Swap(entry) => entry,
                _ => return Ok(Err(format!("shm page {idx} of segment {seg} did not go out"))),
            }
        }
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
