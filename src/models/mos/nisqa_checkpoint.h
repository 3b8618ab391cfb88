// NISQA checkpoint files: the released nisqa.tar / nisqa_tts.tar / nisqa_mos_only.tar are torch.save()
// zip archives of a training-state dict
//   {'args': {...every option of the run...}, 'model_state_dict': OrderedDict, 'optimizer_state_dict': ...,
//    'db_results': pandas.DataFrame, 'results': {...}, 'epoch': int, 'runname': str, ...}
// (NISQA_model.py _saveResults). They are read with core's restricted unpickler (load_pth_contents in
// core/pth_reader.h): the nested 'model_state_dict' tensors and the non-tensor 'args' dict; every other
// class (datetime, pandas, numpy, argparse) is an opaque placeholder that is never called, as
// torch.load(weights_only=True).
// The alternative layout is a safetensors file with the args as JSON, either in the file's __metadata__
// under "args" or in a separate JSON file (write_nisqa_safetensors writes the first).
//
// Ref: CPython Lib/pickle.py, Lib/pickletools.py (opcodes); torch/serialization.py (_save, _load);
//      gabrielmittag/NISQA nisqa/NISQA_model.py (_saveResults, _loadModel).
// Tests: tests/models/nisqa_test.cpp (NisqaReference: a checkpoint written by torch.save in Python;
//        Nisqa: safetensors round trips and error messages).
#pragma once
#include <map>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mmref::models {

struct NisqaCheckpoint {
  nlohmann::json args = nlohmann::json::object();  // the run's 'args' dict; Python objects of other
                                                   // classes are strings "<module.Class>"
  std::map<std::string, at::Tensor> state_dict;    // 'model_state_dict'
};

// A torch.save() zip archive holding a dict with 'args' and 'model_state_dict'. Missing file, legacy
// (pre-1.6) format, corrupt pickle or missing entries: mmref::Error naming the file and what to do.
NisqaCheckpoint read_nisqa_pth(const std::string& path);

// A safetensors file; args from `args_json_path` when non-empty, else from __metadata__["args"].
NisqaCheckpoint read_nisqa_safetensors(const std::string& path, const std::string& args_json_path = "");

// Writes the state dict with the args JSON in __metadata__["args"] (atomic write).
void write_nisqa_safetensors(const std::string& path, const NisqaCheckpoint& ckpt);

}  // namespace mmref::models
