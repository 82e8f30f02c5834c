-- Race 6 of the seed, from anonymous pages:
--
--   "Readahead swapin races with swap space deletion from two different
--    sources: shm and anonymous pages."
--
-- The interleaving, on one CPU:
--   1. reader (R) faults on its entry 1:5; valid_swaphandles takes a
--      temporary reference on every slot of the aligned cluster 4..7 — also
--      1:4, the owner's — and read_swap_cache_async(1:4) sleeps allocating.
--   2. swapoff processes 1:4 completely: the count left by R's references
--      is forced to 0 ("VM: Undead swap entry").
--   3. R wakes, adds a page for the dead slot to the swap cache and frees
--      its temporary reference: "VM: Bad swap entry" (invariant swap-count).
-- (Readahead clusters are 4 slots on a machine under 16 MB; a cluster that
-- starts at the header slot 0 reads nothing ahead, so filler takes 1..3.)
--
-- With the patch, valid_swaphandles does no readahead on a device being
-- deleted — and swapoff's mmap_sem already waits for the fault.

machine { cpus = 1, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local filler = process("filler")
filler:map(0x10000, 3)
for i = 0, 2 do
  filler:write(0x10000 + i * 4096)
  filler:swap_out(0x10000 + i * 4096)   -- slots 1..3
end
local owner = process("owner")
owner:map(0x10000, 1)
owner:write(0x10000)
owner:swap_out(0x10000)                 -- slot 4
local reader = process("reader", function() read(0x10000) end)
reader:map(0x10000, 1)
reader:write(0x10000)
reader:swap_out(0x10000)                -- slot 5

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
