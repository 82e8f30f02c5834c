-- Claim of the seed (its Documentation/vm/locking hunk):
--
--   "The only code that currently does not hold page_lock while checking
--    PageSwapCache is try_to_swap_out(): this code is not executed for shm
--    pages, lock_kernel ensures that swapoff does not take the page out of
--    the scache, vmlist_lock aka page_table_lock ensures that the victim
--    process is not doing free_page_and_swap_cache or do_wp_page and
--    taking the page out of the scache."
--
-- What it tries: the page stealer's try_to_swap_out on pages that are
-- mapped and still in the swap cache (count 2: the pte and the cache),
-- against the three that take such a page out of the swap cache:
--   - writer (W) writes its page: do_wp_page, TryLockPage, is_page_shared,
--     delete_from_swap_cache_nolock, under W's page_table_lock;
--   - unmapper (U) munmaps its page: zap_page_range →
--     free_page_and_swap_cache under U's page_table_lock;
--   - swapoff (S): try_to_unuse deletes the page from the swap cache under
--     the BKL.
-- Two stealers aim try_to_swap_out at W's and U's pages (swap_out(addr,
-- pid), which takes the BKL and the victim's page_table_lock as
-- swap_out/swap_out_mm do), each visit testing PageSwapCache unlocked.
-- Expected under the patch: clean (the page stealer's PageSwapCache test
-- is stable under the BKL and the victim's page_table_lock; no-new-refs
-- refuses the device being deleted). Under pre4 race 5 and race 6b (the
-- stealer re-creating a reference behind swapoff) may show.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.2 }

local writer = process("writer", function() write(0x10000) end)
writer:map(0x10000, 1)
writer:write(0x10000)
writer:swap_out(0x10000)
writer:read(0x10000)           -- back in memory, still in the swap cache

local unmapper = process("unmapper", function() munmap(0x10000, 1) end)
unmapper:map(0x10000, 1)
unmapper:write(0x10000)
unmapper:swap_out(0x10000)
unmapper:read(0x10000)         -- back in memory, still in the swap cache

process("stealer_w", function()
  for i = 1, 10 do swap_out(0x10000, writer.pid) end
end)
process("stealer_u", function()
  for i = 1, 10 do swap_out(0x10000, unmapper.pid) end
end)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
