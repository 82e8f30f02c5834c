//! Kernel variants and the seed patch's fixes, each on its own switch.

use std::fmt;

/// The elements of the seed's patch ("swapdeletion race fixes",
/// 2000-04-21), plus one what-if switch on the pre4-5 base code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixes {
    /// The mm list: `mm_alloc` adds each new mm at the tail of
    /// `init_mm.mmlist` and `__mmdrop` unlinks it under `mm_lock`;
    /// `try_to_unuse` crabs the list with `hold_mm`/`release_mm` instead of
    /// walking the task list; `exit_mmap` marks a dead mm `MM_GONE`.
    pub mmlist: bool,
    /// `unuse_mm` takes each mm's `mmap_sem`, and `exit_mmap` holds it
    /// around the teardown. Swapoff can only sleep on a semaphore outside
    /// tasklist_lock, so without `mmlist` this changes exit_mmap only.
    pub mmap_sem: bool,
    /// `try_to_unuse` takes the page lock before testing PageSwapCache and
    /// deletes with `delete_from_swap_cache_nolock`.
    pub page_lock: bool,
    /// `sys_swapoff` clears SWP_WRITEOK under `swap_device_lock`, and
    /// `valid_swaphandles` does no readahead (takes no temporary
    /// references) on a device that is not SWP_WRITEOK.
    pub no_readahead: bool,
    /// `acquire_swap_entry` refuses a new reference on a swap-cache page's
    /// handle whose device is not SWP_WRITEOK, so `try_to_swap_out` leaves
    /// the pte present.
    pub no_new_refs: bool,
    /// Not part of the patch: the pre4-5 `lookup_swap_cache` (through
    /// `find_lock_page`) waits for a locked page and rechecks it. Switching
    /// it off is the what-if the seed's race 5 turns on.
    pub lookup_wait: bool,
    /// Which kernel's swapoff design runs: the 2.3.99 code (where the
    /// switches above apply) or a later kernel's whole design.
    pub era: Era,
    /// The 5.x pieces and fixes on top of [`Era::Linux5_1`] (issue 18).
    pub later: Later,
}

/// What a 5.x kernel adds to the 5.1 design, and the fixes of the races
/// that came with it, each one commit (docs/model.md § The later races).
/// Off in every variant but the ones named for a 5.x kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Later {
    /// 5.1-rc1..rc4's `SWAP_UNUSE_MAX_TRIES` (3): try_to_unuse gives up with
    /// -EBUSY after its third pass; removed by Hugh Dickins, dd862deb151a
    /// "mm: swapoff: remove too limiting SWAP_UNUSE_MAX_TRIES" (linux-mm
    /// 2019-04-08).
    pub unuse_max_tries: bool,
    /// The 5.x device (4.11 on): at swapoff's end `swap_file` is cleared,
    /// `swap_map` vfree'd and the per-device swap cache freed
    /// (exit_swap_address_space), while `__swap_duplicate`, the swap-cache
    /// lookups and readahead read them without `swap_device_lock` on the
    /// device; `mmap_sem` is a reader/writer semaphore (faults and unuse_mm
    /// read); zap ends in `free_swap_and_cache`.
    pub teardown: bool,
    /// eb085574a752 (v5.3): `get_swap_device`/`put_swap_device` around
    /// `__swap_duplicate` and the swap-cache lookups; swapoff clears
    /// SWP_VALID and waits for them (synchronize_rcu) before the teardown.
    pub get_swap_device: bool,
    /// 2799e77529c2 + 63d8620ecf93 and 2efa33fc7f6e (v5.14): do_swap_page and
    /// shmem_swapin_page hold the device (percpu_ref) across the swap-in.
    pub swapin_ref: bool,
    /// 82b1c07a0af6 (v6.9, CVE-2024-26960): free_swap_and_cache holds the
    /// device across its tail.
    pub zap_ref: bool,
}

impl Later {
    pub const NONE: Later =
        Later { unuse_max_tries: false, teardown: false, get_swap_device: false, swapin_ref: false, zap_ref: false };
}

/// The swapoff design a kernel variant runs. The later ones are whole
/// designs transplanted into the 2.3.99 world with the pieces of their
/// kernel they rely on (docs/model.md § later kernels); the seed patch's
/// switches do not apply to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// 2.3.99-pre4-5, with or without the seed's patch.
    Seed,
    /// 2.4.10 (read from 2.4.17): try_to_unuse walks the 2.4 mmlist from a
    /// held `start_mm` under mmlist_lock, rescans until no slot is in use,
    /// forces nothing to zero; fork lists the child before copying;
    /// do_swap_page rechecks the pte; readahead takes no temporary
    /// references; swapoff drops the BKL around try_to_unuse.
    Linux2_4_10,
    /// 5.1 ("mm: rid swapoff of quadratic complexity"): one pass over
    /// each listed mm's page tables under its mmap_sem, swapping in every
    /// entry of the device; then free leftover swap-cache pages; retry while
    /// slots are in use.
    Linux5_1,
}

impl Era {
    /// A later kernel's design (not the 2.3.99 code).
    pub fn is_later(self) -> bool {
        self != Era::Seed
    }
}

/// One switch, for `swapsim kernels` and `--fix`/`--no-fix`.
pub struct FixInfo {
    pub name: &'static str,
    /// What it changes.
    pub change: &'static str,
    /// Which races of the seed it closes (alone or with the others named).
    pub closes: &'static str,
    /// Whether the seed's patch has it (the what-if switch is base code).
    pub in_patch: bool,
    get: fn(&Fixes) -> bool,
    set: fn(&mut Fixes, bool),
}

impl FixInfo {
    pub fn is_on(&self, fixes: &Fixes) -> bool {
        (self.get)(fixes)
    }
}

/// Every switch, in the order of the seed's patch.
pub const FIXES: [FixInfo; 6] = [
    FixInfo {
        name: "mmlist",
        change: "mm list crabbed by try_to_unuse with hold_mm/release_mm; MM_GONE",
        closes: "1 (fork) and 2 (exit), with mmap-sem",
        in_patch: true,
        get: |f| f.mmlist,
        set: |f, on| f.mmlist = on,
    },
    FixInfo {
        name: "mmap-sem",
        change: "swapoff takes each mm's mmap_sem (unuse_mm); exit_mmap holds it",
        closes: "1, 2 (with mmlist), 3 (do_swap_page), 6 for anonymous readahead",
        in_patch: true,
        get: |f| f.mmap_sem,
        set: |f, on| f.mmap_sem = on,
    },
    FixInfo {
        name: "page-lock",
        change: "try_to_unuse locks the page before testing PageSwapCache",
        closes: "4 (shm), 5 (do_wp_page/free_page_and_swap_cache)",
        in_patch: true,
        get: |f| f.page_lock,
        set: |f, on| f.page_lock = on,
    },
    FixInfo {
        name: "no-readahead",
        change: "no readahead on a device being deleted; WRITEOK cleared under swap_device_lock",
        closes: "6 (readahead, from shm)",
        in_patch: true,
        get: |f| f.no_readahead,
        set: |f, on| f.no_readahead = on,
    },
    FixInfo {
        name: "no-new-refs",
        change: "acquire_swap_entry: kswapd takes no new reference on a device being deleted",
        closes: "6 (kswapd re-creating a reference)",
        in_patch: true,
        get: |f| f.no_new_refs,
        set: |f, on| f.no_new_refs = on,
    },
    FixInfo {
        name: "lookup-wait",
        change: "what-if (base code, on in every variant): lookup_swap_cache waits for a locked page",
        closes: "5, by the seed's own account (\"the read_swap_cache in try_to_unuse() will wait\")",
        in_patch: false,
        get: |f| f.lookup_wait,
        set: |f, on| f.lookup_wait = on,
    },
];

impl Fixes {
    pub const NONE: Fixes = Fixes {
        mmlist: false,
        mmap_sem: false,
        page_lock: false,
        no_readahead: false,
        no_new_refs: false,
        lookup_wait: true,
        era: Era::Seed,
        later: Later::NONE,
    };
    pub const ALL: Fixes = Fixes {
        mmlist: true,
        mmap_sem: true,
        page_lock: true,
        no_readahead: true,
        no_new_refs: true,
        lookup_wait: true,
        era: Era::Seed,
        later: Later::NONE,
    };

    /// Switch one fix by name; the error lists the names there are.
    pub fn set(&mut self, name: &str, on: bool) -> Result<(), String> {
        if self.era.is_later() {
            return Err(format!(
                "--fix/--no-fix {name}: the seed patch's switches apply to the 2.3.99 variants (pre4, patched); \
                 the later kernels are whole designs"
            ));
        }
        match FIXES.iter().find(|f| f.name == name) {
            Some(info) => {
                (info.set)(self, on);
                Ok(())
            }
            None => {
                let names: Vec<_> = FIXES.iter().map(|f| f.name).collect();
                Err(format!("unknown fix {name:?}; the fixes are {} (see `swapsim kernels`)", names.join(", ")))
            }
        }
    }

    /// The switches that differ from `base`, as `+name`/`-name`.
    pub fn diff(&self, base: &Fixes) -> Vec<String> {
        FIXES
            .iter()
            .filter(|f| f.is_on(self) != f.is_on(base))
            .map(|f| format!("{}{}", if f.is_on(self) { "+" } else { "-" }, f.name))
            .collect()
    }
}

/// A kernel to run the scenario on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 2.3.99-pre4/5 as released: swapoff walks the task list under
    /// tasklist_lock with the BKL held and takes no mmap_sem.
    Pre4,
    /// pre4-5 with the seed's patch applied whole.
    Patched,
    /// The 2.4.10 swapoff design ([`Era::Linux2_4_10`]).
    Linux2_4_10,
    /// The 5.1 swapoff design ([`Era::Linux5_1`]).
    Linux5_1,
    /// 5.1-rc1..rc4: 5.1 with `SWAP_UNUSE_MAX_TRIES` ([`Later::unuse_max_tries`]).
    Linux5_1Rc,
    /// 5.2: the 5.x device teardown with no get_swap_device ([`Later::teardown`]).
    Linux5_2,
    /// 5.3..5.13: 5.2 + eb085574a752 ([`Later::get_swap_device`]).
    Linux5_3,
    /// 5.14..6.8: 5.3 + 2799e77529c2/63d8620ecf93/2efa33fc7f6e ([`Later::swapin_ref`]).
    Linux5_14,
    /// 6.9: 5.14 + 82b1c07a0af6 ([`Later::zap_ref`]).
    Linux6_9,
}

impl Variant {
    pub const ALL: [Variant; 9] = [
        Variant::Pre4,
        Variant::Patched,
        Variant::Linux2_4_10,
        Variant::Linux5_1,
        Variant::Linux5_1Rc,
        Variant::Linux5_2,
        Variant::Linux5_3,
        Variant::Linux5_14,
        Variant::Linux6_9,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Pre4 => "pre4",
            Variant::Patched => "patched",
            Variant::Linux2_4_10 => "2.4.10",
            Variant::Linux5_1 => "5.1",
            Variant::Linux5_1Rc => "5.1-rc1",
            Variant::Linux5_2 => "5.2",
            Variant::Linux5_3 => "5.3",
            Variant::Linux5_14 => "5.14",
            Variant::Linux6_9 => "6.9",
        }
    }

    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Variant::Pre4 => "2.3.99-pre4/5: for_each_task under tasklist_lock, BKL held, no mmap_sem",
            Variant::Patched => "pre4-5 + the seed patch: mm list crabbed with hold_mm/release_mm, mmap_sem per mm",
            Variant::Linux2_4_10 => {
                "2.4.10's swapoff: mmlist walk from a held start_mm under mmlist_lock, rescans, no forced zeroing"
            }
            Variant::Linux5_1 => {
                "5.1's swapoff: one pass over each mm's page tables (mmap_sem), then the swap cache; retry while in use"
            }
            Variant::Linux5_1Rc => {
                "5.1-rc1..rc4: 5.1 giving up with -EBUSY after 3 passes (SWAP_UNUSE_MAX_TRIES; fixed in 5.1 by \
                 dd862deb151a \"mm: swapoff: remove too limiting SWAP_UNUSE_MAX_TRIES\")"
            }
            Variant::Linux5_2 => {
                "5.2: 5.1 + the 5.x device teardown (swap_map, swap cache, swap_file freed; lockless readers; \
                 rw mmap_sem; free_swap_and_cache in zap), before eb085574a752"
            }
            Variant::Linux5_3 => {
                "5.3..5.13: 5.2 + eb085574a752 (get_swap_device in __swap_duplicate and the swap-cache lookups)"
            }
            Variant::Linux5_14 => {
                "5.14..6.8: 5.3 + 2799e77529c2, 63d8620ecf93, 2efa33fc7f6e (do_swap_page, shmem_swapin hold the device)"
            }
            Variant::Linux6_9 => "6.9: 5.14 + 82b1c07a0af6 (CVE-2024-26960: free_swap_and_cache holds the device)",
        }
    }

    pub fn fixes(self) -> Fixes {
        let five_one = Fixes { era: Era::Linux5_1, ..Fixes::NONE };
        match self {
            Variant::Pre4 => Fixes::NONE,
            Variant::Patched => Fixes::ALL,
            Variant::Linux2_4_10 => Fixes { era: Era::Linux2_4_10, ..Fixes::NONE },
            Variant::Linux5_1 => Fixes { era: Era::Linux5_1, ..Fixes::NONE },
            Variant::Linux5_1Rc => Fixes { later: Later { unuse_max_tries: true, ..Later::NONE }, ..five_one },
            Variant::Linux5_2 => Fixes { later: Later { teardown: true, ..Later::NONE }, ..five_one },
            Variant::Linux5_3 => {
                Fixes { later: Later { teardown: true, get_swap_device: true, ..Later::NONE }, ..five_one }
            }
            Variant::Linux5_14 => Fixes {
                later: Later { teardown: true, get_swap_device: true, swapin_ref: true, ..Later::NONE },
                ..five_one
            },
            Variant::Linux6_9 => Fixes {
                later: Later { teardown: true, get_swap_device: true, swapin_ref: true, zap_ref: true, ..Later::NONE },
                ..five_one
            },
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fix_switches_alone_by_name() {
        for info in &FIXES {
            let mut fixes = Fixes::ALL;
            fixes.set(info.name, false).unwrap();
            assert_eq!(fixes.diff(&Fixes::ALL), vec![format!("-{}", info.name)]);
            assert!(!info.is_on(&fixes));
        }
        let err = Fixes::ALL.clone().set("mmap_sem", false).unwrap_err();
        assert!(err.contains("mmap-sem, page-lock"), "{err}");
    }

    #[test]
    fn the_patch_is_every_patch_fix_and_pre4_none() {
        for info in &FIXES {
            assert!(info.is_on(&Variant::Patched.fixes()));
            assert_eq!(info.is_on(&Variant::Pre4.fixes()), !info.in_patch);
        }
    }

    #[test]
    fn later_variants_refuse_the_seed_switches_and_round_trip_by_name() {
        for variant in Variant::ALL {
            assert_eq!(Variant::from_name(variant.name()), Some(variant));
        }
        let err = Variant::Linux5_1.fixes().set("mmlist", true).unwrap_err();
        assert!(err.contains("2.3.99 variants"), "{err}");
        assert!(Variant::Linux2_4_10.fixes().era.is_later());
        assert!(!Variant::Patched.fixes().era.is_later());
    }
}
