//! 5.1's `try_to_unuse` ("mm: rid swapoff of quadratic complexity",
//! b56a2d8af914), transplanted into the 2.3.99 world.
//!
//! Instead of one scan of every mm per slot, one pass over each mm's page
//! tables: `shmem_unuse` first, then every mm on the mmlist that still has
//! users (`mmget_not_zero`), under its mmap_sem, swapping in every pte that
//! holds an entry of the device (`unuse_pte_range`, with readahead); then
//! a pass over the slots that frees swap-cache pages nobody maps any more
//! (`try_to_free_swap`); and all of it again while slots are still in use.
//! The mmlist holds only mms that may have swap entries: an mm joins it
//! when it gets its first one (try_to_swap_out, fork's copy_one_pte).

use engine::Task;

use crate::later_swap::try_to_free_swap;
use crate::memory::{read_pte, swapin_readahead};
use crate::mm::{mmget_not_zero, mmput};
use crate::page_alloc::{free_page, get_page};
use crate::swap_state::{find_get_page, read_swap_cache};
use crate::swapfile::{inuse_pages, swap_count, swap_free, EBUSY, ENOMEM};
use crate::types::*;
use crate::{KResult, Kernel};

/// `try_to_unuse(type, frontswap = false, 0)` of 5.1; returns 0 or -ENOMEM.
/// (Signals are not modelled, so the -EINTR exit never happens.)
pub async fn try_to_unuse(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    let mut retries = 0;
    loop {
        // retry:
        let retval = shmem_unuse(k, t, type_).await?;
        if retval != 0 {
            return Ok(retval);
        }
        let retval = unuse_mmlist(k, t, type_).await?;
        if retval != 0 {
            return Ok(retval);
        }
        free_leftover_swap_cache(k, t, type_).await?;
        if k.fixes.later.unuse_max_tries {
            // 5.1-rc1..rc4: `if (++retries >= SWAP_UNUSE_MAX_TRIES) retval =
            // -EBUSY; else if (si->inuse_pages) goto retry;`
            retries += 1;
            if retries >= SWAP_UNUSE_MAX_TRIES {
                k.key(t, crate::signatures::KeyEvent::UnuseGaveUp { type_, passes: retries });
                return Ok(-EBUSY);
            }
        }
        if inuse_pages(k, type_) == 0 {
            return Ok(0);
        }
        t.cond_resched("try_to_unuse:retry_cond_resched").await;
    }
}

/// `SWAP_UNUSE_MAX_TRIES` (5.1-rc1..rc4 mm/swapfile.c, removed by Hugh
/// Dickins' "mm: swapoff: remove too limiting SWAP_UNUSE_MAX_TRIES").
const SWAP_UNUSE_MAX_TRIES: u32 = 3;

/// The pass over the mmlist: take a user on each listed mm that has any
/// (`mmget_not_zero` under mmlist_lock), drop the lock and the previous
/// mm, and unuse_mm it.
async fn unuse_mmlist(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    // prev_mm = &init_mm; mmget(prev_mm): init_mm never goes.
    let mut prev_mm: Option<MmId> = None;
    // p, the list node the walk stands on (None: init_mm's).
    let mut p: Option<MmId> = None;
    t.spin_lock(k.mmlist_lock, "try_to_unuse:mmlist_lock").await;
    // while (si->inuse_pages && (p = p->next) != &init_mm.mmlist): the
    // count first, so a walk whose device is empty stops before it follows
    // a node another swapoff's drain_mmlist took off the list.
    while inuse_pages(k, type_) > 0 {
        let next = {
            let w = k.w();
            match p {
                None => w.mmlist.first().copied(),
                Some(cur) => match w.mmlist.iter().position(|&x| x == cur) {
                    Some(at) => w.mmlist.get(at + 1).copied(),
                    // list_del_init left the node pointing at itself.
                    None => Some(cur),
                },
            }
        };
        let Some(mm) = next else { break };
        p = Some(mm);
        if !mmget_not_zero(k, t, mm)? {
            continue; // being torn down: skip it, still under the lock
        }
        t.spin_unlock(k.mmlist_lock, "try_to_unuse:mmlist_unlock");
        if let Some(prev) = prev_mm {
            mmput(k, t, prev).await?;
        }
        prev_mm = Some(mm);
        let retval = unuse_mm(k, t, mm, type_).await?;
        if retval != 0 {
            mmput(k, t, mm).await?;
            return Ok(retval);
        }
        t.cond_resched("try_to_unuse:cond_resched").await;
        t.spin_lock(k.mmlist_lock, "try_to_unuse:mmlist_lock_next").await;
    }
    t.spin_unlock(k.mmlist_lock, "try_to_unuse:mmlist_unlock_end");
    if let Some(prev) = prev_mm {
        mmput(k, t, prev).await?;
    }
    Ok(0)
}

/// `unuse_mm` (5.1): under the mm's mmap_sem (a read lock there; the one
/// semaphore of this world here), each VMA's ptes.
async fn unuse_mm(k: &Kernel, t: &Task, mm: MmId, type_: usize) -> KResult<i64> {
    k.check_mm(t, mm, "unuse_mm")?;
    let mmap_sem = k.w().mms[mm].mmap_sem;
    let read = k.fixes.later.teardown; // a real rw_semaphore from 5.2 on here
    if read {
        t.down_read(mmap_sem, "unuse_mm:down_read_mmap_sem").await;
    } else {
        t.down(mmap_sem, "unuse_mm:down_read_mmap_sem").await;
    }
    let vmas = k.w().mms[mm].mmap.clone();
    let mut retval = 0;
    for vma in vmas {
        retval = unuse_pte_range(k, t, mm, vma, type_).await?;
        if retval != 0 {
            break;
        }
        t.cond_resched("unuse_mm:cond_resched").await;
    }
    if read {
        t.up_read(mmap_sem, "unuse_mm:up_read_mmap_sem");
    } else {
        t.up(mmap_sem, "unuse_mm:up_read_mmap_sem");
    }
    Ok(retval)
}

/// `unuse_pte_range` (5.1): for each pte of the VMA holding an entry of
/// this device: swap it in (readahead, then the read), lock the page, let
/// `unuse_pte` install it if the pte is still the same, and free the swap
/// copy if nothing else uses it.
async fn unuse_pte_range(k: &Kernel, t: &Task, mm: MmId, vma: VmaId, type_: usize) -> KResult<i64> {
    let (start, end) = {
        let w = k.w();
        let Some(v) = w.vmas.get(vma) else { return Ok(0) };
        (v.start, v.end)
    };
    // The ptes the range has now; each is read as the walk reaches it (the
    // page stealer may have turned a present one into an entry meanwhile).
    let addrs: Vec<u64> = k.w().ptes_in(mm, start, end).map(|(a, _)| a).collect();
    t.work((end - start) / PAGE_SIZE * k.costs.pte_scan);
    for addr in addrs {
        // is_swap_pte(*pte), swp_type(entry) == type
        let Pte::Swap(entry) = read_pte(k, mm, addr) else { continue };
        if entry.type_ != type_ {
            continue;
        }
        // swapin_readahead: the cluster around it, then the entry itself
        // (read_swap_cache_async finds a cached page first).
        swapin_readahead(k, t, entry).await?;
        let Some(page) = read_swap_cache(k, t, entry).await? else {
            let count = swap_count(k, entry);
            if count == 0 || count == SWAP_MAP_BAD {
                continue; // try_next
            }
            return Ok(-ENOMEM);
        };
        k.check_page(t, page, "unuse_pte_range:lock_page")?;
        let page_lock = k.w().pages[page].lock;
        t.lock_page(page_lock, "unuse_pte_range:lock_page").await;
        unuse_pte(k, t, mm, addr, entry, page).await?;
        try_to_free_swap(k, t, page).await?;
        t.unlock_page(page_lock, "unuse_pte_range:unlock_page");
        free_page(k, t, page, "unuse_pte_range:put_page")?;
    }
    Ok(0)
}

/// `unuse_pte` (5.1): under the page-table lock, if the pte still holds
/// the entry (`pte_same`), map the page (read-only, old, clean: the page
/// is dirtied when it leaves the swap cache, try_to_free_swap's
/// SetPageDirty) and free the entry.
async fn unuse_pte(k: &Kernel, t: &Task, mm: MmId, addr: u64, entry: SwpEntry, page: PageId) -> KResult<()> {
    k.check_mm(t, mm, "unuse_pte")?;
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_lock(ptl, "unuse_pte:pte_offset_map_lock").await;
    if read_pte(k, mm, addr) != Pte::Swap(entry) {
        t.spin_unlock(ptl, "unuse_pte:pte_unmap_unlock_changed");
        return Ok(());
    }
    get_page(k, t, page, "unuse_pte:get_page")?;
    crate::memory::set_pte(k, mm, addr, Pte::Present { page, write: false, dirty: false, young: false });
    k.w().mms[mm].rss += 1;
    t.note("unuse_pte:set_pte_at", || format!("pte {addr:#x} of {}: swap entry {entry} -> page", k.describe_mm(mm)));
    swap_free(k, t, entry, "unuse_pte:swap_free").await?;
    t.spin_unlock(ptl, "unuse_pte:pte_unmap_unlock");
    Ok(())
}

/// The pass over the slots (5.1): a swap-cache page still holding a slot
/// nobody maps is freed (find_get_page, lock_page, try_to_free_swap).
async fn free_leftover_swap_cache(k: &Kernel, t: &Task, type_: usize) -> KResult<()> {
    let mut i = 0u32;
    while inuse_pages(k, type_) > 0 {
        i = find_next_to_unuse(k, t, type_, i);
        if i == 0 {
            break;
        }
        let entry = SwpEntry { type_, offset: i };
        let Some(page) = find_get_page(k, t, entry).await? else { continue };
        let page_lock = k.w().pages[page].lock;
        t.lock_page(page_lock, "try_to_unuse:lock_page").await;
        try_to_free_swap(k, t, page).await?;
        t.unlock_page(page_lock, "try_to_unuse:unlock_page");
        free_page(k, t, page, "try_to_unuse:put_page")?;
    }
    Ok(())
}

/// `find_next_to_unuse` (5.1): the next slot in use after `prev`, no
/// wrapping; 0 at the end.
fn find_next_to_unuse(k: &Kernel, t: &Task, type_: usize, prev: u32) -> u32 {
    let w = k.w();
    let map = w.swap_info[type_].swap_map.as_ref().expect("swapoff holds the device");
    let found = (prev as usize + 1..map.len()).find(|&i| map[i] != 0 && map[i] != SWAP_MAP_BAD);
    let scanned = found.unwrap_or(map.len()) - prev as usize;
    drop(w);
    t.work(scanned as u64 * k.costs.pte_scan);
    found.map_or(0, |i| i as u32)
}

/// `shmem_unuse(type)` (5.1), for this world's SysV shm: every segment
/// page that holds an entry of the device is swapped in, installed under
/// the shm lock if the entry is still there (`shm_unuse`), and its swap
/// copy freed.
async fn shmem_unuse(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    loop {
        let next = {
            let w = k.w();
            w.shm_segs.iter().flat_map(|s| s.entries.iter()).find_map(|e| match e {
                Pte::Swap(entry) if entry.type_ == type_ => Some(*entry),
                _ => None,
            })
        };
        let Some(entry) = next else { return Ok(0) };
        let mut page = find_get_page(k, t, entry).await?;
        if page.is_none() {
            page = read_swap_cache(k, t, entry).await?;
        }
        let Some(page) = page else {
            if swap_count(k, entry) == 0 {
                // Freed meanwhile (shm_nopage got it): look again.
                t.point("shmem_unuse:entry_gone").await;
                continue;
            }
            return Ok(-ENOMEM);
        };
        let page_lock = k.w().pages[page].lock;
        t.lock_page(page_lock, "shmem_unuse:lock_page").await;
        crate::shm::shm_unuse(k, t, entry, page).await?;
        try_to_free_swap(k, t, page).await?;
        t.unlock_page(page_lock, "shmem_unuse:unlock_page");
        free_page(k, t, page, "shmem_unuse:put_page")?;
    }
}

/// `drain_mmlist` (5.1), under swap_lock and the device lock at the end of
/// swapoff: when no device has a slot in use any more, empty the mmlist.
pub async fn drain_mmlist(k: &Kernel, t: &Task) {
    let devices = k.w().swap_info.len();
    let any_in_use = (0..devices).any(|type_| inuse_pages(k, type_) > 0);
    if any_in_use {
        return;
    }
    t.spin_lock(k.mmlist_lock, "drain_mmlist:mmlist_lock").await;
    k.w().mmlist.clear();
    t.spin_unlock(k.mmlist_lock, "drain_mmlist:mmlist_unlock");
}
