//! mm_struct lifetime: mm_alloc, mmput, mmdrop, __mmdrop (kernel/fork.c)
//! and the patch's hold_mm / release_mm / mark_nonholdable
//! (include/linux/mm.h).

use engine::Task;

use crate::types::*;
use crate::{Era, KResult, Kernel};

/// `mm_alloc` (kernel/fork.c): `kmem_cache_alloc(mm_cachep, SLAB_KERNEL)`
/// may sleep; then counts at 1, a fresh mmap_sem, a pgd. With the patch the
/// new mm goes at the *tail* of `init_mm.mmlist` under mm_lock, so a child
/// always comes after its parent.
pub async fn mm_alloc(k: &Kernel, t: &Task, origin: String) -> MmId {
    t.may_sleep("mm_alloc:kmem_cache_alloc", k.costs.alloc_sleep).await;
    if k.fixes.mmlist {
        t.spin_lock(k.mm_lock, "mm_alloc:mmlist_modify_lock").await;
        let mm = k.new_mm(origin);
        t.spin_unlock(k.mm_lock, "mm_alloc:mmlist_modify_unlock");
        mm
    } else {
        k.new_mm(origin)
    }
}

/// `mmput` (kernel/fork.c): drop a user; the last one tears the address
/// space down with exit_mmap and drops the users' mm_count. Later kernels
/// also take the mm off their mmlist: 2.4.10 before exit_mmap
/// ([`mmput_2_4_10`]); 5.1's `__mmput` after it, while try_to_unuse skips
/// the listed mm through `mmget_not_zero`.
pub async fn mmput(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    if k.fixes.era == Era::Linux2_4_10 {
        return mmput_2_4_10(k, t, mm).await;
    }
    k.check_mm(t, mm, "mmput")?;
    let users = {
        let mut w = k.w();
        w.mms[mm].mm_users -= 1;
        w.mms[mm].mm_users
    };
    if users == 0 {
        crate::exit::exit_mmap(k, t, mm).await?;
        if k.fixes.era == Era::Linux5_1 && k.w().mmlist.contains(&mm) {
            t.spin_lock(k.mmlist_lock, "__mmput:mmlist_lock").await;
            k.w().mmlist.retain(|&x| x != mm);
            t.spin_unlock(k.mmlist_lock, "__mmput:mmlist_unlock");
        }
        mmdrop(k, t, mm).await?;
    }
    Ok(())
}

/// 2.4.10's `mmput` (kernel/fork.c): `atomic_dec_and_lock(&mm->mm_users,
/// &mmlist_lock)` takes mmlist_lock only for the last user, and unlinks the
/// mm under it *before* exit_mmap — which is what makes taking a user
/// under mmlist_lock (try_to_unuse's `atomic_inc`) safe.
async fn mmput_2_4_10(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    k.check_mm(t, mm, "mmput")?;
    {
        let mut w = k.w();
        if w.mms[mm].mm_users > 1 {
            w.mms[mm].mm_users -= 1;
            return Ok(());
        }
    }
    t.spin_lock(k.mmlist_lock, "mmput:atomic_dec_and_lock").await;
    k.check_mm(t, mm, "mmput")?;
    let last = {
        let mut w = k.w();
        w.mms[mm].mm_users -= 1;
        let last = w.mms[mm].mm_users == 0;
        if last {
            w.mmlist.retain(|&x| x != mm); // list_del(&mm->mmlist)
        }
        last
    };
    t.spin_unlock(k.mmlist_lock, "mmput:mmlist_unlock");
    if last {
        crate::exit::exit_mmap(k, t, mm).await?;
        mmdrop(k, t, mm).await?;
    }
    Ok(())
}

/// `mmget_not_zero` (5.1, include/linux/sched/mm.h): take a user unless
/// the mm has none left (it is being torn down). Caller holds mmlist_lock.
pub fn mmget_not_zero(k: &Kernel, t: &Task, mm: MmId) -> KResult<bool> {
    k.check_mm(t, mm, "mmget_not_zero")?;
    let mut w = k.w();
    let m = &mut w.mms[mm];
    if m.mm_users == 0 {
        return Ok(false);
    }
    m.mm_users += 1;
    Ok(true)
}

/// `atomic_inc(&mm->mm_users)` under mmlist_lock (2.4.10's try_to_unuse):
/// safe because a listed mm has a user (mmput unlinks it at 1→0).
pub fn mmget(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    k.check_mm(t, mm, "atomic_inc(mm_users)")?;
    let mut w = k.w();
    if w.mms[mm].mm_users == 0 {
        drop(w);
        let what = k.describe_mm(mm);
        return Err(k.oops(t, "mm-existence", format!("took a user on {what}, which has none left")));
    }
    w.mms[mm].mm_users += 1;
    Ok(())
}

/// `mmdrop` (include/linux/sched.h): drop an mm_count reference; the last
/// one calls `__mmdrop`.
pub async fn mmdrop(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    k.check_mm(t, mm, "mmdrop")?;
    let count = {
        let mut w = k.w();
        w.mms[mm].mm_count -= 1;
        w.mms[mm].mm_count
    };
    if count < 0 {
        let what = k.describe_mm(mm);
        return Err(k.oops(t, "mm-existence", format!("mmdrop: mm_count of {what} went below zero")));
    }
    if count == 0 {
        mmdrop_free(k, t, mm).await?;
    }
    Ok(())
}

/// `__mmdrop` (kernel/fork.c): free the pgd and the mm_struct. The patch
/// does this under mm_lock and unlinks the mm from the mm list there.
async fn mmdrop_free(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    if k.fixes.mmlist {
        t.spin_lock(k.mm_lock, "__mmdrop:mmlist_modify_lock").await;
    }
    k.check_mm(t, mm, "__mmdrop")?;
    let (mmap_sem, page_table_lock) = {
        let mut w = k.w();
        let m = w.mms.remove(mm).expect("checked above");
        if let Some(pgd) = m.pgd {
            w.page_tables.remove(pgd);
        }
        w.mmlist.retain(|&x| x != mm);
        (m.mmap_sem, m.page_table_lock)
    };
    if k.fixes.mmlist {
        t.spin_unlock(k.mm_lock, "__mmdrop:mmlist_modify_unlock");
    }
    k.sim.destroy_lock(mmap_sem);
    k.sim.destroy_lock(page_table_lock);
    Ok(())
}

/// `hold_mm` (the patch, include/linux/mm.h): take an mm_count reference
/// unless the mm is marked MM_GONE. Relies on the BKL, as the patch says.
pub fn hold_mm(k: &Kernel, t: &Task, mm: MmId) -> KResult<bool> {
    k.check_mm(t, mm, "hold_mm")?;
    let mut w = k.w();
    let m = &mut w.mms[mm];
    if m.mm_gone {
        return Ok(false);
    }
    if m.mm_count == 0 {
        drop(w);
        let what = k.describe_mm(mm);
        return Err(k.oops(t, "mm-existence", format!("hold_mm took a reference on {what} whose mm_count was 0")));
    }
    m.mm_count += 1;
    Ok(true)
}

/// `release_mm` = `mmdrop` (the patch).
pub async fn release_mm(k: &Kernel, t: &Task, mm: MmId) -> KResult<()> {
    mmdrop(k, t, mm).await
}
