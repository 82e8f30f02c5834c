-- 2efa33fc7f6e (Miaohe Lin, "mm/shmem: fix shmem_swapin() race with
-- swapoff", v5.14, with 2799e77529c2 "swap: fix do_swap_page() race with
-- swapoff" and 63d8620ecf93 "mm/swapfile: use percpu_ref to serialize
-- against concurrent swapoff"; --kernel 5.3 finds it, --kernel 5.14 holds):
--
--   shmem_swapin -> swap_cluster_readahead reads
--   si->swap_file->f_mapping->host after swapoff set si->swap_file = NULL.
--
-- tmpfs is not modelled: the swap-backed object is a SysV shm segment, whose
-- 5.x swap-in the model runs as shmem_getpage/shmem_swapin_page.
--
-- The interleaving, on two CPUs:
--   1. The segment's page is out on swap (1:1). The user touches it:
--      shmem_getpage finds the swap entry, looks in the swap cache (5.3
--      holds the device for that lookup only), drops the info lock and goes
--      to read it in.
--   2. swapoff's shmem_unuse swaps the entry in, installs the page in the
--      segment, frees the slot; nothing is left: SWP_VALID cleared, no
--      holder to wait for, swap_file cleared, swap_map and the swap cache
--      freed.
--   3. The reader's swap_cluster_readahead reads si->swap_file.
-- 5.14 (the fix): shmem_swapin_page holds the device (get_swap_device,
-- a percpu_ref) across the swap-in; swapoff's teardown waits for it.

machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.3 }

local seg = shmget(1)

local user = process("user", function()
  read(0x10000)
end)
user:shmat(seg, 0x10000)
user:write(0x10000)
user:swap_out(0x10000)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
end)
