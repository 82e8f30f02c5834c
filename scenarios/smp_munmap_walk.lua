-- Two windows that pre4's swapoff walk leaves open on SMP, against munmap
-- (which takes no big kernel lock). Neither is in the seed.
--
--   1. unuse_pte reads a pte with no lock and calls set_pte later
--      (mm/swapfile.c:258 and 274). zap_page_range on the other CPU can
--      clear the pte and swap_free its entry in between: unuse_pte then
--      maps the page outside any VMA and frees the entry a second time
--      ("VM: Bad swap entry", invariant swap-count; pre4 seed 7).
--   2. unuse_process follows vma->vm_next with no lock (mm/swapfile.c:361).
--      do_munmap moves the VMA it stands on to its private free list
--      (mm/mmap.c:680, mpnt->vm_next = free): the first VMA unlinked points
--      at NULL, so the walk ends there and never sees the VMA after it.
--      swapoff forces that VMA's entry to 0 ("VM: Undead swap entry") and
--      returns 0 while its pte still holds it (swapoff-completeness; pre4
--      seed 3). Once unmap_fixup has freed the VMA, reading its vm_next is
--      a use-after-free (seed 1).
--
-- With the patch, unuse_mm holds mmap_sem, which munmap holds for its
-- whole run: none of these can happen (they come back with
-- --no-fix mmap-sem).

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 } }

local unmapper = process("unmapper", function()
  sleep(8)                  -- while swapoff reads the first page in
  for i = 1, 10 do
    munmap(0x20000, 1)
    mmap(0x20000, 1)
  end
end)
unmapper:map(0x10000, 1)
unmapper:map(0x20000, 1)    -- unmapped under the walk
unmapper:map(0x30000, 1)    -- the VMA after it
unmapper:write(0x20000)
unmapper:swap_out(0x20000)  -- entry 1:1
unmapper:write(0x30000)
unmapper:swap_out(0x30000)  -- entry 1:2

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
