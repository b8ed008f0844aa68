#!/usr/bin/env bash
# How `chainrule check` scales with the model: 10k, 100k and 1M nodes (bench/gen_big_model.py),
# seconds and peak memory for each, and the ratio of time per node to the 10k model's.
#   bench/load_model.sh [BUILD]      (default build/)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CR=${1:-build}/cli/chainrule
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
base=""
for n in 10000 100000 1000000; do
    /usr/bin/python3 bench/gen_big_model.py --nodes "$n" > "$tmp/m.json"
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$CR" check "$tmp/m.json" > /dev/null 2>&1
    read -r s kb < "$tmp/t"
    per=$(awk -v s="$s" -v n="$n" 'BEGIN { printf "%.3g", s / n * 1e6 }')
    base=${base:-$per}
    printf '%8d nodes  %6.2f s  %7d MB  %6s µs/node  (%.2f× the 10k per-node time)\n' "$n" "$s" $((kb / 1024)) "$per" \
        "$(awk -v p="$per" -v b="$base" 'BEGIN { print p / b }')"
done
