#!/usr/bin/env bash
# Print, from real runs, every figure the README quotes (race 1 over seeds
# 1..1000, the explore/replay/shrink walk-through, dfs counts, coverage,
# reduce), so that the README can be brought up to date after a change to
# the model or the engine. It only prints; it edits nothing.
#
#   scripts/readme_figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="${SWAPSIM_BIN:-target/release/swapsim}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

section() { printf '\n== %s\n' "$*"; }

section "Finding race 1 over many seeds (README § Finding race 1)"
for kernel in pre4 patched; do
  "$bin" run scenarios/race1_fork.lua --kernel "$kernel" --seeds 1..1000 | grep -E '^(result|firsts|first):' || true
done
"$bin" run scenarios/race1_fork.lua --kernel pre4 --seed 3 | grep -E '^result:' || true
"$bin" run scenarios/race1_fork.lua --kernel patched --seed 3 | grep -E '^result:' || true

section "explore race 4 with pct (README § Search, save, shrink, replay)"
"$bin" explore scenarios/race4_shm.lua --kernel pre4 --runs 2000 --strategy pct --invariant swap-cache \
  --out "$work/race4" | grep -E '^(result|first|saved|shrunk|bundle|lockdep|coverage)' || true
ls "$work/race4" | grep -E '\.schedule$' || true

section "dfs on race 2 under the patch, with and without sleep sets"
"$bin" explore scenarios/race2_exit.lua --kernel patched --strategy dfs --preemptions 1 --runs 1000000 --out "$work/dfs" | grep -E '^result:|cut short' || true
"$bin" explore scenarios/race2_exit.lua --kernel patched --strategy dfs --preemptions 1 --no-sleep-sets --runs 1000000 --out "$work/dfs" | grep -E '^result:' || true

section "replay --rate around the race-1 schedule of the first seed that breaks"
"$bin" explore scenarios/race1_fork.lua --kernel pre4 --runs 20 --no-shrink --invariant swapoff-completeness \
  --out "$work/rate" | grep -E '^first:' || true
schedule=$(ls "$work"/rate/*.schedule | head -n 1)
"$bin" replay "$schedule" --rate 1000 | grep -E 'broke|of 1000' || true

section "coverage, race 4 under pre4, 5000 runs"
for strategy in random pct; do
  "$bin" explore scenarios/race4_shm.lua --kernel pre4 --runs 5000 --strategy "$strategy" --no-shrink \
    --out "$work/cov" | grep -E '^coverage' || true
done

section "reduce race2_exit.lua"
"$bin" reduce scenarios/race2_exit.lua --kernel pre4 --invariant swapoff-completeness --out "$work/small.lua" | tail -n 3 || true
