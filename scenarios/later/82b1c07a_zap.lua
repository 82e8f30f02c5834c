-- 82b1c07a0af6 (Ryan Roberts, "mm: swap: fix race between
-- free_swap_and_cache() and swapoff()", v6.9, CVE-2024-26960;
-- --kernel 5.14 finds it, --kernel 6.9 holds):
--
--   "There was previously a theoretical window where swapoff() could run
--    and teardown a swap_info_struct while a call to free_swap_and_cache()
--    was running in another thread. This could cause, amongst other bad
--    possibilities, swap_page_trans_huge_swapped() (called by
--    free_swap_and_cache()) to access the freed memory for swap_map."
--
-- The interleaving, on two CPUs:
--   1. The exiter's page at 0x10000 is out on swap (1:1) and, read back
--      and swapped out again, still in the swap cache: the slot has the
--      pte's reference and the cache's.
--   2. It exits: mmput drops mm_users to 0 (swapoff's mmget_not_zero skips
--      the mm from now on), and exit_mmap's zap clears the pte and
--      free_swap_and_cache drops its reference: only the cache's is left
--      (SWAP_HAS_CACHE).
--   3. swapoff, with no pte left to visit, frees the cached page
--      (try_to_free_swap), sees no slot in use and tears the device down.
--   4. The zap goes on to swap_page_trans_huge_swapped, which reads
--      si->swap_map, or to __try_to_reclaim_swap, which looks in the
--      device's swap cache.
-- 6.9 (the fix): free_swap_and_cache holds the device (get_swap_device)
-- from before the drop to after the look; swapoff's teardown waits for it.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0 }

local exiter = process("exiter", function()
  swap_out(0x10000)            -- the page stealer's first visit ages the pte,
  swap_out(0x10000)            -- the second: the pte holds 1:1 again, the page stays cached
  exit()
end)
exiter:map(0x10000, 1)
exiter:write(0x10000)
exiter:swap_out(0x10000)
exiter:read(0x10000)           -- back in memory, still in the swap cache

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
