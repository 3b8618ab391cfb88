#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine (as root): installs dependencies, builds the `cpu`
# preset (incremental on a second run), runs every ctest label (unit, golden, gpu: skipped without a
# GPU, slow). Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake --preset cpu >/dev/null
cmake --build --preset cpu
# Golden fixtures: ../shared/golden unless MMREF_GOLDEN_DIR says otherwise.
if [ -z "${MMREF_GOLDEN_DIR:-}" ] && [ -d ../shared/golden ]; then
  export MMREF_GOLDEN_DIR="$(cd ../shared/golden && pwd)"
fi
ctest --preset cpu -j "$(nproc)" "$@"
