//! fork (kernel/fork.c): do_fork, copy_mm, dup_mmap.

use std::future::Future;
use std::pin::Pin;

use engine::Task;

use crate::memory::copy_page_range;
use crate::mm::mm_alloc;
use crate::types::*;
use crate::{KResult, Kernel};

/// What the child runs once `wake_up_process` lets it go: its user program.
pub type ChildStart = Box<dyn FnOnce(Task) -> Pin<Box<dyn Future<Output = ()>>>>;

/// `do_fork` (kernel/fork.c) without CLONE_VM: allocate the task struct
/// (may sleep), take the BKL, copy files and the mm, and only at the end
/// put the child on the task list (`SET_LINKS` under tasklist_lock) and
/// wake it. Until then `for_each_task` cannot see the child — race 1.
/// The child is named after its first ancestor and its pid: "parent.3".
/// Beyond `max_threads` live tasks it fails with -EAGAIN.
pub async fn do_fork(k: &Kernel, t: &Task, start: ChildStart) -> KResult<i64> {
    t.may_sleep("do_fork:alloc_task_struct", k.costs.alloc_sleep).await;
    t.lock_kernel("do_fork:lock_kernel").await;
    let live = k.w().procs.values().filter(|p| !p.exited && !p.kernel_thread).count() as u32;
    if live >= k.max_threads {
        // nr_threads >= max_threads: bad_fork_cleanup_count.
        let message = format!(
            "fork: -EAGAIN: {live} tasks alive, the limit max_threads is {} (raise it with machine{{ max_threads = N }})",
            k.max_threads
        );
        k.printk(t, "do_fork:max_threads", message);
        t.unlock_kernel("do_fork:unlock_kernel");
        return Ok(-11); // -EAGAIN
    }
    let parent = k.current(t);
    let (pid, child_name) = {
        let mut w = k.w();
        let pid = w.next_pid;
        w.next_pid += 1;
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
                    format!("pid{pid}.wait_chldexit"),
                ),
            },
        );
        (pid, child_name)
    };
    t.may_sleep("do_fork:copy_files", k.costs.alloc_sleep).await;
    copy_mm(k, t, parent, pid).await?;

    // Make the child visible to the rest of the system.
    t.write_lock(k.tasklist_lock, "do_fork:write_lock_tasklist").await;
    {
        let mut w = k.w();
        w.procs[&pid].linked = true;
        w.task_list.push(pid);
    }
    t.write_unlock(k.tasklist_lock, "do_fork:write_unlock_tasklist");
    t.note("do_fork:SET_LINKS", || format!("{child_name} (pid {pid}) is on the task list"));

    // wake_up_process(p): the child becomes runnable.
    let child = t.spawn(child_name, start);
    k.bind(child, pid);
    k.w().stats.forks += 1;
    t.unlock_kernel("do_fork:unlock_kernel");
    Ok(pid as i64)
}

/// `copy_mm` (kernel/fork.c): a new mm from mm_alloc (on the mm list's
/// tail with the patch), then dup_mmap under the **parent's** mmap_sem.
async fn copy_mm(k: &Kernel, t: &Task, parent: Pid, child: Pid) -> KResult<()> {
    let Some(old_mm) = k.w().procs[&parent].mm else { return Ok(()) };
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
    dup_mmap(k, t, mm, old_mm).await?;
    t.up(mmap_sem, "copy_mm:up_mmap_sem");
    Ok(())
}

/// `dup_mmap` (kernel/fork.c): for each parent VMA, allocate a VMA (may
/// sleep), copy its page range, and only then link it into the child.
async fn dup_mmap(k: &Kernel, t: &Task, mm: MmId, old_mm: MmId) -> KResult<()> {
    let parent_vmas: Vec<VmaId> = {
        let mut w = k.w();
        // "Kill me slowly. UGLY! FIXME!": the memcpy of 15 longs from
        // start_code copies rss too.
        let rss = w.mms[old_mm].rss;
        w.mms[mm].rss = rss;
        let expected = w.mms[old_mm].expected.clone();
        w.mms[mm].expected = expected;
        w.mms[old_mm].mmap.clone()
    };
    for mpnt in parent_vmas {
        t.may_sleep("dup_mmap:kmem_cache_alloc", k.costs.alloc_sleep).await;
        k.check_mm(t, mm, "dup_mmap")?;
        let tmp = {
            let mut w = k.w();
            let v = &w.vmas[mpnt];
            let (start, end, writable, shm) = (v.start, v.end, v.writable, v.shm);
            if let Some((seg, _)) = shm {
                w.shm_segs[seg].nattch += 1; // get_file, vm_ops->open = shm_open
            }
            w.vmas.insert(Vma { mm, start, end, writable, shm })
        };
        copy_page_range(k, t, mm, old_mm, mpnt).await?;
        k.check_mm(t, mm, "dup_mmap")?;
        k.w().mms[mm].mmap.push(tmp);
    }
    Ok(())
}
