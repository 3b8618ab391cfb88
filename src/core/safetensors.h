// safetensors reader and writer (Ref: huggingface/safetensors, docs "Format" section).
//
// File layout:
//   bytes 0..7      N = header length, unsigned 64-bit little-endian
//   bytes 8..8+N    UTF-8 JSON object {name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
//                   "__metadata__": {string: string}}; we pad it with spaces to a multiple of 8
//   bytes 8+N..     the data block; offsets are relative to its start; tensors are contiguous,
//                   row-major, little-endian
//
// The reader mmaps the file read-only and validates the whole header on open (every entry's dtype,
// shape and offsets against the file size), so `get` never reads out of bounds, whatever the bytes.
// `get` copies a tensor out of the mapping: the result owns its memory and outlives the file object.
// The writer stores keys in sorted order and streams tensor by tensor through fs::atomic_write.
//
// Tests: tests/core/safetensors_test.cpp; throughput: benchmarks/core/safetensors_bench.cpp.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mmref {

enum class StDType { F16, BF16, F32, F64, I64, I32, I16, I8, U8, BOOL };

// "F16", "BF16", ... as the format spells them.
const char* st_dtype_name(StDType d);
// Bytes per element (BOOL is stored as one byte).
int64_t st_dtype_size(StDType d);
torch::Dtype st_to_torch(StDType d);
// Throws mmref::Error for dtypes safetensors cannot hold here (complex, quantized, ...).
StDType st_from_torch(torch::Dtype d);

struct StTensorInfo {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // byte offsets relative to the start of the data block
};

class SafetensorsFile {
 public:
  // Maps `path` and validates its header; throws mmref::Error naming the file and the problem.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::vector<StTensorInfo>& tensors() const { return tensors_; }  // sorted by name
  bool contains(const std::string& name) const;
  // Throws mmref::Error naming the file and the key when absent.
  const StTensorInfo& info(const std::string& name) const;
  // A CPU tensor that owns its memory (copied from the mapping), converted to `as` when given.
  torch::Tensor get(const std::string& name, std::optional<torch::Dtype> as = std::nullopt) const;
  // The "__metadata__" string map (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  // Size of the whole file and of its data block in bytes.
  uint64_t file_size() const { return size_; }
  uint64_t data_size() const { return size_ - data_start_; }

 private:
  SafetensorsFile() = default;
  void unmap() noexcept;

  std::string path_;
  const uint8_t* base_ = nullptr;  // the mapping (nullptr when moved from)
  uint64_t size_ = 0;              // file size
  uint64_t data_start_ = 0;        // 8 + header length
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Every tensor of a file, converted to `as` when given.
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::optional<torch::Dtype> as = std::nullopt);

// The file's bytes for `tensors` (any device or strides: written as contiguous CPU data; keys in sorted
// order; header padded with spaces to a multiple of 8) with optional string metadata.
std::string safetensors_bytes(const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Writes the same bytes atomically (fs::atomic_write), streaming one tensor at a time.
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace mmref
