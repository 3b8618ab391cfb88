#include "models/asr/chunk_mask.h"

#include <algorithm>

#include <ATen/ATen.h>

#include "core/error.h"

namespace mmref::models {

at::Tensor subsequent_chunk_mask(int64_t size, int64_t chunk_size, int64_t num_left_chunks, c10::Device device) {
  if (size < 0 || chunk_size < 1) MMREF_FAIL("subsequent_chunk_mask: size {} and chunk size {} (must be >= 1)", size, chunk_size);
  const auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor chunk = at::arange(size, opts).div(chunk_size, "floor");  // chunk index of each frame
  const at::Tensor ending = ((chunk + 1) * chunk_size).clamp_max(size).unsqueeze(1);  // (T, 1)
  const at::Tensor start = num_left_chunks < 0 ? at::zeros_like(ending)
                                               : ((chunk - num_left_chunks) * chunk_size).clamp_min(0).unsqueeze(1);
  const at::Tensor j = at::arange(size, opts).unsqueeze(0);  // (1, T)
  return j.ge(start).logical_and(j.lt(ending));
}

ChunkChoice choose_chunk(const ChunkSettings& s, int64_t max_len, bool training) {
  if (s.use_dynamic_chunk) {
    if (!training) {
      if (s.decoding_chunk_size <= 0) return {};
      return {s.decoding_chunk_size, s.num_decoding_left_chunks};
    }
    if (max_len < 1) return {};
    int64_t c = at::randint(1, max_len + 1, {1}, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
    if (c > max_len / 2) return {};  // full context (wenet: enable_full_context)
    c = c % 25 + 1;
    int64_t left = -1;
    if (s.use_dynamic_left_chunk) {
      const int64_t max_left = (max_len - 1) / c;
      left = max_left > 0 ? at::randint(0, max_left, {1}, at::TensorOptions().dtype(at::kLong)).item<int64_t>() : 0;
    }
    return {c, left};
  }
  if (s.static_chunk_size > 0) return {s.static_chunk_size, training ? -1 : s.num_decoding_left_chunks};
  if (!training && s.decoding_chunk_size > 0) return {s.decoding_chunk_size, s.num_decoding_left_chunks};
  return {};
}

}  // namespace mmref::models
