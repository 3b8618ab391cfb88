#!/usr/bin/env bash
# The main job on its built-in default, on a fresh Debian 12 machine (as root): installs dependencies,
# builds the `cpu` preset (incremental on a second run), makes the default synthetic data when absent,
# runs the default experiment (configs/default.yaml) on the CPU and prints where its outputs are.
# Extra arguments are config overrides, e.g. `scripts/run_default.sh train.steps=300`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake --preset cpu >/dev/null
cmake --build --preset cpu --target mmref
MMREF=build/cpu/bin/mmref
"$MMREF" info
"$MMREF" data make regression --out data/regression
"$MMREF" train configs/default.yaml "$@"
