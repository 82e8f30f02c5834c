-- eb085574a752 (Huang Ying, "mm, swap: fix race between swapoff and some
-- swap operations", v5.3; --kernel 5.2 finds it, --kernel 5.3 holds):
--
--   "When swapin is performed, after getting the swap entry information
--    from the page table, system will swap in the swap entry, without any
--    lock held to prevent the swap device from being swapoff."
--   do_swap_page -> swapin_readahead -> __read_swap_cache_async ->
--   swapcache_prepare -> __swap_duplicate reads p->swap_map after swapoff
--   set it to NULL; the swap cache (swapper_spaces) is freed as well.
--
-- The interleaving, on two CPUs:
--   1. The owner's page at 0x10000 is out on swap (1:1); it reads it:
--      do_page_fault takes mmap_sem for read and do_swap_page reads the pte.
--   2. swapoff's unuse_mm takes the same mmap_sem for read too (5.x), swaps
--      the entry in, frees it, finds no slot in use and tears the device
--      down: swap_file, swap_map and the device's swap cache are freed.
--   3. The fault goes on with the entry it read: looking it up in the
--      device's swap cache (or duplicating it) reads what swapoff freed.
-- 5.3 (the fix): the lookup and __swap_duplicate hold the device with
-- get_swap_device; swapoff clears SWP_VALID and waits (synchronize_rcu),
-- so the fault finds no device, sees its pte changed and returns.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local owner = process("owner", function()
  read(0x10000)
end)
owner:map(0x10000, 1)
owner:write(0x10000)
owner:swap_out(0x10000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
