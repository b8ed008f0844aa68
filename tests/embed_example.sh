#!/usr/bin/env bash
# The C++ API example as a user builds it: install chainrule into a scratch prefix, build
# examples/embed against it through pkg-config (only <chainrule/chainrule.hpp> included),
# run it and compare its numbers with docs/worked-example.md and `chainrule grad`.
set -euo pipefail
BUILD=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/example_build.sh"
build_example embed
libdir=$(dirname "$(find "$tmp/root" -name 'libchainrule.so*' | head -1)")
out=$(LD_LIBRARY_PATH=$libdir "$tmp/build/worked_example")
echo "$out"
expect() { grep -qxF "$1" <<<"$out" || { echo "missing line: $1"; exit 1; }; }
expect "L = 0.196933"
expect "dL/dw0 = 0.379799"
expect "w0 after one SGD step (lr 0.5) = -0.0898995"
# The loss went down, and the program agrees with the JSON model run by the CLI.
after=$(sed -n 's/^L after the step = \([0-9.]*\)$/\1/p' <<<"$out")
awk -v a="$after" 'BEGIN { exit !(a < 0.196933) }' || { echo "loss did not fall: $after"; exit 1; }
grad=$("$BUILD/cli/chainrule" grad "$SRC/models/worked_example.json")
grep -q '^loss L = 0.1969326615$' <<<"$grad" || { echo "chainrule grad disagrees on L"; exit 1; }
grep -q 'dL/dw  \[\[0.379799\]' <<<"$grad" || { echo "chainrule grad disagrees on dL/dw0"; exit 1; }
echo "embed example ok"
