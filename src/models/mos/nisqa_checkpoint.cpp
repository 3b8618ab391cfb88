// NISQA checkpoint reading and writing; see nisqa_checkpoint.h.
#include "models/mos/nisqa_checkpoint.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/pth_reader.h"
#include "core/safetensors.h"

namespace mmref::models {
namespace {

using nlohmann::json;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

NisqaCheckpoint read_nisqa_pth(const std::string& path) {
  PthContents c;
  try {
    c = load_pth_contents(path);
  } catch (const Error& e) {
    MMREF_FAIL("NISQA checkpoint: {}", first_line(e.what()));
  }
  if (!c.tree.is_object())
    MMREF_FAIL(
        "NISQA checkpoint '{}' does not hold a dict (expected {{'args': ..., 'model_state_dict': ...}})",
        path);
  const auto sd = c.tree.find("model_state_dict");
  if (sd == c.tree.end() || !sd->is_object()) {
    MMREF_FAIL(
        "NISQA checkpoint '{}' has no 'model_state_dict' dict (expected NISQA's layout {{'args': ..., "
        "'model_state_dict': ...}}; for a bare state dict use safetensors plus an args JSON)",
        path);
  }
  const auto args = c.tree.find("args");
  if (args == c.tree.end() || !args->is_object())
    MMREF_FAIL("NISQA checkpoint '{}' has no 'args' dict: the model options cannot be known", path);
  NisqaCheckpoint out;
  out.args = *args;
  for (const auto& [key, v] : sd->items()) {
    const auto t = v.is_object() ? v.find("__tensor__") : v.end();
    if (!v.is_object() || t == v.end() || !t->is_string())
      MMREF_FAIL("NISQA checkpoint '{}': model_state_dict['{}'] is not a dense tensor", path, key);
    out.state_dict[key] = c.tensors.at(t->get<std::string>());
  }
  return out;
}

NisqaCheckpoint read_nisqa_safetensors(const std::string& path, const std::string& args_json_path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  NisqaCheckpoint out;
  std::string text;
  std::string where;
  if (!args_json_path.empty()) {
    text = fs::read_file(args_json_path);
    where = "'" + args_json_path + "'";
  } else {
    const auto it = f.metadata().find("args");
    if (it == f.metadata().end()) {
      MMREF_FAIL(
          "NISQA weights '{}': no args JSON given and no __metadata__[\"args\"] in the file (pass the "
          "args JSON path, or write the file with write_nisqa_safetensors)",
          path);
    }
    text = it->second;
    where = "'" + path + "' __metadata__[\"args\"]";
  }
  try {
    out.args = json::parse(text);
  } catch (const json::exception& e) {
    MMREF_FAIL("NISQA args {}: not valid JSON: {}", where, first_line(e.what()));
  }
  if (!out.args.is_object()) MMREF_FAIL("NISQA args {}: expected a JSON object of NISQA options", where);
  for (const auto& info : f.tensors()) out.state_dict[info.name] = f.get(info.name);
  return out;
}

void write_nisqa_safetensors(const std::string& path, const NisqaCheckpoint& ckpt) {
  save_safetensors(path, ckpt.state_dict, {{"args", ckpt.args.dump()}});
}

}  // namespace mmref::models
