// Shared plumbing of the corpus generators (corpus.h): a portable seeded RNG, running external
// programs (synthesizers, the ffmpeg CLI) without a shell, a small parallel-for, and JSONL writing.
// Internal to src/data/generators (tests use it too); not a general-purpose API.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmref::data::gen {

// SplitMix64: the same stream on every platform and standard library (std:: distributions are
// implementation-defined, so corpora would differ between libstdc++ and libc++).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n) (n > 0); the modulo bias is < n / 2^64.
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  int64_t range(int64_t lo, int64_t hi) { return lo + below(hi - lo + 1); }  // inclusive
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(below(static_cast<int64_t>(v.size())))];
  }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i)
      std::swap(v[i - 1], v[static_cast<size_t>(below(static_cast<int64_t>(i)))]);
  }

 private:
  uint64_t state_;
};

// A seed derived from (seed, stream, index): independent streams per item so that items can be made
// in any order or in parallel and still be deterministic.
uint64_t derive_seed(uint64_t seed, uint64_t stream, uint64_t index);

// Absolute path of `program` found on $PATH, or "" when absent.
std::string find_program(const std::string& program);

// Runs argv[0] (looked up on $PATH) with stdin from `stdin_path` ("" = /dev/null), stdout and stderr
// captured to a temp file; throws mmref::Error naming the command and its last output lines when it
// cannot start, exits non-zero or runs longer than timeout_s (then it is killed).
void run_program(const std::vector<std::string>& argv, double timeout_s = 120,
                 const std::string& stdin_path = "");

// Calls fn(i) for i in [0, n) on `threads` threads (0 = hardware concurrency). The first exception
// thrown is rethrown after all workers stop (the others stop taking new items).
void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn);

// Writes one JSON object per line, atomically.
void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& rows);

// Installed files of a Debian package (dpkg -L), or empty when it is not installed / dpkg is absent.
std::vector<std::string> dpkg_files(const std::string& package);

}  // namespace mmref::data::gen
