// Batched Inception features with a cache; see inception_features.h.
#include "eval/inception_features.h"

#include <chrono>
#include <memory>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <torch/utils.h>

#include "core/error.h"
#include "data/dataset/feature_cache.h"

namespace mmref::eval {

const char* resize_name(models::FidResize r) {
  return r == models::FidResize::kLegacyBilinear ? "legacy" : "antialias";
}

models::FidResize parse_resize(const std::string& name) {
  if (name == "legacy") return models::FidResize::kLegacyBilinear;
  if (name == "antialias") return models::FidResize::kAntialiasBilinear;
  throw ConfigError(fmt::format("resize: '{}' is not one of legacy (pytorch-fid: bilinear, no antialias), antialias "
                                "(clean-fid style)",
                                name));
}

InceptionFeatures extract_inception(const ImageSet& set, models::FidInceptionV3& net, const InceptionRunOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = set.size(), width = opt.want_logits ? 2048 + 1008 : 2048;
  std::unique_ptr<data::FeatureCache> cache;
  if (!opt.cache_dir.empty()) {
    const std::string key = fmt::format("fid_inception weights={} resize={} logits={}", opt.weights_sha256,
                                        resize_name(opt.resize), opt.want_logits);
    cache = std::make_unique<data::FeatureCache>(
        fmt::format("{}/inception_{}_{}{}.h5", opt.cache_dir, opt.weights_sha256.substr(0, 12), resize_name(opt.resize),
                    opt.want_logits ? "_logits" : ""),
        key);
  }
  at::Tensor all = at::empty({n, width}, at::kFloat);
  InceptionFeatures out;
  torch::NoGradGuard ng;
  const auto& items = set.items();
  std::vector<int64_t> uncached;
  for (int64_t i = 0; i < n; ++i) {
    const auto& it = items[static_cast<size_t>(i)];
    if (cache && cache->has(it.id(), it.path)) {
      all[i].copy_(cache->get(it.id()).reshape({width}));
      ++out.cache_hits;
    } else {
      uncached.push_back(i);
    }
  }
  for (size_t b = 0; b < uncached.size();) {
    // Runs of consecutive indices load in one call (videos decode once per run).
    size_t e = b + 1;
    while (e < uncached.size() && static_cast<int64_t>(e - b) < opt.batch_size && uncached[e] == uncached[e - 1] + 1) ++e;
    const std::vector<at::Tensor> imgs = set.load(uncached[b], static_cast<int64_t>(e - b));
    std::vector<at::Tensor> feats;
    // Equal-size images batch; the model resizes each to 299 itself.
    for (size_t s = 0; s < imgs.size();) {
      size_t t = s + 1;
      while (t < imgs.size() && imgs[t].sizes() == imgs[s].sizes()) ++t;
      std::vector<at::Tensor> group(imgs.begin() + static_cast<long>(s), imgs.begin() + static_cast<long>(t));
      const auto o = net->forward(at::stack(group), opt.want_logits, false, opt.resize);
      feats.push_back(opt.want_logits ? at::cat({o.pool3, o.logits}, 1) : o.pool3);
      s = t;
    }
    const at::Tensor f = at::cat(feats, 0);
    for (size_t k = b; k < e; ++k) {
      const int64_t i = uncached[k];
      all[i].copy_(f[static_cast<int64_t>(k - b)]);
      if (cache) {
        const auto& it = items[static_cast<size_t>(i)];
        cache->put(it.id(), it.path, f[static_cast<int64_t>(k - b)].unsqueeze(0));
      }
    }
    b = e;
  }
  if (!at::isfinite(all).all().item<bool>()) {
    MMREF_FAIL("Inception features of '{}' contain NaN/Inf (bad weights file or corrupt images)", set.source());
  }
  out.pool3 = all.narrow(1, 0, 2048).contiguous();
  if (opt.want_logits) out.logits = all.narrow(1, 2048, 1008).contiguous();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace mmref::eval
