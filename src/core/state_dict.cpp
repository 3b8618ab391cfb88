// State-dict collection and loading, and weight-file dispatch; see state_dict.h.
#include "core/state_dict.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <unordered_map>
#include <utility>

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include "core/error.h"
#include "core/pth_reader.h"
#include "core/safetensors.h"

namespace mmref {
namespace {

std::string shape_str(c10::IntArrayRef s) { return fmt::format("[{}]", fmt::join(s, ", ")); }


std::string list_names(const std::vector<std::string>& v) {
  constexpr size_t kMax = 8;
  std::vector<std::string> head(v.begin(), v.begin() + std::min(v.size(), kMax));
  return fmt::format("{}{}", fmt::join(head, ", "),
                     v.size() > kMax ? fmt::format(", ... {} more", v.size() - kMax) : "");
}

}  // namespace

// ---- LoadReport ------------------------------------------------------------------------------------

bool LoadReport::ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }

std::string LoadReport::summary() const {
  std::string s = fmt::format("loaded {} tensor{}", loaded.size(), loaded.size() == 1 ? "" : "s");
  auto add = [&](const char* what, const std::vector<std::string>& v) {
    if (!v.empty()) s += fmt::format("; {} {} ({})", what, v.size(), list_names(v));
  };
  add("missing", missing);
  add("unexpected", unexpected);
  add("shape mismatch", mismatched);
  add("ignored", ignored);
  return s;
}

// ---- module state dicts ----------------------------------------------------------------------------

std::map<std::string, torch::Tensor> module_state_dict(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : m.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

LoadReport load_state_dict(torch::nn::Module& m, const std::map<std::string, torch::Tensor>& sd,
                           const LoadOptions& opt) {
  std::vector<std::regex> ignore;
  for (const auto& re : opt.ignore_unexpected_regex) {
    try {
      ignore.emplace_back(re);
    } catch (const std::regex_error& e) {
      MMREF_FAIL("bad ignore_unexpected_regex '{}': {}", re, e.what());
    }
  }
  auto own = module_state_dict(m);
  LoadReport r;
  std::map<std::string, torch::Tensor> matched;  // module name -> file tensor of the same shape
  std::map<std::string, std::string> source;     // module name -> the file key that matched it first
  for (const auto& [key, t] : sd) {
    std::string name = key;
    const auto& pre = opt.prefix_to_strip;
    if (!pre.empty() && key.size() > pre.size() && key.compare(0, pre.size(), pre) == 0)
      name = key.substr(pre.size());
    auto it = own.find(name);
    if (it == own.end()) {
      const bool skip = std::any_of(ignore.begin(), ignore.end(),
                                    [&](const std::regex& re) { return std::regex_search(name, re); });
      (skip ? r.ignored : r.unexpected).push_back(name);
      continue;
    }
    if (!source.emplace(name, key).second) {
      r.mismatched.push_back(fmt::format("{}: given twice (as '{}' and '{}')", name, source[name], key));
      matched.erase(name);
      continue;
    }
    if (!t.defined()) {
      r.mismatched.push_back(fmt::format("{}: file tensor is undefined", name));
    } else if (t.sizes() != it->second.sizes()) {
      r.mismatched.push_back(
          fmt::format("{}: file {} vs module {}", name, shape_str(t.sizes()), shape_str(it->second.sizes())));
    } else {
      matched[name] = t;
    }
  }
  for (const auto& [name, t] : own) {
    if (!source.count(name)) r.missing.push_back(name);
  }
  if (opt.strict && !r.ok()) {
    MMREF_FAIL(
        "{}; nothing was loaded (strict load: fix the names, or set LoadOptions::strict = false, "
        "prefix_to_strip or ignore_unexpected_regex)",
        r.summary());
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, src] : matched) {
    own.at(name).copy_(src);
    r.loaded.push_back(name);
  }
  return r;
}

// ---- dispatch -------------------------------------------------------------------------------------

std::map<std::string, torch::Tensor> load_weights(const std::string& path) {
  uint8_t b[9] = {};
  std::streamsize n = 0;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) MMREF_FAIL("cannot open '{}': {} (check the path)", path, std::strerror(errno));
    in.read(reinterpret_cast<char*>(b), sizeof(b));
    n = in.gcount();
  }
  if (n >= 4 && std::memcmp(b, "PK\x03\x04", 4) == 0) return load_pth(path);
  if (n >= 9 && b[8] == '{') return load_safetensors(path);
  if (n >= 1 && b[0] == 0x80) return load_pth(path);  // legacy torch.save: load_pth explains
  MMREF_FAIL(
      "'{}' is neither a safetensors file nor a torch.save zip archive (first bytes {:02x}); "
      "convert the weights to safetensors",
      path, fmt::join(b, b + n, " "));
}

}  // namespace mmref
