-- Race 6 of the seed, from shm:
--
--   "Readahead swapin races with swap space deletion from two different
--    sources: shm and anonymous pages."
--
-- race6_readahead.lua tries the anonymous source; this is shm's: an shm
-- entry whose readahead cluster holds other live slots.
--   1. shmuser (H) faults on its segment page, swapped to 1:5:
--      shm_nopage drops the shm lock and calls swapin_readahead(1:5);
--      valid_swaphandles takes a temporary reference on every slot of the
--      cluster 4..7 — also the owner's 1:4 and 1:6 — and
--      read_swap_cache_async sleeps allocating.
--   2. swapoff processes 1:4 and 1:6 completely: the counts left by H's
--      references are forced to 0 ("VM: Undead swap entry").
--   3. H wakes, adds pages for dead slots to the swap cache and frees its
--      temporary references: "VM: Bad swap entry" (invariant swap-count).
-- The patch's no-readahead (valid_swaphandles reads nothing ahead on a
-- device being deleted) is the fix for this source: swapoff takes no
-- mmap_sem that shm_nopage would hold for the segment. The same fault
-- also meets race 7 (shm_nopage against shm_unuse on 1:5 itself), which
-- the seed leaves open.

machine { cpus = 1, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local filler = process("filler")
filler:map(0x10000, 3)
for i = 0, 2 do
  filler:write(0x10000 + i * 4096)
  filler:swap_out(0x10000 + i * 4096)   -- slots 1..3
end
local owner = process("owner")
owner:map(0x10000, 2)
owner:write(0x10000)
owner:swap_out(0x10000)                 -- slot 4
local seg = shmget(1)
local shmuser = process("shmuser", function() read(0x40000000) end)
shmuser:shmat(seg, 0x40000000)
shmuser:write(0x40000000)
shmuser:swap_out(0x40000000)            -- slot 5
owner:write(0x11000)
owner:swap_out(0x11000)                 -- slot 6

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
