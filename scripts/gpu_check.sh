#!/usr/bin/env bash
# Run ON a lent GPU machine (device tool), after scripts/gpu_deps.sh here:
#   run(command="bash scripts/gpu_check.sh", carry=[".dev"])
# Builds the `cuda` preset against the machine's PyTorch libtorch (torch.utils.cmake_prefix_path) with
# MMREF_BUILD_DATA=OFF (core + kernels: the bare GPU image has no FFmpeg/HDF5/SentencePiece/espeak-ng),
# runs `ctest -L gpu`, the kernel unit tests, compute-sanitizer on the GPU kernel tests and the GPU
# benchmarks (mmref_bench_kernels --benchmark_filter=Gpu, medians of 3) and the YAML sweeps of
# `mmref bench configs/bench/gpu_full.yaml` (JSONL under $OUT/bench), prints a results table and writes it
# (and the logs, bench JSON) under $OUT.
# The sweeps need the mmref CLI, which needs src/data's packages (FFmpeg, HDF5, SentencePiece, espeak-ng):
# with MMREF_GPU_BUILD_DATA=ON (and those packages in .dev/root) the build includes it; otherwise the
# sweep step is reported as skipped. MMREF_GPU_BENCH_ARGS adds arguments (e.g. "--only gpu_attention").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build/gpu_check_out}
mkdir -p "$OUT"
DEV=$PWD/.dev/root
if [ -d "$DEV" ]; then
  export CMAKE_PREFIX_PATH="$DEV/usr:$DEV/usr/lib/x86_64-linux-gnu/cmake${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$DEV/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export CPATH="$DEV/usr/include${CPATH:+:$CPATH}"
  export PATH="$DEV/usr/bin:$PATH"
fi
TORCH_PREFIX=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
TORCH_LIB=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"
status=()
step() {  # step NAME CMD...: runs, logs to $OUT/NAME.log, records pass/fail
  local name=$1; shift
  local t0=$(date +%s)
  if "$@" >"$OUT/$name.log" 2>&1; then status+=("| $name | ok | $(( $(date +%s) - t0 )) s |");
  else status+=("| $name | FAILED (see $name.log) | $(( $(date +%s) - t0 )) s |"); fi
  tail -5 "$OUT/$name.log"
}
step configure cmake --preset cuda -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$DEV/usr" -DMMREF_BUILD_BENCHMARKS=ON \
  -DMMREF_BUILD_DATA="${MMREF_GPU_BUILD_DATA:-OFF}"
step build cmake --build --preset cuda -j "$(nproc)"
step gpu_info nvidia-smi
step ctest_gpu ctest --preset cuda -L gpu --output-on-failure
step ctest_unit ctest --preset cuda -L unit -j "$(nproc)"
if command -v compute-sanitizer >/dev/null; then
  # The small cases are enough for memcheck; the full suite under it would take minutes.
  step sanitizer compute-sanitizer --tool memcheck --error-exitcode 1 build/cuda/tests/mmref_kernels_tests \
    --gtest_filter='GpuConvDispatch*:GpuAttention.UnsupportedHeadDim*:GpuCudaDevice*'
fi
step bench build/cuda/bin/mmref_bench_kernels --benchmark_filter=Gpu --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_out="$OUT/bench_gpu.json" --benchmark_out_format=json
if [ -x build/cuda/bin/mmref ]; then
  # The peers run in the machine's python (pip PyTorch with CUDA), not Debian's /usr/bin/python3.
  export MMREF_PYTHON=${MMREF_PYTHON:-$(command -v python3)}
  # shellcheck disable=SC2086
  step bench_sweep build/cuda/bin/mmref bench configs/bench/gpu_full.yaml --out "$OUT/bench" \
    ${MMREF_GPU_BENCH_ARGS:-}
else
  status+=("| bench_sweep | skipped: no build/cuda/bin/mmref (MMREF_GPU_BUILD_DATA=ON builds it) | 0 s |")
fi
{
  echo "# gpu_check $(date -u +%FT%TZ) on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  echo "| step | result | time |"; echo "|---|---|---|"
  printf '%s\n' "${status[@]}"
} | tee "$OUT/gpu_check.md"
