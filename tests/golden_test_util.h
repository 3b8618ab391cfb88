// The golden fixture root for tests: $MMREF_GOLDEN_DIR, else <source>/../shared/golden (see that
// folder's README.md). A checkout without the fixtures skips golden cases with the reason, as every
// golden test in mmref does; scripts/test.sh points MMREF_GOLDEN_DIR at ../shared/golden when present.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace mmref::test {

inline std::string golden_path(const std::string& rel) {
  const char* env = std::getenv("MMREF_GOLDEN_DIR");
  return std::string(env && *env ? env : MMREF_SOURCE_DIR "/../shared/golden") + "/" + rel;
}

}  // namespace mmref::test

// Skips the test (with the path) when the fixture folder `dir` is absent.
#define MMREF_REQUIRE_GOLDEN(dir)                                                              \
  do {                                                                                         \
    if (!std::filesystem::is_directory(dir))                                                   \
      GTEST_SKIP() << "no golden fixture at '" << (dir) << "' (set MMREF_GOLDEN_DIR)";          \
  } while (0)
