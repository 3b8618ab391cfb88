// PyTorch .pth loading: a torch.save()'d state dict (zip format, torch >= 1.6) read without Python.
// The zip container is read with libtorch's PyTorchStreamReader; the pickle inside with a restricted
// unpickler (dicts, lists, tuples, numbers, strings, tensors; any other class becomes an opaque value
// and is never called). Tests: tests/core/state_dict_test.cpp (PthTest).
#pragma once
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace mmref {

// A dict of tensors, or the one nested under "state_dict"/"model"/"module"; non-tensor values are
// skipped. Missing, corrupt, legacy (pre-1.6) or not-a-dict files get an mmref::Error naming the file.
std::map<std::string, at::Tensor> load_pth(const std::string& path);

}  // namespace mmref
