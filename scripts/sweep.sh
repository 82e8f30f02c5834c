#!/usr/bin/env bash
# Regenerate the plots and CSV of docs/results.md from a real sweep:
#   scripts/sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
target/release/swapsim sweep scenarios/sweep_swapoff_cost.lua --out "$out/sweep" --jobs "$(nproc)"
target/release/swapsim sweep scenarios/sweep_swapoff_algorithms.lua --out "$out/algorithms" --jobs "$(nproc)"
mkdir -p docs/results
for f in results.csv swapoff_time.png swapoff_time.svg fault_latency_p99.png fault_latency_p99.svg; do
  cp "$out/sweep/$f" "docs/results/$f.tmp" && mv "docs/results/$f.tmp" "docs/results/$f"
  cp "$out/algorithms/$f" "docs/results/algorithms_$f.tmp" && mv "docs/results/algorithms_$f.tmp" "docs/results/algorithms_$f"
done
echo "wrote docs/results/"
