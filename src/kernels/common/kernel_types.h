// Torch-free types shared by the CUDA kernels (*.cu) and their libtorch bindings (*_binding.cpp).
#pragma once
#include <cstdint>

namespace mmref::kernels {

// Element type of a kernel's tensors; math is always fp32 (fp32 accumulation for fp16/bf16).
enum class KDType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

}  // namespace mmref::kernels
