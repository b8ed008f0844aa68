#!/usr/bin/env bash
# Usage: bench/distributed.sh [EPOCHS] [ROUNDS]
# Data-parallel training against threads on one machine, measured in one run: the lecture's
# MNIST net (models/mnist_lecture.json, EPOCHS epochs, default 5) trained by one process with
# two OpenBLAS threads, and by `mpirun -np 2 --bind-to none` with one thread each (2 shards).
# Each is run ROUNDS times (default 3), alternating; the best time of each counts. Prints the
# times, their ratio, and the combine cost per step that the trainer reports (the gather of
# the shards' gradients, waiting for the slower process included, and their sum), also for one
# process with --shards 2. Needs
# data/mnist (scripts/get-mnist --mnist-only) and a build with MPI in build/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
epochs=${1:-5}
rounds=${2:-3}
bin=build/cli/chainrule
[[ -x $bin ]] || { echo "distributed.sh: no $bin; build first (scripts/build)" >&2; exit 2; }
[[ -f data/mnist/train-images-idx3-ubyte.gz ]] || { echo "distributed.sh: no MNIST; run scripts/get-mnist --mnist-only" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "distributed.sh: no mpirun; install openmpi-bin (scripts/setup)" >&2; exit 2; }
export OMPI_MCA_btl_vader_single_copy_mechanism=none
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
unset OPENBLAS_NUM_THREADS
model=models/mnist_lecture.json
common=(train "$model" --epochs "$epochs" --no-progress)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Seconds of wall time for one command; its output in $log.
timed() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
best() { printf '%s\n' "$@" | sort -g | head -1; }
# "gathering X, summing Y" from the trainer's last line.
combine() { sed -n 's/^combining .* per step: \(.*\) gathering them .*, \(.*\) summing them$/gather \1, sum \2/p' "$log"; }

threads=() processes=() sharded=()
for ((r = 1; r <= rounds; r++)); do
    threads+=("$(timed "$bin" "${common[@]}" --threads 2)")
    sharded+=("$(timed "$bin" "${common[@]}" --threads 2 --shards 2)")
    sum_only=$(combine)
    processes+=("$(timed mpirun -np 2 --bind-to none "$bin" "${common[@]}" --threads 1)")
    gathered=$(combine)
done
t=$(best "${threads[@]}")
s=$(best "${sharded[@]}")
p=$(best "${processes[@]}")
printf 'mnist_lecture, %s epochs of 60 steps (batch 1000), best of %s:\n' "$epochs" "$rounds"
printf '  one process, --threads 2:                 %6.2f s\n' "$t"
printf '  one process, --threads 2 --shards 2:      %6.2f s   (%s per step)\n' "$s" "$sum_only"
printf '  mpirun -np 2 --bind-to none, --threads 1: %6.2f s   (%s per step)\n' "$p" "$gathered"
printf '  ratio mpirun / threads: %.2f   (below 1: the processes are faster)\n' "$(awk -v a="$p" -v b="$t" 'BEGIN { print a / b }')"
