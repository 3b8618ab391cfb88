// Point helpers of the model bench targets; see model_target_common.h.
#include "bench/model_target_common.h"

#include <filesystem>

#include <fmt/format.h>

#include "bench/environment.h"
#include "core/error.h"

namespace mmref::bench {

c10::ScalarType point_dtype(const Point& p) {
  const std::string d = p.get_string("dtype", "float32");
  if (d == "float32" || d == "fp32") return at::kFloat;
  if (d == "bfloat16" || d == "bf16") return at::kBFloat16;
  if (d == "float16" || d == "fp16") return at::kHalf;
  MMREF_FAIL("bench point: dtype '{}' is unknown (expected float32, bfloat16 or float16)", d);
}

KernelBackends point_backends(const Point& p) {
  const std::string all = p.get_string("backend", "mmref");
  KernelBackends b;
  try {
    b.attention = kernels::parse_attention_backend(p.get_string("attention_backend", all));
    b.conv = kernels::parse_conv_backend(p.get_string("conv_backend", all));
  } catch (const Error& e) {
    MMREF_FAIL("bench point: {}", e.what());
  }
  return b;
}

int64_t point_int_at_least(const Point& p, const std::string& target, const std::string& key,
                           int64_t fallback, int64_t lo) {
  const int64_t v = p.get_int(key, fallback);
  if (v < lo) MMREF_FAIL("{}: '{}' must be >= {}, got {}", target, key, lo, v);
  return v;
}

config::Node config_section(const std::string& path, const std::string& section) {
  std::string file = path;
  if (!std::filesystem::exists(file) && std::filesystem::path(path).is_relative()) {
    file = (std::filesystem::path(repo_root()) / path).string();
  }
  if (!std::filesystem::exists(file)) {
    MMREF_FAIL("bench: model config '{}' does not exist (relative paths: from the working directory, then "
               "from the repository root {})",
               path, repo_root());
  }
  const config::Node root = config::load_file(file);
  const config::Node* s = root.find(section);
  if (!s || !s->is_map()) MMREF_FAIL("bench: model config '{}' has no '{}:' map", path, section);
  return *s;
}

}  // namespace mmref::bench
