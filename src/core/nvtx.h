// NVTX ranges for Nsight Systems timelines: an RAII helper that compiles to nothing without NVTX.
//
//   void train_step(...) {
//     MMREF_NVTX_FN();                     // range named "train_step" for the whole function
//     { MMREF_NVTX_RANGE("forward"); ... } // nested range
//   }
//   nsys profile -t cuda,nvtx ./build/src/cli/mmref train ...
//
// With MMREF_HAS_NVTX=1 (set by CMake when the header-only NVTX3 is found) a range is
// nvtxRangePushA / nvtxRangePop. Without a profiler attached those calls return at once (NVTX3 looks
// for an injection library once, then its calls are no-ops). Without NVTX the class is empty and the
// calls vanish. The two variants live in different inline namespaces, so translation units built with
// and without NVTX can be linked into one binary without breaking the one-definition rule.
// Ref: llm.c llmc/cuda_common.h (NvtxRange, NVTX_RANGE_FN). Tests: tests/core/nvtx_test.cpp.
#pragma once

#if defined(MMREF_HAS_NVTX) && MMREF_HAS_NVTX
#include <nvtx3/nvToolsExt.h>
#define MMREF_NVTX_ENABLED 1
#else
#define MMREF_NVTX_ENABLED 0
#endif

namespace mmref {
#if MMREF_NVTX_ENABLED
inline namespace nvtx_on {
#else
inline namespace nvtx_off {
#endif

class NvtxRange {
 public:
  static constexpr bool kEnabled = MMREF_NVTX_ENABLED != 0;

  // `name` is copied by NVTX at push time; it need not outlive the range.
  explicit NvtxRange(const char* name) noexcept {
#if MMREF_NVTX_ENABLED
    nvtxRangePushA(name);
#else
    (void)name;
#endif
  }
  ~NvtxRange() {
#if MMREF_NVTX_ENABLED
    nvtxRangePop();
#endif
  }

  // A range is tied to its scope: copies or moves would pop twice.
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
  NvtxRange(NvtxRange&&) = delete;
  NvtxRange& operator=(NvtxRange&&) = delete;
};

}  // inline namespace nvtx_on / nvtx_off
}  // namespace mmref

#define MMREF_NVTX_CONCAT_INNER_(a, b) a##b
#define MMREF_NVTX_CONCAT_(a, b) MMREF_NVTX_CONCAT_INNER_(a, b)
// A range from here to the end of the enclosing scope.
#define MMREF_NVTX_RANGE(name) \
  const ::mmref::NvtxRange MMREF_NVTX_CONCAT_(mmref_nvtx_range_, __LINE__)(name)
// A range named after the enclosing function.
#define MMREF_NVTX_FN() MMREF_NVTX_RANGE(__func__)
