-- Race 6 of the seed, the page stealer's side: the
-- patch also says "the page stealing code is not allowed to grab a
-- reference on handles that are being deleted".
--
-- The interleaving, on two CPUs:
--   1. swapoff (S) replaces the owner's pte 1:1 by the page Pg, which is
--      still in the swap cache, then sleeps — here on the mmap_sem of the
--      next mm, whose task is in a fault — dropping the big kernel lock.
--   2. The page stealer visits the owner's pte twice: the pte unuse_pte
--      made is young, so the first try_to_swap_out only clears the
--      accessed bit; the second finds Pg in the swap cache and puts the
--      pte back to 1:1 with swap_duplicate.
--   3. S deletes Pg, forces the count to 0 and returns 0: the owner's pte
--      holds an entry of the deleted device (invariant swapoff-completeness).
--
-- With the patch, acquire_swap_entry refuses a new reference on a device
-- that is not SWP_WRITEOK and the pte stays present.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.2 }

local owner = process("owner")
owner:map(0x10000, 1)
owner:write(0x10000)
owner:swap_out(0x10000)

local faulter = process("faulter", function() read(0x10000) end)
faulter:map(0x10000, 1)
faulter:write(0x10000)
faulter:swap_out(0x10000)

-- The page stealer, aimed at the owner's page (pid 1).
process("stealer", function()
  for i = 1, 30 do swap_out(0x10000, owner.pid) end
end)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
