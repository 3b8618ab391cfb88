// The attention reference (a plain libtorch composition, run in float64 by the tests), libtorch's own
// composition (the kTorch backend and the benchmark baseline), the shared dropout mask and the argument
// checks. See attention.h for the masking conventions these define.
#include <cmath>
#include <limits>

#include <ATen/Functions.h>

#include "core/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_common.h"
#ifdef MMREF_CUDA_BINDINGS
#include "kernels/attention/attention_cuda.h"
#endif

namespace mmref::kernels {
namespace detail {

AttentionShape check_attention_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const AttentionOptions& opt) {
  if (!q.defined() || !k.defined() || !v.defined()) MMREF_FAIL("attention: q, k and v must be defined");
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    MMREF_FAIL("attention: q {}, k {}, v {} must all be 4-D (B, H, L, D)", sz(q), sz(k), sz(v));
  }
  AttentionShape s;
  s.B = q.size(0);
  s.H = q.size(1);
  s.Lq = q.size(2);
  s.D = q.size(3);
  s.Hkv = k.size(1);
  s.Lk = k.size(2);
  if (k.sizes() != v.sizes()) MMREF_FAIL("attention: k {} and v {} must have the same shape", sz(k), sz(v));
  if (k.size(0) != s.B || k.size(3) != s.D) {
    MMREF_FAIL("attention: k {} must match q {} in batch and head_dim", sz(k), sz(q));
  }
  if (s.Hkv <= 0 || s.H % s.Hkv != 0) {
    MMREF_FAIL("attention: q heads ({}) must be a multiple of k/v heads ({})", s.H, s.Hkv);
  }
  if (s.D <= 0) MMREF_FAIL("attention: head_dim must be > 0, q is {}", sz(q));
  if (k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type()) {
    MMREF_FAIL("attention: q ({}), k ({}), v ({}) must have the same dtype", c10::toString(q.scalar_type()),
               c10::toString(k.scalar_type()), c10::toString(v.scalar_type()));
  }
  const auto st = q.scalar_type();
  if (st != at::kFloat && st != at::kDouble && st != at::kHalf && st != at::kBFloat16) {
    MMREF_FAIL("attention: dtype {} is not supported (float32, float16, bfloat16, float64)", c10::toString(st));
  }
  if (k.device() != q.device() || v.device() != q.device()) {
    MMREF_FAIL("attention: q, k, v must be on the same device (q on {})", q.device().str());
  }
  for (const auto* len : {&opt.q_lengths, &opt.k_lengths}) {
    if (len->has_value() && (*len)->defined()) {
      const at::Tensor& t = **len;
      const char* name = len == &opt.q_lengths ? "q_lengths" : "k_lengths";
      if (t.dim() != 1 || t.size(0) != s.B || t.scalar_type() != at::kLong) {
        MMREF_FAIL("attention: {} must be an int64 tensor of shape ({}), got {} {}", name, s.B,
                   c10::toString(t.scalar_type()), sz(t));
      }
    }
  }
  if (opt.bias.has_value() && opt.bias->defined()) {
    const at::Tensor& b = *opt.bias;
    if (b.dim() > 4) MMREF_FAIL("attention: bias {} has more than 4 dims", sz(b));
    const int64_t full[4] = {s.B, s.H, s.Lq, s.Lk};
    for (int64_t d = 0; d < b.dim(); ++d) {
      const int64_t want = full[4 - b.dim() + d];
      if (b.size(d) != want && b.size(d) != 1) {
        MMREF_FAIL("attention: bias {} is not broadcastable to ({}, {}, {}, {})", sz(b), s.B, s.H, s.Lq,
                   s.Lk);
      }
    }
    if (b.device() != q.device()) MMREF_FAIL("attention: bias must be on q's device {}", q.device().str());
  }
  if (!(opt.dropout_p >= 0 && opt.dropout_p < 1)) {
    MMREF_FAIL("attention: dropout_p {} must be in [0, 1)", opt.dropout_p);
  }
  s.scale = opt.scale < 0 ? 1.0 / std::sqrt(static_cast<double>(s.D)) : opt.scale;
  return s;
}

at::Tensor lengths_cpu(const std::optional<at::Tensor>& lengths, int64_t limit) {
  if (!lengths.has_value() || !lengths->defined()) return at::Tensor();
  return lengths->to(at::kCPU).clamp(0, limit).contiguous();
}

}  // namespace detail

bool attention_cuda_supports(const at::Tensor& q) {
#ifdef MMREF_CUDA_BINDINGS
  const auto t = q.scalar_type();
  return q.is_cuda() && q.dim() == 4 && attention_cuda_supports_head_dim(q.size(3)) &&
         (t == at::kFloat || t == at::kHalf || t == at::kBFloat16);
#else
  (void)q;
  return false;  // no CUDA binding in this build
#endif
}

AttentionBackend parse_attention_backend(const std::string& name) {
  if (name == "mmref") return AttentionBackend::kMmref;
  if (name == "reference") return AttentionBackend::kReference;
  if (name == "torch") return AttentionBackend::kTorch;
  MMREF_FAIL("attention backend '{}' is unknown: use mmref, reference or torch", name);
}

const char* attention_backend_name(AttentionBackend backend) {
  switch (backend) {
    case AttentionBackend::kMmref: return "mmref";
    case AttentionBackend::kReference: return "reference";
    case AttentionBackend::kTorch: return "torch";
  }
  return "?";
}

bool attention_dropout_keep(uint64_t seed, int64_t b, int64_t h, int64_t i, int64_t j, double p) {
  return detail::dropout_keep(detail::dropout_row_key(seed, b, h, i), j, detail::dropout_threshold(p));
}

at::Tensor attention_dropout_mask(uint64_t seed, int64_t B, int64_t H, int64_t Lq, int64_t Lk, double p) {
  at::Tensor mask = at::empty({B, H, Lq, Lk}, at::TensorOptions().dtype(at::kBool));
  bool* m = mask.data_ptr<bool>();
  const uint32_t thr = detail::dropout_threshold(p);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        const uint64_t key = detail::dropout_row_key(seed, b, h, i);
        for (int64_t j = 0; j < Lk; ++j) *m++ = detail::dropout_keep(key, j, thr);
      }
  return mask;
}

namespace {

// (B, 1, Lq, Lk) bool: true where (causal, lengths) allow query i to see key j. Undefined if nothing masks.
at::Tensor valid_mask(const detail::AttentionShape& s, const AttentionOptions& opt, const at::Device& dev) {
  const at::Tensor ql = detail::lengths_cpu(opt.q_lengths, s.Lq);
  const at::Tensor kl = detail::lengths_cpu(opt.k_lengths, s.Lk);
  if (!opt.causal && !ql.defined() && !kl.defined()) return at::Tensor();
  const auto lopt = at::TensorOptions().dtype(at::kLong);
  const at::Tensor i = at::arange(s.Lq, lopt).view({1, 1, s.Lq, 1});
  const at::Tensor j = at::arange(s.Lk, lopt).view({1, 1, 1, s.Lk});
  at::Tensor valid = at::ones({s.B, 1, s.Lq, s.Lk}, at::TensorOptions().dtype(at::kBool));
  if (opt.causal) valid = valid & (j <= i + (s.Lk - s.Lq));
  if (ql.defined()) valid = valid & (i < ql.view({s.B, 1, 1, 1}));
  if (kl.defined()) valid = valid & (j < kl.view({s.B, 1, 1, 1}));
  return valid.to(dev);
}

at::Tensor expand_kv(const at::Tensor& t, int64_t H) {
  const int64_t Hkv = t.size(1);
  return Hkv == H ? t : t.repeat_interleave(H / Hkv, /*dim=*/1);
}

// softmax over the last dim of masked scores; rows that are all -inf give 0 (and a zero, finite gradient).
at::Tensor safe_softmax(const at::Tensor& scores) {
  const at::Tensor row_ok = (scores != -std::numeric_limits<double>::infinity()).any(-1, /*keepdim=*/true);
  const at::Tensor safe = at::where(row_ok, scores, at::zeros({}, scores.options()));
  return at::softmax(safe, -1) * row_ok.to(scores.scalar_type());
}

at::Tensor composition(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const AttentionOptions& opt, const detail::AttentionShape& s) {
  at::Tensor p = safe_softmax(attention_reference_scores(q, k, opt));  // (B, H, Lq, Lk)
  if (opt.dropout_p > 0) {
    const at::Tensor keep = attention_dropout_mask(opt.seed, s.B, s.H, s.Lq, s.Lk, opt.dropout_p);
    p = p * keep.to(p.options()) * (1.0 / (1.0 - opt.dropout_p));
  }
  return at::matmul(p, expand_kv(v, s.H));  // (B, H, Lq, D)
}

}  // namespace

at::Tensor attention_reference_scores(const at::Tensor& q, const at::Tensor& k, const AttentionOptions& opt) {
  const detail::AttentionShape s = detail::check_attention_args(q, k, k, opt);
  at::Tensor scores = at::matmul(q, expand_kv(k, s.H).transpose(-2, -1)) * s.scale;  // (B, H, Lq, Lk)
  if (opt.bias.has_value() && opt.bias->defined()) scores = scores + opt.bias->to(scores.scalar_type());
  const at::Tensor valid = valid_mask(s, opt, q.device());
  if (valid.defined()) scores = scores.masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity());
  return scores;
}

at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const AttentionOptions& opt) {
  const detail::AttentionShape s = detail::check_attention_args(q, k, v, opt);
  return composition(q, k, v, opt, s);
}

at::Tensor attention_torch(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const AttentionOptions& opt) {
  const detail::AttentionShape s = detail::check_attention_args(q, k, v, opt);
  const bool low = q.scalar_type() == at::kHalf || q.scalar_type() == at::kBFloat16;
  if (low && q.device().is_cpu()) {  // CPU half matmul is missing or slow in libtorch 1.13
    AttentionOptions o = opt;
    if (o.bias.has_value() && o.bias->defined()) o.bias = o.bias->to(at::kFloat);
    return composition(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), o, s).to(q.scalar_type());
  }
  return composition(q, k, v, opt, s);
}

}  // namespace mmref::kernels
