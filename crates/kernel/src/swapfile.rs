//! Swap devices and swap counts (mm/swapfile.c): swap_duplicate,
//! swap_free, get_swap_page, sys_swapon, sys_swapoff and try_to_unuse with
//! its pre4 task-list walk and the patch's mm-list crab.

use engine::{Point, Task};

use crate::memory::{read_pte, set_pte};
use crate::mm::{hold_mm, release_mm};
use crate::page_alloc::{free_page, get_page};
use crate::swap_device::Piece;
use crate::swap_state::{delete_from_swap_cache, delete_from_swap_cache_nolock, read_swap_cache};
use crate::types::*;
use crate::{Era, KResult, Kernel};

pub const ENOMEM: i64 = 12;
pub const EBUSY: i64 = 16;
pub const EINVAL: i64 = 22;

/// How a swap_map access went, before taking any lock.
enum MapCheck {
    Ok,
    /// printk'ed and gave up.
    Refused(String),
}

/// The checks `swap_duplicate` and `__swap_free` make before locking.
/// Reading `swap_map[offset]` of a device whose map swapoff has vfree'd is
/// the NULL dereference of the real code: an oops.
fn check_entry(k: &Kernel, t: &Task, entry: SwpEntry, point: Point, need_used: bool) -> KResult<MapCheck> {
    let w = k.w();
    if entry.type_ >= *w.nr_swapfiles {
        return Ok(MapCheck::Refused(format!("Bad swap file entry {entry}")));
    }
    let p = &w.swap_info[entry.type_];
    if need_used && p.flags & SWP_USED == 0 {
        return Ok(MapCheck::Refused(format!(
            "swap_free: Trying to free swap from unused swap-device (entry {entry})"
        )));
    }
    if entry.offset >= p.max {
        return Ok(MapCheck::Refused(format!("Bad swap offset entry {entry}")));
    }
    let Some(map) = &p.swap_map else {
        drop(w);
        return Err(k.oops(
            t,
            "swapoff-completeness",
            format!(
                "{point}: swap_map of device {} is NULL (freed by swapoff) but entry {entry} is still in use: oops",
                entry.type_ + 1
            ),
        ));
    };
    if map[entry.offset as usize] == 0 {
        return Ok(MapCheck::Refused(if need_used {
            format!("VM: Bad swap entry {entry}")
        } else {
            format!("Unused swap offset entry in swap_dup {entry}")
        }));
    }
    Ok(MapCheck::Ok)
}

/// `swap_duplicate` (mm/swapfile.c): one more reference on a slot. Returns
/// false (after a printk) when the entry is not in use — the way
/// read_swap_cache notices that swapoff got there first.
pub async fn swap_duplicate(k: &Kernel, t: &Task, entry: SwpEntry, point: Point) -> KResult<bool> {
    // 5.3's __swap_duplicate holds the device (eb085574a752).
    let hold = k.fixes.later.get_swap_device;
    crate::swap_device::holding(k, t, entry, hold, false, swap_duplicate_held(k, t, entry, point)).await
}

async fn swap_duplicate_held(k: &Kernel, t: &Task, entry: SwpEntry, point: Point) -> KResult<bool> {
    if let MapCheck::Refused(message) = check_entry(k, t, entry, point, false)? {
        // 2.4.10's swap_duplicate fails a free or out-of-range slot quietly
        // (readahead meets them all the time); only a bad type is printed.
        if !k.fixes.era.is_later() || entry.type_ >= *k.w().nr_swapfiles {
            k.printk(t, point, message);
        }
        return Ok(false);
    }
    let sdev_lock = k.w().swap_info[entry.type_].sdev_lock;
    t.spin_lock(sdev_lock, "swap_duplicate:swap_device_lock").await;
    if k.fixes.later.teardown {
        // 5.x's __swap_duplicate tests `offset >= p->max` before it locks
        // and reads `p->swap_map[offset]` after, with no second test.
        if let Err(oops) = crate::swap_device::read(k, t, entry.type_, Piece::SwapMap, "__swap_duplicate:swap_map") {
            t.spin_unlock(sdev_lock, "swap_duplicate:swap_device_unlock");
            return Err(oops);
        }
    }
    {
        let mut w = k.w();
        let p = &w.swap_info[entry.type_];
        if k.fixes.era.is_later()
            && (entry.offset >= p.max || p.swap_map.as_ref().is_none_or(|m| m[entry.offset as usize] == 0))
        {
            // 2.4.10 checks `offset < p->max && p->swap_map[offset]` under
            // swap_device_lock, and swapoff zeroes max under it: a device
            // that went meanwhile fails the duplicate instead of oopsing.
            drop(w);
            t.spin_unlock(sdev_lock, "swap_duplicate:swap_device_unlock");
            return Ok(false);
        }
        let Some(map) = w.swap_info[entry.type_].swap_map.as_mut() else {
            drop(w);
            t.spin_unlock(sdev_lock, "swap_duplicate:swap_device_unlock");
            return Err(k.oops(
                t,
                "swapoff-completeness",
                format!("{point}: swap_map vanished under swap_duplicate({entry})"),
            ));
        };
        let slot = &mut map[entry.offset as usize];
        *slot = if *slot < SWAP_MAP_MAX { *slot + 1 } else { SWAP_MAP_MAX };
    }
    t.spin_unlock(sdev_lock, "swap_duplicate:swap_device_unlock");
    Ok(true)
}

/// `swap_free` = `__swap_free(entry, 1)` (mm/swapfile.c). Its complaint
/// paths ("unused swap-device", "Bad swap entry", "Bad count") mean a
/// reference was counted wrong somewhere: each is reported as a violation.
pub async fn swap_free(k: &Kernel, t: &Task, entry: SwpEntry, point: Point) -> KResult<()> {
    swap_free_count(k, t, entry, 1, point).await
}

/// `__swap_free(entry, count)` (mm/swapfile.c).
pub async fn swap_free_count(k: &Kernel, t: &Task, entry: SwpEntry, count: u16, point: Point) -> KResult<()> {
    swap_free_usage(k, t, entry, count, point).await.map(|_| ())
}

/// `__swap_free`, returning the slot's count as it left it under the lock
/// (5.x's `__swap_entry_free` returns it to free_swap_and_cache).
pub(crate) async fn swap_free_usage(k: &Kernel, t: &Task, entry: SwpEntry, count: u16, point: Point) -> KResult<u16> {
    if let MapCheck::Refused(message) = check_entry(k, t, entry, point, true)? {
        k.printk(t, point, message.clone());
        return Err(k.oops(t, "swap-count", format!("{point}: swap_free({entry}) printed \"{message}\"")));
    }
    t.spin_lock(k.swaplock, "swap_free:swap_list_lock").await;
    {
        // A freed slot on a device of higher priority than swap_list.next
        // makes it the next to allocate from.
        let mut w = k.w();
        let next = *w.swap_list_next;
        if next >= 0 && w.swap_info[entry.type_].prio > w.swap_info[next as usize].prio {
            *w.swap_list_next = entry.type_ as i32;
        }
    }
    let sdev_lock = k.w().swap_info[entry.type_].sdev_lock;
    t.spin_lock(sdev_lock, "swap_free:swap_device_lock").await;
    let bad_count = {
        let mut w = k.w();
        let World { swap_info, nr_swap_pages, .. } = &mut *w;
        let p = &mut swap_info[entry.type_];
        match p.swap_map.as_mut() {
            None => Err("swap_map is NULL".to_string()),
            Some(map) => {
                let slot = &mut map[entry.offset as usize];
                if *slot < SWAP_MAP_MAX && *slot < count {
                    Err(format!("VM: Bad count {count} current count {} ({entry})", *slot))
                } else {
                    if *slot < SWAP_MAP_MAX {
                        *slot -= count;
                        if *slot == 0 {
                            p.inuse_pages -= 1;
                            p.lowest_bit = p.lowest_bit.min(entry.offset);
                            p.highest_bit = p.highest_bit.max(entry.offset);
                            **nr_swap_pages += 1;
                        }
                    }
                    Ok(*slot)
                }
            }
        }
    };
    t.spin_unlock(sdev_lock, "swap_free:swap_device_unlock");
    t.spin_unlock(k.swaplock, "swap_free:swap_list_unlock");
    match bad_count {
        Ok(usage) => Ok(usage),
        Err(message) => {
            k.printk(t, point, message.clone());
            Err(k.oops(t, "swap-count", format!("{point}: swap_free({entry}) printed \"{message}\"")))
        }
    }
}

use crate::world::World;

/// `get_swap_page` = `__get_swap_page(1)` (mm/swapfile.c).
pub async fn get_swap_page(k: &Kernel, t: &Task) -> Option<SwpEntry> {
    get_swap_page_count(k, t, 1).await
}

/// `__get_swap_page(count)` (mm/swapfile.c:86-137): a slot preloaded with
/// `count` references (shm_swap asks for 2: the segment's and the
/// cache's). Under swap_list_lock, from `swap_list.next`: each WRITEOK
/// device is scanned under its swap_device_lock (`scan_swap_map`); on
/// success `swap_list.next` moves on to the next device of the same
/// priority, or back to the head (round robin within a priority). Without
/// a slot the walk goes on to the next device of the same priority, then
/// once from the head through every lower one.
pub async fn get_swap_page_count(k: &Kernel, t: &Task, count: u16) -> Option<SwpEntry> {
    if count >= SWAP_MAP_MAX {
        return None; // "get_swap_page: bad count"
    }
    t.spin_lock(k.swaplock, "get_swap_page:swap_list_lock").await;
    let mut found = None;
    let mut type_ = *k.w().swap_list_next;
    if *k.w().nr_swap_pages == 0 {
        type_ = -1;
    }
    let mut wrapped = false;
    while type_ >= 0 {
        let (flags, sdev_lock) = {
            let w = k.w();
            (w.swap_info[type_ as usize].flags, w.swap_info[type_ as usize].sdev_lock)
        };
        if flags & SWP_WRITEOK == SWP_WRITEOK {
            t.spin_lock(sdev_lock, "get_swap_page:swap_device_lock").await;
            found = scan_swap_map(&mut k.w(), type_ as usize, count);
            t.spin_unlock(sdev_lock, "get_swap_page:swap_device_unlock");
            if found.is_some() {
                let mut w = k.w();
                let (prio, next) = (w.swap_info[type_ as usize].prio, w.swap_info[type_ as usize].next);
                *w.swap_list_next =
                    if next < 0 || w.swap_info[next as usize].prio != prio { *w.swap_list_head } else { next };
                break;
            }
        }
        let w = k.w();
        let (prio, next) = (w.swap_info[type_ as usize].prio, w.swap_info[type_ as usize].next);
        type_ = next;
        if !wrapped && (next < 0 || w.swap_info[next as usize].prio != prio) {
            type_ = *w.swap_list_head;
            wrapped = true;
        }
    }
    t.spin_unlock(k.swaplock, "get_swap_page:swap_list_unlock");
    found
}

/// `SWAPFILE_CLUSTER` (mm/swapfile.c:27): slots handed out in sequence
/// before scan_swap_map looks for a new empty cluster.
pub const SWAPFILE_CLUSTER: u32 = 256;

/// `scan_swap_map` (mm/swapfile.c:29-84), swap_device_lock held. While the
/// current cluster lasts (`cluster_nr`), the next free slot from
/// `cluster_next` up to `highest_bit` — so a slot freed behind the cursor
/// is not reused until the cluster runs out. Then a new cluster: the first
/// run of `SWAPFILE_CLUSTER` free slots from `lowest_bit`, or else the
/// first free slot from `lowest_bit` ("go finegrained").
fn scan_swap_map(w: &mut World, type_: usize, count: u16) -> Option<SwpEntry> {
    let World { swap_info, nr_swap_pages, .. } = w;
    let p = &mut swap_info[type_];
    let map = p.swap_map.as_mut()?;
    let free = |map: &[u16], offset: u32| map.get(offset as usize) == Some(&0);
    let mut got = None;
    if p.cluster_nr > 0 {
        while p.cluster_next <= p.highest_bit {
            let offset = p.cluster_next;
            p.cluster_next += 1;
            if free(map, offset) {
                p.cluster_nr -= 1;
                got = Some(offset);
                break;
            }
        }
    }
    if got.is_none() {
        p.cluster_nr = SWAPFILE_CLUSTER;
        // An empty (even unaligned) cluster from lowest_bit.
        let mut offset = p.lowest_bit;
        while got.is_none() && offset + SWAPFILE_CLUSTER - 1 <= p.highest_bit {
            match (offset..offset + SWAPFILE_CLUSTER).find(|&nr| !free(map, nr)) {
                Some(used) => offset = used + 1,
                None => got = Some(offset),
            }
        }
        if got.is_none() {
            got = (p.lowest_bit..=p.highest_bit).find(|&offset| free(map, offset));
        }
    }
    let offset = got?;
    if offset == p.lowest_bit {
        p.lowest_bit += 1;
    }
    if offset == p.highest_bit {
        p.highest_bit = p.highest_bit.saturating_sub(1);
    }
    map[offset as usize] = count;
    p.inuse_pages += 1;
    **nr_swap_pages -= 1;
    p.cluster_next = offset + 1;
    Some(SwpEntry { type_, offset })
}

/// Link a device into `swap_list` by priority, before the first device of
/// the same or a lower priority (swap_list_lock held), as sys_swapon and
/// sys_swapoff's error path both do.
fn swap_list_insert(w: &mut World, type_: usize) {
    let prio = w.swap_info[type_].prio;
    let (mut prev, mut i) = (-1i32, *w.swap_list_head);
    while i >= 0 && prio < w.swap_info[i as usize].prio {
        prev = i;
        i = w.swap_info[i as usize].next;
    }
    w.swap_info[type_].next = i;
    if prev < 0 {
        *w.swap_list_head = type_ as i32;
        *w.swap_list_next = type_ as i32;
    } else {
        w.swap_info[prev as usize].next = type_ as i32;
    }
}

/// `sys_swapon` (mm/swapfile.c), for device `type_` of the machine: claim
/// the slot, open and read the header (sleeps), vmalloc the swap_map
/// (sleeps), set SWP_WRITEOK with no lock, then add the pages and insert
/// the device in the swap list under swap_list_lock. BKL throughout.
pub async fn sys_swapon(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    t.lock_kernel("sys_swapon:lock_kernel").await;
    let busy = {
        let mut w = k.w();
        match w.swap_info.get_mut(type_) {
            None => None,
            Some(p) if p.flags & SWP_USED != 0 => Some(true),
            Some(p) => {
                p.flags = SWP_USED;
                p.cluster_nr = 0;
                Some(false)
            }
        }
    };
    match busy {
        None => {
            t.unlock_kernel("sys_swapon:unlock_kernel");
            return Ok(-EINVAL);
        }
        Some(true) => {
            t.unlock_kernel("sys_swapon:unlock_kernel");
            return Ok(-EBUSY);
        }
        Some(false) => {}
    }
    t.may_sleep("sys_swapon:blkdev_get", k.costs.alloc_sleep).await;
    t.sleep_io("sys_swapon:read_swap_header", k.costs.disk_read).await;
    t.may_sleep("sys_swapon:vmalloc_swap_map", k.costs.alloc_sleep).await;
    {
        let mut w = k.w();
        let p = &mut w.swap_info[type_];
        let size = p.size;
        let mut map = vec![0u16; size as usize];
        map[0] = SWAP_MAP_BAD;
        p.swap_map = Some(map);
        p.inuse_pages = 0;
        p.max = size;
        p.pages = size.saturating_sub(1);
        p.lowest_bit = 1;
        p.highest_bit = size.saturating_sub(1);
        p.flags = SWP_WRITEOK;
        if k.fixes.later.teardown {
            crate::swap_device::swapon_setup(p);
        }
    }
    t.point("sys_swapon:after_writeok").await;
    t.spin_lock(k.swaplock, "sys_swapon:swap_list_lock").await;
    {
        let mut w = k.w();
        let pages = w.swap_info[type_].pages as i64;
        *w.nr_swap_pages += pages;
        swap_list_insert(&mut w, type_);
        w.stats.swapons += 1;
    }
    t.spin_unlock(k.swaplock, "sys_swapon:swap_list_unlock");
    t.unlock_kernel("sys_swapon:unlock_kernel");
    Ok(0)
}

/// `sys_swapoff` (mm/swapfile.c): unlink the device from the swap list,
/// take its pages out of nr_swap_pages, clear SWP_WRITEOK (under
/// swap_device_lock with the patch, with no lock before it), then
/// try_to_unuse; on success vfree the swap_map and clear the flags.
pub async fn sys_swapoff(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    if k.fixes.era.is_later() {
        return sys_swapoff_later(k, t, type_).await;
    }
    t.lock_kernel("sys_swapoff:lock_kernel").await;
    t.may_sleep("sys_swapoff:namei", k.costs.alloc_sleep).await;
    t.spin_lock(k.swaplock, "sys_swapoff:swap_list_lock").await;
    let found = unlink_from_swap_list(&mut k.w(), type_);
    if !found {
        t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock");
        t.unlock_kernel("sys_swapoff:unlock_kernel");
        return Ok(-EINVAL);
    }
    if k.fixes.no_readahead {
        let sdev_lock = k.w().swap_info[type_].sdev_lock;
        t.spin_lock(sdev_lock, "sys_swapoff:swap_device_lock").await;
        k.w().swap_info[type_].flags = SWP_USED;
        t.spin_unlock(sdev_lock, "sys_swapoff:swap_device_unlock");
        t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock");
    } else {
        t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock");
        t.point("sys_swapoff:before_clear_writeok").await;
        k.w().swap_info[type_].flags = SWP_USED;
    }
    let err = try_to_unuse(k, t, type_).await?;
    if err != 0 {
        reinsert_swap_info(k, t, type_).await;
        t.unlock_kernel("sys_swapoff:unlock_kernel");
        return Ok(err);
    }
    t.may_sleep("sys_swapoff:blkdev_put", k.costs.alloc_sleep).await;
    {
        let mut w = k.w();
        let p = &mut w.swap_info[type_];
        p.swap_map = None; // vfree(p->swap_map); max is not reset
        p.flags = 0;
        w.stats.swapoffs += 1;
    }
    t.unlock_kernel("sys_swapoff:unlock_kernel");
    Ok(0)
}

/// Take the device off the swap list and its pages out of nr_swap_pages
/// (swap_list_lock held); false if it is not a WRITEOK listed device.
fn unlink_from_swap_list(w: &mut World, type_: usize) -> bool {
    let (mut prev, mut i) = (-1i32, *w.swap_list_head);
    while i >= 0 && i as usize != type_ {
        prev = i;
        i = w.swap_info[i as usize].next;
    }
    if i < 0 || w.swap_info[type_].flags & SWP_WRITEOK != SWP_WRITEOK {
        return false;
    }
    let next = w.swap_info[type_].next;
    if prev < 0 {
        *w.swap_list_head = next;
    } else {
        w.swap_info[prev as usize].next = next;
    }
    if *w.swap_list_next == type_ as i32 {
        *w.swap_list_next = *w.swap_list_head;
    }
    let pages = w.swap_info[type_].pages as i64;
    *w.nr_swap_pages -= pages;
    true
}

/// sys_swapoff's error path: re-insert the device, as the C does.
async fn reinsert_swap_info(k: &Kernel, t: &Task, type_: usize) {
    t.spin_lock(k.swaplock, "sys_swapoff:reinsert_swap_list_lock").await;
    {
        let mut w = k.w();
        swap_list_insert(&mut w, type_);
        let pages = w.swap_info[type_].pages as i64;
        *w.nr_swap_pages += pages;
    }
    t.spin_unlock(k.swaplock, "sys_swapoff:reinsert_swap_list_unlock");
    k.w().swap_info[type_].flags = SWP_WRITEOK;
}

/// `sys_swapoff` of later kernels (2.4.10 as read in 2.4.17; 5.1). 2.4.10
/// clears SWP_WRITEOK under swap_list_lock and *drops the BKL* around
/// try_to_unuse; 5.1 has no BKL and clears it under both swap locks. Both
/// then zero `max` and free the swap_map under swap_list_lock and
/// swap_device_lock, so a late swap_duplicate fails instead of reading a
/// freed map; 5.1 also empties the mmlist when no swap is left in use
/// (drain_mmlist).
async fn sys_swapoff_later(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    let bkl = k.fixes.era == Era::Linux2_4_10;
    if bkl {
        t.lock_kernel("sys_swapoff:lock_kernel").await;
    }
    t.may_sleep("sys_swapoff:user_path_walk", k.costs.alloc_sleep).await;
    t.spin_lock(k.swaplock, "sys_swapoff:swap_list_lock").await;
    if !unlink_from_swap_list(&mut k.w(), type_) {
        t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock");
        if bkl {
            t.unlock_kernel("sys_swapoff:unlock_kernel");
        }
        return Ok(-EINVAL);
    }
    let sdev_lock = k.w().swap_info[type_].sdev_lock;
    if bkl {
        k.w().swap_info[type_].flags = SWP_USED;
        t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock");
        t.unlock_kernel("sys_swapoff:unlock_kernel_for_unuse");
    } else {
        t.spin_lock(sdev_lock, "sys_swapoff:swap_device_lock").await;
        k.w().swap_info[type_].flags = SWP_USED;
        t.spin_unlock(sdev_lock, "sys_swapoff:swap_device_unlock");
        t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock");
    }
    let err = match k.fixes.era {
        Era::Linux2_4_10 => crate::unuse_2_4_10::try_to_unuse(k, t, type_).await?,
        _ => crate::unuse_5_1::try_to_unuse(k, t, type_).await?,
    };
    if bkl {
        t.lock_kernel("sys_swapoff:lock_kernel_after_unuse").await;
    }
    if err != 0 {
        reinsert_swap_info(k, t, type_).await;
        if bkl {
            t.unlock_kernel("sys_swapoff:unlock_kernel");
        }
        return Ok(err);
    }
    if k.fixes.later.teardown {
        crate::swap_device::swapoff_teardown(k, t, type_).await?;
        return Ok(0);
    }
    t.may_sleep("sys_swapoff:blkdev_put", k.costs.alloc_sleep).await;
    t.spin_lock(k.swaplock, "sys_swapoff:swap_list_lock_free").await;
    t.spin_lock(sdev_lock, "sys_swapoff:swap_device_lock_free").await;
    if k.fixes.era == Era::Linux5_1 {
        crate::unuse_5_1::drain_mmlist(k, t).await;
    }
    {
        let mut w = k.w();
        let p = &mut w.swap_info[type_];
        p.max = 0;
        p.swap_map = None;
        p.flags = 0;
        w.stats.swapoffs += 1;
    }
    t.spin_unlock(sdev_lock, "sys_swapoff:swap_device_unlock_free");
    t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock_free");
    if bkl {
        t.unlock_kernel("sys_swapoff:unlock_kernel");
    }
    Ok(0)
}

/// How many references `swap_map[offset]` holds (read with no lock, as
/// later kernels' try_to_unuse reads `*swap_map`); 0 once the map is gone.
pub(crate) fn swap_count(k: &Kernel, entry: SwpEntry) -> u16 {
    let w = k.w();
    w.swap_info[entry.type_].swap_map.as_ref().map_or(0, |m| m[entry.offset as usize])
}

/// `si->inuse_pages`: slots of the device in use (not free, not bad).
pub(crate) fn inuse_pages(k: &Kernel, type_: usize) -> u32 {
    k.w().swap_info[type_].inuse_pages
}

/// `try_to_unuse` (mm/swapfile.c): for each slot still in use, read the
/// page in (sleeps), replace every pte holding the entry by the page, drop
/// the swap-cache copy and the temporary reference, and force a count that
/// is still not zero to zero ("VM: Undead swap entry").
pub async fn try_to_unuse(k: &Kernel, t: &Task, type_: usize) -> KResult<i64> {
    // sys_swapoff holds the BKL around it: shrink_mmap and the page
    // stealer's swap-cache checks rely on it (the seed's locking note).
    if t.lock_depth() < 0 {
        return Err(k.oops(t, "lock-held", "try_to_unuse: the big kernel lock is not held here (lockdep_assert_held)"));
    }
    let sdev_lock = k.w().swap_info[type_].sdev_lock;
    loop {
        // Find a swap page in use, and take a temporary reference on it.
        t.spin_lock(sdev_lock, "try_to_unuse:swap_device_lock").await;
        let found = {
            let mut w = k.w();
            let map = w.swap_info[type_].swap_map.as_mut().expect("swapoff holds the device");
            let i = (1..map.len()).find(|&i| map[i] > 0 && map[i] != SWAP_MAP_BAD);
            if let Some(i) = i {
                if map[i] != SWAP_MAP_MAX {
                    map[i] += 1;
                }
            }
            let scanned = i.unwrap_or(map.len()) as u64;
            drop(w);
            t.work(scanned * k.costs.pte_scan);
            i
        };
        t.spin_unlock(sdev_lock, "try_to_unuse:swap_device_unlock");
        let Some(i) = found else { break };
        let entry = SwpEntry { type_, offset: i as u32 };
        k.key(t, crate::signatures::KeyEvent::SlotStart { entry });

        // Get a page for the entry, from the swap cache or read from disk.
        let Some(page) = read_swap_cache(k, t, entry).await? else {
            swap_free(k, t, entry, "try_to_unuse:swap_free_enomem").await?;
            return Ok(-ENOMEM);
        };
        t.point("try_to_unuse:after_read_swap_cache").await;

        if k.fixes.mmlist {
            // The patch: shm_unuse first, then crab the mm list.
            crate::shm::shm_unuse(k, t, entry, page).await?;
            crab_mmlist(k, t, entry, page).await?;
        } else {
            t.read_lock(k.tasklist_lock, "try_to_unuse:read_lock_tasklist").await;
            // for_each_task(p) unuse_process(p->mm, ...): the list cannot
            // change under the read lock, but each p->mm is read when the
            // walk gets to p, and exec (no BKL) may switch it meanwhile.
            let tasks: Vec<Pid> = k.w().task_list.to_vec();
            for pid in tasks {
                let mm = k.w().procs[&pid].mm;
                unuse_process(k, t, mm, entry, page).await?;
            }
            t.read_unlock(k.tasklist_lock, "try_to_unuse:read_unlock_tasklist");
            crate::shm::shm_unuse(k, t, entry, page).await?;
        }

        // Drop the swap-cache copy.
        if k.fixes.page_lock {
            // The patch: lock the page to interlock with shm_nopage,
            // do_wp_page and free_page_and_swap_cache.
            k.check_page(t, page, "try_to_unuse:lock_page")?;
            let page_lock = k.w().pages[page].lock;
            t.lock_page(page_lock, "try_to_unuse:lock_page").await;
            k.check_page(t, page, "try_to_unuse:lock_page")?;
            if k.w().pages[page].swap_cache {
                k.key_swap_cache_drop(t, page, "try_to_unuse");
                delete_from_swap_cache_nolock(k, t, page).await?;
            }
            t.unlock_page(page_lock, "try_to_unuse:UnlockPage");
        } else {
            k.check_page(t, page, "try_to_unuse:PageSwapCache")?;
            if k.w().pages[page].swap_cache {
                k.key_swap_cache_drop(t, page, "try_to_unuse");
                delete_from_swap_cache(k, t, page).await?;
            }
        }
        free_page(k, t, page, "try_to_unuse:__free_page")?;

        // Drop the temporary reference; clear any count left over.
        swap_free(k, t, entry, "try_to_unuse:swap_free").await?;
        t.spin_lock(k.swaplock, "try_to_unuse:swap_list_lock").await;
        t.spin_lock(sdev_lock, "try_to_unuse:swap_device_lock_undead").await;
        let undead = {
            let mut w = k.w();
            let World { swap_info, nr_swap_pages, stats, .. } = &mut *w;
            let p = &mut swap_info[type_];
            let map = p.swap_map.as_mut().expect("swapoff holds the device");
            let count = map[i];
            if count > 0 {
                **nr_swap_pages += 1;
                map[i] = 0;
                p.inuse_pages -= 1;
                if count != SWAP_MAP_MAX {
                    stats.undead += 1;
                }
            }
            (count > 0 && count != SWAP_MAP_MAX).then_some(count)
        };
        t.spin_unlock(sdev_lock, "try_to_unuse:swap_device_unlock_undead");
        t.spin_unlock(k.swaplock, "try_to_unuse:swap_list_unlock");
        k.key(t, crate::signatures::KeyEvent::SlotDone { entry });
        if let Some(count) = undead {
            k.printk(t, "try_to_unuse:undead", format!("VM: Undead swap entry {entry} (count {count} forced to 0)"));
        }
    }
    Ok(0)
}

/// The patch's walk in `try_to_unuse`: "crab" the mm list from init_mm,
/// holding the next mm (hold_mm) before releasing the previous one, so
/// that neither can vanish while mm_lock is dropped for unuse_mm.
async fn crab_mmlist(k: &Kernel, t: &Task, entry: SwpEntry, page: PageId) -> KResult<()> {
    let mut prev: Option<MmId> = None;
    t.spin_lock(k.mm_lock, "try_to_unuse:mmlist_access_lock").await;
    let mut cur = k.w().mmlist.first().copied();
    while let Some(mm) = cur {
        if hold_mm(k, t, mm)? {
            t.spin_unlock(k.mm_lock, "try_to_unuse:mmlist_access_unlock");
            if let Some(p) = prev {
                release_mm(k, t, p).await?;
            }
            unuse_mm(k, t, mm, entry, page).await?;
            prev = Some(mm);
            t.spin_lock(k.mm_lock, "try_to_unuse:mmlist_access_lock_next").await;
        }
        // The next mm, read under mm_lock (cur is held, so still listed).
        let w = k.w();
        let Some(at) = w.mmlist.iter().position(|&x| x == mm) else {
            drop(w);
            t.spin_unlock(k.mm_lock, "try_to_unuse:mmlist_access_unlock");
            return Err(k.oops(t, "mm-existence", "try_to_unuse: the crab's current mm left the mm list"));
        };
        cur = w.mmlist.get(at + 1).copied();
    }
    t.spin_unlock(k.mm_lock, "try_to_unuse:mmlist_access_unlock_end");
    if let Some(p) = prev {
        release_mm(k, t, p).await?;
    }
    Ok(())
}

/// `unuse_process` (pre4, mm/swapfile.c): walk the mm's VMAs with no
/// mmap_sem and no page_table_lock. It runs under tasklist_lock, where it
/// cannot sleep, so the mmap-sem fix cannot apply here: it needs the mm list.
async fn unuse_process(k: &Kernel, t: &Task, mm: Option<MmId>, entry: SwpEntry, page: PageId) -> KResult<()> {
    match mm {
        Some(mm) => unuse_vmas(k, t, mm, entry, page).await,
        None => Ok(()), // if (!mm) return;
    }
}

/// `unuse_mm` (the patch): unuse_process under `down(&mm->mmap_sem)`.
async fn unuse_mm(k: &Kernel, t: &Task, mm: MmId, entry: SwpEntry, page: PageId) -> KResult<()> {
    if !k.fixes.mmap_sem {
        return unuse_vmas(k, t, mm, entry, page).await;
    }
    k.check_mm(t, mm, "unuse_mm")?;
    let mmap_sem = k.w().mms[mm].mmap_sem;
    t.down(mmap_sem, "unuse_mm:down_mmap_sem").await;
    unuse_vmas(k, t, mm, entry, page).await?;
    t.up(mmap_sem, "unuse_mm:up_mmap_sem");
    Ok(())
}

/// The VMA walk shared by unuse_process and unuse_mm: `unuse_vma` down to
/// `unuse_pte` for each pte of each VMA on `mm->mmap`, following
/// `vma->vm_next` as it goes — with no lock in pre4, so on SMP munmap or
/// exec's exit_mmap can take the VMA it stands on off the chain (it then
/// follows munmap's free list or the detached chain) or free it (a
/// use-after-free).
pub(crate) async fn unuse_vmas(k: &Kernel, t: &Task, mm: MmId, entry: SwpEntry, page: PageId) -> KResult<()> {
    k.check_mm(t, mm, "unuse_process")?;
    assert_walk_locked(k, t, mm, "unuse_process")?;
    k.key(t, crate::signatures::KeyEvent::WalkMm { entry, mm });
    let mut cur: Option<VmaId> = k.w().mms[mm].mmap.first().copied();
    while let Some(vma) = cur {
        t.point("unuse_vma:vm_start").await;
        k.check_mm(t, mm, "unuse_vma")?;
        assert_walk_locked(k, t, mm, "unuse_vma")?;
        let (start, end) = {
            let w = k.w();
            let Some(v) = w.vmas.get(vma) else {
                drop(w);
                return Err(k.oops(t, "use-after-free", "unuse_vma walked a vm_area_struct that was freed under it"));
            };
            (v.start, v.end)
        };
        let hits: Vec<u64> =
            k.w().ptes_in(mm, start, end).filter(|&(_, pte)| pte_refers_to(pte, entry, page)).map(|(a, _)| a).collect();
        t.work((end - start) / PAGE_SIZE * k.costs.pte_scan);
        k.key(t, crate::signatures::KeyEvent::WalkVma { entry, mm, start, end });
        for addr in hits {
            unuse_pte(k, t, mm, vma, addr, entry, page).await?;
        }
        t.point("unuse_process:vm_next").await;
        k.check_mm(t, mm, "unuse_process")?;
        cur = vm_next(k, t, mm, vma)?;
    }
    Ok(())
}

/// `vma = vma->vm_next` (swapfile.c:361), read with no lock: the next VMA
/// on the chain, or, for a VMA taken off it meanwhile, where munmap
/// (`mpnt->vm_next = free`) or exit_mmap left it pointing. Reading it from
/// a VMA that was freed is a use-after-free.
fn vm_next(k: &Kernel, t: &Task, mm: MmId, vma: VmaId) -> KResult<Option<VmaId>> {
    let w = k.w();
    let chain = &w.mms[mm].mmap;
    if let Some(at) = chain.iter().position(|&v| v == vma) {
        return Ok(chain.get(at + 1).copied());
    }
    match w.vmas.get(vma) {
        Some(v) => Ok(v.vm_next_unlinked),
        None => {
            drop(w);
            Err(k.oops(t, "use-after-free", "unuse_process read vm_next of a vm_area_struct that was freed under it"))
        }
    }
}

fn pte_refers_to(pte: Pte, entry: SwpEntry, page: PageId) -> bool {
    match pte {
        Pte::Swap(e) => e == entry,
        Pte::Present { page: p, .. } => p == page,
        Pte::None => false,
    }
}

/// `unuse_pte` (mm/swapfile.c:245-279): read the pte with no lock; a
/// present pte of this page is marked dirty, a pte equal to the entry
/// becomes the page (dirty, read-only, and young: `mk_pte(page,
/// vma->vm_page_prot)`), then `swap_free(entry)`, `get_page`, `rss++`.
/// The `set_pte` writes what was decided from the value read, not
/// rechecked: on SMP a zap_page_range (munmap, exec) or a fault may change
/// the pte in between, and a page table that munmap's free_pgtables or
/// exit_mmap's clear_page_tables freed meanwhile is written after its free
/// (a use-after-free).
async fn unuse_pte(
    k: &Kernel,
    t: &Task,
    mm: MmId,
    vma: VmaId,
    addr: u64,
    entry: SwpEntry,
    page: PageId,
) -> KResult<()> {
    match read_pte(k, mm, addr) {
        // Later kernels leave present ptes alone (try_to_unuse sets
        // the page dirty instead).
        Pte::Present { page: p, write, young, .. } if p == page && !k.fixes.era.is_later() => {
            t.point("unuse_pte:set_pte_mkdirty").await;
            k.check_mm(t, mm, "unuse_pte")?;
            check_page_table(k, t, mm, addr)?;
            set_pte(k, mm, addr, Pte::Present { page, write, dirty: true, young });
            k.key(t, crate::signatures::KeyEvent::UnusePteDirty { mm, addr, page });
        }
        Pte::Swap(e) if e == entry => {
            t.point("unuse_pte:set_pte").await;
            k.check_mm(t, mm, "unuse_pte")?;
            if !k.w().vmas.contains_key(vma) {
                return Err(k.oops(
                    t,
                    "use-after-free",
                    "unuse_pte read vm_page_prot of a vm_area_struct that was freed under it",
                ));
            }
            check_page_table(k, t, mm, addr)?;
            assert_walk_locked(k, t, mm, "unuse_pte")?;
            set_pte(k, mm, addr, Pte::Present { page, write: false, dirty: true, young: true });
            k.key(t, crate::signatures::KeyEvent::UnusePte { mm, addr, entry });
            t.note("unuse_pte:set_pte", || {
                format!("pte {addr:#x} of {}: swap entry {entry} -> page", k.describe_mm(mm))
            });
            swap_free(k, t, entry, "unuse_pte:swap_free").await?;
            get_page(k, t, page, "unuse_pte:get_page")?;
            k.check_mm(t, mm, "unuse_pte")?;
            k.w().mms[mm].rss += 1;
        }
        _ => {}
    }
    Ok(())
}

/// The patch's walk relies on the mm's mmap_sem (unuse_mm's down) from
/// the first VMA to the last pte: without it a fault, munmap or exit
/// changes the chain and the ptes under it (races 3, 5, 6 and the SMP
/// walk). pre4's walk has no such lock to assert; 2.4.10 and 5.1 lock
/// each page table instead.
fn assert_walk_locked(k: &Kernel, t: &Task, mm: MmId, point: &str) -> KResult<()> {
    if !(k.fixes.mmlist && k.fixes.mmap_sem) || k.fixes.era.is_later() {
        return Ok(());
    }
    let mmap_sem = k.w().mms[mm].mmap_sem;
    k.assert_held(t, mmap_sem, "the mm's mmap_sem", point)
}

/// The page table unuse_pte read its pte from is still the mm's: else the
/// C's `set_pte` writes into a page-table page that was freed under it.
fn check_page_table(k: &Kernel, t: &Task, mm: MmId, addr: u64) -> KResult<()> {
    if k.w().pmd_present(mm, addr) {
        return Ok(());
    }
    Err(k.oops(t, "use-after-free", format!("unuse_pte wrote pte {addr:#x} into a page table freed under it")))
}
