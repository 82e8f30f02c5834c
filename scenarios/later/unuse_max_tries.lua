-- SWAP_UNUSE_MAX_TRIES (5.1-rc1..rc4; --kernel 5.1-rc1 finds it, --kernel 5.1 holds):
--
--   "SWAP_UNUSE_MAX_TRIES 3 appeared to work well in earlier testing, but
--    further testing has proved it to be a source of unnecessary swapoff
--    EBUSY failures ... When mmget_not_zero() or shmem's igrab() fails,
--    there is an mm exiting or inode being evicted, freeing up swap
--    independent of try_to_unuse()." (Hugh Dickins, "mm: swapoff: remove
--    too limiting SWAP_UNUSE_MAX_TRIES", linux-mm 2019-04-08)
--
-- The interleaving, on two CPUs:
--   1. The exiter has four pages out on swap (entries 1:1..1:4), so its mm
--      is on the mmlist.
--   2. It exits: mmput drops mm_users to 0, then exit_mmap's zap frees the
--      four entries one by one under the page-table lock.
--   3. swapoff's passes meanwhile: mmget_not_zero fails on the dying mm, so
--      the walk skips it; no swap-cache page is left to free; slots are
--      still in use, so it goes round again. At the end of the third pass
--      5.1-rc gives up: swapoff returns -EBUSY (-16) for swap that was
--      about to go by itself.
-- 5.1 (the fix) goes round until the exiter has freed them all.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0 }

local exiter = process("exiter", function()
  exit()
end)
exiter:map(0x10000, 4)
for page = 0, 3 do
  exiter:write(0x10000 + page * 0x1000)
  exiter:swap_out(0x10000 + page * 0x1000)
end

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
