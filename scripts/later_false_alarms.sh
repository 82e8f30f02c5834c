#!/usr/bin/env bash
# Every scenario under the later kernels (issue 12, point 8): a search per
# scenario and kernel, and a table of what it found.
#
#   scripts/later_false_alarms.sh [RUNS] [LOOP_RUNS] [LONG_RUNS] [GLOB]   (defaults 20000, 2000, 2, *)
#
# RUNS PCT runs for each scenario; LOOP_RUNS for swapoff_loop.lua (about
# 70 ms a run); LONG_RUNS random runs for the sweep and stress scenarios,
# whose programs wait for swapoff in a loop that PCT's fixed priorities
# starve (a run ends at the Lua instruction limit, not in the kernel), and
# whose runs take seconds to minutes. GLOB picks scenarios by file name.
# A later kernel is a whole design transplanted into the 2.3.99 world
# (docs/model.md § Later kernels); what a search finds is either a real bug
# of that kernel (say which C line) or a bug of the transplant (fix it).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20000}"
loop_runs="${2:-2000}"
long_runs="${3:-2}"
glob="${4:-*}"
cargo build --release --quiet -p cli
bin="${SWAPSIM_BIN:-target/release/swapsim}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "| scenario | search | 2.4.10 | 5.1 |"
echo "|---|---|---|---|"
for file in scenarios/$glob.lua; do
  name=$(basename "$file")
  case "$name" in
    sweep_* | stress_*) search=(--strategy random --runs "$long_runs") ;;
    swapoff_loop.lua) search=(--strategy pct --runs "$loop_runs") ;;
    *) search=(--strategy pct --runs "$runs") ;;
  esac
  row="| $name | ${search[1]} ${search[3]} |"
  for kernel in 2.4.10 5.1; do
    out=$(nice "$bin" explore "$file" --kernel "$kernel" "${search[@]}" --seed 1 \
      --no-shrink --out "$work" 2>&1 || true)
    result=$(sed -n 's/^result: *//p' <<<"$out")
    first=$(sed -n 's/^first: *//p' <<<"$out")
    if [ -z "$result" ]; then
      result="error: $(tail -1 <<<"$out")"
    elif [ -n "$first" ]; then
      result="$result; first $first"
    fi
    row="$row $result |"
  done
  echo "$row"
done
