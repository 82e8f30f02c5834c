-- Race 1 of the seed inside one VMA: fork sleeps between two page tables.
--
-- copy_page_range (mm/memory.c) copies a VMA one page table (4 MB) at a
-- time, and allocates each of the child's page tables as it reaches it
-- (pte_alloc → get_pte_slow → __get_free_page, which may sleep). dup_mmap
-- links the VMA into the child only after the whole copy. So with one VMA
-- across a 4 MB boundary, fork can sleep after copying the ptes of the
-- first page table and before the VMA is linked:
--   1. parent's VMA 0x3fe000..0x402000 has swap entries in page table 0
--      (0x3ff000) and page table 1 (0x400000).
--   2. The parent forks. copy_page_range copies table 0's ptes into the
--      child (swap_duplicate of 1:1), then sleeps in pte_alloc for table 1.
--   3. swapoff runs meanwhile. Under pre4 the child is not on the task
--      list. Under the patch without its mmap_sem fix the child's mm is on
--      the mm list after the parent's, but its VMA chain is still empty:
--      either way the child's copy of 1:1 is missed, the count is forced
--      to 0 ("VM: Undead swap entry") and swapoff returns 0 with the
--      child's pte holding an entry of the deleted device.
-- Under the patch, swapoff's unuse_mm waits for the parent's mmap_sem,
-- which fork holds for all of dup_mmap, and visits the child after it.
--
--   swapsim run scenarios/race1_fork_two_tables.lua --kernel pre4 --seeds 1..100
--   swapsim run scenarios/race1_fork_two_tables.lua --kernel patched --no-fix mmap-sem --seeds 1..100
--   swapsim explore scenarios/race1_fork_two_tables.lua --kernel patched --strategy dfs --preemptions 2

machine { cpus = 1, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local parent = process("parent", function()
  fork(function() exit() end)
  exit()
end)
-- One VMA of four pages: two in page table 0, two in page table 1.
parent:map(0x3fe000, 4)
parent:write(0x3ff000)
parent:write(0x400000)
parent:swap_out(0x3ff000)   -- 1:1, in page table 0
parent:swap_out(0x400000)   -- 1:2, in page table 1

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
