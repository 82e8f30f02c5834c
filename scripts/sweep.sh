#!/usr/bin/env bash
# Regenerate everything docs/results.md shows from real sweeps, in one
# command: both sweeps (release build, every core), their results.csv,
# samples.csv, summary tables and plots copied into docs/results/, and the
# summary tables spliced into docs/results.md between its markers.
#   scripts/sweep.sh
# The prose of docs/results.md quotes figures from those tables: read the
# diff and check them.
set -euo pipefail
cd "$(dirname "$0")/.."
nice cargo build --release --quiet -p cli
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# sweep NAME SCENARIO PREFIX: run it, then copy its files as docs/results/PREFIX*.
sweep() {
  local name=$1 scenario=$2 prefix=$3
  # Exit 1: some runs broke an invariant (pre4 has races). They are flagged
  # in results.csv, counted in the summary and left out of the plots; the
  # sweep still stands. Anything else is a failure.
  local status=0
  nice target/release/swapsim sweep "$scenario" --out "$out/$name" --jobs "$(nproc)" || status=$?
  if [ "$status" -eq 1 ]; then
    echo "scripts/sweep.sh: $scenario: some runs broke an invariant (listed above); they are left out of the plots" >&2
  elif [ "$status" -ne 0 ]; then
    echo "scripts/sweep.sh: $scenario: the sweep failed (exit $status); docs/results/ left as it was" >&2
    exit 1
  fi
  mkdir -p docs/results
  for f in results.csv samples.csv summary.md swapoff_time.png swapoff_time.svg fault_latency_p99.png fault_latency_p99.svg; do
    cp "$out/$name/$f" "docs/results/$prefix$f.tmp" && mv "docs/results/$prefix$f.tmp" "docs/results/$prefix$f"
  done
}

# splice PREFIX: replace the lines between "<!-- summary PREFIX -->" and
# "<!-- end summary PREFIX -->" in docs/results.md with docs/results/PREFIXsummary.md.
splice() {
  local prefix=$1 table="docs/results/${1}summary.md"
  grep -q "^<!-- summary ${prefix:-cost} -->\$" docs/results.md || { echo "docs/results.md lacks <!-- summary ${prefix:-cost} -->" >&2; exit 1; }
  awk -v begin="<!-- summary ${prefix:-cost} -->" -v end="<!-- end summary ${prefix:-cost} -->" -v table="$table" '
    $0 == begin { print; while ((getline line < table) > 0) print line; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }
  ' docs/results.md > docs/results.md.tmp && mv docs/results.md.tmp docs/results.md
}

sweep cost scenarios/sweep_swapoff_cost.lua ""
sweep algorithms scenarios/sweep_swapoff_algorithms.lua "algorithms_"
splice ""
splice "algorithms_"
echo "wrote docs/results/ and the tables of docs/results.md"
