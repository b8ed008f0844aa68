#!/usr/bin/env bash
# The plugin example as a user builds it: install chainrule into a scratch prefix, build
# examples/custom_op against it through pkg-config, load it, check the op, gradcheck and
# train its model.
set -euo pipefail
BUILD=$1 SRC=$2
source "$(dirname "${BASH_SOURCE[0]}")/example_build.sh"
build_example custom_op
plugin=$tmp/build/libsoftplus.so
CR=$BUILD/cli/chainrule
cd "$SRC/examples/custom_op"
"$CR" --plugin "$plugin" ops | grep '^softplus(x)' >/dev/null
"$CR" --plugin "$plugin" ops --check softplus | grep '^all [0-9]* checks passed on 1 op$' >/dev/null
"$CR" --plugin "$plugin" gradcheck softplus_iris.json | grep 'gradcheck passed' >/dev/null
out=$("$CR" --plugin "$plugin" train softplus_iris.json --epochs 100)
echo "$out" | tail -n 1
acc=$(echo "$out" | sed -n 's/^final test accuracy \([0-9.]*\).*/\1/p')
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || { echo "accuracy $acc < 0.9"; exit 1; }
# grep reads to the end (no -q): an early exit would SIGPIPE chainrule and fail the pipeline.
# Without the plugin the model names the missing op.
if "$CR" check softplus_iris.json 2>"$tmp/err"; then echo "check without the plugin passed"; exit 1; fi
grep -q "unknown op 'softplus'" "$tmp/err"
echo "plugin example ok"
