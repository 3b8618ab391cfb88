// Module state dicts: collect a module's parameters and buffers by dotted name, load a name->tensor map
// into a module with a report of what did not match, and read weights from safetensors files or from
// PyTorch torch.save() archives (.pth/.pt/.bin, zip format) without Python.
//
// .pth files are read by a restricted unpickler of our own (state_dict.cpp), not torch::pickle_load:
// libtorch 1.13's unpickler turns `collections.OrderedDict` (what every Python `state_dict()` is) into
// None and then fails on its items. Ours understands only what state dicts and training checkpoints use
// (dicts, lists, tuples, numbers, strings, tensors); other classes become opaque placeholders and are
// never executed, like torch.load(weights_only=True).
//
// Tests: tests/core/state_dict_test.cpp (fixture made by tests/fixtures/make_tiny_pth.py).
#pragma once
// load_pth lives in core/pth_reader.h (included here for callers of load_weights).
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "core/pth_reader.h"

namespace torch::nn {
class Module;
}

namespace mmref {

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module (minus ignored)
  std::vector<std::string> mismatched;  // "name: file [3, 4] vs module [4, 3]"
  std::vector<std::string> ignored;     // unexpected, but matched by LoadOptions::ignore_unexpected_regex
  std::vector<std::string> loaded;
  // Nothing missing, unexpected or mismatched.
  bool ok() const;
  // One line: "loaded 12 tensors; missing 1 (a.b); unexpected 2 (x, y); shape mismatch 1 (...)",
  // at most 8 names per list, then "... N more".
  std::string summary() const;
};

struct LoadOptions {
  bool strict = true;
  // Unexpected keys matching any of these (std::regex_search on the name after prefix_to_strip is
  // removed; anchor with ^...$ for a full match) are ignored instead of reported.
  std::vector<std::string> ignore_unexpected_regex;
  // Removed from the start of every file key that has it ("module." from DataParallel checkpoints).
  std::string prefix_to_strip;
};

// All parameters and buffers by dotted name, recursively (named_parameters + named_buffers). The
// tensors are the module's own, not copies.
std::map<std::string, torch::Tensor> module_state_dict(const torch::nn::Module& m);

// Copies every matching tensor into the module under NoGradGuard (copy_ converts dtype and device to
// the module's). Names in the report are after prefix_to_strip is removed. strict: when anything is
// missing, unexpected or mismatched, loads nothing and throws mmref::Error whose message starts with
// report.summary(); non-strict: loads what matches and returns the report.
LoadReport load_state_dict(torch::nn::Module& m, const std::map<std::string, torch::Tensor>& sd,
                           const LoadOptions& opt = {});

// Safetensors (recognised by its header) or a torch.save zip archive ("PK" magic); anything else is an
// mmref::Error naming the file.
std::map<std::string, torch::Tensor> load_weights(const std::string& path);

}  // namespace mmref
