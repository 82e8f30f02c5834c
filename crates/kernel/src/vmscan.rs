//! The page stealer (mm/vmscan.c): swap_out → try_to_swap_out for a
//! chosen pte, and shrink_mmap's reclaim of an unused swap-cache page.

use engine::Task;

use crate::mm::mmdrop;
use crate::page_alloc::{free_page, page_number};
use crate::swap_state::{delete_from_swap_cache_core, rw_swap_page_write, try_add_to_swap_cache};
use crate::swapfile::{get_swap_page, swap_duplicate, swap_free_count};
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
/// pte at `addr`.
pub async fn swap_out_pte(k: &Kernel, t: &Task, victim: Pid, addr: u64) -> KResult<SwapOut> {
    let addr = addr & !(PAGE_SIZE - 1);
    t.lock_kernel("swap_out:lock_kernel").await;
    t.read_lock(k.tasklist_lock, "swap_out:read_lock_tasklist").await;
    let mm = k.w().procs.get(&victim).filter(|p| p.linked).and_then(|p| p.mm);
    if let Some(mm) = mm {
        k.w().mms[mm].mm_count += 1;
    }
    t.read_unlock(k.tasklist_lock, "swap_out:read_unlock_tasklist");
    let Some(mm) = mm else {
        t.unlock_kernel("swap_out:unlock_kernel");
        return Ok(SwapOut::Failed);
    };
    let result = swap_out_mm(k, t, mm, &[addr]).await?;
    mmdrop(k, t, mm).await?;
    t.unlock_kernel("swap_out:unlock_kernel");
    Ok(result)
}

/// `swap_out_mm` (mm/vmscan.c): under the mm's page_table_lock, try the
/// ptes at `addrs` in order until one goes out.
async fn swap_out_mm(k: &Kernel, t: &Task, mm: MmId, addrs: &[u64]) -> KResult<SwapOut> {
    k.check_mm(t, mm, "swap_out_mm")?;
    let ptl = k.w().mms[mm].page_table_lock;
    for &addr in addrs {
        t.spin_lock(ptl, "swap_out_mm:vmlist_access_lock").await;
        k.check_mm(t, mm, "swap_out_mm")?;
        t.work(k.costs.pte_scan);
        let (result, unlocked) = try_to_swap_out(k, t, mm, addr).await?;
        if !unlocked {
            t.spin_unlock(ptl, "swap_out_mm:vmlist_access_unlock");
        }
        if result != SwapOut::Failed {
            return Ok(result);
        }
    }
    Ok(SwapOut::Failed)
}

/// `swap_out` (mm/vmscan.c:324-400) as kswapd and direct reclaim run it:
/// under the BKL (its own `lock_kernel`, 331; the caller's depth is kept),
/// pick the mm with the most resident pages among the tasks (for_each_task
/// under tasklist_lock; swap_cnt reduced to rss), hold it, and scan its
/// present ptes from where the last scan stopped.
async fn swap_out(k: &Kernel, t: &Task) -> KResult<bool> {
    t.lock_kernel("swap_out:lock_kernel").await;
    let result = swap_out_locked(k, t).await;
    t.unlock_kernel("swap_out:unlock_kernel");
    result
}

async fn swap_out_locked(k: &Kernel, t: &Task) -> KResult<bool> {
    t.read_lock(k.tasklist_lock, "swap_out:read_lock_tasklist").await;
    let victim = {
        let w = k.w();
        let mut best: Option<(i64, MmId)> = None;
        for pid in &w.task_list {
            let Some(mm) = w.procs[pid].mm else { continue };
            let rss = w.mms.get(mm).map(|m| m.rss).unwrap_or(0);
            if rss > 0 && best.is_none_or(|(r, _)| rss > r) {
                best = Some((rss, mm));
            }
        }
        best.map(|(_, mm)| mm)
    };
    if let Some(mm) = victim {
        k.w().mms[mm].mm_count += 1;
    }
    t.read_unlock(k.tasklist_lock, "swap_out:read_unlock_tasklist");
    let Some(mm) = victim else { return Ok(false) };
    let addrs: Vec<u64> = {
        let w = k.w();
        let m = &w.mms[mm];
        // The present ptes from the cursor on, then wrapping around from
        // the start: at most 32 (without listing every present pte first).
        match m.pgd.and_then(|pgd| w.page_tables.get(pgd)) {
            Some(table) => table
                .ptes
                .range(m.swap_address..)
                .chain(table.ptes.range(..m.swap_address))
                .filter(|(_, p)| matches!(p, Pte::Present { .. }))
                .map(|(&a, _)| a)
                .take(32)
                .collect(),
            None => Vec::new(),
        }
    };
    let result = swap_out_mm(k, t, mm, &addrs).await?;
    if let (SwapOut::Done(_) | SwapOut::Unmapped, Some(m)) = (result, k.w().mms.get_mut(mm)) {
        m.swap_address = addrs.first().map(|a| a + PAGE_SIZE).unwrap_or(0);
    }
    mmdrop(k, t, mm).await?;
    Ok(result != SwapOut::Failed)
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
        while swap_out(k, t).await? {
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
    if in_cache && k.fixes.era.is_later() {
        return swap_out_cached_locked(k, t, mm, pgd, addr, page).await;
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
        set_pte(k, pgd, addr, Pte::Swap(entry));
        k.w().mms[mm].rss -= 1;
        free_page(k, t, page, "try_to_swap_out:__free_page")?;
        return Ok((SwapOut::Done(entry), false));
    }
    let vma = crate::memory::find_vma(k, mm, addr);
    let shm = vma.and_then(|v| k.w().vmas[v].shm);
    if !dirty {
        // A clean page can be dropped: anonymous ones hold only zeroes,
        // shm ones stay in their segment.
        set_pte(k, pgd, addr, Pte::None);
        k.w().mms[mm].rss -= 1;
        free_page(k, t, page, "try_to_swap_out:__free_page_clean")?;
        return Ok((SwapOut::Failed, false));
    }
    if shm.is_some() {
        // vm_ops->swapout = shm_swapout, which does nothing: the pte goes,
        // the segment keeps the page for shm_swap.
        set_pte(k, pgd, addr, Pte::None);
        k.w().mms[mm].rss -= 1;
        let ptl = k.w().mms[mm].page_table_lock;
        t.spin_unlock(ptl, "try_to_swap_out:vmlist_access_unlock_swapout");
        free_page(k, t, page, "try_to_swap_out:__free_page_swapout")?;
        return Ok((SwapOut::Unmapped, true));
    }
    let slot = if k.fixes.era.is_later() {
        get_swap_page(k, t).await // acquire_swap_entry went in 2.3.99-pre7-2
    } else {
        acquire_swap_entry(k, t, page).await
    };
    let Some(entry) = slot else { return Ok((SwapOut::Failed, false)) };
    // One for the process, one for the swap cache.
    swap_duplicate(k, t, entry, "try_to_swap_out:swap_duplicate_new").await?;
    if !try_add_to_swap_cache(k, t, page, entry).await? {
        swap_free_count(k, t, entry, 2, "try_to_swap_out:eexist_swap_free").await?;
        return Ok((SwapOut::Failed, false));
    }
    mmlist_add_on_first_entry(k, t, mm).await;
    k.w().mms[mm].rss -= 1;
    set_pte(k, pgd, addr, Pte::Swap(entry));
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_unlock(ptl, "try_to_swap_out:vmlist_access_unlock");
    rw_swap_page_write(k, t, page, entry).await;
    free_page(k, t, page, "try_to_swap_out:__free_page_written")?;
    Ok((SwapOut::Done(entry), true))
}

/// Later kernels' try_to_swap_out of a swap-cache page (2.4.10): under
/// the page lock (TryLockPage, else leave it), so swapoff cannot take the
/// page out of the swap cache between the check and the new reference.
async fn swap_out_cached_locked(
    k: &Kernel,
    t: &Task,
    mm: MmId,
    pgd: PgdId,
    addr: u64,
    page: PageId,
) -> KResult<(SwapOut, bool)> {
    let page_lock = k.w().pages[page].lock;
    if !t.try_lock_page(page_lock, "try_to_swap_out:TryLockPage") {
        return Ok((SwapOut::Failed, false));
    }
    let index = {
        let w = k.w();
        w.pages[page].index.filter(|_| w.pages[page].swap_cache)
    };
    let Some(entry) = index else {
        t.unlock_page(page_lock, "try_to_swap_out:UnlockPage_not_cached");
        return Ok((SwapOut::Failed, false));
    };
    if !swap_duplicate(k, t, entry, "try_to_swap_out:swap_duplicate").await? {
        t.unlock_page(page_lock, "try_to_swap_out:UnlockPage_dup_failed");
        return Ok((SwapOut::Failed, false));
    }
    mmlist_add_on_first_entry(k, t, mm).await;
    set_pte(k, pgd, addr, Pte::Swap(entry));
    k.w().mms[mm].rss -= 1;
    t.unlock_page(page_lock, "try_to_swap_out:UnlockPage");
    free_page(k, t, page, "try_to_swap_out:__free_page")?;
    Ok((SwapOut::Done(entry), false))
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
    let pid = k.current(t);
    let entry = match swap_out_pte(k, t, pid, addr).await? {
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
