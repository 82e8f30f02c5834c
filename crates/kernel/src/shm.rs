//! SysV shared memory (ipc/shm.c): the segment's page array, shm_nopage,
//! shm_swap, shm_unuse and shm_close. The seed's patch does not touch this
//! file; races 4, 6 (shm readahead) and 7 live here.

use engine::Task;

use crate::memory::swapin_readahead;
use crate::page_alloc::{alloc_page, free_page, get_page};
use crate::swap_state::{
    add_to_swap_cache, delete_from_swap_cache, lookup_swap_cache, read_swap_cache, rw_swap_page_write_async,
};
use crate::swapfile::{get_swap_page_count, swap_free, swap_free_count};
use crate::types::*;
use crate::{KResult, Kernel};

/// What shm_nopage returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPage {
    /// The page, with a reference for the caller's pte.
    Page(PageId),
    /// NOPAGE_OOM: the fault fails and the task is killed.
    Oom,
}

/// `shm_nopage` → `shm_nopage_core` (ipc/shm.c), from do_no_page with the
/// faulting mm's mmap_sem held and no BKL: under the inode's i_sem and the
/// shm lock, snapshot SHM_ENTRY. A swap entry is read back with the shm
/// lock dropped — swap cache lookup, else readahead and a read under the
/// BKL — then *unconditionally* deleted from the swap cache, its swap
/// reference freed, and SHM_ENTRY rewritten. The snapshot is not rechecked:
/// races 4 and 7.
pub async fn shm_nopage(k: &Kernel, t: &Task, seg: ShmId, idx: usize) -> KResult<NoPage> {
    let i_sem = k.w().shm_segs[seg].i_sem;
    t.down(i_sem, "shm_nopage:down_i_sem").await;
    t.spin_lock(k.shm_lock, "shm_nopage:shm_lock").await;
    let pte = k.w().shm_segs[seg].entries[idx];
    let page = match pte {
        Pte::Present { page, .. } => page,
        Pte::None => {
            t.spin_unlock(k.shm_lock, "shm_nopage_core:shm_unlock");
            let Some(page) = alloc_page(k, t, "shm_nopage_core:alloc_page").await? else {
                return oom(k, t, i_sem).await;
            };
            t.work(k.costs.page_zero);
            t.spin_lock(k.shm_lock, "shm_nopage_core:shm_lock_again").await;
            let mut w = k.w();
            w.shm_rss += 1;
            w.shm_segs[seg].entries[idx] = Pte::Present { page, write: true, dirty: true };
            page
        }
        Pte::Swap(entry) => {
            t.spin_unlock(k.shm_lock, "shm_nopage_core:shm_unlock");
            let mut page = lookup_swap_cache(k, t, entry).await?;
            if page.is_none() {
                t.lock_kernel("shm_nopage_core:lock_kernel").await;
                swapin_readahead(k, t, entry).await?;
                page = read_swap_cache(k, t, entry).await?;
                t.unlock_kernel("shm_nopage_core:unlock_kernel");
            }
            let Some(page) = page else { return oom(k, t, i_sem).await };
            delete_from_swap_cache(k, t, page).await?;
            swap_free(k, t, entry, "shm_nopage_core:swap_free").await?;
            t.spin_lock(k.shm_lock, "shm_nopage_core:shm_lock_again").await;
            let mut w = k.w();
            w.shm_swp -= 1;
            w.shm_rss += 1;
            w.shm_segs[seg].entries[idx] = Pte::Present { page, write: true, dirty: true };
            page
        }
    };
    get_page(k, t, page, "shm_nopage_core:get_page")?;
    t.spin_unlock(k.shm_lock, "shm_nopage:shm_unlock");
    t.up(i_sem, "shm_nopage:up_i_sem");
    Ok(NoPage::Page(page))
}

async fn oom(k: &Kernel, t: &Task, i_sem: engine::LockId) -> KResult<NoPage> {
    t.spin_lock(k.shm_lock, "shm_nopage_core:oom_shm_lock").await;
    t.spin_unlock(k.shm_lock, "shm_nopage:shm_unlock");
    t.up(i_sem, "shm_nopage:up_i_sem");
    Ok(NoPage::Oom)
}

/// `shm_unuse` → `shm_unuse_core` → `shm_unuse_page` (ipc/shm.c), BKL
/// held, from try_to_unuse: under shm_lockall, the first SHM_ENTRY equal to
/// the entry becomes the page (with a reference), and the segment's swap
/// reference is freed. (zmap_unuse, for /dev/zero, is not modelled.)
pub async fn shm_unuse(k: &Kernel, t: &Task, entry: SwpEntry, page: PageId) -> KResult<()> {
    t.spin_lock(k.shm_lock, "shm_unuse:shm_lockall").await;
    let found = {
        let w = k.w();
        w.shm_segs
            .iter()
            .enumerate()
            .find_map(|(seg, s)| s.entries.iter().position(|&e| e == Pte::Swap(entry)).map(|idx| (seg, idx)))
    };
    if let Some((seg, idx)) = found {
        {
            let mut w = k.w();
            w.shm_segs[seg].entries[idx] = Pte::Present { page, write: true, dirty: true };
        }
        t.note("shm_unuse_page:set", || format!("shm{seg}[{idx}]: swap entry {entry} -> page"));
        get_page(k, t, page, "shm_unuse_page:get_page")?;
        {
            let mut w = k.w();
            w.shm_rss += 1;
            w.shm_swp -= 1;
        }
        swap_free(k, t, entry, "shm_unuse_page:swap_free").await?;
    }
    t.spin_unlock(k.shm_lock, "shm_unuse:shm_unlockall");
    Ok(())
}

/// `shm_swap` (ipc/shm.c), from the page stealer: `shm_swap_preop` takes a
/// slot preloaded with 2 references under the BKL; under shm_lockall
/// `shm_swap_core` takes a present page nobody else maps (count 1), makes
/// SHM_ENTRY the swap entry and adds the page to the swap cache (locked);
/// `shm_swap_postop` writes it out under the BKL. `only` restricts the
/// scan to one page (a scenario's set-up). Returns whether a page went out.
pub async fn shm_swap(k: &Kernel, t: &Task, only: Option<(ShmId, usize)>) -> KResult<bool> {
    t.lock_kernel("shm_swap_preop:lock_kernel").await;
    let entry = get_swap_page_count(k, t, 2).await;
    t.unlock_kernel("shm_swap_preop:unlock_kernel");
    let Some(entry) = entry else { return Ok(false) };
    t.spin_lock(k.shm_lock, "shm_swap:shm_lockall").await;
    let victim = {
        let w = k.w();
        let mut candidates = w.shm_segs.iter().enumerate().flat_map(|(seg, s)| {
            s.entries.iter().enumerate().filter_map(move |(idx, e)| match e {
                Pte::Present { page, .. } => Some((seg, idx, *page)),
                _ => None,
            })
        });
        candidates.find(|&(seg, idx, page)| {
            only.is_none_or(|o| o == (seg, idx)) && w.pages.get(page).is_some_and(|p| p.count == 1)
        })
    };
    let Some((seg, idx, page)) = victim else {
        t.spin_unlock(k.shm_lock, "shm_swap:failed_shm_unlockall");
        swap_free_count(k, t, entry, 2, "shm_swap:__swap_free").await?;
        return Ok(false);
    };
    k.w().shm_segs[seg].entries[idx] = Pte::Swap(entry);
    // The cache's swap reference was preloaded by __get_swap_page(2).
    add_to_swap_cache(k, t, page, entry).await?;
    {
        let mut w = k.w();
        w.shm_swp += 1;
        w.shm_rss -= 1;
    }
    t.spin_unlock(k.shm_lock, "shm_swap:shm_unlockall");
    t.lock_kernel("shm_swap_postop:lock_kernel").await;
    rw_swap_page_write_async(k, t, page, entry);
    t.unlock_kernel("shm_swap_postop:unlock_kernel");
    free_page(k, t, page, "shm_swap_postop:__free_page")?;
    Ok(true)
}

/// `shm_close` (ipc/shm.c), the VMA's close: one attach fewer, under the
/// shm lock. (Removing a segment marked for destruction is not modelled.)
pub async fn shm_close(k: &Kernel, t: &Task, seg: ShmId) {
    t.spin_lock(k.shm_lock, "shm_close:shm_lock").await;
    k.w().shm_segs[seg].nattch -= 1;
    t.spin_unlock(k.shm_lock, "shm_close:shm_unlock");
}
