//! Address-space system calls: munmap and anonymous mmap (mm/mmap.c), and
//! exec's exec_mmap (fs/exec.c).

use engine::Task;

use crate::exit::exit_mmap;
use crate::memory::zap_page_range;
use crate::mm::{mm_alloc, mmput};
use crate::types::*;
use crate::{KResult, Kernel};

const EINVAL: i64 = 22;

/// `sys_munmap` → `do_munmap` (mm/mmap.c:637-736), under the caller's mmap_sem and
/// without the BKL: allocate a spare VMA (kmem_cache_alloc, SLAB_KERNEL:
/// the `alloc_sleep` knob), move every VMA the
/// range touches onto a private `free` list under the vmlist lock (each
/// one's `vm_next` now points at the VMA unlinked before it), then, last
/// unlinked first, zap its part of the range and put back what is left of
/// it (`unmap_fixup`).
pub async fn sys_munmap(k: &Kernel, t: &Task, addr: u64, pages: u64) -> KResult<i64> {
    if !addr.is_multiple_of(PAGE_SIZE) || pages == 0 {
        return Ok(-EINVAL);
    }
    let end = addr + pages * PAGE_SIZE;
    let pid = k.current(t);
    let Some(mm) = k.w().procs[&pid].mm else { return Ok(-EINVAL) };
    k.check_mm(t, mm, "sys_munmap")?;
    let (mmap_sem, ptl) = {
        let w = k.w();
        (w.mms[mm].mmap_sem, w.mms[mm].page_table_lock)
    };
    t.down(mmap_sem, "sys_munmap:down_mmap_sem").await;
    t.may_sleep("do_munmap:kmem_cache_alloc", k.costs.alloc_sleep).await;
    t.spin_lock(ptl, "do_munmap:vmlist_modify_lock").await;
    let mut free: Option<VmaId> = {
        let mut w = k.w();
        let World { mms, vmas, .. } = &mut *w;
        let touched: Vec<VmaId> =
            mms[mm].mmap.iter().copied().filter(|&v| vmas[v].start < end && addr < vmas[v].end).collect();
        mms[mm].mmap.retain(|v| !touched.contains(v));
        // *npp = mpnt->vm_next; mpnt->vm_next = free; free = mpnt;
        let mut free = None;
        for v in touched {
            vmas[v].vm_next_unlinked = free;
            free = Some(v);
        }
        free
    };
    t.spin_unlock(ptl, "do_munmap:vmlist_modify_unlock");
    let mut unlinked = free;
    while let Some(vma) = unlinked {
        let (start, end, next) = {
            let w = k.w();
            (w.vmas[vma].start, w.vmas[vma].end, w.vmas[vma].vm_next_unlinked)
        };
        k.key(t, crate::signatures::KeyEvent::VmaUnlinked { mm, start, end });
        unlinked = next;
    }
    while let Some(vma) = free {
        let (start, stop, next) = {
            let w = k.w();
            let v = &w.vmas[vma];
            (v.start, v.end, v.vm_next_unlinked)
        };
        free = next;
        let (st, en) = (start.max(addr), stop.min(end));
        zap_page_range(k, t, mm, st, en).await?;
        unmap_fixup(k, t, mm, vma, st, en).await?;
    }
    free_pgtables(k, t, mm, addr, end)?;
    t.up(mmap_sem, "sys_munmap:up_mmap_sem");
    Ok(0)
}

/// `unmap_fixup` (mm/mmap.c:516-571): `area` lost `[st, en)`. All of it:
/// close (shm_close for an attach) and fput, which take the BKL and can
/// sleep only for the last attach of a SHM_DEST segment, and the
/// vm_area_struct is freed.
/// Otherwise the same vm_area_struct is trimmed at an end, or truncated to
/// the part before a hole with a new one (the spare) for the part after
/// (vm_ops->open = shm_open on it), and linked back in under the vmlist
/// lock — so a walker standing on it follows the live chain again.
async fn unmap_fixup(k: &Kernel, t: &Task, mm: MmId, area: VmaId, st: u64, en: u64) -> KResult<()> {
    let (start, stop, shm, writable) = {
        let w = k.w();
        let v = &w.vmas[area];
        (v.start, v.end, v.shm, v.writable)
    };
    if st == start && en == stop {
        if let Some((seg, _)) = shm {
            crate::shm::shm_close(k, t, seg).await?; // vm_ops->close
            crate::shm::shm_fput(k, t, seg, area).await?; // fput(area->vm_file)
        }
        k.w().vmas.remove(area); // kmem_cache_free
        return Ok(());
    }
    let tail = (st != start && en != stop).then(|| {
        // The hole's far side: the spare VMA, opened as a new attach.
        let shm = shm.map(|(seg, pgoff)| (seg, pgoff + (en - start) / PAGE_SIZE));
        k.w().vmas.insert(Vma { mm, start: en, end: stop, writable, shm, vm_next_unlinked: None })
    });
    if let (Some(_), Some((seg, _))) = (tail, shm) {
        crate::shm::shm_open(k, t, seg).await; // vm_ops->open
    }
    {
        let mut w = k.w();
        let v = &mut w.vmas[area];
        if st == start {
            // area->vm_pgoff += ...; area->vm_start = end;
            v.shm = v.shm.map(|(seg, pgoff)| (seg, pgoff + (en - start) / PAGE_SIZE));
            v.start = en;
        } else {
            v.end = st; // area->vm_end = addr
        }
    }
    let ptl = k.w().mms[mm].page_table_lock;
    t.spin_lock(ptl, "unmap_fixup:vmlist_modify_lock").await;
    {
        let mut w = k.w();
        let World { mms, vmas, .. } = &mut *w;
        for piece in tail.into_iter().chain([area]) {
            // insert_vm_struct: by address.
            let s = vmas[piece].start;
            let chain = &mut mms[mm].mmap;
            let at = chain.iter().position(|&v| vmas[v].start > s).unwrap_or(chain.len());
            chain.insert(at, piece);
        }
    }
    t.spin_unlock(ptl, "unmap_fixup:vmlist_modify_unlock");
    Ok(())
}

/// `free_pgtables` (mm/mmap.c:587-630), at the end of do_munmap: free the
/// page tables that mapped only the unmapped range `[start, end)`, i.e.
/// the whole 4 MB pgd entries between the VMA before it (`prev`, the last
/// that starts below `start`) and the VMA after it. No lock, no sleep.
fn free_pgtables(k: &Kernel, t: &Task, mm: MmId, start: u64, end: u64) -> KResult<()> {
    k.check_mm(t, mm, "free_pgtables")?;
    let (prev_end, next_start) = {
        let w = k.w();
        let chain = &w.mms[mm].mmap;
        let prev = chain.iter().rfind(|&&v| w.vmas[v].start < start).map(|&v| w.vmas[v].end);
        let next = chain.iter().find(|&&v| w.vmas[v].start >= start).map(|&v| w.vmas[v].start);
        (prev, next)
    };
    let mut first = start & !(PGDIR_SIZE - 1);
    let mut last = end + PGDIR_SIZE - 1;
    if let Some(prev_end) = prev_end.filter(|&e| e > first) {
        first = prev_end + PGDIR_SIZE - 1;
    }
    if let Some(next_start) = next_start.filter(|&s| last > s) {
        last = next_start;
    }
    let (start_index, end_index) = (pgd_index(first), pgd_index(last));
    if end_index > start_index {
        crate::memory::clear_page_tables(k, t, mm, start_index, end_index - start_index)?;
    }
    Ok(())
}

/// `sys_mmap2` → `do_mmap2` (arch/i386/kernel/sys_i386.c) → `do_mmap_pgoff`
/// (mm/mmap.c) of an anonymous private writable mapping at a fixed, free
/// address: under mmap_sem and the BKL (do_mmap2 takes both), allocate the
/// VMA (may sleep, dropping the BKL) and link it in under the vmlist lock.
/// Where the C's MAP_FIXED would first do_munmap an overlapped range, the
/// model refuses the call with -EINVAL.
pub async fn sys_mmap(k: &Kernel, t: &Task, addr: u64, pages: u64) -> KResult<i64> {
    if !addr.is_multiple_of(PAGE_SIZE) || pages == 0 {
        return Ok(-EINVAL);
    }
    let end = addr + pages * PAGE_SIZE;
    let pid = k.current(t);
    let Some(mm) = k.w().procs[&pid].mm else { return Ok(-EINVAL) };
    k.check_mm(t, mm, "sys_mmap")?;
    let (mmap_sem, ptl) = {
        let w = k.w();
        (w.mms[mm].mmap_sem, w.mms[mm].page_table_lock)
    };
    t.down(mmap_sem, "sys_mmap:down_mmap_sem").await;
    t.lock_kernel("do_mmap2:lock_kernel").await;
    t.may_sleep("do_mmap:kmem_cache_alloc", k.costs.alloc_sleep).await;
    let overlaps = {
        let w = k.w();
        w.mms[mm].mmap.iter().any(|&v| w.vmas[v].start < end && addr < w.vmas[v].end)
    };
    if overlaps {
        t.unlock_kernel("do_mmap2:unlock_kernel");
        t.up(mmap_sem, "sys_mmap:up_mmap_sem");
        return Ok(-EINVAL);
    }
    t.spin_lock(ptl, "do_mmap:vmlist_modify_lock").await;
    {
        let mut w = k.w();
        let vma = w.vmas.insert(Vma { mm, start: addr, end, writable: true, shm: None, vm_next_unlinked: None });
        let World { mms, vmas, .. } = &mut *w;
        let chain = &mut mms[mm].mmap;
        let at = chain.iter().position(|&v| vmas[v].start > addr).unwrap_or(chain.len());
        chain.insert(at, vma);
    }
    t.spin_unlock(ptl, "do_mmap:vmlist_modify_unlock");
    t.unlock_kernel("do_mmap2:unlock_kernel");
    t.up(mmap_sem, "sys_mmap:up_mmap_sem");
    Ok(0)
}

/// `exec_mmap` (fs/exec.c), from do_execve with no BKL: an mm with one
/// user is emptied in place by exit_mmap and kept — with the patch it stays
/// holdable, since mm_users is still 1 — otherwise the task gets a new mm
/// from mm_alloc and drops the old one with mmput.
pub async fn exec_mmap(k: &Kernel, t: &Task) -> KResult<()> {
    let pid = k.current(t);
    let Some(old_mm) = k.w().procs[&pid].mm else { return Ok(()) };
    k.check_mm(t, old_mm, "exec_mmap")?;
    if k.w().mms[old_mm].mm_users == 1 {
        k.key(t, crate::signatures::KeyEvent::Exec { mm: old_mm });
        exit_mmap(k, t, old_mm).await?;
        k.check_mm(t, old_mm, "exec_mmap")?;
        k.w().mms[old_mm].expected.clear();
        return Ok(());
    }
    let name = k.w().procs[&pid].name.clone();
    let mm = mm_alloc(k, t, format!("pid {pid} ({name}) after exec")).await;
    if k.fixes.era == crate::Era::Linux2_4_10 {
        // 2.4.10's exec_mmap: the new mm goes at the head of the mmlist.
        t.spin_lock(k.mmlist_lock, "exec_mmap:mmlist_lock").await;
        k.w().mmlist.insert(0, mm);
        t.spin_unlock(k.mmlist_lock, "exec_mmap:mmlist_unlock");
    }
    {
        let mut w = k.w();
        let p = &mut w.procs[&pid];
        p.mm = Some(mm);
        p.active_mm = Some(mm);
    }
    k.key(t, crate::signatures::KeyEvent::Exec { mm: old_mm });
    mmput(k, t, old_mm).await
}

use crate::world::World;
