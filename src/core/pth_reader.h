// PyTorch .pth loading: a torch.save()'d state dict (zip format, torch >= 1.6) read without Python.
// The zip container is read with libtorch's PyTorchStreamReader; the pickle inside with a restricted
// unpickler (dicts, lists, tuples, numbers, strings, tensors; any other class becomes an opaque value
// and is never called). Tests: tests/core/state_dict_test.cpp (PthTest).
#pragma once
#include <map>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mmref {

// A dict of tensors, or the one nested under "state_dict"/"model"/"module"; non-tensor values are
// skipped. Missing, corrupt, legacy (pre-1.6) or not-a-dict files get an mmref::Error naming the file.
std::map<std::string, at::Tensor> load_pth(const std::string& path);

// The whole object of a torch.save() file, for checkpoints that hold more than a state dict (NISQA's
// {'args': {...}, 'model_state_dict': ...}): `tree` is the object as JSON (dicts with str or int keys,
// lists and tuples as arrays, numbers, strings, None; any other class "<module.Class>"; each tensor as
// {"__tensor__": PATH}), `tensors` maps each PATH -- the '/'-joined keys and indices leading to it, e.g.
// "model_state_dict/cnn.conv.weight" -- to the tensor. Same errors as load_pth for unreadable files.
struct PthContents {
  nlohmann::json tree;
  std::map<std::string, at::Tensor> tensors;
};
PthContents load_pth_contents(const std::string& path);

}  // namespace mmref
