//! Page allocation and freeing (mm/page_alloc.c, include/linux/mm.h).

use engine::{LockKind, LockName, Point, Task};

use crate::types::*;
use crate::{KResult, Kernel};

/// `__get_free_page(GFP_USER)` / `alloc_page` (mm/page_alloc.c): may sleep
/// (a recorded choice: waiting for memory); with no free page it reclaims
/// directly (`try_to_free_pages`) and retries, and gives up with None
/// (-ENOMEM) when nothing can be freed.
pub async fn alloc_page(k: &Kernel, t: &Task, point: Point) -> KResult<Option<PageId>> {
    t.may_sleep(point, k.costs.alloc_sleep).await;
    if injected_failure(k, t) {
        k.printk(t, point, "__alloc_pages: 0-order allocation failed (injected)");
        return Ok(None);
    }
    for attempt in 0..8 {
        let free = *k.w().free_pages;
        if free > 0 {
            if free <= k.freepages_low() {
                t.wake_up(k.kswapd_wait, "__alloc_pages:wakeup_kswapd");
            }
            return Ok(Some(take_free_page(k, t)));
        }
        crate::vmscan::do_try_to_free_pages(k, t).await?;
        if attempt > 0 && *k.w().free_pages == 0 {
            // Pages being written out free up when their I/O completes.
            t.sleep_io("__alloc_pages:wait_for_writeout", k.costs.disk_write).await;
        }
    }
    Ok(None)
}

/// An injected allocation failure: the Nth allocation, or one at the
/// configured rate. Only once armed (after set-up).
fn injected_failure(k: &Kernel, t: &Task) -> bool {
    let (armed, count) = {
        let mut w = k.w();
        if !*w.faults_armed {
            return false;
        }
        *w.allocations += 1;
        (*w.faults_armed, *w.allocations)
    };
    armed && (k.faults.alloc_fail_nth == Some(count) || t.inject("__alloc_pages:fail", k.faults.alloc_fail_ppm))
}

fn take_free_page(k: &Kernel, t: &Task) -> PageId {
    let mut w = k.w();
    *w.free_pages -= 1;
    let number = *w.next_page_number;
    *w.next_page_number += 1;
    let lock = t.new_lock(LockKind::PageBit, "PG_locked", LockName::Numbered("page#", number.into(), ".PG_locked"));
    w.pages.insert(Page {
        number,
        count: 1,
        lock,
        swap_cache: false,
        index: None,
        swap_entry: false,
        data: 0,
        dirty: false,
    })
}

/// `get_page`: one more reference.
pub fn get_page(k: &Kernel, t: &Task, page: PageId, point: Point) -> KResult<()> {
    k.check_page(t, page, point)?;
    k.w().pages[page].count += 1;
    Ok(())
}

/// `__free_page` (page_cache_release): drop a reference; the last one
/// frees the page. A page still in the swap cache must not reach 0.
pub fn free_page(k: &Kernel, t: &Task, page: PageId, point: Point) -> KResult<()> {
    k.check_page(t, page, point)?;
    let (count, number, lock, in_cache) = {
        let mut w = k.w();
        let p = &mut w.pages[page];
        p.count -= 1;
        (p.count, p.number, p.lock, p.swap_cache)
    };
    if count < 0 {
        return Err(k.oops(t, "page-count", format!("{point}: page#{number} count went below zero")));
    }
    if count == 0 {
        if in_cache {
            return Err(k.oops(t, "page-count", format!("{point}: page#{number} freed while still in the swap cache")));
        }
        let mut w = k.w();
        w.pages.remove(page);
        *w.free_pages += 1;
        drop(w);
        k.sim.destroy_lock(lock);
    }
    Ok(())
}

/// A page's number for messages.
pub fn page_number(k: &Kernel, page: PageId) -> String {
    match k.w().pages.get(page) {
        Some(p) => format!("page#{}", p.number),
        None => "a freed page".to_string(),
    }
}
