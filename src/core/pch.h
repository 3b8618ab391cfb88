// The one precompiled header for mmref's C++ targets (STYLE.md, "Build time on 2 cores").
// Only headers nearly every translation unit needs; narrow torch headers, never torch/torch.h.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/types.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
