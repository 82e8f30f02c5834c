-- Race 5 of the seed, its do_wp_page half:
--
--   "do_wp_page/free_page_and_swap_cache races with swapdeletion doing
--    page deletion from swap cache. Hmm, not quite ... Andrea, this is one
--    reason why we need the pagelocking in lookup_swap_cache even if you
--    fix shrink_mmap, ie the read_swap_cache in try_to_unuse() will wait
--    for the page to get unlocked."
--
-- race5_munmap.lua tries the free_page_and_swap_cache half; this is the
-- other: a write to a page that is still in the swap cache.
--   1. writer (W) writes its page Pg, mapped read-only and in the swap
--      cache (count 2): do_wp_page takes the page lock (TryLockPage), finds
--      it not shared and deletes it from the swap cache.
--   2. swapoff (S) looks 1:1 up. With the wait in lookup_swap_cache (the
--      real code) it sleeps until W is done, finds Pg gone and reads a
--      fresh page. Without it (--no-fix lookup-wait, a what-if) S keeps Pg,
--      passes its unlocked PageSwapCache test and deletes Pg after W did:
--      the double delete (invariant swap-cache).
-- Expected: clean under pre4 and the patch; the double delete only with
-- --no-fix lookup-wait and without the patch's page-lock.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.2 }

local writer = process("writer", function() write(0x10000) end)
writer:map(0x10000, 1)
writer:write(0x10000)
writer:swap_out(0x10000)
writer:read(0x10000)           -- back in memory, read-only, still in the swap cache

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
