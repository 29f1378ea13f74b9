#!/usr/bin/env bash
# The main job on the built-in data: summaries of every built-in set, then a short multi-task
# pre-training of DPA-2 with live progress, then its error table on each set.
set -euo pipefail
cd "$(dirname "$0")/.."
LL=.venv/bin/lam-lab
for name in $($LL data list); do
    echo "================================================================ $name"
    $LL data info "$name"
done
echo "================================================================ multi-task pre-training"
$LL train configs/demo.yaml "$@"
