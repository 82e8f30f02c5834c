//! Kernel variants and the seed patch's fixes, each on its own switch.

use std::fmt;

/// The pieces of the seed's patch ("swapdeletion race fixes", 2000-04-21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixes {
    /// The mm list: `mm_alloc` adds each new mm at the tail of
    /// `init_mm.mmlist`, `__mmdrop` unlinks it, and `try_to_unuse` crabs the
    /// list with `hold_mm`/`release_mm` instead of walking the task list.
    pub mmlist: bool,
    /// `unuse_mm` takes each mm's `mmap_sem`, and `exit_mmap` holds it
    /// around the teardown and marks the mm `MM_GONE`.
    pub mmap_sem: bool,
    /// `try_to_unuse` takes the page lock before testing PageSwapCache.
    pub page_lock: bool,
    /// `sys_swapoff` clears SWP_WRITEOK under `swap_device_lock`.
    pub writeok_under_lock: bool,
}

impl Fixes {
    pub const NONE: Fixes = Fixes { mmlist: false, mmap_sem: false, page_lock: false, writeok_under_lock: false };
    pub const ALL: Fixes = Fixes { mmlist: true, mmap_sem: true, page_lock: true, writeok_under_lock: true };
}

/// A kernel to run the scenario on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 2.3.99-pre4/5 as released: swapoff walks the task list under
    /// tasklist_lock with the BKL held and takes no mmap_sem.
    Pre4,
    /// pre4-5 with the seed's patch applied whole.
    Patched,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Pre4, Variant::Patched];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Pre4 => "pre4",
            Variant::Patched => "patched",
        }
    }

    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Variant::Pre4 => "2.3.99-pre4/5: for_each_task under tasklist_lock, BKL held, no mmap_sem",
            Variant::Patched => "pre4-5 + the seed patch: mm list crabbed with hold_mm/release_mm, mmap_sem per mm",
        }
    }

    pub fn fixes(self) -> Fixes {
        match self {
            Variant::Pre4 => Fixes::NONE,
            Variant::Patched => Fixes::ALL,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
