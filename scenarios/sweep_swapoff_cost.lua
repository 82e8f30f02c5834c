-- What swapoff costs, and what it costs the rest of the system: swapoff's
-- duration against the number of processes and the swap pages in use, and
-- the latency of page faults taken while it runs, pre4 against patched.
--
--   swapsim sweep scenarios/sweep_swapoff_cost.lua --out output/sweep1
--
-- try_to_unuse handles one slot at a time, and for every slot it scans
-- every mm (pre4: every task; patched: the mm list, taking each mm's
-- mmap_sem): the cost grows with slots x mms. With the patch, a fault that
-- needs its mmap_sem waits while swapoff scans its mm.

sweep {
  params = { processes = { 1, 16, 64 }, pages = { 256, 1024, 2048, 4096 } },
  kernels = { "pre4", "patched" },
  seeds = 2,
}

local PROCESSES = param("processes")
local PAGES = param("pages")                   -- swap pages in use, in all
local EACH = math.max(1, PAGES // PROCESSES)   -- each process's share

machine {
  cpus = 2,
  memory_pages = PAGES + 2048,
  swap_devices = { PAGES + 64 },
  alloc_sleep = 0.05,
  step_budget = 50000000,
}

swapoff_done = false

-- The holders: each has its share of the pages out on swap.
for n = 1, PROCESSES do
  local p = process("holder" .. n)
  p:map(0x100000, EACH)
  for i = 0, EACH - 1 do
    p:write(0x100000 + i * 4096)
    p:swap_out(0x100000 + i * 4096)
  end
end

-- A worker that takes a page fault every millisecond while swapoff runs
-- (it unmaps and maps its area again to have fresh pages to fault on).
local worker = process("worker", function()
  local i = 0
  while not swapoff_done do
    write(0x40000000 + (i % 256) * 4096)
    i = i + 1
    if i % 256 == 0 then
      munmap(0x40000000, 256)
      mmap(0x40000000, 256)
    end
    sleep(1)
  end
end)
worker:map(0x40000000, 256)

process("swapoff", function()
  local ret = swapoff(1)
  expect(ret == 0, "swapoff(1) failed with " .. tostring(ret))
  swapoff_done = true
end)
