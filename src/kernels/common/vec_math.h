// Scalar math written so gcc vectorises the loops that call it (no libm calls, no branches): the CPU
// kernels' elementwise steps (attention softmax, SiLU) use these instead of std::exp.
// always_inline: they must inline into the target_clones (AVX2) callers, which gcc otherwise declines.
#pragma once
#include <cstdint>
#include <cstring>

namespace mmref::kernels::detail {

// expf for x <= 0: Cephes polynomial, ~1 ulp; x < -87 gives exactly 0.
__attribute__((always_inline)) inline float exp_nonpos(float x) {
  const float xc = x < -87.0f ? -87.0f : x;
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < -87.0f ? 0.0f : y * scale;
}

// 1 / (1 + exp(-z)) without overflow: e = exp(-|z|) <= 1, sigmoid = z >= 0 ? 1 / (1 + e) : e / (1 + e).
__attribute__((always_inline)) inline float sigmoid(float z) {
  const float az = z < 0 ? -z : z;
  const float e = exp_nonpos(-az);
  const float inv = 1.0f / (1.0f + e);
  return z >= 0 ? inv : e * inv;
}

}  // namespace mmref::kernels::detail
