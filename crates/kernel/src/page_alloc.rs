//! Page allocation and freeing (mm/page_alloc.c, include/linux/mm.h).

use engine::{LockKind, LockName, Point, Task};

use crate::types::*;
use crate::{KResult, Kernel};

/// `__get_free_page(GFP_KERNEL/GFP_USER)` → `__alloc_pages`
/// (mm/page_alloc.c:273-320). `__alloc_pages` never sleeps itself: a task
/// with `PF_MEMALLOC` takes any free page; otherwise a zone above
/// `pages_low` that kswapd is not working on gives a page at once, and
/// else `zone_balance_memory` (230-268) wakes kswapd and, at or below
/// `pages_min` (or while the zone is `low_on_memory`), runs
/// `try_to_free_pages` in the caller's context and BKL state: every sleep
/// of the allocation happens in there. When that reclaim does not free
/// its SWAP_CLUSTER_MAX, the allocation fails (NULL: -ENOMEM).
///
/// Over-approximation, on purpose: before all that, the adversarial knob
/// `alloc_sleep` lets any allocation sleep at `point` whatever the memory
/// state (a recorded choice), standing for a reclaim the model's small
/// machines would not reach.
pub async fn alloc_page(k: &Kernel, t: &Task, point: Point) -> KResult<Option<PageId>> {
    t.may_sleep(point, k.costs.alloc_sleep).await;
    if injected_failure(k, t) {
        k.printk(t, point, "__alloc_pages: 0-order allocation failed (injected)");
        return Ok(None);
    }
    let memalloc = k.w().pf_memalloc.contains(&t.id());
    if !memalloc {
        let (free, wake) = {
            let w = k.w();
            (*w.free_pages, *w.zone_wake_kswapd)
        };
        if wake || free <= k.pages_low() {
            if !zone_balance_memory(k, t).await? {
                return Ok(None);
            }
        } else {
            return Ok(Some(take_free_page(k, t)));
        }
    }
    // allocate_ok: any free page.
    if *k.w().free_pages == 0 {
        return Ok(None);
    }
    Ok(Some(take_free_page(k, t)))
}

/// `zone_balance_memory` (mm/page_alloc.c:230-268) for the one zone:
/// returns whether the allocation may go on to `allocate_ok`.
async fn zone_balance_memory(k: &Kernel, t: &Task) -> KResult<bool> {
    if *k.w().free_pages > k.pages_low() {
        return Ok(true);
    }
    *k.w().zone_wake_kswapd = true;
    t.wake_up(k.kswapd_wait, "zone_balance_memory:wake_up_interruptible");
    if !*k.w().low_on_memory {
        // Not yet critical: kswapd handles it.
        if *k.w().free_pages > k.pages_min() {
            return Ok(true);
        }
        *k.w().low_on_memory = true;
    }
    // try_to_free_pages (mm/vmscan.c:535-545): GFP_KERNEL has __GFP_WAIT.
    k.w().pf_memalloc.push(t.id());
    let freed = crate::vmscan::do_try_to_free_pages(k, t).await;
    k.w().pf_memalloc.retain(|&id| id != t.id());
    // "tried && !freed" without __GFP_HIGH: the allocation fails.
    freed
}

/// An injected allocation failure: the Nth allocation, or one at the
/// configured rate. Only once armed (after set-up).
pub(crate) fn injected_failure(k: &Kernel, t: &Task) -> bool {
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
        // __free_pages_ok (mm/page_alloc.c:159-162).
        if *w.free_pages > k.pages_high() {
            *w.zone_wake_kswapd = false;
            *w.low_on_memory = false;
        }
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
