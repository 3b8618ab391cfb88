// Point-reading helpers the model bench targets share (targets_asr.cpp, targets_diffusion.cpp): dtype and
// kernel-backend keys, positive sizes, and the `config:` file's model section.
//
//   dtype: float32 | bfloat16 | float16        (default float32)
//   backend: mmref | reference | torch         every kernel the model dispatches (kernels/dispatch.h)
//   attention_backend / conv_backend           override `backend` for attention / conv and GroupNorm+SiLU
#pragma once
#include <cstdint>
#include <string>

#include <c10/core/ScalarType.h>

#include "bench/target.h"
#include "core/config.h"
#include "kernels/attention/attention.h"
#include "kernels/conv/conv.h"

namespace mmref::bench {

struct KernelBackends {
  kernels::AttentionBackend attention = kernels::AttentionBackend::kMmref;
  kernels::ConvBackend conv = kernels::ConvBackend::kMmref;
};

// `dtype` of the point (default float32); an unknown name throws mmref::Error listing the known ones.
c10::ScalarType point_dtype(const Point& p);
// `backend`, `attention_backend`, `conv_backend` (see the top of this file).
KernelBackends point_backends(const Point& p);
// An integer key that must be >= lo; throws mmref::Error naming the target and the key otherwise.
int64_t point_int_at_least(const Point& p, const std::string& target, const std::string& key,
                           int64_t fallback, int64_t lo);
// The `section` map of the YAML file at `path` (base:/include: resolved; a relative path missing from the
// working directory is looked up under environment.h's repo_root()), or an error naming the file.
// The returned Node is owned by the caller; pass it to a config::Reader.
config::Node config_section(const std::string& path, const std::string& section);

}  // namespace mmref::bench
