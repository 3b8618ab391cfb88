// Checkpoints; see checkpoint.h.
#include "core/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"

namespace mmref {
namespace stdfs = std::filesystem;

at::Tensor bytes_to_tensor(const std::string& bytes) {
  at::Tensor t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

std::string tensor_to_bytes(const at::Tensor& t) {
  MMREF_CHECK(t.scalar_type() == torch::kUInt8, "expected a U8 tensor, got {}", toString(t.scalar_type()));
  at::Tensor c = t.contiguous().cpu();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
}

void Checkpoint::add_module(const std::string& prefix, const torch::nn::Module& m) {
  for (const auto& [name, t] : module_state_dict(m)) {
    tensors[prefix + "." + name] = t.detach().cpu().clone();
  }
}

void Checkpoint::load_module(const std::string& prefix, torch::nn::Module& m) const {
  std::map<std::string, at::Tensor> sd;
  const std::string p = prefix + ".";
  for (const auto& [name, t] : tensors) {
    if (name.rfind(p, 0) == 0) sd[name.substr(p.size())] = t;
  }
  LoadOptions opt;
  opt.strict = true;
  load_state_dict(m, sd, opt);
}

void Checkpoint::add_optimizer(const std::string& key, torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t n) -> size_t {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  tensors["optimizer." + key] = bytes_to_tensor(bytes);
}

void Checkpoint::load_optimizer(const std::string& key, torch::optim::Optimizer& opt, const c10::Device& device) const {
  auto it = tensors.find("optimizer." + key);
  if (it == tensors.end()) MMREF_FAIL("checkpoint has no optimizer state 'optimizer.{}'", key);
  const std::string bytes = tensor_to_bytes(it->second);
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size(), device);
  opt.load(archive);
}

void Checkpoint::add_cpu_rng() {
  tensors["rng.cpu"] = at::detail::getDefaultCPUGenerator().get_state().clone();
}

void Checkpoint::load_cpu_rng() const {
  auto it = tensors.find("rng.cpu");
  if (it == tensors.end()) MMREF_FAIL("checkpoint has no CPU generator state 'rng.cpu'");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(it->second);
}

CheckpointManager::CheckpointManager(std::string dir, int keep_last)
    : dir_(std::move(dir)), keep_last_(std::max(1, keep_last)) {
  fs::make_dirs(dir_);
}

std::string CheckpointManager::save(const Checkpoint& ck) {
  const std::string path = fmt::format("{}/ckpt-{:08d}.safetensors", dir_, ck.step);
  nlohmann::json meta = ck.meta;
  meta["step"] = ck.step;
  save_safetensors(path, ck.tensors, {{"mmref", meta.dump()}});
  fs::atomic_write(dir_ + "/latest", stdfs::path(path).filename().string() + "\n");
  auto all = list();
  const int excess = static_cast<int>(all.size()) - keep_last_;
  for (int i = 0; i < excess; ++i) {
    if (all[i] == path) continue;
    std::error_code ec;
    stdfs::remove(all[i], ec);
  }
  return path;
}

std::vector<std::string> CheckpointManager::list() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && name.size() > 12 &&
        name.compare(name.size() - 12, 12, ".safetensors") == 0) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());  // zero-padded steps sort lexically
  return out;
}

std::optional<std::string> CheckpointManager::latest() const {
  auto all = list();
  // Prefer the pointer file; fall back to scanning, newest first, for a file that opens cleanly.
  if (fs::exists(dir_ + "/latest")) {
    std::string name = fs::read_file(dir_ + "/latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    const std::string p = dir_ + "/" + name;
    if (std::find(all.begin(), all.end(), p) != all.end()) {
      try {
        SafetensorsFile::open(p);
        return p;
      } catch (const Error&) {
      }
    }
  }
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      SafetensorsFile::open(*it);
      return *it;
    } catch (const Error&) {
    }
  }
  return std::nullopt;
}

Checkpoint load_checkpoint(const std::string& path) {
  auto file = SafetensorsFile::open(path);
  Checkpoint ck;
  auto it = file.metadata().find("mmref");
  if (it == file.metadata().end()) {
    MMREF_FAIL("'{}' is a safetensors file but not an mmref checkpoint (no 'mmref' metadata)", path);
  }
  try {
    ck.meta = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    MMREF_FAIL("'{}': checkpoint metadata is not valid JSON ({})", path, e.what());
  }
  ck.step = ck.meta.value("step", int64_t{0});
  for (const auto& info : file.tensors()) ck.tensors[info.name] = file.get(info.name);
  return ck;
}

}  // namespace mmref
