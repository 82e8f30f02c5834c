-- Race 5 of the seed, the one it hedges:
--
--   "do_wp_page/free_page_and_swap_cache races with swapdeletion doing page
--    deletion from swap cache. Hmm, not quite ... Andrea, this is one reason
--    why we need the pagelocking in lookup_swap_cache even if you fix
--    shrink_mmap, ie the read_swap_cache in try_to_unuse() will wait for the
--    page to get unlocked."
--
-- The dangerous order, on two CPUs:
--   1. unmapper (B) munmaps its page Pg, which is in the swap cache:
--      free_page_and_swap_cache takes the page lock (TryLockPage) and finds
--      Pg not shared.
--   2. swapoff (S) looks 1:1 up. With the wait in lookup_swap_cache (the
--      real code) it sleeps until B is done, finds Pg gone and reads a fresh
--      page: safe. Without it (--no-fix lookup-wait, a what-if) S keeps Pg,
--      passes its unlocked PageSwapCache test, and deletes Pg after B did:
--      the double delete (invariant swap-cache).
--
-- Under pre4 this scenario also finds a use-after-free the seed does not
-- list: unuse_process walks the VMA chain with no lock while munmap,
-- which takes no big kernel lock, frees a VMA under it.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.2 }

local unmapper = process("unmapper", function() munmap(0x10000, 1) end)
unmapper:map(0x10000, 1)
unmapper:write(0x10000)
unmapper:swap_out(0x10000)
unmapper:read(0x10000)         -- back in memory, still in the swap cache

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
