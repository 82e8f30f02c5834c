//! The 5.x routines of issue 18's races that have no 2.3.99 counterpart:
//! zap's `free_swap_and_cache` and 5.1-rc's give-up count.
//!
//! `free_swap_and_cache` as it stood before 82b1c07a0af6 was read in
//! torvalds/linux mm/swapfile.c at 000085b9 (`free_swap_and_cache`,
//! `swap_page_trans_huge_swapped`, `__try_to_reclaim_swap`); the fix is
//! modelled from the commit message (Ryan Roberts, "mm: swap: fix race
//! between free_swap_and_cache() and swapoff()", v6.9): get_swap_device
//! around the whole, and a recheck that the slot is still in use.

use engine::Task;

use crate::later_swap::{try_to_free_swap, vm_swap_full};
use crate::page_alloc::free_page;
use crate::swap_device::{get_swap_device, put_swap_device, Piece};
use crate::swap_state::find_get_page;
use crate::swapfile::{swap_count, swap_free_usage};
use crate::types::*;
use crate::{KResult, Kernel};

/// `free_swap_and_cache(entry)` (5.x), from zap_pte_range with the pte lock
/// held: drop the pte's reference (`__swap_entry_free`, under the device
/// lock); if only the swap cache is left (`count == SWAP_HAS_CACHE`),
/// look again under the lock whether the slot is still swapped
/// (`swap_page_trans_huge_swapped`) and, if not, try to reclaim the cached
/// page (`__try_to_reclaim_swap`). Before 6.9 nothing holds the device
/// between the drop and the look: the drop may be the reference swapoff was
/// waiting for.
pub async fn free_swap_and_cache(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<()> {
    if !k.fixes.later.zap_ref {
        return free_swap_and_cache_body(k, t, entry).await;
    }
    // 6.9: `si = get_swap_device(entry); if (!si) return;` and a slot that
    // is free already is left alone (WARN_ON(!si->swap_map[offset])).
    let Some(type_) = get_swap_device(k, entry) else { return Ok(()) };
    let result = if swap_count(k, entry) == 0 { Ok(()) } else { free_swap_and_cache_body(k, t, entry).await };
    put_swap_device(k, t, type_);
    result
}

async fn free_swap_and_cache_body(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<()> {
    let usage = swap_free_usage(k, t, entry, 1, "free_swap_and_cache:__swap_entry_free").await?;
    // The model's swap cache holds a count of its own: SWAP_HAS_CACHE alone
    // is a count of 1 with a page in the cache.
    let only_cache = usage == 1 && k.w().swap_cache.contains_key(&entry);
    if !only_cache || swap_page_trans_huge_swapped(k, t, entry).await? {
        return Ok(());
    }
    try_to_reclaim_swap(k, t, entry).await
}

/// `swap_page_trans_huge_swapped(si, entry)` (5.x, no THP): under
/// `lock_cluster_or_swap_info`, is the slot still used by anything but the
/// cache? It reads `si->swap_map`, which a swapoff that finished meanwhile
/// has freed.
async fn swap_page_trans_huge_swapped(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<bool> {
    let sdev_lock = k.w().swap_info[entry.type_].sdev_lock;
    t.spin_lock(sdev_lock, "swap_page_trans_huge_swapped:lock_cluster_or_swap_info").await;
    let point = "swap_page_trans_huge_swapped:swap_map";
    if let Err(oops) = crate::swap_device::read(k, t, entry.type_, Piece::SwapMap, point) {
        t.spin_unlock(sdev_lock, "swap_page_trans_huge_swapped:unlock_cluster_or_swap_info");
        return Err(oops);
    }
    let swapped = swap_count(k, entry) > 1;
    t.spin_unlock(sdev_lock, "swap_page_trans_huge_swapped:unlock_cluster_or_swap_info");
    Ok(swapped)
}

/// `__try_to_reclaim_swap(si, offset, TTRS_UNMAPPED | TTRS_FULL)`: the
/// cached page (find_get_page in the device's swap cache), trylock it, and
/// if nothing maps it (the model: no reference but ours and the cache's)
/// or swap is half full, `try_to_free_swap`.
async fn try_to_reclaim_swap(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<()> {
    let Some(page) = find_get_page(k, t, entry).await? else { return Ok(()) };
    let page_lock = k.w().pages[page].lock;
    if t.try_lock_page(page_lock, "__try_to_reclaim_swap:trylock_page") {
        let unmapped = k.w().pages[page].count <= 2;
        if unmapped || vm_swap_full(k) {
            try_to_free_swap(k, t, page).await?;
        }
        t.unlock_page(page_lock, "__try_to_reclaim_swap:unlock_page");
    }
    free_page(k, t, page, "__try_to_reclaim_swap:put_page")
}
