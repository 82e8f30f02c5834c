-- Race 3 of the seed:
--
--   "do_swap_page() might return failure even when swapoff has replaced a
--    swaphandle with a in-memory page."
--
-- The interleaving, on one CPU:
--   1. The faulting task's pte holds 1:1; lookup_swap_cache misses, so
--      do_swap_page takes the big kernel lock and reads ahead, where an
--      allocation sleeps.
--   2. swapoff processes 1:1 completely: the pte becomes the page, the
--      count reaches 0.
--   3. The fault resumes: read_swap_cache's swap_duplicate fails ("Unused
--      swap offset entry in swap_dup"), do_swap_page returns -1 and the
--      task is killed ("VM: killing process") although its pte is valid.
-- A variant: the fault finds swapoff's page in the swap cache first, then
-- frees the entry a second time ("VM: Bad swap entry").
--
-- With the patch, swapoff takes the task's mmap_sem, which the fault holds
-- throughout.

machine { cpus = 1, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local faulter = process("faulter", function() read(0x10000) end)
faulter:map(0x10000, 3)
for i = 0, 2 do faulter:write(0x10000 + i * 4096) end
for i = 0, 2 do faulter:swap_out(0x10000 + i * 4096) end

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
