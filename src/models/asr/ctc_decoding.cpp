// CTC greedy and prefix beam search; see ctc_decoding.h.
#include "models/asr/ctc_decoding.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <ATen/Functions.h>

#include "core/error.h"

namespace mmref::models {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double log_add(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

at::Tensor checked(const at::Tensor& lp, int64_t& length) {
  if (lp.dim() != 2) MMREF_FAIL("CTC decoding: expected (T, V) log-probabilities, got {} dims", lp.dim());
  if (length < 0 || length > lp.size(0)) length = lp.size(0);
  return lp.narrow(0, 0, length).to(at::kDouble).contiguous();
}

}  // namespace

std::vector<int64_t> CtcHypothesis::ids() const {
  std::vector<int64_t> v;
  for (const auto& t : tokens) v.push_back(t.id);
  return v;
}

CtcHypothesis ctc_greedy(const at::Tensor& log_probs, int64_t length, int64_t blank) {
  const at::Tensor lp = checked(log_probs, length);
  const auto best = std::get<0>(lp.max(1)), arg = std::get<1>(lp.max(1));
  const auto a = arg.accessor<int64_t, 1>();
  const auto b = best.accessor<double, 1>();
  CtcHypothesis h;
  int64_t prev = -1;
  for (int64_t t = 0; t < length; ++t) {
    const int64_t id = a[t];
    h.log_prob += b[t];
    if (id != blank && id != prev) {
      h.tokens.push_back({id, t, t});
    } else if (id != blank && id == prev && !h.tokens.empty()) {
      h.tokens.back().end_frame = t;
    }
    prev = id;
  }
  return h;
}

std::vector<CtcHypothesis> ctc_prefix_beam_search(const at::Tensor& log_probs, int64_t length,
                                                  const CtcBeamOptions& opt) {
  if (opt.beam < 1) MMREF_FAIL("CTC beam search: beam must be >= 1, got {}", opt.beam);
  const at::Tensor lp = checked(log_probs, length);
  const int64_t V = lp.size(1);
  const auto acc = lp.accessor<double, 2>();
  struct Beam {
    double pb = kNegInf, pnb = kNegInf;  // ending in blank / in the last token
    std::vector<CtcToken> toks;
    double total() const { return log_add(pb, pnb); }
  };
  std::map<std::vector<int64_t>, Beam> beams;
  beams[{}].pb = 0;
  for (int64_t t = 0; t < length; ++t) {
    std::vector<int64_t> cand;
    for (int64_t v = 0; v < V; ++v) {
      if (acc[t][v] >= opt.token_prune) cand.push_back(v);
    }
    if (opt.top_k_per_frame > 0 && static_cast<int64_t>(cand.size()) > opt.top_k_per_frame) {
      std::partial_sort(cand.begin(), cand.begin() + opt.top_k_per_frame, cand.end(),
                        [&](int64_t x, int64_t y) { return acc[t][x] > acc[t][y]; });
      cand.resize(static_cast<size_t>(opt.top_k_per_frame));
    }
    std::map<std::vector<int64_t>, Beam> next;
    for (const auto& [prefix, bm] : beams) {
      for (int64_t v : cand) {
        const double p = acc[t][v];
        if (v == opt.blank) {
          Beam& n = next[prefix];
          if (n.toks.empty()) n.toks = bm.toks;
          n.pb = log_add(n.pb, bm.total() + p);
          continue;
        }
        const bool repeat = !prefix.empty() && prefix.back() == v;
        // A repeat extends the prefix only after a blank; without one it stays the same prefix.
        const double ext_p = (repeat ? bm.pb : bm.total()) + p;
        if (ext_p > kNegInf) {
          std::vector<int64_t> ext = prefix;
          ext.push_back(v);
          Beam& n = next[ext];
          if (n.toks.empty()) {
            n.toks = bm.toks;
            n.toks.push_back({v, t, t});
          }
          n.pnb = log_add(n.pnb, ext_p);
        }
        if (repeat && bm.pnb > kNegInf) {
          Beam& same = next[prefix];
          if (same.toks.empty()) same.toks = bm.toks;
          same.pnb = log_add(same.pnb, bm.pnb + p);
          if (!same.toks.empty()) same.toks.back().end_frame = t;
        }
      }
    }
    // Keep the best `beam` prefixes.
    std::vector<std::pair<double, std::vector<int64_t>>> order;
    for (const auto& [k, b] : next) {
      if (b.total() > kNegInf) order.emplace_back(b.total(), k);
    }
    std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    beams.clear();
    for (size_t i = 0; i < order.size() && static_cast<int64_t>(i) < opt.beam; ++i) {
      beams[order[i].second] = std::move(next[order[i].second]);
    }
  }
  std::vector<CtcHypothesis> out;
  for (auto& [k, b] : beams) out.push_back({b.toks, b.total()});
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.log_prob > y.log_prob; });
  return out;
}

}  // namespace mmref::models
