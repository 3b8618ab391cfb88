// NVTX RAII ranges: the type's guarantees at compile time, nested ranges and the macros at run time
// without a profiler attached (the normal case in tests and CI). With MMREF_HAS_NVTX the raw NVTX3
// calls are also probed: without an injection library they return NVTX_NO_PUSH_POP_TRACKING at once.
// The no-NVTX variant is the same header with MMREF_HAS_NVTX undefined; it is checked by compiling
// this file without the definition (g++ -fsyntax-only -UMMREF_HAS_NVTX ...).
//
//   build/<dir>/tests/mmref_core_tests --gtest_filter='Nvtx*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "core/nvtx.h"

namespace {

using mmref::NvtxRange;

// A scope owns its range: copying or moving one would pop twice.
static_assert(!std::is_copy_constructible_v<NvtxRange>);
static_assert(!std::is_copy_assignable_v<NvtxRange>);
static_assert(!std::is_move_constructible_v<NvtxRange>);
static_assert(!std::is_move_assignable_v<NvtxRange>);
// Explicit (no accidental conversions from a string), noexcept, and no storage in either mode.
static_assert(!std::is_convertible_v<const char*, NvtxRange>);
static_assert(std::is_nothrow_constructible_v<NvtxRange, const char*>);
static_assert(std::is_nothrow_destructible_v<NvtxRange>);
static_assert(std::is_empty_v<NvtxRange>);
#if defined(MMREF_HAS_NVTX) && MMREF_HAS_NVTX
static_assert(NvtxRange::kEnabled, "MMREF_HAS_NVTX=1 must enable the NVTX calls");
#else
static_assert(!NvtxRange::kEnabled, "without MMREF_HAS_NVTX the range must be a no-op");
#endif

int recurse(int depth) {
  MMREF_NVTX_FN();
  return depth == 0 ? 0 : 1 + recurse(depth - 1);
}

bool profiler_attached() {
  return std::getenv("NVTX_INJECTION64_PATH") != nullptr ||
         std::getenv("NVTX_INJECTION32_PATH") != nullptr;
}

TEST(Nvtx, NestedRangesWithoutProfiler) {
  {
    MMREF_NVTX_RANGE("outer");
    {
      MMREF_NVTX_RANGE("inner");   // two macros in one scope: the names differ by __LINE__
      MMREF_NVTX_RANGE("inner2");
      const std::string dynamic = "step " + std::to_string(7);
      NvtxRange r(dynamic.c_str());  // NVTX copies the name at push time
    }
    EXPECT_EQ(recurse(/*depth=*/64), 64);
  }
  SUCCEED() << "NVTX " << (NvtxRange::kEnabled ? "enabled" : "compiled out");
}

#if defined(MMREF_HAS_NVTX) && MMREF_HAS_NVTX
TEST(Nvtx, RawCallsReturnNoTrackingWithoutProfiler) {
  if (profiler_attached()) GTEST_SKIP() << "a profiler is attached";
  EXPECT_EQ(nvtxRangePushA("probe"), NVTX_NO_PUSH_POP_TRACKING);
  EXPECT_EQ(nvtxRangePop(), NVTX_NO_PUSH_POP_TRACKING);
}
#endif

// Without a profiler a range costs a null-pointer check (NVTX3) or nothing: a million ranges take
// milliseconds. The bound is loose so a loaded CI machine does not fail it.
TEST(Nvtx, RangesAreCheapWithoutProfiler) {
  if (profiler_attached()) GTEST_SKIP() << "a profiler is attached";
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000000; ++i) {
    NvtxRange r("hot loop");
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 2.0);
}

}  // namespace
