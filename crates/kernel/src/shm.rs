//! SysV shared memory (ipc/shm.c): the segment's page array, shm_nopage,
//! shm_swap, shm_unuse and shm_close. The seed's patch does not touch this
//! file; races 4, 6 (shm readahead) and 7 live here.

use engine::Task;

use crate::memory::{swapin_readahead, FaultFailure};
use crate::page_alloc::{alloc_page, free_page, get_page};
use crate::swap_state::{delete_from_swap_cache, lookup_swap_cache, read_swap_cache_why, rw_swap_page_write};
use crate::swapfile::{get_swap_page_count, swap_free, swap_free_count};
use crate::types::*;
use crate::{KResult, Kernel};

/// What shm_nopage returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPage {
    /// The page, with a reference for the caller's pte.
    Page(PageId),
    /// NOPAGE_OOM: the fault fails and the task is killed (and what
    /// failed, which the kernel does not tell).
    Oom(FaultFailure),
}

/// `shm_nopage` → `shm_nopage_core` (ipc/shm.c), from do_no_page with the
/// faulting mm's mmap_sem held and no BKL: under the inode's i_sem and the
/// shm lock, snapshot SHM_ENTRY. A swap entry is read back with the shm
/// lock dropped — swap cache lookup, else readahead and a read under the
/// BKL — then *unconditionally* deleted from the swap cache, its swap
/// reference freed, and SHM_ENTRY rewritten. The snapshot is not rechecked:
/// races 4 and 7.
pub async fn shm_nopage(k: &Kernel, t: &Task, seg: ShmId, idx: usize) -> KResult<NoPage> {
    let i_sem = k.w().shm_segs[seg].i_sem;
    t.down(i_sem, "shm_nopage:down_i_sem").await;
    t.spin_lock(k.shm_lock, "shm_nopage:shm_lock").await;
    let pte = k.w().shm_segs[seg].entries[idx];
    let page = match pte {
        Pte::Present { page, .. } => page,
        Pte::None => {
            t.spin_unlock(k.shm_lock, "shm_nopage_core:shm_unlock");
            let point = "shm_nopage_core:alloc_page";
            let Some(page) = alloc_page(k, t, point).await? else {
                return oom(k, t, i_sem, FaultFailure::OutOfMemory(point)).await;
            };
            t.work(k.costs.page_zero);
            t.spin_lock(k.shm_lock, "shm_nopage_core:shm_lock_again").await;
            let mut w = k.w();
            *w.shm_rss += 1;
            w.shm_segs[seg].entries[idx] = Pte::Present { page, write: true, dirty: true, young: true };
            page
        }
        Pte::Swap(entry) if k.fixes.era.is_later() => {
            k.key(t, crate::signatures::KeyEvent::ShmSwapin { seg, idx, entry });
            match shmem_swapin_later(k, t, seg, idx).await? {
                Ok(page) => page,
                Err(failure) => {
                    t.spin_unlock(k.shm_lock, "shmem_getpage:enomem_unlock");
                    return oom(k, t, i_sem, failure).await;
                }
            }
        }
        Pte::Swap(entry) => {
            t.spin_unlock(k.shm_lock, "shm_nopage_core:shm_unlock");
            k.key(t, crate::signatures::KeyEvent::ShmNopageSnap { seg, idx, entry });
            let page = match lookup_swap_cache(k, t, entry).await? {
                Some(page) => Ok(page),
                None => {
                    t.lock_kernel("shm_nopage_core:lock_kernel").await;
                    swapin_readahead(k, t, entry).await?;
                    let read = read_swap_cache_why(k, t, entry).await?;
                    t.unlock_kernel("shm_nopage_core:unlock_kernel");
                    read
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(failure) => return oom(k, t, i_sem, failure).await,
            };
            k.key_swap_cache_drop(t, page, "shm_nopage");
            delete_from_swap_cache(k, t, page).await?;
            swap_free(k, t, entry, "shm_nopage_core:swap_free").await?;
            t.spin_lock(k.shm_lock, "shm_nopage_core:shm_lock_again").await;
            let mut w = k.w();
            *w.shm_swp -= 1;
            *w.shm_rss += 1;
            w.shm_segs[seg].entries[idx] = Pte::Present { page, write: true, dirty: true, young: true };
            page
        }
    };
    get_page(k, t, page, "shm_nopage_core:get_page")?;
    t.spin_unlock(k.shm_lock, "shm_nopage:shm_unlock");
    t.up(i_sem, "shm_nopage:up_i_sem");
    Ok(NoPage::Page(page))
}

/// Later kernels' shm swap-in (2.4.10's shmem_getpage, 5.1's
/// shmem_swapin_page), in place of shm_nopage_core's, with the shm lock
/// held on entry and exit: look the entry up in the swap cache without
/// sleeping; if it is not there, drop the lock, read it in, and start
/// again ("we can't trust this page, because we dropped the lock"); lock
/// the page with TryLockPage (else wait and start again); then, with the
/// page locked and the entry still current under the lock, free the
/// segment's swap reference, take the page out of the swap cache and
/// install it. An error is -ENOMEM (and what failed).
async fn shmem_swapin_later(k: &Kernel, t: &Task, seg: ShmId, idx: usize) -> KResult<Result<PageId, FaultFailure>> {
    loop {
        // repeat:
        let Pte::Swap(entry) = k.w().shm_segs[seg].entries[idx] else {
            let Pte::Present { page, .. } = k.w().shm_segs[seg].entries[idx] else {
                unreachable!("a swapped shm page never becomes none")
            };
            return Ok(Ok(page));
        };
        let found = if k.fixes.later.teardown {
            // 5.x: lookup_swap_cache in the device's own swap cache.
            crate::swap_state::lookup_swap_cache_later(k, t, entry).await?
        } else {
            t.spin_lock(k.pagecache_lock, "shmem_getpage:lookup_swap_cache").await;
            let found = k.w().swap_cache.get(&entry).copied();
            if let Some(page) = found {
                get_page(k, t, page, "shmem_getpage:get_page")?;
            }
            t.spin_unlock(k.pagecache_lock, "shmem_getpage:lookup_swap_cache_unlock");
            found
        };
        let Some(page) = found else {
            t.spin_unlock(k.shm_lock, "shmem_getpage:info_unlock");
            // 5.14 (2efa33fc7f6e): shmem_swapin_page holds the device across
            // the swap-in, or gives up with -EEXIST and looks again.
            let hold = k.fixes.later.swapin_ref;
            let swapin = async {
                if k.fixes.later.teardown {
                    crate::memory::swap_cluster_readahead(k, t, entry).await?;
                } else {
                    swapin_readahead(k, t, entry).await?;
                }
                read_swap_cache_why(k, t, entry).await.map(Some)
            };
            let read = crate::swap_device::holding(k, t, entry, hold, None, swapin).await?;
            t.spin_lock(k.shm_lock, "shmem_getpage:info_lock_again").await;
            let Some(read) = read else { continue };
            match read {
                Ok(page) => free_page(k, t, page, "shmem_getpage:page_cache_release")?,
                Err(failure) if k.w().shm_segs[seg].entries[idx] == Pte::Swap(entry) => return Ok(Err(failure)),
                Err(_) => {}
            }
            continue;
        };
        let page_lock = k.w().pages[page].lock;
        if !t.try_lock_page(page_lock, "shmem_getpage:TryLockPage") {
            t.spin_unlock(k.shm_lock, "shmem_getpage:wait_retry_unlock");
            t.wait_on_page(page_lock, "shmem_getpage:wait_on_page").await;
            free_page(k, t, page, "shmem_getpage:wait_retry_release")?;
            t.spin_lock(k.shm_lock, "shmem_getpage:wait_retry_lock").await;
            continue;
        }
        let still = {
            let w = k.w();
            w.pages[page].swap_cache && w.pages[page].index == Some(entry)
        };
        if !still {
            // 5.1's -EEXIST: the page left the swap cache meanwhile.
            t.unlock_page(page_lock, "shmem_getpage:unlock_page_eexist");
            free_page(k, t, page, "shmem_getpage:put_page_eexist")?;
            continue;
        }
        swap_free(k, t, entry, "shmem_getpage:swap_free").await?;
        {
            let mut w = k.w();
            w.shm_segs[seg].entries[idx] = Pte::Present { page, write: true, dirty: true, young: true };
            *w.shm_swp -= 1;
            *w.shm_rss += 1;
        }
        crate::swap_state::delete_from_swap_cache_nolock(k, t, page).await?;
        t.unlock_page(page_lock, "shmem_getpage:UnlockPage");
        return Ok(Ok(page));
    }
}

async fn oom(k: &Kernel, t: &Task, i_sem: engine::LockId, failure: FaultFailure) -> KResult<NoPage> {
    t.spin_lock(k.shm_lock, "shm_nopage_core:oom_shm_lock").await;
    t.spin_unlock(k.shm_lock, "shm_nopage:shm_unlock");
    t.up(i_sem, "shm_nopage:up_i_sem");
    Ok(NoPage::Oom(failure))
}

/// `shm_unuse` → `shm_unuse_core` → `shm_unuse_page` (ipc/shm.c), BKL
/// held, from try_to_unuse: under shm_lockall, the first SHM_ENTRY equal to
/// the entry becomes the page (with a reference), and the segment's swap
/// reference is freed. (zmap_unuse, for /dev/zero, is not modelled.)
pub async fn shm_unuse(k: &Kernel, t: &Task, entry: SwpEntry, page: PageId) -> KResult<()> {
    t.spin_lock(k.shm_lock, "shm_unuse:shm_lockall").await;
    let found = {
        let w = k.w();
        w.shm_segs
            .iter()
            .enumerate()
            .find_map(|(seg, s)| s.entries.iter().position(|&e| e == Pte::Swap(entry)).map(|idx| (seg, idx)))
    };
    if let Some((seg, idx)) = found {
        {
            let mut w = k.w();
            w.shm_segs[seg].entries[idx] = Pte::Present { page, write: true, dirty: true, young: true };
        }
        k.key(t, crate::signatures::KeyEvent::ShmUnuse { seg, idx, entry });
        t.note("shm_unuse_page:set", || format!("shm{seg}[{idx}]: swap entry {entry} -> page"));
        get_page(k, t, page, "shm_unuse_page:get_page")?;
        {
            let mut w = k.w();
            *w.shm_rss += 1;
            *w.shm_swp -= 1;
        }
        swap_free(k, t, entry, "shm_unuse_page:swap_free").await?;
    }
    t.spin_unlock(k.shm_lock, "shm_unuse:shm_unlockall");
    Ok(())
}

/// `shm_swap` (ipc/shm.c:1471-1522), from the page stealer at `prio`
/// (nothing below `shm_rss >> prio` = 0): `shm_swap_preop` (1449-1462)
/// takes a slot preloaded with 2 references under the BKL and drops it;
/// then, with no BKL of its own (a direct reclaimer keeps its caller's),
/// under shm_lockall `shm_swap_core` (1410-1439) takes a present page
/// nobody else maps (count 1), makes SHM_ENTRY the swap entry and adds the
/// page to the swap cache (locked); `shm_swap_postop` (1441-1447) writes it
/// out under the BKL. Between preop and shm_lockall the fresh slot is in no
/// structure a walker sees (docs/model.md § The shm_swap window). `only`
/// restricts the scan to one page (a scenario's set-up). Returns whether a
/// page went out.
pub async fn shm_swap(k: &Kernel, t: &Task, prio: u32, only: Option<(ShmId, usize)>) -> KResult<bool> {
    if (*k.w().shm_rss >> prio) == 0 {
        return Ok(false);
    }
    t.lock_kernel("shm_swap_preop:lock_kernel").await;
    let entry = get_swap_page_count(k, t, 2).await;
    t.unlock_kernel("shm_swap_preop:unlock_kernel");
    let Some(entry) = entry else { return Ok(false) };
    k.key(t, crate::signatures::KeyEvent::ShmSwapPreop { entry });
    t.spin_lock(k.shm_lock, "shm_swap:shm_lockall").await;
    let victim = {
        let w = k.w();
        let mut candidates = w.shm_segs.iter().enumerate().flat_map(|(seg, s)| {
            s.entries.iter().enumerate().filter_map(move |(idx, e)| match e {
                Pte::Present { page, .. } => Some((seg, idx, *page)),
                _ => None,
            })
        });
        candidates.find(|&(seg, idx, page)| {
            only.is_none_or(|o| o == (seg, idx)) && w.pages.get(page).is_some_and(|p| p.count == 1)
        })
    };
    let Some((seg, idx, page)) = victim else {
        t.spin_unlock(k.shm_lock, "shm_swap:failed_shm_unlockall");
        swap_free_count(k, t, entry, 2, "shm_swap:__swap_free").await?;
        return Ok(false);
    };
    let present = k.w().shm_segs[seg].entries[idx];
    k.w().shm_segs[seg].entries[idx] = Pte::Swap(entry);
    k.key(t, crate::signatures::KeyEvent::ShmSwapPublish { entry });
    // The cache's swap reference was preloaded by __get_swap_page(2).
    if !crate::swap_state::try_add_to_swap_cache(k, t, page, entry).await? {
        k.w().shm_segs[seg].entries[idx] = present;
        t.spin_unlock(k.shm_lock, "shm_swap:eexist_shm_unlockall");
        swap_free_count(k, t, entry, 2, "shm_swap:eexist_swap_free").await?;
        return Ok(false);
    }
    {
        let mut w = k.w();
        *w.shm_swp += 1;
        *w.shm_rss -= 1;
    }
    t.spin_unlock(k.shm_lock, "shm_swap:shm_unlockall");
    t.lock_kernel("shm_swap_postop:lock_kernel").await;
    rw_swap_page_write(k, t, page, entry).await;
    t.unlock_kernel("shm_swap_postop:unlock_kernel");
    free_page(k, t, page, "shm_swap_postop:__free_page")?;
    Ok(true)
}

/// `shm_close` (ipc/shm.c:1265-1290), the attach VMA's close: one attach
/// fewer, under the shm lock. The last attach of a segment marked
/// `SHM_DEST` then removes its name (`shm_remove_name`, which may sleep);
/// any other close does not sleep.
pub async fn shm_close(k: &Kernel, t: &Task, seg: ShmId) -> KResult<()> {
    t.spin_lock(k.shm_lock, "shm_close:shm_lock").await;
    let remove = {
        let mut w = k.w();
        let s = &mut w.shm_segs[seg];
        s.nattch -= 1;
        s.nattch == 0 && s.dest
    };
    t.spin_unlock(k.shm_lock, "shm_close:shm_unlock");
    if remove {
        shm_remove_name(k, t, seg).await?;
    }
    Ok(())
}

/// `shm_open` (ipc/shm.c:1229-1232, shm_inc): one attach more, under the
/// shm lock (fork, or munmap splitting an attach).
pub async fn shm_open(k: &Kernel, t: &Task, seg: ShmId) {
    t.spin_lock(k.shm_lock, "shm_inc:shm_lock").await;
    k.w().shm_segs[seg].nattch += 1;
    t.spin_unlock(k.shm_lock, "shm_inc:shm_unlock");
}

/// `fput` of an attach's file once its VMA `vma` is gone (the last
/// reference: `_fput`, fs/file_table.c:139-151): under the BKL (recursive
/// under do_exit's; a spin in munmap, which holds none), `__fput` →
/// `dput`. The dentry of a segment whose name is still there stays in the
/// dcache: nothing sleeps. After `shm_unlink`, the last dput is
/// `iput` → `shm_delete`, which sleeps if `shm_ids.sem` is taken.
/// (Each attach's file is taken as its own: a file that fork shared
/// would skip _fput's BKL, which no race here turns on.)
pub async fn shm_fput(k: &Kernel, t: &Task, seg: ShmId, vma: VmaId) -> KResult<()> {
    t.lock_kernel("_fput:lock_kernel").await;
    if last_dput(k, seg, vma) {
        shm_delete(k, t, seg).await?;
    }
    t.unlock_kernel("_fput:unlock_kernel");
    Ok(())
}

/// Whether dropping `vma`'s file drops the last reference to the
/// unlinked dentry of `seg`: no other VMA (no other open file) maps it.
fn last_dput(k: &Kernel, seg: ShmId, vma: VmaId) -> bool {
    let w = k.w();
    let s = &w.shm_segs[seg];
    s.unlinked && !s.deleted && !w.vmas.iter().any(|(v, m)| v != vma && m.shm.is_some_and(|(sg, _)| sg == seg))
}

/// `shm_remove_name` (ipc/shm.c:1238-1257): under the BKL, `lock_parent`
/// of the shm root (down its `i_sem`, fs/namei.c:1168), lookup of the
/// segment's name (its dentry is cached: no shm_lookup), `vfs_unlink`
/// (down the root's `i_zombie`, namei.c:1207) → `shm_unlink` (ipc/shm.c:
/// 518-542: under shm_ids.sem, mark the segment unlinked and SHM_DEST and
/// drop the dentry), then dput of the looked-up dentry: the last one when
/// no file holds the segment any more, so `iput` → `shm_delete`. Each
/// semaphore sleeps only if another task holds it. Returns 0, or -ENOENT
/// when the name is already gone.
async fn shm_remove_name(k: &Kernel, t: &Task, seg: ShmId) -> KResult<i64> {
    t.lock_kernel("shm_remove_name:lock_kernel").await;
    t.down(k.shm_root_i_sem, "shm_remove_name:lock_parent").await;
    let error = if k.w().shm_segs[seg].unlinked {
        -ENOENT
    } else {
        t.down(k.shm_root_i_zombie, "vfs_unlink:down_i_zombie").await;
        t.down(k.shm_ids_sem, "shm_unlink:down_shm_ids_sem").await;
        t.spin_lock(k.shm_lock, "shm_unlink:shm_lock").await;
        {
            let mut w = k.w();
            let s = &mut w.shm_segs[seg];
            s.unlinked = true;
            s.dest = true;
        }
        t.spin_unlock(k.shm_lock, "shm_unlink:shm_unlock");
        t.up(k.shm_ids_sem, "shm_unlink:up_shm_ids_sem");
        t.up(k.shm_root_i_zombie, "vfs_unlink:up_i_zombie");
        let no_file = {
            let w = k.w();
            !w.vmas.iter().any(|(_, m)| m.shm.is_some_and(|(sg, _)| sg == seg))
        };
        if no_file {
            shm_delete(k, t, seg).await?; // dput → iput → delete_inode
        }
        0
    };
    t.up(k.shm_root_i_sem, "shm_remove_name:unlock_dir");
    t.unlock_kernel("shm_remove_name:unlock_kernel");
    Ok(error)
}

/// `shm_delete` (ipc/shm.c:806-821), the inode's delete_inode: under
/// shm_ids.sem and the shm lock take the segment out of shm_ids
/// (`shm_rmid`); then `seg_free` → `shm_free` (594-634) frees each present
/// page and each swap entry with no lock held, and fixes the accounting
/// under shm_lockall.
async fn shm_delete(k: &Kernel, t: &Task, seg: ShmId) -> KResult<()> {
    t.down(k.shm_ids_sem, "shm_delete:down_shm_ids_sem").await;
    t.spin_lock(k.shm_lock, "shm_delete:shm_lock").await;
    let entries = {
        let mut w = k.w();
        let s = &mut w.shm_segs[seg];
        s.deleted = true;
        s.expected.clear();
        std::mem::take(&mut s.entries)
    };
    t.spin_unlock(k.shm_lock, "shm_delete:shm_unlock");
    t.up(k.shm_ids_sem, "shm_delete:up_shm_ids_sem");
    t.note("shm_delete:shm_rmid", || format!("shm{seg} is deleted"));
    let (mut rss, mut swp) = (0, 0);
    for entry in &entries {
        match *entry {
            Pte::Present { page, .. } => {
                free_page(k, t, page, "shm_free:__free_page")?;
                rss += 1;
            }
            Pte::Swap(entry) => {
                swap_free(k, t, entry, "shm_free:swap_free").await?;
                swp += 1;
            }
            Pte::None => {}
        }
    }
    t.spin_lock(k.shm_lock, "shm_free:shm_lockall").await;
    {
        let mut w = k.w();
        *w.shm_rss -= rss;
        *w.shm_swp -= swp;
        *w.shm_tot -= entries.len() as i64;
    }
    t.spin_unlock(k.shm_lock, "shm_free:shm_unlockall");
    Ok(())
}

/// `sys_shmctl(id, IPC_RMID)` (ipc/shm.c:1043-1082): under shm_ids.sem and
/// the shm lock, a segment with attaches is marked `SHM_DEST` (it goes
/// with its last attach); one with none loses its name at once
/// (`shm_remove_name`, after the up). Returns 0, -EINVAL for a segment
/// already deleted, or shm_remove_name's error.
pub async fn sys_shmctl_rmid(k: &Kernel, t: &Task, seg: ShmId) -> KResult<i64> {
    t.down(k.shm_ids_sem, "sys_shmctl:down_shm_ids_sem").await;
    t.spin_lock(k.shm_lock, "sys_shmctl:shm_lock").await;
    let (deleted, nattch) = {
        let w = k.w();
        (w.shm_segs[seg].deleted, w.shm_segs[seg].nattch)
    };
    if deleted {
        t.spin_unlock(k.shm_lock, "sys_shmctl:shm_unlock");
        t.up(k.shm_ids_sem, "sys_shmctl:up_shm_ids_sem");
        return Ok(-EINVAL);
    }
    if nattch == 0 {
        t.spin_unlock(k.shm_lock, "sys_shmctl:shm_unlock_rmid");
        t.up(k.shm_ids_sem, "sys_shmctl:up_shm_ids_sem_rmid");
        return shm_remove_name(k, t, seg).await;
    }
    k.w().shm_segs[seg].dest = true; // and shm_perm.key = IPC_PRIVATE
    t.spin_unlock(k.shm_lock, "sys_shmctl:shm_unlock");
    t.up(k.shm_ids_sem, "sys_shmctl:up_shm_ids_sem");
    Ok(0)
}

const EINVAL: i64 = 22;
const ENOENT: i64 = 2;
