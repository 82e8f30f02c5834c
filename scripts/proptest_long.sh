#!/usr/bin/env bash
# The property tests with many more cases than CI runs (48 each):
#   scripts/proptest_long.sh [CASES]     (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
PROPTEST_CASES="${1:-5000}" cargo test --release -p script --test properties -- --nocapture
