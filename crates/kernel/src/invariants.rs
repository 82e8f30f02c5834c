//! The invariants of KERNEL.md §5 that are checked from outside the
//! routines: swapoff completeness when swapoff returns 0, and swap-count
//! and page-count conservation at quiescent points (no task in the kernel,
//! so no transient references exist).

use std::collections::BTreeMap;

use crate::types::*;
use crate::Kernel;

/// A broken invariant: its name and what is wrong.
pub type Broken = (&'static str, String);

/// Swapoff completeness: after `sys_swapoff(type_)` returned 0, no pte of
/// any mm (on a list or not), no swap-cache page and — with `shm` — no shm
/// segment entry refers to the device. When swapoff returns, shm_nopage may
/// still hold a snapshot of an entry it is about to replace, so the shm
/// entries are checked at the next quiescent point instead.
pub fn check_swapoff_complete(k: &Kernel, type_: usize, shm: bool) -> Option<Broken> {
    crate::tracked::read_the_whole_world();
    let w = k.w();
    for (mm_id, mm) in &w.mms {
        for (addr, pte) in w.ptes_in(mm_id, 0, u64::MAX) {
            let Pte::Swap(entry) = pte else { continue };
            if entry.type_ != type_ {
                continue;
            }
            let owner = w.procs.values().find(|p| p.mm == Some(mm_id));
            let whose = match owner {
                Some(p) => format!(
                    "task pid {} ({}), {}",
                    p.pid,
                    p.name,
                    crate::signatures::when_the_walk_passed(&w, p.pid, mm_id, entry, k.fixes.mmlist)
                ),
                None => "no task (the mm is being torn down)".to_string(),
            };
            let in_chain = mm.mmap.iter().any(|&v| w.vmas.get(v).is_some_and(|v| v.start <= addr && addr < v.end));
            let chain = if in_chain { "" } else { " (the address is not on the mm's VMA chain)" };
            return Some((
                "swapoff-completeness",
                format!(
                    "swapoff({dev}) returned 0 but the pte at {addr:#x} of mm#{n} ({origin}) still holds swap entry \
                     {entry} of the deleted device{chain}; the mm belongs to {whose}. swapoff's scan missed it, \
                     forced the slot's count to 0 and freed the swap_map",
                    dev = type_ + 1,
                    n = mm.number,
                    origin = mm.origin,
                ),
            ));
        }
    }
    for (seg, s) in w.shm_segs.iter().enumerate().filter(|_| shm) {
        if let Some((idx, Pte::Swap(entry))) =
            s.entries.iter().enumerate().find(|(_, e)| matches!(e, Pte::Swap(x) if x.type_ == type_))
        {
            return Some((
                "swapoff-completeness",
                format!(
                    "swapoff({}) returned 0 but shm segment {seg} page {idx} still holds swap entry {entry} of the \
                     deleted device",
                    type_ + 1
                ),
            ));
        }
    }
    if let Some(entry) = w.swap_cache.keys().find(|e| e.type_ == type_) {
        return Some((
            "swapoff-completeness",
            format!("swapoff({}) returned 0 but the swap cache still holds a page for {entry}", type_ + 1),
        ));
    }
    None
}

/// Swap-count and page-count conservation at a quiescent point: each
/// swap_map count equals the ptes holding the slot plus one for a
/// swap-cache page; each page's count equals the ptes mapping it plus one
/// for the swap cache.
pub fn check_quiescent(k: &Kernel) -> Option<Broken> {
    crate::tracked::read_the_whole_world();
    let w = k.w();
    let mut swap_refs: BTreeMap<SwpEntry, u32> = BTreeMap::new();
    let mut page_refs: BTreeMap<PageId, i32> = BTreeMap::new();
    for mm in w.mms.keys() {
        for (_, pte) in w.ptes_in(mm, 0, u64::MAX) {
            match pte {
                Pte::Swap(entry) => *swap_refs.entry(entry).or_default() += 1,
                Pte::Present { page, .. } => *page_refs.entry(page).or_default() += 1,
                Pte::None => {}
            }
        }
    }
    // Each page table's page is held by its pgd entry.
    for pgd in w.page_tables.values() {
        for table in pgd.tables.values() {
            *page_refs.entry(table.page).or_default() += 1;
        }
    }
    let (mut shm_present, mut shm_swapped) = (0i64, 0i64);
    for s in &w.shm_segs {
        for e in &s.entries {
            match *e {
                Pte::Swap(entry) => {
                    *swap_refs.entry(entry).or_default() += 1;
                    shm_swapped += 1;
                }
                Pte::Present { page, .. } => {
                    *page_refs.entry(page).or_default() += 1;
                    shm_present += 1;
                }
                Pte::None => {}
            }
        }
    }
    // Swapoff completeness first, device by device: a device that is off
    // and still referenced by a pte, an shm entry or the swap cache (the
    // walk above saw every pte and entry) gets the full report.
    let referenced = |type_: usize| {
        swap_refs.range(SwpEntry { type_, offset: 0 }..=SwpEntry { type_, offset: u32::MAX }).next().is_some()
            || w.swap_cache.keys().any(|e| e.type_ == type_)
    };
    let devices_off: Vec<usize> = (0..w.swap_info.len()).filter(|&i| w.swap_info[i].swap_map.is_none()).collect();
    if let Some(&type_) = devices_off.iter().find(|&&type_| referenced(type_)) {
        drop(w);
        return check_swapoff_complete(k, type_, true);
    }
    if (*w.shm_rss, *w.shm_swp) != (shm_present, shm_swapped) || *w.shm_rss + *w.shm_swp > *w.shm_tot {
        return Some((
            "accounting",
            format!(
                "shm_rss {} and shm_swp {} (shm_tot {}) disagree with the segments, which hold {shm_present} pages \
                 in memory and {shm_swapped} on swap",
                *w.shm_rss, *w.shm_swp, *w.shm_tot
            ),
        ));
    }
    if let Some(mm) = w.mms.values().find(|m| m.rss < 0) {
        return Some(("accounting", format!("mm#{} has rss {}", mm.number, mm.rss)));
    }
    let free_slots: i64 = w
        .swap_info
        .iter()
        .filter(|p| p.flags & SWP_WRITEOK == SWP_WRITEOK)
        .filter_map(|p| p.swap_map.as_ref())
        .map(|map| map.iter().skip(1).filter(|&&c| c == 0).count() as i64)
        .sum();
    if *w.nr_swap_pages != free_slots {
        return Some((
            "accounting",
            format!("nr_swap_pages is {} but the WRITEOK devices have {free_slots} free slots", *w.nr_swap_pages),
        ));
    }
    for (&entry, &page) in &w.swap_cache {
        *swap_refs.entry(entry).or_default() += 1;
        *page_refs.entry(page).or_default() += 1;
    }
    for (type_, p) in w.swap_info.iter().enumerate() {
        let Some(map) = &p.swap_map else { continue };
        let in_use = map.iter().skip(1).filter(|&&c| c != 0 && c != SWAP_MAP_BAD).count();
        if in_use != p.inuse_pages as usize {
            return Some((
                "swap-count",
                format!("device {} counts {} slots in use (inuse_pages) but {in_use} are", type_ + 1, p.inuse_pages),
            ));
        }
        for (offset, &count) in map.iter().enumerate().skip(1) {
            if count == SWAP_MAP_BAD || count == SWAP_MAP_MAX {
                continue;
            }
            let entry = SwpEntry { type_, offset: offset as u32 };
            let refs = swap_refs.get(&entry).copied().unwrap_or(0);
            if u32::from(count) != refs {
                return Some((
                    "swap-count",
                    format!("swap_map[{entry}] is {count} but {refs} references (ptes, shm and swap cache) hold it"),
                ));
            }
        }
    }
    for (&entry, &refs) in &swap_refs {
        let live = w.swap_info.get(entry.type_).and_then(|p| p.swap_map.as_ref()).is_some();
        if !live {
            return Some((
                "swapoff-completeness",
                format!("{refs} reference(s) to swap entry {entry} remain on a device that is off"),
            ));
        }
    }
    if let Some((_, refs)) = page_refs.iter().find(|(page, _)| !w.pages.contains_key(**page)) {
        return Some(("use-after-free", format!("{refs} pte(s) or shm entries map a page that was freed")));
    }
    for (id, page) in &w.pages {
        let refs = page_refs.get(&id).copied().unwrap_or(0);
        if page.count != refs {
            return Some((
                "page-count",
                format!(
                    "page#{} has count {} but {refs} references (ptes, page tables and swap cache) hold it",
                    page.number, page.count
                ),
            ));
        }
    }
    None
}
