//! The 5.x swap device and its end (issue 18): what swapoff frees after
//! try_to_unuse, who still reads it, and `get_swap_device`/`put_swap_device`,
//! the fix that makes the readers hold the device.
//!
//! Read in torvalds/linux mm/swapfile.c at 000085b9 (6.2-era, percpu_ref):
//! `sys_swapoff`'s end (percpu_ref_kill, synchronize_rcu, wait_for_completion;
//! then under swap_lock and `p->lock`: `p->swap_file = NULL; p->max = 0;
//! p->swap_map = NULL`; then `vfree(swap_map)`, `exit_swap_address_space`,
//! `filp_close`, and `p->flags = 0` last), `get_swap_device`, and
//! `free_swap_and_cache` as it was before 82b1c07a0af6. 5.2 is the same end
//! without the wait for users; 5.3's (eb085574a752) clears SWP_VALID and
//! waits with synchronize_rcu, 5.14's (63d8620ecf93) kills `si->users`: both
//! are modelled as a count of holders that swapoff waits to drain.
//!
//! The model keeps the device state swapoff frees in [`DeviceState`], with
//! where and by whom each piece was freed: a read of a freed piece is a
//! `use-after-free` naming the point that read it and the point that freed
//! it. The readers take no `swap_device_lock` that would order them after
//! the free (or take it only after the test that let them in), as in 5.x.

use engine::{LockId, Point, Task};

use crate::types::*;
use crate::{KResult, Kernel};

/// Where a piece of device state was freed, and by whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreedAt {
    pub point: Point,
    pub by: String,
}

/// A 5.x device's state besides `swap_map` (`SwapInfo::swap_map`).
#[derive(Clone, Debug, Default)]
pub struct DeviceState {
    /// `si->swap_file` (and the bdev and swap extents behind it): set by
    /// swapon, cleared by swapoff's end.
    pub swap_file: bool,
    /// `swapper_spaces[type]`, the per-device swap-cache tree
    /// (`init_swap_address_space` at swapon, `exit_swap_address_space`).
    pub address_space: bool,
    pub swap_map_freed: Option<FreedAt>,
    pub swap_file_freed: Option<FreedAt>,
    pub address_space_freed: Option<FreedAt>,
    /// SWP_VALID (5.3) / `si->users` alive (5.14): get_swap_device may succeed.
    pub valid: bool,
    /// Holders of the device through get_swap_device.
    pub users: u32,
    /// `si->comp`: where swapoff waits for the holders (5.3+ variants only).
    pub comp: Option<LockId>,
}

/// Which piece of device state a reader reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    SwapMap,
    SwapFile,
    AddressSpace,
}

impl Piece {
    fn name(self) -> &'static str {
        match self {
            Piece::SwapMap => "swap_map",
            Piece::SwapFile => "swap_file",
            Piece::AddressSpace => "swap cache (swapper_spaces)",
        }
    }
}

/// A read of `piece` of device `type_` at `point`: a `use-after-free`
/// (the task stops) if swapoff freed it and no swapon has set it up since.
pub fn read(k: &Kernel, t: &Task, type_: usize, piece: Piece, point: Point) -> KResult<()> {
    if !k.fixes.later.teardown {
        return Ok(());
    }
    let freed = {
        let w = k.w();
        let p = &w.swap_info[type_];
        match piece {
            Piece::SwapMap if p.swap_map.is_none() => p.device.swap_map_freed.clone(),
            Piece::SwapFile if !p.device.swap_file => p.device.swap_file_freed.clone(),
            Piece::AddressSpace if !p.device.address_space => p.device.address_space_freed.clone(),
            _ => None,
        }
    };
    let Some(freed) = freed else { return Ok(()) };
    Err(k.oops(
        t,
        "use-after-free",
        format!(
            "{point} read the {} of swap device {}, which {} freed at {}",
            piece.name(),
            type_ + 1,
            freed.by,
            freed.point
        ),
    ))
}

/// `get_swap_device(entry)`: the device if it is still valid (SWP_VALID in
/// 5.3, `percpu_ref_tryget_live(&si->users)` in 5.14) and the offset below
/// `max`, now held until `put_swap_device`; else None.
pub fn get_swap_device(k: &Kernel, entry: SwpEntry) -> Option<usize> {
    let mut w = k.w();
    let p = w.swap_info.get_mut(entry.type_)?;
    if !p.device.valid || entry.offset >= p.max {
        return None;
    }
    p.device.users += 1;
    Some(entry.type_)
}

/// `put_swap_device(si)`: the last holder of a device swapoff is waiting
/// for wakes it (rcu_read_unlock / percpu_ref_put → complete(&si->comp)).
pub fn put_swap_device(k: &Kernel, t: &Task, type_: usize) {
    let wake = {
        let mut w = k.w();
        let d = &mut w.swap_info[type_].device;
        d.users -= 1;
        (d.users == 0 && !d.valid).then_some(d.comp).flatten()
    };
    if let Some(comp) = wake {
        t.wake_up(comp, "put_swap_device:complete");
    }
}

/// Run `body` holding the device of `entry` when `hold` is on (the fixes:
/// a caller that cannot get the device gets `gone`); without `hold`,
/// `body` runs unprotected, as before the fix.
pub async fn holding<T>(
    k: &Kernel,
    t: &Task,
    entry: SwpEntry,
    hold: bool,
    gone: T,
    body: impl std::future::Future<Output = KResult<T>>,
) -> KResult<T> {
    if !hold {
        return body.await;
    }
    let Some(type_) = get_swap_device(k, entry) else { return Ok(gone) };
    let result = body.await;
    put_swap_device(k, t, type_);
    result
}

/// sys_swapon's part (5.x): `init_swap_address_space`, `p->swap_file`,
/// and the device made valid (`percpu_ref_resurrect`, SWP_VALID).
pub fn swapon_setup(p: &mut SwapInfo) {
    p.device.swap_file = true;
    p.device.address_space = true;
    p.device.valid = true;
    p.device.swap_map_freed = None;
    p.device.swap_file_freed = None;
    p.device.address_space_freed = None;
}

/// The end of 5.x's `sys_swapoff` after try_to_unuse succeeded (device
/// `type_` is off the swap list, SWP_WRITEOK clear, no slot in use).
pub async fn swapoff_teardown(k: &Kernel, t: &Task, type_: usize) -> KResult<()> {
    let sdev_lock = k.w().swap_info[type_].sdev_lock;
    if k.fixes.later.get_swap_device {
        wait_for_users(k, t, type_, sdev_lock).await;
    }
    t.may_sleep("sys_swapoff:destroy_swap_extents", k.costs.alloc_sleep).await;
    t.spin_lock(k.swaplock, "sys_swapoff:swap_list_lock_free").await;
    t.spin_lock(sdev_lock, "sys_swapoff:swap_device_lock_free").await;
    crate::unuse_5_1::drain_mmlist(k, t).await;
    let by = who(k, t);
    {
        // p->swap_file = NULL; p->max = 0; p->swap_map = NULL, and the map
        // vfree'd after the unlock with nothing between that the model
        // interleaves: a reader that took the pointer before reads freed
        // memory, one that reads it after dereferences NULL. Both are one
        // violation here, at the point where swapoff let go of them.
        let freed = FreedAt { point: "sys_swapoff:swap_device_lock_free", by: by.clone() };
        let mut w = k.w();
        let p = &mut w.swap_info[type_];
        p.device.swap_file = false;
        p.device.swap_file_freed = Some(freed.clone());
        p.max = 0;
        p.swap_map = None;
        p.device.swap_map_freed = Some(freed);
    }
    t.spin_unlock(sdev_lock, "sys_swapoff:swap_device_unlock_free");
    t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock_free");
    t.point("sys_swapoff:exit_swap_address_space").await;
    {
        let mut w = k.w();
        let d = &mut w.swap_info[type_].device;
        d.address_space = false;
        d.address_space_freed = Some(FreedAt { point: "sys_swapoff:exit_swap_address_space", by });
    }
    t.may_sleep("sys_swapoff:filp_close", k.costs.alloc_sleep).await;
    // "Clear the SWP_USED flag after all resources are freed".
    t.spin_lock(k.swaplock, "sys_swapoff:swap_list_lock_flags").await;
    {
        let mut w = k.w();
        w.swap_info[type_].flags = 0;
        w.stats.swapoffs += 1;
    }
    t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock_flags");
    Ok(())
}

/// 5.3: clear SWP_VALID under both swap locks, then `synchronize_rcu()`;
/// 5.14: `percpu_ref_kill(&p->users)`, `synchronize_rcu()`,
/// `wait_for_completion(&p->comp)`. Either way: no new holder, and swapoff
/// sleeps until the holders are gone.
async fn wait_for_users(k: &Kernel, t: &Task, type_: usize, sdev_lock: LockId) {
    let percpu = k.fixes.later.swapin_ref;
    if percpu {
        t.point("sys_swapoff:percpu_ref_kill").await;
        k.w().swap_info[type_].device.valid = false;
    } else {
        t.spin_lock(k.swaplock, "sys_swapoff:swap_list_lock_valid").await;
        t.spin_lock(sdev_lock, "sys_swapoff:swap_device_lock_valid").await;
        k.w().swap_info[type_].device.valid = false;
        t.spin_unlock(sdev_lock, "sys_swapoff:swap_device_unlock_valid");
        t.spin_unlock(k.swaplock, "sys_swapoff:swap_list_unlock_valid");
    }
    let comp = k.w().swap_info[type_].device.comp.expect("a 5.3+ device has its completion");
    let point = if percpu { "sys_swapoff:wait_for_completion" } else { "sys_swapoff:synchronize_rcu" };
    t.wait_event(comp, point, || k.w().swap_info[type_].device.users == 0).await;
}

/// The task, as a freed-by note: "swapoff (pid 3)".
fn who(k: &Kernel, t: &Task) -> String {
    let pid = k.current(t);
    let name = k.w().procs.get(&pid).map(|p| p.name.clone()).unwrap_or_default();
    format!("{name} (pid {pid})")
}
