//! exit (kernel/exit.c, mm/mmap.c): do_exit, __exit_mm, exit_mmap.

use engine::Task;

use crate::memory::zap_page_range;
use crate::mm::{mmdrop, mmput};
use crate::types::*;
use crate::{KResult, Kernel};

/// `do_exit` (kernel/exit.c): under the BKL, `__exit_mm` (take an
/// mm_count, clear `tsk->mm` — from here on for_each_task skips this mm —
/// and mmput), release files (may sleep), become a zombie (`exit_notify`
/// wakes the parent; the task stays on the task list until wait4 reaps
/// it), and finally `schedule()` drops the active_mm's mm_count.
pub async fn do_exit(k: &Kernel, t: &Task) -> KResult<()> {
    t.lock_kernel("do_exit:lock_kernel").await;
    let pid = k.current(t);
    let mm = k.w().procs[&pid].mm;
    if let Some(mm) = mm {
        k.check_mm(t, mm, "__exit_mm")?;
        {
            let mut w = k.w();
            w.mms[mm].mm_count += 1;
            w.procs[&pid].mm = None;
        }
        k.key(t, crate::signatures::KeyEvent::MmDropped { pid, mm });
        t.note("__exit_mm:tsk_mm_null", || format!("pid {pid} dropped its mm: for_each_task no longer sees it"));
        mmput(k, t, mm).await?;
    }
    t.may_sleep("do_exit:__exit_files", k.costs.alloc_sleep).await;
    t.write_lock(k.tasklist_lock, "exit_notify:write_lock_tasklist").await;
    {
        // TASK_ZOMBIE: the task stays on the task list, with no mm, until
        // wait4 reaps it.
        let mut w = k.w();
        w.procs[&pid].exited = true;
        w.stats.exits += 1;
    }
    t.write_unlock(k.tasklist_lock, "exit_notify:write_unlock_tasklist");
    let exit_wait = k.w().procs[&pid].exit_wait;
    t.wake_up(exit_wait, "exit_notify:wake_up_parent");
    // schedule() away from a task with no mm: mmdrop(prev->active_mm).
    let active_mm = k.w().procs[&pid].active_mm.take();
    if let Some(active_mm) = active_mm {
        mmdrop(k, t, active_mm).await?;
    }
    t.unlock_kernel("do_exit:unlock_kernel");
    Ok(())
}

/// `exit_mmap` (mm/mmap.c:832-870): detach the VMA chain under the vmlist
/// lock (walkers now see nothing), then for each VMA: close (shm_close),
/// zap, fput (shm_fput) and free it; then free the page tables
/// (`clear_page_tables`). Of these only the last attach of a SHM_DEST
/// segment can sleep (shm_remove_name, shm_delete); from do_exit that is
/// the only place the BKL is dropped here, while exec's in-place exit_mmap
/// runs with no BKL at all. The patch takes
/// mmap_sem around it (after reading `mm->mmap`, as the posted hunk does)
/// and marks the mm MM_GONE when it has no users left.
pub async fn exit_mmap(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    k.check_mm(t, mm, "exit_mmap")?;
    let (mpnt, mmap_sem, ptl) = {
        let w = k.w();
        (w.mms[mm].mmap.clone(), w.mms[mm].mmap_sem, w.mms[mm].page_table_lock)
    };
    if k.fixes.mmap_sem {
        t.down(mmap_sem, "exit_mmap:down_mmap_sem").await;
    }
    t.spin_lock(ptl, "exit_mmap:vmlist_modify_lock").await;
    {
        let mut w = k.w();
        w.mms[mm].mmap.clear();
        w.mms[mm].rss = 0;
        // The detached VMAs keep their vm_next: a walker standing on one
        // goes on down the old chain.
        for (i, &v) in mpnt.iter().enumerate() {
            if let Some(vma) = w.vmas.get_mut(v) {
                vma.vm_next_unlinked = mpnt.get(i + 1).copied();
            }
        }
    }
    t.spin_unlock(ptl, "exit_mmap:vmlist_modify_unlock");
    k.key(t, crate::signatures::KeyEvent::ChainDetached { mm });
    t.note("exit_mmap:detached", || format!("the VMA chain of {} is detached", k.describe_mm(mm)));
    for vma in mpnt {
        let (start, end, shm) = {
            let w = k.w();
            (w.vmas[vma].start, w.vmas[vma].end, w.vmas[vma].shm)
        };
        if let Some((seg, _)) = shm {
            crate::shm::shm_close(k, t, seg).await?; // vm_ops->close
        }
        zap_page_range(k, t, mm, start, end).await?;
        if let Some((seg, _)) = shm {
            // fput(vm_file): sleeps only for the last attach of a
            // segment whose name is gone (shm_delete).
            crate::shm::shm_fput(k, t, seg, vma).await?;
        }
        k.w().vmas.remove(vma);
        t.point("exit_mmap:kmem_cache_free").await;
    }
    // clear_page_tables(mm, FIRST_USER_PGD_NR, USER_PTRS_PER_PGD): every
    // page table (the model's pgd has no kernel part).
    k.check_mm(t, mm, "exit_mmap")?;
    crate::memory::clear_page_tables(k, t, mm, 0, u64::MAX)?;
    if k.fixes.mmlist {
        // "Execing mm's are still holdable."
        k.check_mm(t, mm, "exit_mmap")?;
        let mut w = k.w();
        if w.mms[mm].mm_users == 0 {
            w.mms[mm].mm_gone = true; // mark_nonholdable
        }
    }
    if k.fixes.mmap_sem {
        t.up(mmap_sem, "exit_mmap:up_mmap_sem");
    }
    Ok(())
}

/// `sys_wait4` (kernel/exit.c) for one child: sleep on the child's exit
/// queue until it is a zombie, then reap it: `release` → `unhash_process`
/// takes it off the task list under `write_lock_irq(&tasklist_lock)`.
/// Returns the pid, or -ECHILD (no such task, or reaped already).
pub async fn sys_wait4(k: &Kernel, t: &Task, child: Pid) -> KResult<i64> {
    // -ECHILD: no such task, or one already reaped.
    let Some(queue) = k.w().procs.get(&child).filter(|p| p.linked || !p.exited).map(|p| p.exit_wait) else {
        return Ok(-10);
    };
    t.wait_event(queue, "sys_wait4:schedule", || k.w().procs.get(&child).is_none_or(|p| p.exited)).await;
    if k.w().procs.get(&child).is_some_and(|p| p.linked) {
        t.write_lock(k.tasklist_lock, "unhash_process:write_lock_tasklist").await;
        {
            let mut w = k.w();
            w.procs[&child].linked = false;
            w.task_list.retain(|&p| p != child);
        }
        t.write_unlock(k.tasklist_lock, "unhash_process:write_unlock_tasklist");
    }
    Ok(child as i64)
}
