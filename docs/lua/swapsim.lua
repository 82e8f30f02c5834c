---@meta swapsim

-- The swapsim scenario API, for the Lua language server (LuaLS).
-- Declarations only: nothing here runs. The reference is
-- docs/scenario-api.md; to use this file, point the language server at
-- docs/lua (README.md, "Editor support").
--
-- Scenarios run sandboxed: io, os, package, debug, coroutine, require,
-- dofile, loadfile, load, collectgarbage and string.dump are not there;
-- pairs, math.random, table.sort, tostring and print are deterministic
-- replacements.

-- ---------------------------------------------------------------------
-- Declarations: only while the file loads, never inside a program.
-- ---------------------------------------------------------------------

---The machine: every field is optional; at most one `machine{}` per scenario.
---@class MachineOptions
---@field cpus? integer Simulated CPUs, 1 to 64 (default 1).
---@field memory_pages? integer Physical memory in 4 KiB pages, 1 to 16777216 (default 1024); also sets the readahead cluster and kswapd's watermarks.
---@field swap_devices? integer[] Size in pages of each swap device, device 1 first, with no holes; at most 8, each 2 to 1048576 pages, slot 0 is the header (default: none).
---@field alloc_sleep? number Probability in [0, 1] that an allocation which may sleep does sleep in the interleaved run (default 0.2).
---@field step_budget? integer Most steps a run may take, 1 or more (default 1000000); spending it is STEP LIMIT.
---@field kswapd? boolean Start kswapd, the page stealer thread (default false).
---@field max_threads? integer fork() fails with -11 (-EAGAIN) while this many tasks are on the task list (zombies until reaped), 1 to 65536 (default 512); kswapd does not count.
---@field costs? MachineCosts Simulated costs in ns, overriding the defaults of docs/timing.md.
---@field faults? MachineFaults Faults to inject in the interleaved run (default: none).

---`machine{ costs = {...} }`: simulated time in ns, each 0 to 10^12 (docs/timing.md).
---@class MachineCosts
---@field step? integer Every step (default 100).
---@field lock_op? integer Taking or releasing a lock (default 40).
---@field context_switch? integer Putting a task on a CPU (default 3000).
---@field pte_scan? integer Looking at one pte (default 20).
---@field page_copy? integer Copying a 4 KiB page (default 4000).
---@field page_zero? integer Zeroing a 4 KiB page (default 2000).
---@field disk_read? integer A swap read (default 8000000).
---@field disk_write? integer A swap write (default 8000000).
---@field alloc_sleep? integer An allocation that blocks (default 200000).

---`machine{ faults = {...} }`: injected faults, drawn from the seed; `swapsim run --inject` overrides them.
---@class MachineFaults
---@field alloc_fail? number Probability in [0, 1] that a page allocation fails outright (default 0).
---@field alloc_fail_nth? integer Fail exactly the Nth page allocation of the interleaved run, from 1 (default: none).
---@field io_delay? number Probability in [0, 1] that a disk I/O takes ten times its usual latency (default 0).
---@field read_error? number Probability in [0, 1] that a swap read fails; pre4-5 uses the page as if read (default 0).

---A kernel variant a sweep runs (`swapsim kernels` describes each).
---@alias SweepKernel "pre4"|"patched"|"2.4.10"|"5.1"|"5.1-rc1"|"5.2"|"5.3"|"5.14"|"6.9"

---`sweep{...}`: the parameter grid that `swapsim sweep` runs (every point x kernel x seed, in timed mode).
---@class SweepOptions
---@field params table<string, integer[]> Each parameter's values, by name (required; at least one parameter, each list at least one value). Read them with `param(name)`.
---@field kernels? SweepKernel[] Kernel variants to run every point under, at least one, each once (default { "pre4", "patched" }).
---@field seeds? integer Runs per point and kernel, seeds 1 to N; 1 to 1000 (default 3).

---A process handle, from `process(name [, program])`.
---@class Process
---@field pid integer The pid: declaration order from 1.
---@field name string The name given to `process`.
local Process = {}

---A SysV shm segment handle, from `shmget(pages)`.
---@class Segment
---@field id integer The segment id, in `shmget` order from 0.
---@field pages integer The size in pages.

---A named point of the model, from `point(name)`, for `wait_point`.
---@class Point
---@field name string The point's name, "function:where".

---Describe the machine (declaration).
---@param options MachineOptions
function machine(options) end

---Declare a process with a new, empty address space; pids follow declaration order from 1 (declaration).
---@param name string 1 to 32 printable characters without spaces, unique.
---@param program? fun() What the process runs, interleaved; none: it never runs.
---@return Process p
function process(name, program) end

---Create a SysV shm segment of `pages` pages (1 to 65536), to attach with `p:shmat` (declaration).
---@param pages integer
---@return Segment seg
function shmget(pages) end

---Declare the parameter grid for `swapsim sweep`, at most once (declaration). Only `swapsim sweep` runs the grid, in timed mode; elsewhere `param(name)` gives the first value of each list.
---@param options SweepOptions
function sweep(options) end

---The value of sweep parameter `name` for this run: its value at the run's point under `swapsim sweep`, else the first of its list. Call it after `sweep{}`; it also works inside programs.
---@param name string
---@return integer value
function param(name) end

---Set-up: an anonymous private writable mapping of `pages` pages at `start` (page aligned).
---@param start integer
---@param pages integer 1 to 1048576.
function Process:map(start, pages) end

---Set-up: attach the whole shm segment at `start` (page aligned).
---@param seg Segment
---@param start integer
function Process:shmat(seg, start) end

---Set-up step: store to the page at `addr`, faulting it in (before the interleaved run).
---@param addr integer
function Process:write(addr) end

---Set-up step: load from the page at `addr`; a swapped-out page comes back and stays in the swap cache.
---@param addr integer
function Process:read(addr) end

---Set-up step: push the dirty page at `addr` out to swap completely (swap_out, write, shrink_mmap), to swap device `device` (1 is the first) if given, else to the first device with a free slot.
---@param addr integer
---@param device? integer
function Process:swap_out(addr, device) end

---A named point of the model ("function:where"; an unknown name is an error while the file loads), whose passes are counted from the start of the interleaved run, for `wait_point` (declaration).
---@param name string
---@return Point pt
function point(name) end

-- ---------------------------------------------------------------------
-- System calls: only inside a process program.
-- ---------------------------------------------------------------------

---do_fork: a child with a copy of the address space runs `program` (none: it exits at once); returns the child's pid, or -11 (EAGAIN) beyond machine{ max_threads }.
---@param program? fun()
---@return integer pid
function fork(program) end

---do_fork with CLONE_VM: a thread that shares the caller's mm (mm_users + 1) runs `program`; returns its pid, or -11 (EAGAIN) beyond machine{ max_threads }.
---@param program fun()
---@return integer pid
function thread(program) end

---do_exit: end the process; does not return. Returning from a program exits too.
function exit() end

---exec_mmap: empty the address space; the program goes on with no mappings.
function exec() end

---A load from the page at `addr` (page fault: do_swap_page, do_anonymous_page, shm_nopage ...).
---@param addr integer
function read(addr) end

---A store to the page at `addr` (page fault, or do_wp_page for a read-only pte).
---@param addr integer
function write(addr) end

---do_mmap: an anonymous private writable mapping at `addr`; returns 0 or -22 (EINVAL).
---@param addr integer Page aligned.
---@param pages integer 1 to 1048576.
---@return integer ret
function mmap(addr, pages) end

---do_munmap: unmap the range; returns 0 or -22 (EINVAL).
---@param addr integer Page aligned.
---@param pages integer 1 to 1048576.
---@return integer ret
function munmap(addr, pages) end

---sys_shmctl(IPC_RMID): remove the segment; with attaches it is marked SHM_DEST and goes with the last one. Returns 0, -22 (EINVAL) or -2 (ENOENT).
---@param seg Segment From shmget.
---@param cmd "IPC_RMID" The only command modelled.
---@return integer ret
function shmctl(seg, cmd) end

---sys_swapoff: switch swap device `device` (1 is the first) off; returns 0, -22 (EINVAL) or -12 (ENOMEM).
---@param device integer
---@return integer ret
function swapoff(device) end

---sys_swapon: switch swap device `device` (1 is the first) back on; returns 0, -16 (EBUSY) or -22 (EINVAL).
---@param device integer
---@return integer ret
function swapon(device) end

---The page stealer (try_to_swap_out) on the pte at `addr` of process `pid` (default: the caller); returns whether the pte was taken. One call is one visit: a young (recently used) pte is only aged, so a page just written needs two calls.
---@param addr integer
---@param pid? integer
---@return boolean done
function swap_out(addr, pid) end

---Direct reclaim: try_to_free_pages (PF_MEMALLOC, do_try_to_free_pages: shrink_mmap, shm_swap, swap_out from priority 6 to 0) in the caller's context; returns whether it freed SWAP_CLUSTER_MAX (32) pages.
---@return boolean freed
function try_to_free_pages() end

---shm_swap at priority 0: write one shm page that no pte maps out to swap; returns whether a page went.
---@return boolean done
function shm_swap() end

---The caller's pid.
---@return integer pid
function getpid() end

---sys_wait4: sleep until process `pid` has exited; returns `pid`, or -10 (ECHILD) if there is no such process.
---@param pid integer
---@return integer ret
function waitpid(pid) end

---Block in user space until process `pid` has exited, without reaping it; returns `pid`, or -10 (ECHILD) if there is no such process. Orders tasks in every mode.
---@param pid integer
---@return integer ret
function wait_exit(pid) end

---Block in user space until tasks have passed the named point `times` times in all (default 1) since the interleaved run started; returns the passes so far. Orders tasks in every mode.
---@param point Point From point(name).
---@param times? integer 1 or more.
---@return integer passes
function wait_point(point, times) end

---sys_nanosleep: sleep `ms` milliseconds of simulated time. Orders tasks only in timed mode (sweep, run --timed): in random, PCT and dfs runs its timer is one more option.
---@param ms number 0 to 86400000 (a day); fractions allowed.
function sleep(ms) end

---Stop the run with the violation scenario-expectation when `condition` is false or nil.
---@param condition any
---@param message? string Default "expectation failed".
function expect(condition, message) end
