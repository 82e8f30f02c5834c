//! Page faults and page-table copies (mm/memory.c, arch/i386/mm/fault.c).

use engine::Task;

use crate::page_alloc::{alloc_page, free_page, get_page};
use crate::swap_state::{
    delete_from_swap_cache_nolock, free_page_and_swap_cache, is_page_shared, lookup_swap_cache, read_swap_cache_async,
    read_swap_cache_why,
};
use crate::swapfile::{swap_duplicate, swap_free};
use crate::types::*;
use crate::{KResult, Kernel};

/// How a user memory access ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Done,
    /// No VMA covers the address: SIGSEGV.
    Segv,
    /// The fault handler failed (`handle_mm_fault` < 0): i386
    /// `do_page_fault` prints "VM: killing process" and the task dies.
    Killed(FaultFailure),
}

/// Why a fault failed. The kernel returns -1 for both, and i386
/// `do_page_fault` treats both as out of memory; the model keeps which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultFailure {
    /// A page allocation failed (`__alloc_pages` returned NULL), at this point.
    OutOfMemory(engine::Point),
    /// The swap entry is no longer in use: `swap_duplicate` refused it
    /// (swapoff freed its slot, or the device is gone).
    DeadSwapEntry(SwpEntry),
    /// 5.1: the swap read failed (`!PageUptodate`): VM_FAULT_SIGBUS.
    SigBus(SwpEntry),
}

impl std::fmt::Display for FaultFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultFailure::OutOfMemory(point) => write!(f, "out of memory, the page allocation at {point} failed"),
            FaultFailure::DeadSwapEntry(entry) => {
                write!(f, "swap entry {entry} is no longer in use, swap_duplicate refused it")
            }
            FaultFailure::SigBus(entry) => write!(f, "the read of swap entry {entry} failed (SIGBUS)"),
        }
    }
}

/// What `handle_mm_fault` returned: 1 (handled: the access is retried), or
/// -1 and why.
pub type Handled = Result<(), FaultFailure>;

/// A user-space load or store at `addr`. The MMU walks the page table; a
/// missing or read-only pte traps into `do_page_fault`
/// (arch/i386/mm/fault.c): `down(mmap_sem)`, `find_vma`,
/// `handle_mm_fault`, `up(mmap_sem)`, and the access is retried.
pub async fn user_access(k: &Kernel, t: &Task, addr: u64, write: bool) -> KResult<Access> {
    let addr = addr & !(PAGE_SIZE - 1);
    let pid = k.current(t);
    loop {
        let Some(mm) = k.w().procs[&pid].mm else { return Ok(Access::Segv) };
        k.check_mm(t, mm, "user_access")?;
        if mmu_access(k, t, mm, addr, write)? {
            return Ok(Access::Done);
        }
        // Page fault.
        let mmap_sem = k.w().mms[mm].mmap_sem;
        let read = k.fixes.later.teardown; // 5.x: down_read(&mm->mmap_sem)
        if read {
            t.down_read(mmap_sem, "do_page_fault:down_read_mmap_sem").await;
        } else {
            t.down(mmap_sem, "do_page_fault:down_mmap_sem").await;
        }
        let up = |t: &Task| {
            if read {
                t.up_read(mmap_sem, "do_page_fault:up_read_mmap_sem");
            } else {
                t.up(mmap_sem, "do_page_fault:up_mmap_sem");
            }
        };
        let vma = find_vma(k, mm, addr);
        let Some(vma) = vma else {
            up(t);
            return Ok(Access::Segv);
        };
        k.w().stats.faults += 1;
        let ret = handle_mm_fault(k, t, mm, vma, addr, write).await?;
        up(t);
        if let Err(failure) = ret {
            if !matches!(failure, FaultFailure::SigBus(_)) {
                k.printk(t, "do_page_fault:out_of_memory", format!("VM: killing process {pid}"));
            }
            return Ok(Access::Killed(failure));
        }
    }
}

/// The MMU: a present pte that allows the access completes it; the data
/// read must be the data last written (data integrity).
fn mmu_access(k: &Kernel, t: &Task, mm: MmId, addr: u64, write: bool) -> KResult<bool> {
    let mut w = k.w();
    let Pte::Present { page, write: writable, dirty, young } = w.pte(mm, addr) else {
        return Ok(false);
    };
    if write && !writable {
        return Ok(false);
    }
    // The MMU sets the accessed bit on every access, and the dirty bit on
    // a write. (TLBs are not modelled: a pte the page stealer aged is
    // young again at the next access, as if its TLB entry was gone.)
    if !young || (write && !dirty) {
        w.set_pte(mm, addr, Pte::Present { page, write: writable, dirty: dirty || write, young: true });
    }
    let Some(p) = w.pages.get(page) else {
        drop(w);
        return Err(k.oops(t, "use-after-free", format!("user access at {addr:#x} through a pte to a freed page")));
    };
    let number = p.number;
    let data = p.data;
    // What the page should hold is the mm's for anonymous memory and the
    // segment's for shm, which every attach shares.
    let shm_slot = w.mms[mm]
        .mmap
        .iter()
        .filter_map(|&v| w.vmas.get(v))
        .find(|v| v.start <= addr && addr < v.end)
        .and_then(|v| v.shm.map(|(seg, pgoff)| (seg, pgoff + (addr - v.start) / PAGE_SIZE)));
    if write {
        let version = *w.next_data;
        *w.next_data += 1;
        w.pages[page].data = version;
        match shm_slot {
            Some((seg, idx)) => w.shm_segs[seg].expected.insert(idx, version),
            None => w.mms[mm].expected.insert(addr, version),
        };
    } else if let Some(&expected) = match shm_slot {
        Some((seg, idx)) => w.shm_segs[seg].expected.get(&idx),
        None => w.mms[mm].expected.get(&addr),
    } {
        if data != expected {
            let what = format!("mm#{}", w.mms[mm].number);
            drop(w);
            let seen = if data == crate::swap_state::READ_ERROR_GARBAGE {
                "the garbage of a failed swap read".to_string()
            } else {
                format!("contents v{data}")
            };
            return Err(k.oops(
                t,
                "data-integrity",
                format!("read at {addr:#x} in {what} saw {seen} of page#{number}, but v{expected} was written last"),
            ));
        }
    }
    Ok(true)
}

pub(crate) fn find_vma(k: &Kernel, mm: MmId, addr: u64) -> Option<VmaId> {
    let w = k.w();
    w.mms[mm].mmap.iter().copied().find(|&v| w.vmas.get(v).is_some_and(|v| v.start <= addr && addr < v.end))
}

/// The pte at `addr` of `mm` ([`World::pte`](crate::World::pte)).
pub(crate) fn read_pte(k: &Kernel, mm: MmId, addr: u64) -> Pte {
    k.w().pte(mm, addr)
}

/// `set_pte` ([`World::set_pte`](crate::World::set_pte)).
pub(crate) fn set_pte(k: &Kernel, mm: MmId, addr: u64, pte: Pte) {
    k.w().set_pte(mm, addr, pte)
}

/// `pte_alloc` (include/asm-i386/pgalloc.h:120-139) for the page table
/// that maps `addr`: nothing to do when the pgd entry is present. Else
/// `get_pte_fast` finds the quicklist empty (pre4-5 i386 never fills it:
/// `pte_free` is `free_pte_slow`), and `get_pte_slow` (arch/i386/mm/init.c:
/// 136-156) allocates a page with `__get_free_page(GFP_KERNEL)`, which may
/// sleep, then installs it unless the entry was filled meanwhile (then it
/// frees its page). Returns false when the allocation failed (-ENOMEM; the
/// C's "bad pte table" left in the entry then is not modelled).
pub(crate) async fn pte_alloc(k: &Kernel, t: &Task, mm: MmId, addr: u64, point: engine::Point) -> KResult<bool> {
    k.check_mm(t, mm, point)?;
    if k.w().pmd_present(mm, addr) {
        return Ok(true);
    }
    let Some(page) = alloc_page(k, t, point).await? else { return Ok(false) };
    k.check_mm(t, mm, point)?;
    if k.w().pmd_present(mm, addr) {
        free_page(k, t, page, point)?;
        return Ok(true);
    }
    k.w().pmd_populate(mm, addr, page);
    Ok(true)
}

/// `clear_page_tables` (mm/memory.c:127-138): free the page tables of pgd
/// entries `first..first + nr` (`free_one_pgd` → `free_one_pmd`: clear the
/// entry, `pte_free` the page). The ptes were zapped before; nothing here
/// sleeps or takes a lock.
pub(crate) fn clear_page_tables(k: &Kernel, t: &Task, mm: MmId, first: u64, nr: u64) -> KResult<()> {
    let pages = k.w().pmd_clear(mm, first, nr);
    for page in pages {
        free_page(k, t, page, "clear_page_tables:pte_free")?;
    }
    Ok(())
}

/// `handle_mm_fault` (mm/memory.c:1216-1231): `pmd_alloc` (nothing to do
/// on i386 two-level) and `pte_alloc`, which may allocate the page table
/// and fails the fault when it cannot; then `handle_pte_fault`: read the
/// pte with no lock; not present goes to do_no_page or do_swap_page;
/// present takes page_table_lock, rechecks, and breaks COW in do_wp_page
/// for a write.
pub async fn handle_mm_fault(k: &Kernel, t: &Task, mm: MmId, vma: VmaId, addr: u64, write: bool) -> KResult<Handled> {
    let point = "handle_mm_fault:pte_alloc";
    if !pte_alloc(k, t, mm, addr, point).await? {
        return Ok(Err(FaultFailure::OutOfMemory(point)));
    }
    let entry = read_pte(k, mm, addr);
    match entry {
        Pte::None => return do_no_page(k, t, mm, vma, addr, write).await,
        Pte::Swap(swp) => {
            let handled = do_swap_page(k, t, mm, vma, addr, swp, write).await?;
            k.key(t, crate::signatures::KeyEvent::FaultDone { mm, addr });
            return Ok(handled);
        }
        Pte::Present { .. } => {}
    }
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_lock(ptl, "handle_pte_fault:page_table_lock").await;
    if read_pte(k, mm, addr) == entry {
        if let Pte::Present { page, write: writable, dirty, .. } = entry {
            if write && !writable {
                return do_wp_page(k, t, mm, addr, entry).await;
            }
            // pte_mkdirty on a write, pte_mkyoung always: never cleans.
            set_pte(k, mm, addr, Pte::Present { page, write: writable, dirty: dirty || write, young: true });
        }
    }
    t.spin_unlock(ptl, "handle_pte_fault:page_table_unlock");
    Ok(Ok(()))
}

/// `do_no_page` (mm/memory.c): a VMA with a `nopage` operation (a shm
/// attach: `shm_nopage`) supplies the page; an anonymous one goes to
/// do_anonymous_page. NOPAGE_OOM fails the fault.
async fn do_no_page(k: &Kernel, t: &Task, mm: MmId, vma: VmaId, addr: u64, write: bool) -> KResult<Handled> {
    let shm = k.w().vmas.get(vma).and_then(|v| v.shm.map(|(seg, pgoff)| (seg, pgoff + (addr - v.start) / PAGE_SIZE)));
    let Some((seg, idx)) = shm else { return do_anonymous_page(k, t, mm, addr, write).await };
    let page = match crate::shm::shm_nopage(k, t, seg, idx as usize).await? {
        crate::shm::NoPage::Page(page) => page,
        crate::shm::NoPage::Oom(failure) => return Ok(Err(failure)),
    };
    k.check_mm(t, mm, "do_no_page")?;
    k.w().mms[mm].rss += 1;
    // A shared mapping: the pte is writable (PAGE_SHARED), dirty on a
    // write, young (mk_pte).
    set_pte(k, mm, addr, Pte::Present { page, write: true, dirty: write, young: true });
    Ok(Ok(()))
}

/// `do_anonymous_page` (mm/memory.c), reached through `do_no_page` for an
/// anonymous VMA. A write gets a new zeroed page, writable and dirty.
/// ZERO_PAGE is not modelled: a read gets its own zeroed page, read-only
/// and clean, so a later write goes through do_wp_page as it would.
async fn do_anonymous_page(k: &Kernel, t: &Task, mm: MmId, addr: u64, write: bool) -> KResult<Handled> {
    let point = "do_anonymous_page:alloc_page";
    let Some(page) = alloc_page(k, t, point).await? else { return Ok(Err(FaultFailure::OutOfMemory(point))) };
    t.work(k.costs.page_zero);
    k.check_mm(t, mm, "do_anonymous_page")?;
    k.w().mms[mm].rss += 1;
    set_pte(k, mm, addr, Pte::Present { page, write, dirty: write, young: true });
    Ok(Ok(()))
}

/// 5.x's `swap_cluster_readahead`, shmem_swapin's readahead: it reads
/// `si->swap_file->f_mapping->host` (inode_read_congested) before the
/// cluster. do_swap_page on the 5.x variants' devices (non-rotational, as
/// zram or an SSD) reads ahead by VMA (`swap_vma_readahead`), which reads
/// no swap_file: the plain [`swapin_readahead`].
pub(crate) async fn swap_cluster_readahead(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<()> {
    let point = "swap_cluster_readahead:swap_file";
    t.point(point).await;
    crate::swap_device::read(k, t, entry.type_, crate::swap_device::Piece::SwapFile, point)?;
    swapin_readahead(k, t, entry).await
}

/// `swapin_readahead` (mm/memory.c), BKL held: `valid_swaphandles` takes
/// a temporary reference on each slot of the aligned cluster that is in
/// use, then each is read asynchronously and the reference dropped. (The
/// `nr_async_pages` throttle is not modelled: every handle is read.)
pub(crate) async fn swapin_readahead(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<()> {
    if k.fixes.era.is_later() {
        return swapin_readahead_later(k, t, entry).await;
    }
    for handle in valid_swaphandles(k, t, entry).await? {
        if let Some(page) = read_swap_cache_async(k, t, handle, false).await? {
            free_page(k, t, page, "swapin_readahead:__free_page")?;
        }
        swap_free(k, t, handle, "swapin_readahead:swap_free").await?;
        k.key(t, crate::signatures::KeyEvent::ReadaheadDone { entry: handle });
    }
    Ok(())
}

/// `valid_swaphandles` (mm/swapfile.c), under swap_device_lock: from the
/// cluster-aligned offset, up to 2^page_cluster slots that are in use and
/// not bad (stopping at the first that is not), each with a temporary
/// reference. The patch does none of it
/// unless the device is SWP_WRITEOK.
async fn valid_swaphandles(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<Vec<SwpEntry>> {
    let page_cluster = k.page_cluster();
    let sdev_lock = k.w().swap_info[entry.type_].sdev_lock;
    t.spin_lock(sdev_lock, "valid_swaphandles:swap_device_lock").await;
    let mut handles = Vec::new();
    {
        let mut w = k.w();
        let p = &mut w.swap_info[entry.type_];
        let writeok = p.flags & SWP_WRITEOK == SWP_WRITEOK;
        let max = p.max;
        let scans = writeok || !k.fixes.no_readahead;
        if scans && p.swap_map.is_none() {
            // Reading swap_map[toff] of a device swapoff has freed: an oops.
            drop(w);
            t.spin_unlock(sdev_lock, "valid_swaphandles:swap_device_unlock");
            return Err(k.oops(
                t,
                "swapoff-completeness",
                format!("valid_swaphandles: swap_map of device {} is NULL (freed by swapoff): oops", entry.type_ + 1),
            ));
        }
        if let (Some(map), true) = (p.swap_map.as_mut(), scans) {
            // From the cluster-aligned offset; a cluster that starts at the
            // header slot (BAD) reads nothing ahead.
            let first = (entry.offset >> page_cluster) << page_cluster;
            for offset in first..first + (1u32 << page_cluster) {
                if offset >= max {
                    break;
                }
                let slot = &mut map[offset as usize];
                if *slot == 0 || *slot == SWAP_MAP_BAD {
                    break;
                }
                if *slot < SWAP_MAP_MAX {
                    *slot += 1;
                }
                handles.push(SwpEntry { type_: entry.type_, offset });
            }
        }
    }
    for &handle in &handles {
        k.key(t, crate::signatures::KeyEvent::ReadaheadRef { entry: handle });
    }
    t.spin_unlock(sdev_lock, "valid_swaphandles:swap_device_unlock");
    Ok(handles)
}

/// Later kernels' readahead over the aligned cluster of 2^page_cluster
/// slots (from slot 1 in the first cluster). The handles are picked under
/// swap_device_lock but take *no temporary reference*: read_swap_cache_async's
/// own swap_duplicate is the only one, and it fails on a slot freed
/// meanwhile. 2.4.10's valid_swaphandles stops at the first free or bad
/// slot (so behind a swapoff freeing slots in order it reads nothing
/// ahead); 5.1's swap_cluster_readahead skips them and reads the rest.
async fn swapin_readahead_later(k: &Kernel, t: &Task, entry: SwpEntry) -> KResult<()> {
    let page_cluster = k.page_cluster();
    let skips_free = k.fixes.era == crate::Era::Linux5_1;
    let sdev_lock = k.w().swap_info[entry.type_].sdev_lock;
    t.spin_lock(sdev_lock, "valid_swaphandles:swap_device_lock").await;
    let handles: Vec<SwpEntry> = {
        let w = k.w();
        let p = &w.swap_info[entry.type_];
        let first = ((entry.offset >> page_cluster) << page_cluster).max(1);
        let end = (((entry.offset >> page_cluster) + 1) << page_cluster).min(p.max);
        let in_use = |offset: &u32| {
            p.swap_map.as_ref().is_some_and(|m| m[*offset as usize] != 0 && m[*offset as usize] != SWAP_MAP_BAD)
        };
        let handle = |offset| SwpEntry { type_: entry.type_, offset };
        if skips_free {
            (first..end).filter(in_use).map(handle).collect()
        } else {
            (first..end).take_while(in_use).map(handle).collect()
        }
    };
    t.spin_unlock(sdev_lock, "valid_swaphandles:swap_device_unlock");
    for handle in handles {
        let Some(page) = read_swap_cache_async(k, t, handle, false).await? else { break };
        free_page(k, t, page, "swapin_readahead:page_cache_release")?;
    }
    Ok(())
}

/// `do_swap_page` (mm/memory.c), mmap_sem held, no BKL at entry: look in
/// the swap cache; else under the BKL read ahead and read the page (a
/// failure returns -1 and kills the task); lock the page, transfer the
/// pte's swap reference to the page reference, make it writable if it is
/// not shared, and `set_pte` with no recheck of the old value.
async fn do_swap_page(
    k: &Kernel,
    t: &Task,
    mm: MmId,
    _vma: VmaId,
    addr: u64,
    entry: SwpEntry,
    write: bool,
) -> KResult<Handled> {
    k.key(t, crate::signatures::KeyEvent::FaultSwap { mm, addr, entry });
    // do_page_fault's down(&mm->mmap_sem): the fault's pte stays the one
    // it read as far as munmap and (with the patch) swapoff are concerned.
    let mmap_sem = k.w().mms[mm].mmap_sem;
    k.assert_held(t, mmap_sem, "the mm's mmap_sem", "do_swap_page")?;
    if k.fixes.era.is_later() {
        // 5.14 (2799e77529c2): `si = get_swap_device(entry); if (!si) goto
        // out;` at the top, put at the end: the fault is retried.
        let hold = k.fixes.later.swapin_ref;
        let body = do_swap_page_later(k, t, mm, addr, entry, write);
        return crate::swap_device::holding(k, t, entry, hold, Ok(()), body).await;
    }
    let page = match lookup_swap_cache(k, t, entry).await? {
        Some(page) => Ok(page),
        None => {
            t.lock_kernel("do_swap_page:lock_kernel").await;
            swapin_readahead(k, t, entry).await?;
            let read = read_swap_cache_why(k, t, entry).await?;
            t.unlock_kernel("do_swap_page:unlock_kernel");
            read
        }
    };
    let page = match page {
        Ok(page) => page,
        Err(failure) => {
            // Race 3: the fault fails although swapoff may have replaced the
            // entry with a page meanwhile.
            let now = read_pte(k, mm, addr);
            if now != Pte::Swap(entry) {
                return Err(k.oops(
                    t,
                    "fault-result",
                    format!(
                        "do_swap_page({entry}) at {addr:#x} returned -1 (the task is killed) although the pte no \
                     longer holds that entry: it is now {}",
                        describe_pte(k, now)
                    ),
                ));
            }
            return Ok(Err(failure));
        }
    };
    k.check_mm(t, mm, "do_swap_page")?;
    k.w().mms[mm].rss += 1;
    k.w().pages[page].swap_entry = true;

    // Freeze the "shared"ness of the page (page_count + swap_count).
    let page_lock = k.w().pages[page].lock;
    t.lock_page(page_lock, "do_swap_page:lock_page").await;
    swap_free(k, t, entry, "do_swap_page:swap_free").await?;
    // mk_pte(page, vma->vm_page_prot): young.
    let mut pte = Pte::Present { page, write: false, dirty: false, young: true };
    if write && !is_page_shared(k, t, page, "do_swap_page:is_page_shared")? {
        k.key_swap_cache_drop(t, page, "do_swap_page");
        delete_from_swap_cache_nolock(k, t, page).await?;
        pte = Pte::Present { page, write: true, dirty: true, young: true };
    }
    t.unlock_page(page_lock, "do_swap_page:UnlockPage");

    let before = read_pte(k, mm, addr);
    if before != Pte::Swap(entry) {
        return Err(k.oops(
            t,
            "fault-result",
            format!(
                "do_swap_page({entry}) at {addr:#x} overwrote a pte that changed under it (now {}): lost update",
                describe_pte(k, before)
            ),
        ));
    }
    set_pte(k, mm, addr, pte);
    Ok(Ok(()))
}

/// Later kernels' `do_swap_page` (2.4.17 mm/memory.c lines 1087-1153,
/// standing for 2.4.10; 5.1's likewise where not said): no BKL; the swap
/// cache looked up with find_get_page; when the read fails, return -1 only
/// if the pte still holds the entry ("Back out if somebody else faulted in
/// this pte"); lock the page, take page_table_lock and give up quietly if
/// the pte changed (`pte_same`), else free the entry and map the page. A
/// write fault never takes the page out of the swap cache on its own
/// count: 2.4 makes the pte writable if `can_share_swap_page`, and takes
/// the page out only when swap is half full (`vm_swap_full` →
/// `remove_exclusive_swap_page`, which rechecks under pagecache_lock).
/// 5.1 first checks that the page is still the entry's swap-cache page and
/// that the read worked (`PageUptodate`, else SIGBUS), and on a write
/// `reuse_swap_page` decides.
async fn do_swap_page_later(
    k: &Kernel,
    t: &Task,
    mm: MmId,
    addr: u64,
    entry: SwpEntry,
    write: bool,
) -> KResult<Handled> {
    let five_one = k.fixes.era == crate::Era::Linux5_1;
    let page = match crate::swap_state::lookup_swap_cache_later(k, t, entry).await? {
        Some(page) => Ok(page),
        None => {
            swapin_readahead(k, t, entry).await?;
            read_swap_cache_why(k, t, entry).await?
        }
    };
    k.check_mm(t, mm, "do_swap_page")?;
    let ptl = k.w().mms[mm].page_table_lock;
    let page = match page {
        Ok(page) => page,
        Err(failure) => {
            t.spin_lock(ptl, "do_swap_page:page_table_lock_backout").await;
            let same = read_pte(k, mm, addr) == Pte::Swap(entry);
            t.spin_unlock(ptl, "do_swap_page:page_table_unlock_backout");
            return Ok(if same { Err(failure) } else { Ok(()) });
        }
    };
    let page_lock = k.w().pages[page].lock;
    t.lock_page(page_lock, "do_swap_page:lock_page").await;
    if five_one {
        // "Make sure try_to_free_swap or reuse_swap_page or swapoff did not
        // release the swapcache from under us": else the fault is retried.
        let still = {
            let w = k.w();
            w.pages[page].swap_cache && w.pages[page].index == Some(entry)
        };
        if !still {
            t.unlock_page(page_lock, "do_swap_page:unlock_page_out_page");
            free_page(k, t, page, "do_swap_page:put_page_out_page")?;
            return Ok(Ok(()));
        }
    }
    t.spin_lock(ptl, "do_swap_page:page_table_lock").await;
    k.check_mm(t, mm, "do_swap_page")?;
    if read_pte(k, mm, addr) != Pte::Swap(entry) {
        t.spin_unlock(ptl, "do_swap_page:page_table_unlock_not_same");
        t.unlock_page(page_lock, "do_swap_page:UnlockPage_not_same");
        free_page(k, t, page, "do_swap_page:page_cache_release")?;
        return Ok(Ok(()));
    }
    if five_one && k.w().pages[page].data == crate::swap_state::READ_ERROR_GARBAGE {
        // !PageUptodate: the read failed; VM_FAULT_SIGBUS.
        t.spin_unlock(ptl, "do_swap_page:pte_unmap_unlock_sigbus");
        t.unlock_page(page_lock, "do_swap_page:unlock_page_sigbus");
        free_page(k, t, page, "do_swap_page:put_page_sigbus")?;
        return Ok(Err(FaultFailure::SigBus(entry)));
    }
    if five_one {
        return map_swap_page_5_1(k, t, mm, addr, entry, page, write).await;
    }
    swap_free(k, t, entry, "do_swap_page:swap_free").await?;
    if crate::later_swap::vm_swap_full(k) {
        crate::later_swap::remove_exclusive_swap_page(k, t, page).await?;
    }
    k.w().mms[mm].rss += 1;
    let writable = write && crate::later_swap::can_share_swap_page(k, t, page).await?;
    t.unlock_page(page_lock, "do_swap_page:UnlockPage");
    set_pte(k, mm, addr, Pte::Present { page, write: writable, dirty: writable, young: true });
    t.spin_unlock(ptl, "do_swap_page:page_table_unlock");
    Ok(Ok(()))
}

/// The end of 5.1's `do_swap_page`, page locked, pte lock held and the pte
/// the same: on a write `reuse_swap_page` (the page's only user takes it
/// out of the swap cache and maps it writable), `set_pte_at`, then
/// `swap_free`, `try_to_free_swap` when swap is half full
/// (mem_cgroup_swap_full without memcg is vm_swap_full), unlock the page;
/// a write that could not reuse goes on in `do_wp_page` under the pte lock.
async fn map_swap_page_5_1(
    k: &Kernel,
    t: &Task,
    mm: MmId,
    addr: u64,
    entry: SwpEntry,
    page: PageId,
    write: bool,
) -> KResult<Handled> {
    let page_lock = k.w().pages[page].lock;
    k.w().mms[mm].rss += 1;
    let reused = write && crate::later_swap::reuse_swap_page(k, t, page, 1).await?;
    let pte = Pte::Present { page, write: reused, dirty: reused, young: true };
    set_pte(k, mm, addr, pte);
    swap_free(k, t, entry, "do_swap_page:swap_free").await?;
    if crate::later_swap::vm_swap_full(k) {
        crate::later_swap::try_to_free_swap(k, t, page).await?;
    }
    t.unlock_page(page_lock, "do_swap_page:unlock_page");
    if write && !reused {
        return do_wp_page(k, t, mm, addr, pte).await;
    }
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_unlock(ptl, "do_swap_page:pte_unmap_unlock");
    Ok(Ok(()))
}

/// `do_wp_page` (mm/memory.c), entered with page_table_lock held: reuse
/// the page when this pte is its only user (taking a private swap-cache
/// page out of the cache), else copy it.
async fn do_wp_page(k: &Kernel, t: &Task, mm: MmId, addr: u64, pte: Pte) -> KResult<Handled> {
    let Pte::Present { page: old_page, .. } = pte else { unreachable!("do_wp_page on a present pte") };
    let ptl = k.w().mms[mm].page_table_lock;
    k.check_page(t, old_page, "do_wp_page")?;
    let (count, in_cache, page_lock) = {
        let w = k.w();
        let p = &w.pages[old_page];
        (p.count, p.swap_cache, p.lock)
    };
    let mut reuse = count == 1;
    if k.fixes.era.is_later() {
        match do_wp_page_reuse_later(k, t, mm, addr, pte, old_page).await? {
            Some(later) => reuse = later,
            None => return Ok(Ok(())),
        }
    } else if count == 2 && in_cache && t.try_lock_page(page_lock, "do_wp_page:TryLockPage") {
        if is_page_shared(k, t, old_page, "do_wp_page:is_page_shared")? {
            t.unlock_page(page_lock, "do_wp_page:UnlockPage");
        } else {
            k.key_swap_cache_drop(t, old_page, "do_wp_page");
            delete_from_swap_cache_nolock(k, t, old_page).await?;
            t.unlock_page(page_lock, "do_wp_page:UnlockPage");
            reuse = true;
        }
    }
    if reuse {
        set_pte(k, mm, addr, Pte::Present { page: old_page, write: true, dirty: true, young: true });
        t.spin_unlock(ptl, "do_wp_page:page_table_unlock");
        return Ok(Ok(()));
    }

    // Copy.
    t.spin_unlock(ptl, "do_wp_page:page_table_unlock_copy");
    let point = "do_wp_page:alloc_page";
    let Some(new_page) = alloc_page(k, t, point).await? else { return Ok(Err(FaultFailure::OutOfMemory(point))) };
    t.spin_lock(ptl, "do_wp_page:page_table_lock_recheck").await;
    let mut to_free = new_page;
    if read_pte(k, mm, addr) == pte {
        // break_cow: copy the contents and map the new page.
        t.work(k.costs.page_copy);
        k.check_page(t, old_page, "break_cow")?;
        let data = k.w().pages[old_page].data;
        k.w().pages[new_page].data = data;
        set_pte(k, mm, addr, Pte::Present { page: new_page, write: true, dirty: true, young: true });
        k.key(t, crate::signatures::KeyEvent::WpCopy { mm, addr, old: old_page });
        to_free = old_page;
    }
    t.spin_unlock(ptl, "do_wp_page:page_table_unlock_done");
    free_page(k, t, to_free, "do_wp_page:__free_page")?;
    Ok(Ok(()))
}

/// Whether the later kernels' `do_wp_page` reuses the page (page_table_lock
/// held), deleting nothing on its own count. 2.4.17 (mm/memory.c lines
/// 919-935): `TryLockPage`, `can_share_swap_page`, `UnlockPage` (a page it
/// cannot lock is copied). 5.1: `trylock_page`, else take a reference, drop
/// the pte lock, `lock_page`, and give up (None: the fault is retried) if
/// the pte changed meanwhile; then `reuse_swap_page`, `unlock_page`.
async fn do_wp_page_reuse_later(
    k: &Kernel,
    t: &Task,
    mm: MmId,
    addr: u64,
    pte: Pte,
    page: PageId,
) -> KResult<Option<bool>> {
    let ptl = k.w().mms[mm].page_table_lock;
    let page_lock = k.w().pages[page].lock;
    if k.fixes.era == crate::Era::Linux2_4_10 {
        if !t.try_lock_page(page_lock, "do_wp_page:TryLockPage") {
            return Ok(Some(false));
        }
        let reuse = crate::later_swap::can_share_swap_page(k, t, page).await?;
        t.unlock_page(page_lock, "do_wp_page:UnlockPage");
        return Ok(Some(reuse));
    }
    if !t.try_lock_page(page_lock, "do_wp_page:trylock_page") {
        get_page(k, t, page, "do_wp_page:get_page")?;
        t.spin_unlock(ptl, "do_wp_page:pte_unmap_unlock_lock_page");
        t.lock_page(page_lock, "do_wp_page:lock_page").await;
        t.spin_lock(ptl, "do_wp_page:pte_offset_map_lock").await;
        k.check_mm(t, mm, "do_wp_page")?;
        if read_pte(k, mm, addr) != pte {
            t.spin_unlock(ptl, "do_wp_page:pte_unmap_unlock_not_same");
            t.unlock_page(page_lock, "do_wp_page:unlock_page_not_same");
            free_page(k, t, page, "do_wp_page:put_page_not_same")?;
            return Ok(None);
        }
        free_page(k, t, page, "do_wp_page:put_page")?;
    }
    let reuse = crate::later_swap::reuse_swap_page(k, t, page, 0).await?;
    t.unlock_page(page_lock, "do_wp_page:unlock_page");
    Ok(Some(reuse))
}

/// `copy_page_range` (mm/memory.c:152-259), for one VMA, without the
/// parent's page_table_lock, one page table (4 MB) at a time: where the
/// parent has no page table (`pmd_none(*src_pmd)`) there is nothing to
/// copy; else the child's is allocated if it has none yet (`pte_alloc`,
/// which may sleep: after the ptes of the tables before are copied, and
/// before dup_mmap links the VMA), and each pte is copied (`copy_one_pte`).
/// Returns -ENOMEM when a page table cannot be allocated.
pub async fn copy_page_range(k: &Kernel, t: &Task, dst: MmId, src: MmId, vma: VmaId) -> KResult<Result<(), i64>> {
    k.check_mm(t, src, "copy_page_range")?;
    let (start, end) = {
        let w = k.w();
        (w.vmas[vma].start, w.vmas[vma].end)
    };
    let mut addr = start;
    while addr < end {
        let table_end = ((pgd_index(addr) + 1) << PGDIR_SHIFT).min(end);
        if k.w().pmd_present(src, addr) {
            if !pte_alloc(k, t, dst, addr, "copy_page_range:pte_alloc").await? {
                return Ok(Err(-crate::swapfile::ENOMEM));
            }
            copy_ptes(k, t, dst, src, vma, addr, table_end).await?;
        }
        addr = table_end;
    }
    Ok(Ok(()))
}

/// Later kernels' `copy_page_range` (2.4.10, 5.1): the caller holds the
/// child's page_table_lock and has allocated the page tables; the copy runs
/// under the parent's too, so swapoff scanning either mm sees all or none
/// of it. 5.1's copy_one_pte lists the child after its parent on the
/// mmlist when it copies a swap entry.
pub async fn copy_page_range_locked(k: &Kernel, t: &Task, dst: MmId, src: MmId, vma: VmaId) -> KResult<()> {
    k.check_mm(t, src, "copy_page_range")?;
    let src_ptl = k.w().mms[src].page_table_lock;
    t.spin_lock(src_ptl, "copy_page_range:src_page_table_lock").await;
    let (start, end) = {
        let w = k.w();
        (w.vmas[vma].start, w.vmas[vma].end)
    };
    copy_ptes(k, t, dst, src, vma, start, end).await?;
    t.spin_unlock(src_ptl, "copy_page_range:src_page_table_unlock");
    Ok(())
}

/// The pte loop of copy_page_range over `[start, end)` of the VMA, whose
/// page tables the child has: `copy_one_pte` for each pte that is not none.
async fn copy_ptes(k: &Kernel, t: &Task, dst: MmId, src: MmId, vma: VmaId, start: u64, end: u64) -> KResult<()> {
    k.check_mm(t, src, "copy_page_range")?;
    k.check_mm(t, dst, "copy_page_range")?;
    let shared = k.w().vmas[vma].shm.is_some();
    let addrs: Vec<u64> = k.w().ptes_in(src, start, end).map(|(a, _)| a).collect();
    for addr in addrs {
        t.work(k.costs.pte_scan);
        let pte = read_pte(k, src, addr);
        match pte {
            Pte::None => {}
            Pte::Swap(entry) => {
                swap_duplicate(k, t, entry, "copy_page_range:swap_duplicate").await?;
                if k.fixes.era == crate::Era::Linux5_1 && !k.w().mmlist.contains(&dst) {
                    // list_add(&dst_mm->mmlist, &src_mm->mmlist): a parent
                    // holding a swap entry is always listed in this model.
                    t.spin_lock(k.mmlist_lock, "copy_one_pte:mmlist_lock").await;
                    {
                        let mut w = k.w();
                        if !w.mmlist.contains(&dst) {
                            let at = w.mmlist.iter().position(|&x| x == src).map_or(0, |i| i + 1);
                            w.mmlist.insert(at, dst);
                        }
                    }
                    t.spin_unlock(k.mmlist_lock, "copy_one_pte:mmlist_unlock");
                }
                set_pte(k, dst, addr, pte);
                k.key(t, crate::signatures::KeyEvent::SwapPteSet { mm: dst, addr, entry, by: "copy_page_range" });
                t.note("copy_page_range:set_pte", || {
                    format!("copied swap entry {entry} at {addr:#x} into {}", k.describe_mm(dst))
                });
            }
            Pte::Present { page, write, .. } if shared => {
                // A shared mapping: no COW; the child's copy is clean, and
                // old (set_pte(dst_pte, pte_mkold(pte))).
                set_pte(k, dst, addr, Pte::Present { page, write, dirty: false, young: false });
                get_page(k, t, page, "copy_page_range:get_page")?;
            }
            Pte::Present { page, dirty, young, .. } => {
                // COW: write-protect both; the child's copy is old.
                set_pte(k, src, addr, Pte::Present { page, write: false, dirty, young });
                set_pte(k, dst, addr, Pte::Present { page, write: false, dirty, young: false });
                get_page(k, t, page, "copy_page_range:get_page")?;
            }
        }
    }
    Ok(())
}

/// `zap_page_range` (mm/memory.c): under page_table_lock, clear each pte
/// and free what it held: `free_page_and_swap_cache` for a page,
/// `swap_free` for a swap entry. The page tables stay (exit_mmap's
/// clear_page_tables and munmap's free_pgtables free them).
pub async fn zap_page_range(k: &Kernel, t: &Task, mm: MmId, start: u64, end: u64) -> KResult<()> {
    k.check_mm(t, mm, "zap_page_range")?;
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_lock(ptl, "zap_page_range:page_table_lock").await;
    let addrs: Vec<u64> = k.w().ptes_in(mm, start, end).map(|(a, _)| a).collect();
    let mut freed = 0;
    for addr in addrs {
        t.work(k.costs.pte_scan);
        let pte = read_pte(k, mm, addr);
        set_pte(k, mm, addr, Pte::None);
        k.w().mms[mm].expected.remove(&addr);
        match pte {
            Pte::None => {}
            Pte::Present { page, .. } => {
                free_page_and_swap_cache(k, t, page).await?;
                freed += 1;
            }
            Pte::Swap(entry) => {
                k.key(t, crate::signatures::KeyEvent::ZapSwap { mm, addr, entry });
                if k.fixes.later.teardown {
                    crate::later_races::free_swap_and_cache(k, t, entry).await?
                } else {
                    swap_free(k, t, entry, "zap_pte_range:swap_free").await?
                }
            }
        }
    }
    t.spin_unlock(ptl, "zap_page_range:page_table_unlock");
    k.check_mm(t, mm, "zap_page_range")?;
    let mut w = k.w();
    let rss = &mut w.mms[mm].rss;
    *rss = (*rss - freed).max(0);
    Ok(())
}

/// A pte in words, for messages.
pub fn describe_pte(k: &Kernel, pte: Pte) -> String {
    match pte {
        Pte::None => "none".to_string(),
        Pte::Swap(e) => format!("swap entry {e}"),
        Pte::Present { page, .. } => format!("present {}", crate::page_alloc::page_number(k, page)),
    }
}
