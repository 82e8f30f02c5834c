-- Claim of the seed (its Documentation/vm/locking hunk):
--
--   "shrink_mmap is guaranteed not to race with swapoff, because it works
--    only on pages that it can guarantee swapoff has not acquired a
--    reference to, and holding the page_lock guarantees that swapoff can
--    not get a reference unless shrink_mmap is done."
--
-- What it tries: reclaim (kswapd's shrink_mmap) against swapoff over
-- swap-cache pages that only the cache holds.
--   1. reader (R) faults on 1:5: swapin_readahead reads the cluster 4..7,
--      so the owner's 1:4 and 1:6 land in the swap cache with only the
--      cache's reference (count 1): shrink_mmap's candidates.
--   2. hog (H) faults in 40 pages: memory falls to pages_low and kswapd
--      runs do_try_to_free_pages, whose shrink_mmap takes those pages out
--      of the swap cache (TryLockPage, page count 1) with no BKL.
--   3. swapoff (S), at the same time, looks the same entries up in
--      try_to_unuse (lookup_swap_cache → find_lock_page: a reference, then
--      the page lock) and deletes them from the swap cache itself.
-- Expected: no invariant of shrink_mmap's pages breaks (no double delete,
-- no page freed under swapoff), under pre4 and the patch alike; other
-- races of the seed (3, 6) may still show under pre4.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.2, kswapd = true }

local filler = process("filler")
filler:map(0x10000, 3)
for i = 0, 2 do
  filler:write(0x10000 + i * 4096)
  filler:swap_out(0x10000 + i * 4096)   -- slots 1..3
end
local owner = process("owner")
owner:map(0x10000, 3)
owner:write(0x10000)
owner:swap_out(0x10000)                 -- slot 4
local reader = process("reader", function() read(0x10000) end)
reader:map(0x10000, 1)
reader:write(0x10000)
reader:swap_out(0x10000)                -- slot 5
owner:write(0x11000)
owner:swap_out(0x11000)                 -- slot 6

local hog = process("hog", function()
  for i = 0, 39 do read(0x100000 + i * 4096) end   -- down to pages_low: wakes kswapd
end)
hog:map(0x100000, 40)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
