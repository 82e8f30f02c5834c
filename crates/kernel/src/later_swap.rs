//! The later kernels' tests of who owns a swap-cache page (mm/swapfile.c):
//! 2.4's `can_share_swap_page`, `exclusive_swap_page` and
//! `remove_exclusive_swap_page` (read in the 2.4.17 tree, lines 226-323,
//! standing for 2.4.10), 5.1's `reuse_swap_page` and `try_to_free_swap`,
//! and `vm_swap_full` (include/linux/swap.h).
//!
//! pre4's `is_page_shared` adds the page count and the swap count read
//! with no lock, and its callers then delete the page from the swap cache.
//! 2.4 reads the swap count under the swap locks and rechecks the page
//! count under pagecache_lock, where a new reference (find_get_page) would
//! have to be taken; 5.1 counts mappings and swap references, which a new
//! one can only join under the page lock or the pte lock its caller holds.

use engine::{LockId, Point, Task};

use crate::page_alloc::{free_page, page_number};
use crate::swap_state::delete_from_swap_cache_nolock;
use crate::swapfile::{swap_count, swap_free};
use crate::types::*;
use crate::{KResult, Kernel};

/// `vm_swap_full()`: `nr_swap_pages * 2 < total_swap_pages`, the total
/// being the pages of the devices that are on (SWP_WRITEOK).
pub fn vm_swap_full(k: &Kernel) -> bool {
    let w = k.w();
    let total: i64 = w.swap_info.iter().filter(|p| p.flags & SWP_WRITEOK == SWP_WRITEOK).map(|p| p.pages as i64).sum();
    *w.nr_swap_pages * 2 < total
}

/// The page's swap slot and the device lock `swap_info_get` takes.
fn cache_slot(k: &Kernel, page: PageId) -> Option<(SwpEntry, LockId)> {
    let w = k.w();
    let p = &w.pages[page];
    let entry = p.index.filter(|_| p.swap_cache)?;
    Some((entry, w.swap_info[entry.type_].sdev_lock))
}

/// `exclusive_swap_page` (2.4): page locked and in the swap cache; under
/// the swap locks (`swap_info_get`), is the cache the slot's only user,
/// and, rechecked under pagecache_lock, are we and the cache the page's?
async fn exclusive_swap_page(k: &Kernel, t: &Task, page: PageId) -> bool {
    let Some((entry, sdev_lock)) = cache_slot(k, page) else { return false };
    t.spin_lock(k.swaplock, "exclusive_swap_page:swap_list_lock").await;
    t.spin_lock(sdev_lock, "exclusive_swap_page:swap_device_lock").await;
    let mut exclusive = false;
    if swap_count(k, entry) == 1 {
        t.spin_lock(k.pagecache_lock, "exclusive_swap_page:pagecache_lock").await;
        exclusive = k.w().pages[page].count == 2;
        t.spin_unlock(k.pagecache_lock, "exclusive_swap_page:pagecache_unlock");
    }
    t.spin_unlock(sdev_lock, "exclusive_swap_page:swap_device_unlock");
    t.spin_unlock(k.swaplock, "exclusive_swap_page:swap_list_unlock");
    exclusive
}

/// `can_share_swap_page` (2.4), page locked: may the faulting pte map it
/// writable? A page only we hold, or a swap-cache page that only we and
/// the cache hold and whose slot only the cache uses. It deletes nothing.
pub async fn can_share_swap_page(k: &Kernel, t: &Task, page: PageId) -> KResult<bool> {
    k.check_page(t, page, "can_share_swap_page")?;
    let (count, in_cache) = {
        let w = k.w();
        (w.pages[page].count, w.pages[page].swap_cache)
    };
    Ok(match count {
        1 => true,
        2 if in_cache => exclusive_swap_page(k, t, page).await,
        _ => false,
    })
}

/// `remove_exclusive_swap_page` (2.4), page locked: if only we and the
/// cache hold the page and only the cache uses its slot, take it out of
/// the swap cache — the page count rechecked under pagecache_lock, so a
/// racing find_get_page either is seen or finds no page. Returns whether
/// it was removed.
pub async fn remove_exclusive_swap_page(k: &Kernel, t: &Task, page: PageId) -> KResult<bool> {
    k.check_page(t, page, "remove_exclusive_swap_page")?;
    if k.w().pages[page].count != 2 {
        return Ok(false); // 2: us + cache
    }
    let Some((entry, sdev_lock)) = cache_slot(k, page) else { return Ok(false) };
    t.spin_lock(k.swaplock, "remove_exclusive_swap_page:swap_list_lock").await;
    t.spin_lock(sdev_lock, "remove_exclusive_swap_page:swap_device_lock").await;
    let mut removed = false;
    if swap_count(k, entry) == 1 {
        t.spin_lock(k.pagecache_lock, "remove_exclusive_swap_page:pagecache_lock").await;
        if k.w().pages[page].count == 2 {
            remove_from_swap_cache_locked(k, t, page, "remove_exclusive_swap_page:__delete_from_swap_cache")?;
            removed = true;
        }
        t.spin_unlock(k.pagecache_lock, "remove_exclusive_swap_page:pagecache_unlock");
    }
    t.spin_unlock(sdev_lock, "remove_exclusive_swap_page:swap_device_unlock");
    t.spin_unlock(k.swaplock, "remove_exclusive_swap_page:swap_list_unlock");
    if removed {
        swap_free(k, t, entry, "remove_exclusive_swap_page:swap_free").await?;
        free_page(k, t, page, "remove_exclusive_swap_page:page_cache_release")?;
    }
    Ok(removed)
}

/// `__delete_from_swap_cache` with pagecache_lock held (2.4): BUG unless
/// the page is locked and in the swap cache; unhash it (SetPageDirty: the
/// model's pages are dirty whenever they differ from the disk).
fn remove_from_swap_cache_locked(k: &Kernel, t: &Task, page: PageId, point: Point) -> KResult<()> {
    let (in_cache, index, page_lock) = {
        let w = k.w();
        let p = &w.pages[page];
        (p.swap_cache, p.index, p.lock)
    };
    if !in_cache || !t.page_locked(page_lock) {
        let what = page_number(k, page);
        return Err(k.oops(t, "swap-cache", format!("{point}: {what} is not locked in the swap cache: BUG")));
    }
    let entry = index.expect("a swap-cache page has an index");
    let mut w = k.w();
    w.pages[page].swap_cache = false;
    w.pages[page].dirty = true;
    w.swap_cache.shift_remove(&entry);
    Ok(())
}

/// `SetPageDirty` (the later kernels' PG_dirty, [`Page::dirty`]).
pub fn set_page_dirty(k: &Kernel, page: PageId) {
    if let Some(p) = k.w().pages.get_mut(page) {
        p.dirty = true;
    }
}

/// `reuse_swap_page` (5.1), page locked: `count` = the ptes mapping the
/// page plus the swap references of its slot (not the cache's), read under
/// the device lock (page_swapcount). At 1 the caller's pte is its only
/// user: a swap-cache page leaves the cache (delete_from_swap_cache,
/// SetPageDirty), and the pte may be made writable. `own` is the references
/// the caller holds that are not mappings. The model has no mapcount: it
/// counts the page's other references, so a racing swapoff's or lookup's
/// reference counts as a mapping here, where 5.1 would reuse (the model
/// copies instead: fewer deletes than 5.1, never more).
pub async fn reuse_swap_page(k: &Kernel, t: &Task, page: PageId, own: i32) -> KResult<bool> {
    k.check_page(t, page, "reuse_swap_page")?;
    let (pin, in_cache) = {
        let w = k.w();
        (w.pages[page].count - own, w.pages[page].swap_cache)
    };
    let mut count = pin - i32::from(in_cache);
    if let Some((entry, sdev_lock)) = cache_slot(k, page) {
        t.spin_lock(sdev_lock, "page_swapcount:swap_device_lock").await;
        count += i32::from(swap_count(k, entry)) - 1;
        t.spin_unlock(sdev_lock, "page_swapcount:swap_device_unlock");
    }
    if count == 1 && in_cache {
        delete_from_swap_cache_nolock(k, t, page).await?;
        set_page_dirty(k, page);
    }
    Ok(count <= 1)
}

/// `try_to_free_swap` (5.1), page locked: a swap-cache page whose slot has
/// no reference but the cache's leaves the cache.
pub async fn try_to_free_swap(k: &Kernel, t: &Task, page: PageId) -> KResult<bool> {
    k.check_page(t, page, "try_to_free_swap")?;
    let Some((entry, _)) = cache_slot(k, page) else { return Ok(false) };
    if swap_count(k, entry) > 1 {
        return Ok(false); // page_swapped
    }
    delete_from_swap_cache_nolock(k, t, page).await?;
    set_page_dirty(k, page);
    Ok(true)
}
