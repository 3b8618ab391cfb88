// Metric results, bootstrap intervals, file hashes; see result.h.
#include "eval/result.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>

#include <fmt/format.h>

#include "core/error.h"

namespace mmref::eval {

nlohmann::json MetricResult::to_json() const {
  nlohmann::json j{{"metric", metric}, {"value", value}, {"n", n}, {"settings", settings}};
  if (ci.resamples > 0) {
    j["ci95"] = {ci.low, ci.high};
    j["ci"] = {{"low", ci.low}, {"high", ci.high}, {"level", ci.level}, {"resamples", ci.resamples},
               {"method", "percentile bootstrap"}};
  }
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) MMREF_FAIL("percentile of no values");
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

ConfidenceInterval bootstrap_ci(int64_t n, const std::function<double(const std::vector<int64_t>&)>& statistic,
                                int64_t resamples, double level, uint64_t seed) {
  ConfidenceInterval ci;
  ci.level = level;
  std::vector<int64_t> idx(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  if (n < 2 || resamples < 1) {
    const double v = n > 0 ? statistic(idx) : NAN;
    ci.low = ci.high = v;
    ci.resamples = std::max<int64_t>(resamples, 1);
    return ci;
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  std::vector<double> stats;
  stats.reserve(static_cast<size_t>(resamples));
  for (int64_t r = 0; r < resamples; ++r) {
    for (auto& i : idx) i = pick(rng);
    const double s = statistic(idx);
    if (std::isfinite(s)) stats.push_back(s);
  }
  if (stats.empty()) MMREF_FAIL("bootstrap: the statistic was not finite on any of {} resamples", resamples);
  ci.low = percentile(stats, 50 * (1 - level));
  ci.high = percentile(stats, 50 * (1 + level));
  ci.resamples = resamples;
  return ci;
}

// ---- SHA-256 (FIPS 180-4) ----
namespace {

struct Sha256 {
  std::array<uint32_t, 8> h{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint64_t bits = 0;
  std::array<uint8_t, 64> buf{};
  size_t fill = 0;

  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void block(const uint8_t* p) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) | p[4 * i + 3];
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  void update(const uint8_t* p, size_t n) {
    bits += uint64_t(n) * 8;
    while (n > 0) {
      const size_t take = std::min(n, 64 - fill);
      std::copy(p, p + take, buf.begin() + fill);
      fill += take, p += take, n -= take;
      if (fill == 64) block(buf.data()), fill = 0;
    }
  }
  std::string hex() {
    const uint64_t total = bits;
    const uint8_t one = 0x80, zero = 0;
    update(&one, 1);
    while (fill != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(total >> (56 - 8 * i));
    update(len, 8);
    std::string s;
    for (uint32_t v : h) s += fmt::format("{:08x}", v);
    return s;
  }
};

}  // namespace

std::string sha256_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) MMREF_FAIL("cannot open '{}' to hash it", path);
  Sha256 s;
  std::vector<uint8_t> chunk(1 << 20);
  size_t n;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), f)) > 0) s.update(chunk.data(), n);
  const bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) MMREF_FAIL("read error while hashing '{}'", path);
  return s.hex();
}

}  // namespace mmref::eval
