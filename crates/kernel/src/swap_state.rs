//! The swap cache (mm/swap_state.c, mm/filemap.c's find_lock_page, and
//! mm/page_io.c's rw_swap_page as a timed disk I/O).

use engine::{Point, Task};

use crate::memory::FaultFailure;
use crate::page_alloc::{alloc_page, free_page, get_page, page_number};
use crate::swap_device::Piece;
use crate::swapfile::{swap_duplicate, swap_free};
use crate::types::*;
use crate::{KResult, Kernel};

/// `add_to_swap_cache` (mm/swap_state.c) → `add_to_page_cache`: BUG if
/// the page is already in a cache; under pagecache_lock set PG_locked,
/// take the cache's page reference, set `index`, hash it.
pub async fn add_to_swap_cache(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry) -> KResult<()> {
    k.check_page(t, page, "add_to_swap_cache")?;
    if k.w().pages[page].swap_cache {
        let what = page_number(k, page);
        return Err(k.oops(t, "swap-cache", format!("add_to_swap_cache: {what} is already in the swap cache: BUG")));
    }
    t.spin_lock(k.pagecache_lock, "add_to_page_cache:pagecache_lock").await;
    let page_lock = k.w().pages[page].lock;
    if !t.try_lock_page(page_lock, "add_to_page_cache:PG_locked") {
        t.spin_unlock(k.pagecache_lock, "add_to_page_cache:pagecache_unlock");
        let what = page_number(k, page);
        return Err(k.oops(t, "swap-cache", format!("add_to_swap_cache: {what} was locked by someone else")));
    }
    let alias = {
        let mut w = k.w();
        if w.swap_cache.contains_key(&entry) {
            true
        } else {
            let p = &mut w.pages[page];
            p.swap_cache = true;
            p.index = Some(entry);
            p.count += 1;
            w.swap_cache.insert(entry, page);
            false
        }
    };
    if !alias {
        k.key(t, crate::signatures::KeyEvent::SwapCacheAdd { entry });
    }
    t.spin_unlock(k.pagecache_lock, "add_to_page_cache:pagecache_unlock");
    if alias {
        return Err(k.oops(t, "swap-cache", format!("add_to_swap_cache: entry {entry} already has a page: BUG")));
    }
    Ok(())
}

/// `__delete_from_swap_cache` (mm/swap_state.c): `remove_from_swap_cache`
/// BUGs unless the page is in the swap cache and locked — a second delete
/// of the same page lands here — then unhashes it; then `swap_free` drops
/// the cache's swap reference.
pub async fn delete_from_swap_cache_core(k: &Kernel, t: &Task, page: PageId) -> KResult<()> {
    k.check_page(t, page, "remove_from_swap_cache")?;
    let (in_cache, index, page_lock) = {
        let w = k.w();
        let p = &w.pages[page];
        (p.swap_cache, p.index, p.lock)
    };
    if !in_cache || !t.page_locked(page_lock) {
        let what = page_number(k, page);
        let why = if in_cache { "not locked" } else { "not in the swap cache (deleted twice?)" };
        return Err(k.oops(t, "swap-cache", format!("remove_from_swap_cache: {what} is {why}: BUG")));
    }
    let entry = index.expect("a swap-cache page has an index");
    t.spin_lock(k.pagecache_lock, "remove_inode_page:pagecache_lock").await;
    {
        let mut w = k.w();
        w.pages[page].swap_cache = false;
        w.swap_cache.shift_remove(&entry);
    }
    t.spin_unlock(k.pagecache_lock, "remove_inode_page:pagecache_unlock");
    swap_free(k, t, entry, "__delete_from_swap_cache:swap_free").await
}

/// `delete_from_swap_cache_nolock` (mm/swap_state.c): the page must be
/// locked by the caller; delete it and drop the cache's page reference.
pub async fn delete_from_swap_cache_nolock(k: &Kernel, t: &Task, page: PageId) -> KResult<()> {
    delete_from_swap_cache_core(k, t, page).await?;
    free_page(k, t, page, "delete_from_swap_cache_nolock:page_cache_release")
}

/// `delete_from_swap_cache` (mm/swap_state.c): lock_page (sleeps), delete,
/// unlock.
pub async fn delete_from_swap_cache(k: &Kernel, t: &Task, page: PageId) -> KResult<()> {
    let page_lock = k.w().pages[page].lock;
    t.lock_page(page_lock, "delete_from_swap_cache:lock_page").await;
    delete_from_swap_cache_nolock(k, t, page).await?;
    t.unlock_page(page_lock, "delete_from_swap_cache:UnlockPage");
    Ok(())
}

/// `is_page_shared` (include/linux/swap.h): page_count plus, for a
/// swap-cache page, swap_count − 2. Caller holds the page lock.
pub fn is_page_shared(k: &Kernel, t: &Task, page: PageId, point: Point) -> KResult<bool> {
    k.check_page(t, page, point)?;
    let w = k.w();
    let p = &w.pages[page];
    let mut count = p.count as i64;
    if p.swap_cache {
        let entry = p.index.expect("a swap-cache page has an index");
        let Some(map) = &w.swap_info[entry.type_].swap_map else {
            drop(w);
            return Err(k.oops(
                t,
                "swapoff-completeness",
                format!("{point}: swap_count of {entry} on a freed swap_map"),
            ));
        };
        count += map[entry.offset as usize] as i64 - 2;
    }
    Ok(count > 1)
}

/// `free_page_and_swap_cache` (mm/swap_state.c), page_table_lock held: if
/// the page is in the swap cache and TryLockPage succeeds, delete it unless
/// it is shared; then drop the pte's reference.
pub async fn free_page_and_swap_cache(k: &Kernel, t: &Task, page: PageId) -> KResult<()> {
    k.check_page(t, page, "free_page_and_swap_cache")?;
    let (in_cache, page_lock) = {
        let w = k.w();
        (w.pages[page].swap_cache, w.pages[page].lock)
    };
    if in_cache && t.try_lock_page(page_lock, "free_page_and_swap_cache:TryLockPage") {
        if !is_page_shared(k, t, page, "free_page_and_swap_cache:is_page_shared")? {
            k.key_swap_cache_drop(t, page, "free_page_and_swap_cache");
            delete_from_swap_cache_nolock(k, t, page).await?;
        }
        t.unlock_page(page_lock, "free_page_and_swap_cache:UnlockPage");
    }
    if let Some(p) = k.w().pages.get_mut(page) {
        p.swap_entry = false;
    }
    free_page(k, t, page, "free_page_and_swap_cache:__free_page")
}

/// `lookup_swap_cache` (mm/swap_state.c) over `find_lock_page`
/// (mm/filemap.c): find the page under pagecache_lock and take a
/// reference; if it is locked, sleep until it is not and look again; then
/// recheck PageSwapCache (it may have been deleted meanwhile) and return it
/// unlocked with the reference held.
pub async fn lookup_swap_cache(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<Option<PageId>> {
    loop {
        t.spin_lock(k.pagecache_lock, "find_lock_page:pagecache_lock").await;
        let found = k.w().swap_cache.get(&entry).copied();
        if let Some(page) = found {
            get_page(k, t, page, "find_lock_page:get_page")?;
        }
        t.spin_unlock(k.pagecache_lock, "find_lock_page:pagecache_unlock");
        let Some(page) = found else { return Ok(None) };
        if !k.fixes.lookup_wait {
            // What-if: return the page found, without waiting for its lock
            // or rechecking that it is still in the swap cache.
            return Ok(Some(page));
        }
        let page_lock = k.w().pages[page].lock;
        if !t.try_lock_page(page_lock, "find_lock_page:TryLockPage") {
            t.wait_on_page(page_lock, "find_lock_page:wait_on_page").await;
            free_page(k, t, page, "find_lock_page:page_cache_release")?;
            continue;
        }
        let still_cached = k.w().pages[page].swap_cache;
        t.unlock_page(page_lock, "lookup_swap_cache:UnlockPage");
        if !still_cached {
            free_page(k, t, page, "lookup_swap_cache:__free_page")?;
            continue;
        }
        return Ok(Some(page));
    }
}

/// `read_swap_cache_async` (mm/swap_state.c): `swap_duplicate` (fails if
/// the slot is no longer in use), look in the swap cache, else allocate a
/// page (sleeps), look again, add it to the swap cache (locked) and read it
/// from disk — waiting for the read when `wait`.
pub async fn read_swap_cache_async(k: &Kernel, t: &Task, entry: SwpEntry, wait: bool) -> KResult<Option<PageId>> {
    Ok(read_swap_cache_async_why(k, t, entry, wait).await?.ok())
}

/// `read_swap_cache_async`, with why it returned NULL: the kernel's
/// callers cannot tell, the model's messages can.
async fn read_swap_cache_async_why(
    k: &Kernel,
    t: &Task,
    entry: SwpEntry,
    wait: bool,
) -> KResult<Result<PageId, FaultFailure>> {
    if k.fixes.era.is_later() {
        return read_swap_cache_async_later(k, t, entry, wait).await;
    }
    if !swap_duplicate(k, t, entry, "read_swap_cache_async:swap_duplicate").await? {
        return Ok(Err(FaultFailure::DeadSwapEntry(entry)));
    }
    if let Some(found) = lookup_swap_cache(k, t, entry).await? {
        swap_free(k, t, entry, "read_swap_cache_async:out_free_swap").await?;
        return Ok(Ok(found));
    }
    let point = "read_swap_cache_async:__get_free_page";
    let Some(new_page) = alloc_page(k, t, point).await? else {
        swap_free(k, t, entry, "read_swap_cache_async:out_of_memory").await?;
        return Ok(Err(FaultFailure::OutOfMemory(point)));
    };
    if let Some(found) = lookup_swap_cache(k, t, entry).await? {
        free_page(k, t, new_page, "read_swap_cache_async:out_free_page")?;
        swap_free(k, t, entry, "read_swap_cache_async:out_free_swap").await?;
        return Ok(Ok(found));
    }
    add_to_swap_cache(k, t, new_page, entry).await?;
    rw_swap_page_read(k, t, new_page, entry, wait).await?;
    Ok(Ok(new_page))
}

/// Later kernels' `read_swap_cache_async` (2.4.10): with no BKL to
/// serialize callers, loop: `find_get_page`; else allocate a page (once)
/// and `add_to_swap_cache`, which takes the swap reference
/// (`swap_duplicate`, -ENOENT if the slot was freed) and adds the page only
/// if no other page got there first (`add_to_page_cache_unique`, -EEXIST:
/// look again).
async fn read_swap_cache_async_later(
    k: &Kernel,
    t: &Task,
    entry: SwpEntry,
    wait: bool,
) -> KResult<Result<PageId, FaultFailure>> {
    let mut new_page: Option<PageId> = None;
    loop {
        if let Some(found) = lookup_swap_cache_later(k, t, entry).await? {
            if let Some(page) = new_page {
                free_page(k, t, page, "read_swap_cache_async:page_cache_release")?;
            }
            return Ok(Ok(found));
        }
        let page = match new_page {
            Some(page) => page,
            None => {
                let point = "read_swap_cache_async:alloc_page";
                let Some(page) = alloc_page(k, t, point).await? else {
                    return Ok(Err(FaultFailure::OutOfMemory(point)));
                };
                new_page = Some(page);
                page
            }
        };
        if !swap_duplicate(k, t, entry, "add_to_swap_cache:swap_duplicate").await? {
            free_page(k, t, page, "read_swap_cache_async:page_cache_release_enoent")?;
            return Ok(Err(FaultFailure::DeadSwapEntry(entry)));
        }
        if add_to_swap_cache_unique(k, t, page, entry, false).await? {
            rw_swap_page_read(k, t, page, entry, wait).await?;
            return Ok(Ok(page));
        }
        swap_free(k, t, entry, "add_to_swap_cache:swap_free_eexist").await?;
    }
}

/// The later kernels' swap-cache lookup by a reader that holds nothing of
/// the device (do_swap_page's `lookup_swap_cache`, `__read_swap_cache_async`):
/// `find_get_page`, inside get_swap_device/put_swap_device from 5.3
/// (eb085574a752); a device that is going finds no page.
pub async fn lookup_swap_cache_later(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<Option<PageId>> {
    let hold = k.fixes.later.get_swap_device;
    crate::swap_device::holding(k, t, entry, hold, None, find_get_page(k, t, entry)).await
}

/// `find_get_page(&swapper_space, entry)` (mm/filemap.c): the page under
/// pagecache_lock, with a reference, neither locked nor waited for. It is
/// the later kernels' `lookup_swap_cache` (2.4.17 mm/swap_state.c: "we
/// _have_ got the right page"; 5.1 likewise): the caller locks the page and
/// rechecks what it needs.
pub async fn find_get_page(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<Option<PageId>> {
    t.spin_lock(k.pagecache_lock, "find_get_page:pagecache_lock").await;
    // 5.x: the tree is the device's own (swap_address_space(entry)), which
    // swapoff's exit_swap_address_space frees.
    if let Err(oops) =
        crate::swap_device::read(k, t, entry.type_, Piece::AddressSpace, "find_get_page:swap_address_space")
    {
        t.spin_unlock(k.pagecache_lock, "find_get_page:pagecache_unlock");
        return Err(oops);
    }
    let found = k.w().swap_cache.get(&entry).copied();
    if let Some(page) = found {
        get_page(k, t, page, "find_get_page:get_page")?;
    }
    t.spin_unlock(k.pagecache_lock, "find_get_page:pagecache_unlock");
    Ok(found)
}

/// 2.4's `add_to_swap_cache` (mm/swap_state.c) of a page its caller has
/// locked (try_to_swap_out; 5.1's add_to_swap under shrink_page_list's
/// page lock): take the cache's swap reference (`swap_duplicate`, false on
/// a freed slot: -ENOENT), then `add_to_page_cache_unique`, which finds an
/// entry that already has a page (a speculative read_swap_cache_async got
/// there first: -EEXIST) and gives the reference back.
pub async fn add_to_swap_cache_locked(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry) -> KResult<bool> {
    if !swap_duplicate(k, t, entry, "add_to_swap_cache:swap_duplicate").await? {
        return Ok(false);
    }
    if add_to_swap_cache_unique(k, t, page, entry, true).await? {
        return Ok(true);
    }
    swap_free(k, t, entry, "add_to_swap_cache:swap_free_eexist").await?;
    Ok(false)
}

/// Add a page that has a fresh slot to the swap cache: pre4-5 BUGs on an
/// entry that already has a page (the BKL keeps readers out); later kernels
/// return false (-EEXIST: "raced with a speculative read_swap_cache_async"
/// of a neighbouring slot) and the caller gives the slot back.
pub async fn try_add_to_swap_cache(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry) -> KResult<bool> {
    if k.fixes.era.is_later() {
        add_to_swap_cache_unique(k, t, page, entry, false).await
    } else {
        add_to_swap_cache(k, t, page, entry).await?;
        Ok(true)
    }
}

/// `add_to_page_cache_unique` for the swap cache (2.4.10): like
/// add_to_swap_cache, but an entry that already has a page is -EEXIST
/// (false), not a BUG. `__add_to_page_cache` sets PG_locked: on a new page
/// nobody else holds (`locked` false) the model takes the lock and checks
/// that nobody did; a page its caller has locked stays locked.
async fn add_to_swap_cache_unique(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry, locked: bool) -> KResult<bool> {
    t.spin_lock(k.pagecache_lock, "add_to_page_cache_unique:pagecache_lock").await;
    if k.w().swap_cache.contains_key(&entry) {
        t.spin_unlock(k.pagecache_lock, "add_to_page_cache_unique:pagecache_unlock_eexist");
        return Ok(false);
    }
    let page_lock = k.w().pages[page].lock;
    let ours = if locked {
        t.page_locked(page_lock)
    } else {
        t.try_lock_page(page_lock, "add_to_page_cache_unique:PG_locked")
    };
    if !ours {
        t.spin_unlock(k.pagecache_lock, "add_to_page_cache_unique:pagecache_unlock");
        let what = page_number(k, page);
        return Err(k.oops(t, "swap-cache", format!("add_to_swap_cache: {what} was locked by someone else")));
    }
    {
        let mut w = k.w();
        let p = &mut w.pages[page];
        p.swap_cache = true;
        p.index = Some(entry);
        p.count += 1;
        w.swap_cache.insert(entry, page);
    }
    k.key(t, crate::signatures::KeyEvent::SwapCacheAdd { entry });
    t.spin_unlock(k.pagecache_lock, "add_to_page_cache_unique:pagecache_unlock");
    Ok(true)
}

/// `read_swap_cache` = `read_swap_cache_async(entry, 1)`.
pub async fn read_swap_cache(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<Option<PageId>> {
    read_swap_cache_async(k, t, entry, true).await
}

/// `read_swap_cache`, with why it returned NULL (for a fault's message).
pub async fn read_swap_cache_why(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<Result<PageId, FaultFailure>> {
    read_swap_cache_async_why(k, t, entry, true).await
}

/// `rw_swap_page(READ, page, wait)` (mm/page_io.c:36-95): the page is
/// locked; the disk read completes after `disk_read` ns and unlocks it. An
/// asynchronous read counts in `nr_async_pages` until it completes, and
/// becomes a waited one when too many are in flight (page_io.c:46-47).
async fn rw_swap_page_read(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry, wait: bool) -> KResult<()> {
    let wait = wait || async_pages_throttled(k);
    let page_lock = k.w().pages[page].lock;
    k.w().stats.swap_ins += 1;
    // An injected read error: 2.3.99-pre4-5 clears PG_uptodate before the
    // read and nothing checks it afterwards, so the page is used as if the
    // read had worked (later kernels check PageUptodate).
    let failed = *k.w().faults_armed && t.inject("rw_swap_page:read_error", k.faults.read_error_ppm);
    if failed {
        k.printk(t, "end_buffer_io_async", format!("I/O error reading swap entry {entry} (injected)"));
    }
    if wait {
        let latency = k.io_latency(t, "rw_swap_page:read_delay", k.costs.disk_read);
        t.sleep_io("rw_swap_page:read", latency).await;
        complete_read(k, page, entry, failed);
        t.unlock_page(page_lock, "end_swap_io:UnlockPage");
    } else {
        t.give_page_lock_to_io(page_lock);
        *k.w().nr_async_pages += 1;
        let me = k.me();
        let latency = k.io_latency(t, "rw_swap_page:read_delay", k.costs.disk_read);
        k.sim.after(t.id(), latency, move || {
            complete_read(&me, page, entry, failed);
            *me.w().nr_async_pages -= 1; // PG_decr_after
            me.sim.irq_unlock_page(page_lock, "end_swap_io:UnlockPage");
        });
    }
    Ok(())
}

/// The contents a failed read leaves: garbage, never a written version.
pub const READ_ERROR_GARBAGE: u64 = u64::MAX;

fn complete_read(k: &Kernel, page: PageId, entry: SwpEntry, failed: bool) {
    let mut w = k.w();
    let data = if failed { READ_ERROR_GARBAGE } else { w.swap_info[entry.type_].disk[entry.offset as usize] };
    if let Some(p) = w.pages.get_mut(page) {
        p.data = data;
    }
}

/// `pager_daemon.swap_cluster` (mm/swap.c:64): SWAP_CLUSTER_MAX.
const SWAP_CLUSTER: u32 = 32;

/// "Don't allow too many pending pages in flight" (mm/page_io.c:46-47):
/// with more than `swap_cluster` asynchronous pages in flight, the next
/// I/O is waited for.
fn async_pages_throttled(k: &Kernel) -> bool {
    *k.w().nr_async_pages > SWAP_CLUSTER
}

/// `rw_swap_page(WRITE, page, 0)` (mm/page_io.c:36-95, the page locked and
/// in the swap cache): an asynchronous write, unless too many pages are in
/// flight (46-47); then the caller sleeps in `wait_on_page` (88) until the
/// write completes, in whatever BKL state it is (swap_out's, shm_swap_postop's).
pub async fn rw_swap_page_write(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry) {
    if !async_pages_throttled(k) {
        rw_swap_page_write_async(k, t, page, entry);
        return;
    }
    let page_lock = start_write(k, t, page, entry, false);
    t.wait_on_page(page_lock, "rw_swap_page_base:wait_on_page").await;
}

/// The asynchronous write: the page stays locked until it completes, and
/// counts in `nr_async_pages` meanwhile (PG_decr_after).
pub fn rw_swap_page_write_async(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry) {
    start_write(k, t, page, entry, true);
}

fn start_write(k: &Kernel, t: &Task, page: PageId, entry: SwpEntry, counted: bool) -> engine::LockId {
    let (page_lock, data) = {
        let mut w = k.w();
        w.stats.swap_outs += 1;
        if counted {
            *w.nr_async_pages += 1;
        }
        (w.pages[page].lock, w.pages[page].data)
    };
    t.give_page_lock_to_io(page_lock);
    let me = k.me();
    let latency = k.io_latency(t, "rw_swap_page:write_delay", k.costs.disk_write);
    k.sim.after(t.id(), latency, move || {
        let mut w = me.w();
        w.swap_info[entry.type_].disk[entry.offset as usize] = data;
        if counted {
            *w.nr_async_pages -= 1;
        }
        drop(w);
        me.sim.irq_unlock_page(page_lock, "end_swap_io:UnlockPage");
    });
    page_lock
}
