// Chunk-based attention masks for streaming Conformers, as wenet builds them (U2 "dynamic chunk
// training"): frame i (after subsampling) attends frames of its own chunk and of up to `num_left_chunks`
// chunks before it (all of them when < 0), never later chunks.
//   subsequent_chunk_mask(4, 2, -1) = [[1,1,0,0],[1,1,0,0],[1,1,1,1],[1,1,1,1]]
// Which chunk size a forward uses (choose_chunk, wenet's add_optional_chunk_mask):
//   use_dynamic_chunk, training:  c ~ U{1..T'}; c > T'/2 -> full context (T'), else c = c % 25 + 1;
//                                 with use_dynamic_left_chunk, left ~ U{0..(T'-1)/c - 1}, else all left
//   use_dynamic_chunk, inference: decoding_chunk_size < 0 or 0 -> full context; > 0 -> that size with
//                                 num_decoding_left_chunks (wenet's recognize.py: -1 full, 16 streaming)
//   static_chunk_size > 0:        that size (training and inference), num_decoding_left_chunks at inference
//   otherwise:                    full context; at inference decoding_chunk_size > 0 still applies
//                                 (beyond wenet, which ignores it: to measure what a full-context model
//                                 loses when streamed).
// With a causal conv module (causal: true) the encoder output of a chunk then depends only on input up
// to the chunk's end (plus the subsampling's look-ahead), which tests/models/conformer_test.cpp checks.
//
// Ref: wenet-e2e/wenet wenet/utils/mask.py (subsequent_chunk_mask, add_optional_chunk_mask); Yao et al.,
// "WeNet: Production Oriented Streaming and Non-streaming End-to-End Speech Recognition Toolkit" (2021).
#pragma once
#include <cstdint>

#include <c10/core/Device.h>

namespace at {
class Tensor;
}

namespace mmref::models {

// (size, size) bool, true = may attend.
at::Tensor subsequent_chunk_mask(int64_t size, int64_t chunk_size, int64_t num_left_chunks, c10::Device device);

struct ChunkChoice {
  int64_t chunk_size = 0;        // 0: full context (no mask)
  int64_t num_left_chunks = -1;  // < 0: every earlier chunk
};

struct ChunkSettings {
  int64_t static_chunk_size = 0;
  bool use_dynamic_chunk = false;
  bool use_dynamic_left_chunk = false;
  int64_t decoding_chunk_size = 0;        // inference only
  int64_t num_decoding_left_chunks = -1;  // inference only
};

// The chunk for one forward over max_len frames; training draws from libtorch's default generator.
ChunkChoice choose_chunk(const ChunkSettings& s, int64_t max_len, bool training);

}  // namespace mmref::models
