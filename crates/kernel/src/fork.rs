//! fork (kernel/fork.c): do_fork, copy_mm, dup_mmap.

use std::future::Future;
use std::pin::Pin;

use engine::Task;

use crate::memory::{copy_page_range, copy_page_range_locked};
use crate::mm::{mm_alloc, mmput};
use crate::swapfile::ENOMEM;
use crate::types::*;
use crate::{Era, KResult, Kernel};

/// What the child runs once `wake_up_process` lets it go: its user program.
pub type ChildStart = Box<dyn FnOnce(Task) -> Pin<Box<dyn Future<Output = ()>>>>;

/// `do_fork` (kernel/fork.c): allocate the task struct (may sleep), take
/// the BKL, copy files and the mm (or, with CLONE_VM, share it), and only
/// at the end put the child on the task list (`SET_LINKS` under
/// tasklist_lock) and wake it. Until then `for_each_task` cannot see the
/// child — race 1. When copy_mm fails (-ENOMEM), the child's task struct
/// is freed unlinked and fork returns -12.
/// The child is named after its first ancestor and its pid: "parent.3".
/// Beyond `max_threads` live tasks it fails with -EAGAIN.
pub async fn do_fork(k: &Kernel, t: &Task, clone_vm: bool, start: ChildStart) -> KResult<i64> {
    t.may_sleep("do_fork:alloc_task_struct", k.costs.alloc_sleep).await;
    t.lock_kernel("do_fork:lock_kernel").await;
    // nr_threads: the tasks on the task list, zombies included.
    let live = k.w().procs.values().filter(|p| p.linked && !p.kernel_thread).count() as u32;
    if live >= k.max_threads {
        // nr_threads >= max_threads: bad_fork_cleanup_count.
        let message = format!(
            "fork: -EAGAIN: {live} tasks on the task list (zombies count until reaped), the limit max_threads is {} (raise it with machine{{ max_threads = N }})",
            k.max_threads
        );
        k.printk(t, "do_fork:max_threads", message);
        t.unlock_kernel("do_fork:unlock_kernel");
        return Ok(-11); // -EAGAIN
    }
    let parent = k.current(t);
    let (pid, child_name) = {
        let mut w = k.w();
        let pid = *w.next_pid;
        *w.next_pid += 1;
        // "make1.17": the first ancestor's name and the child's pid.
        let root = w.procs[&parent].name.split('.').next().unwrap_or("task").to_string();
        let child_name = format!("{root}.{pid}");
        w.procs.insert(
            pid,
            Proc {
                pid,
                name: child_name.clone(),
                task: None,
                mm: None,
                active_mm: None,
                linked: false,
                exited: false,
                kernel_thread: false,
                exit_wait: k.sim.new_lock(
                    engine::LockKind::WaitQueue,
                    "wait_chldexit",
                    engine::LockName::Numbered("pid", pid.into(), ".wait_chldexit"),
                ),
            },
        );
        (pid, child_name)
    };
    t.may_sleep("do_fork:copy_files", k.costs.alloc_sleep).await;
    let retval = copy_mm(k, t, parent, pid, clone_vm).await?;
    if retval != 0 {
        // bad_fork_cleanup_sighand ... bad_fork_free: the child was never
        // linked; its task struct goes.
        if let Some(child) = k.w().procs.shift_remove(&pid) {
            k.sim.destroy_lock(child.exit_wait);
        }
        t.note("do_fork:bad_fork_free", || format!("{child_name} (pid {pid}) not created: copy_mm returned {retval}"));
        t.unlock_kernel("do_fork:unlock_kernel");
        return Ok(retval);
    }

    // Make the child visible to the rest of the system.
    t.write_lock(k.tasklist_lock, "do_fork:write_lock_tasklist").await;
    {
        let mut w = k.w();
        w.procs[&pid].linked = true;
        w.task_list.push(pid);
    }
    t.write_unlock(k.tasklist_lock, "do_fork:write_unlock_tasklist");
    k.key(t, crate::signatures::KeyEvent::TaskLinked { pid });
    t.note("do_fork:SET_LINKS", || format!("{child_name} (pid {pid}) is on the task list"));

    // wake_up_process(p): the child becomes runnable.
    let child = t.spawn(child_name, start);
    k.bind(child, pid);
    k.w().stats.forks += 1;
    t.unlock_kernel("do_fork:unlock_kernel");
    Ok(pid as i64)
}

/// `copy_mm` (kernel/fork.c): a new mm from mm_alloc (on the mm list's
/// tail with the patch), then dup_mmap under the **parent's** mmap_sem. If
/// dup_mmap fails (-ENOMEM), `free_pt`: mmput tears down the half-built mm
/// — on no list in pre4, where swapoff cannot see its copied entries; on
/// the mm list with the patch until __mmdrop unlinks it. A CLONE_VM child
/// only takes a user of the parent's mm.
async fn copy_mm(k: &Kernel, t: &Task, parent: Pid, child: Pid, clone_vm: bool) -> KResult<i64> {
    let Some(old_mm) = k.w().procs[&parent].mm else { return Ok(0) };
    if clone_vm {
        k.check_mm(t, old_mm, "copy_mm")?;
        let mut w = k.w();
        w.mms[old_mm].mm_users += 1; // atomic_inc(&mm->mm_users)
        let p = &mut w.procs[&child];
        p.mm = Some(old_mm);
        p.active_mm = Some(old_mm);
        return Ok(0);
    }
    let parent_name = k.w().procs[&parent].name.clone();
    let mm = mm_alloc(k, t, format!("pid {child}, forked from pid {parent} ({parent_name})")).await;
    {
        let mut w = k.w();
        let p = &mut w.procs[&child];
        p.mm = Some(mm);
        p.active_mm = Some(mm);
    }
    k.check_mm(t, old_mm, "copy_mm")?;
    let mmap_sem = k.w().mms[old_mm].mmap_sem;
    t.down(mmap_sem, "copy_mm:down_mmap_sem").await;
    let retval = dup_mmap(k, t, mm, old_mm).await?;
    t.up(mmap_sem, "copy_mm:up_mmap_sem");
    if retval != 0 {
        k.key(t, crate::signatures::KeyEvent::ForkFailed { mm });
        t.note("copy_mm:free_pt", || format!("fork failed: mmput of the half-built {}", k.describe_mm(mm)));
        mmput(k, t, mm).await?;
    }
    Ok(retval)
}

/// `dup_mmap` (kernel/fork.c:231-295): for each parent VMA, allocate a VMA
/// (may sleep), copy its page range (which may sleep in pte_alloc at each
/// page table), and only then link it into the child — even when the copy
/// failed, "so that exit_mmap() can clean up the mess" — then give up on
/// the error. Later kernels differ (see [`dup_mmap_later`]).
async fn dup_mmap(k: &Kernel, t: &Task, mm: MmId, old_mm: MmId) -> KResult<i64> {
    if k.fixes.era.is_later() {
        return dup_mmap_later(k, t, mm, old_mm).await;
    }
    let parent_vmas = start_dup(k, mm, old_mm);
    for mpnt in parent_vmas {
        t.may_sleep("dup_mmap:kmem_cache_alloc", k.costs.alloc_sleep).await;
        if kmem_cache_alloc_failed(k, t) {
            return Ok(-ENOMEM); // fail_nomem: the VMAs linked so far stay
        }
        k.check_mm(t, mm, "dup_mmap")?;
        let tmp = new_vma_like(k, mm, mpnt);
        let copied = copy_page_range(k, t, mm, old_mm, mpnt).await?;
        k.check_mm(t, mm, "dup_mmap")?;
        k.w().mms[mm].mmap.push(tmp);
        if let Err(retval) = copied {
            return Ok(retval);
        }
    }
    Ok(0)
}

/// `dup_mmap` of later kernels. 2.4.10 first lists the child right after
/// its parent on the mmlist ("so that swapoff can see any swap entries"),
/// and links each new VMA *before* copying its ptes, both under the child's
/// page_table_lock. 5.1 holds the child's mmap_sem throughout (so
/// swapoff's unuse_mm waits for the copy) and lists the child only when it
/// copies a swap entry (copy_one_pte).
async fn dup_mmap_later(k: &Kernel, t: &Task, mm: MmId, old_mm: MmId) -> KResult<i64> {
    let era = k.fixes.era;
    let (child_sem, child_ptl) = {
        let w = k.w();
        (w.mms[mm].mmap_sem, w.mms[mm].page_table_lock)
    };
    if era == Era::Linux5_1 {
        t.down(child_sem, "dup_mmap:down_write_child_mmap_sem").await;
    }
    let parent_vmas = start_dup(k, mm, old_mm);
    if era == Era::Linux2_4_10 {
        t.spin_lock(k.mmlist_lock, "dup_mmap:mmlist_lock").await;
        {
            let mut w = k.w();
            let at = w.mmlist.iter().position(|&x| x == old_mm).map_or(w.mmlist.len(), |i| i + 1);
            w.mmlist.insert(at, mm); // list_add(&mm->mmlist, &current->mm->mmlist)
        }
        t.spin_unlock(k.mmlist_lock, "dup_mmap:mmlist_unlock");
    }
    let mut retval = 0;
    for mpnt in parent_vmas {
        t.may_sleep("dup_mmap:kmem_cache_alloc", k.costs.alloc_sleep).await;
        k.check_mm(t, mm, "dup_mmap")?;
        let tmp = new_vma_like(k, mm, mpnt);
        // The page-table pages are allocated first: pte_alloc drops the
        // page_table_lock around its allocation.
        let tables = alloc_page_tables(k, t, mm, old_mm, mpnt).await?;
        t.spin_lock(child_ptl, "dup_mmap:page_table_lock").await;
        k.check_mm(t, mm, "dup_mmap")?;
        k.w().mms[mm].mmap.push(tmp);
        if tables {
            copy_page_range_locked(k, t, mm, old_mm, mpnt).await?;
        }
        t.spin_unlock(child_ptl, "dup_mmap:page_table_unlock");
        if !tables {
            retval = -crate::swapfile::ENOMEM;
            break;
        }
    }
    if era == Era::Linux5_1 {
        t.up(child_sem, "dup_mmap:up_write_child_mmap_sem");
    }
    Ok(retval)
}

/// The child's page tables for the parent's VMA `mpnt`: `pte_alloc` for
/// each 4 MB the parent has a page table in (later kernels; the lock it
/// drops around the allocation is taken after it here). False on -ENOMEM.
async fn alloc_page_tables(k: &Kernel, t: &Task, mm: MmId, old_mm: MmId, mpnt: VmaId) -> KResult<bool> {
    let (start, end) = {
        let w = k.w();
        (w.vmas[mpnt].start, w.vmas[mpnt].end)
    };
    let mut addr = start;
    while addr < end {
        if k.w().pmd_present(old_mm, addr)
            && !crate::memory::pte_alloc(k, t, mm, addr, "copy_page_range:pte_alloc").await?
        {
            return Ok(false);
        }
        addr = ((pgd_index(addr) + 1) << PGDIR_SHIFT).min(end);
    }
    Ok(true)
}

/// An injected failure of dup_mmap's `kmem_cache_alloc(vm_area_cachep)`:
/// the slab grows from `__alloc_pages`, so it counts as an allocation of
/// `machine{ faults }` (`alloc_fail`, `alloc_fail_nth`).
fn kmem_cache_alloc_failed(k: &Kernel, t: &Task) -> bool {
    let failed = crate::page_alloc::injected_failure(k, t);
    if failed {
        k.printk(t, "dup_mmap:kmem_cache_alloc", "kmem_cache_alloc: vm_area_struct allocation failed (injected)");
    }
    failed
}

/// The start of dup_mmap: "Kill me slowly. UGLY! FIXME!": the memcpy of
/// 15 longs from start_code copies rss too. Returns the parent's VMAs.
fn start_dup(k: &Kernel, mm: MmId, old_mm: MmId) -> Vec<VmaId> {
    let mut w = k.w();
    let rss = w.mms[old_mm].rss;
    w.mms[mm].rss = rss;
    let expected = w.mms[old_mm].expected.clone();
    w.mms[mm].expected = expected;
    w.mms[old_mm].mmap.clone()
}

/// A copy of the parent's VMA `mpnt` for the child (not linked yet): shm
/// attaches count one more user (get_file, vm_ops->open = shm_open).
fn new_vma_like(k: &Kernel, mm: MmId, mpnt: VmaId) -> VmaId {
    let mut w = k.w();
    let v = &w.vmas[mpnt];
    let (start, end, writable, shm) = (v.start, v.end, v.writable, v.shm);
    if let Some((seg, _)) = shm {
        w.shm_segs[seg].nattch += 1;
    }
    w.vmas.insert(Vma { mm, start, end, writable, shm, vm_next_unlinked: None })
}
