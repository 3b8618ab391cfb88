// Bench targets of the kernels family (register_kernel_targets(); target.h): one kernels/dispatch.h op
// per call, on fresh random inputs (randn; never zeros), with the point's backend.
//
//   kernel.attention         q (batch, heads, seq, head_dim), k/v (batch, kv_heads, seq_k, head_dim).
//                            Keys: backend (mmref | reference | torch), dtype (float32 | bfloat16 |
//                            float16), batch (1), heads (8), kv_heads (= heads), seq (512), seq_k (= seq),
//                            head_dim (64), causal (false), mask (none | lengths | bias: random key
//                            lengths in [seq_k/2, seq_k] or an additive (batch, 1, seq, seq_k) bias).
//                            FLOPs 4 * b * h * s * s_k * d (two matmuls; halved when causal, the
//                            FlashAttention convention); unit tokens/s (batch * seq).
//   kernel.depthwise_conv1d  x (batch, channels, length), weight (channels, 1, kernel_size). Keys:
//                            batch (8), channels (256), length (1024), kernel_size (15), padding
//                            (same | causal), dilation (1). FLOPs 2 * b * c * t_out * k; unit frames/s.
//   kernel.group_norm_silu   x (batch, channels, height, width) (height/width default: resolution, 32).
//                            Keys: batch (4), channels (256), resolution, height, width, groups (32).
//                            No FLOPs (memory bound); unit images/s.
//   kernel.conv1d            x (batch, in_channels, length), weight (out_channels, in_channels / groups,
//                            kernel_size). Keys: batch (8), in_channels (256), out_channels (256), length
//                            (1024), kernel_size (7), stride (1), padding ((kernel_size - 1) / 2 *
//                            dilation), dilation (1), groups (1). FLOPs 2 * b * cout * t_out * cin/g * k.
// Every target also takes mode: forward (default) | train (forward + backward wrt every input:
// FLOPs x 3, the backward being about twice the forward).
// Peer (all four): benchmarks/peers/kernels_torch.py, the op in eager PyTorch (attention through
// F.scaled_dot_product_attention where torch has it, else matmul-softmax-matmul).
#include <cmath>
#include <optional>

#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/types.h>

#include "bench/model_target_common.h"
#include "bench/target.h"
#include "core/error.h"
#include "kernels/dispatch.h"

namespace mmref::bench {

namespace {

constexpr const char* kPeerScript = "benchmarks/peers/kernels_torch.py";

// Shared by the four targets: the point's mode, inputs that may need gradients, one call.
class KernelTarget : public Target {
 public:
  explicit KernelTarget(std::string kernel) : kernel_(std::move(kernel)) {}

  Work prepare(const Point& p) override {
    const std::string mode = p.get_string("mode", "forward");
    if (mode != "forward" && mode != "train") {
      MMREF_FAIL("{}: mode must be forward or train, got '{}'", name(), mode);
    }
    train_ = mode == "train";
    opts_ = at::TensorOptions().dtype(point_dtype(p)).device(p.device);
    torch::manual_seed(static_cast<uint64_t>(p.get_int("seed", 0)));
    inputs_.clear();
    Work w = build(p);
    if (train_) w.flops *= 3;
    return w;
  }

  void run() override {
    if (!train_) {
      torch::NoGradGuard no_grad;
      (void)forward();
      return;
    }
    const at::Tensor out = forward();
    if (!grad_out_.defined() || grad_out_.sizes() != out.sizes()) grad_out_ = at::randn_like(out);
    (void)torch::autograd::grad({out}, inputs_, {grad_out_});
  }

  PeerSpec peer(const Point& /*point*/) const override { return {kPeerScript, {{"kernel", kernel_}}}; }

 protected:
  virtual Work build(const Point& p) = 0;
  virtual at::Tensor forward() = 0;
  std::string name() const { return "kernel." + kernel_; }

  // A fresh random tensor; registered as a gradient input in train mode.
  at::Tensor input(at::IntArrayRef sizes, bool differentiable = true) {
    at::Tensor t = at::randn(sizes, opts_);
    if (train_ && differentiable) {
      t.requires_grad_(true);
      inputs_.push_back(t);
    }
    return t;
  }
  int64_t size(const Point& p, const std::string& key, int64_t fallback) const {
    return point_int_at_least(p, name(), key, fallback, 1);
  }

  bool train_ = false;
  at::TensorOptions opts_;
  std::vector<at::Tensor> inputs_;
  at::Tensor grad_out_;

 private:
  std::string kernel_;
};

class AttentionTarget : public KernelTarget {
 public:
  AttentionTarget() : KernelTarget("attention") {}

 protected:
  Work build(const Point& p) override {
    backend_ = kernels::parse_attention_backend(p.get_string("backend", "mmref"));
    const int64_t b = size(p, "batch", 1), h = size(p, "heads", 8), hkv = size(p, "kv_heads", h);
    const int64_t s = size(p, "seq", 512), sk = size(p, "seq_k", s), d = size(p, "head_dim", 64);
    if (h % hkv != 0) MMREF_FAIL("{}: heads ({}) must be a multiple of kv_heads ({})", name(), h, hkv);
    q_ = input({b, h, s, d});
    k_ = input({b, hkv, sk, d});
    v_ = input({b, hkv, sk, d});
    opt_ = {};
    opt_.causal = p.get_bool("causal", false);
    const std::string mask = p.get_string("mask", "none");
    if (mask == "lengths") {
      opt_.k_lengths = at::randint(sk / 2, sk + 1, {b}, at::TensorOptions().dtype(at::kLong).device(p.device));
    } else if (mask == "bias") {
      opt_.bias = input({b, 1, s, sk}, /*differentiable=*/false);
    } else if (mask != "none") {
      MMREF_FAIL("{}: mask must be none, lengths or bias, got '{}'", name(), mask);
    }
    Work w;
    w.units = static_cast<double>(b * s);
    w.unit = "tokens/s";
    w.flops = 4.0 * b * h * s * sk * d * (opt_.causal ? 0.5 : 1.0);
    return w;
  }
  at::Tensor forward() override { return kernels::attention(q_, k_, v_, opt_, backend_); }

 private:
  kernels::AttentionBackend backend_ = kernels::AttentionBackend::kMmref;
  kernels::AttentionOptions opt_;
  at::Tensor q_, k_, v_;
};

class DepthwiseConv1dTarget : public KernelTarget {
 public:
  DepthwiseConv1dTarget() : KernelTarget("depthwise_conv1d") {}

 protected:
  Work build(const Point& p) override {
    backend_ = kernels::parse_conv_backend(p.get_string("backend", "mmref"));
    const int64_t b = size(p, "batch", 8), c = size(p, "channels", 256), t = size(p, "length", 1024);
    const int64_t k = size(p, "kernel_size", 15), dil = size(p, "dilation", 1);
    opt_ = kernels::DepthwiseConv1dOptions::padding(p.get_string("padding", "same"), k, dil);
    x_ = input({b, c, t});
    w_ = input({c, 1, k});
    bias_ = input({c});
    const int64_t t_out = t + opt_.pad_left + opt_.pad_right - dil * (k - 1);
    Work w;
    w.units = static_cast<double>(b * t);
    w.unit = "frames/s";
    w.flops = 2.0 * b * c * t_out * k;
    return w;
  }
  at::Tensor forward() override { return kernels::depthwise_conv1d(x_, w_, bias_, opt_, backend_); }

 private:
  kernels::ConvBackend backend_ = kernels::ConvBackend::kMmref;
  kernels::DepthwiseConv1dOptions opt_;
  at::Tensor x_, w_, bias_;
};

class GroupNormSiluTarget : public KernelTarget {
 public:
  GroupNormSiluTarget() : KernelTarget("group_norm_silu") {}

 protected:
  Work build(const Point& p) override {
    backend_ = kernels::parse_conv_backend(p.get_string("backend", "mmref"));
    const int64_t b = size(p, "batch", 4), c = size(p, "channels", 256), r = size(p, "resolution", 32);
    const int64_t hgt = size(p, "height", r), wid = size(p, "width", r);
    opt_ = {};
    opt_.groups = size(p, "groups", 32);
    if (c % opt_.groups != 0) MMREF_FAIL("{}: channels ({}) must be a multiple of groups ({})", name(), c, opt_.groups);
    x_ = input({b, c, hgt, wid});
    gamma_ = input({c});
    beta_ = input({c});
    Work w;
    w.units = static_cast<double>(b);
    w.unit = "images/s";
    return w;
  }
  at::Tensor forward() override { return kernels::group_norm_silu(x_, gamma_, beta_, opt_, backend_); }

 private:
  kernels::ConvBackend backend_ = kernels::ConvBackend::kMmref;
  kernels::GroupNormOptions opt_;
  at::Tensor x_, gamma_, beta_;
};

class Conv1dTarget : public KernelTarget {
 public:
  Conv1dTarget() : KernelTarget("conv1d") {}

 protected:
  Work build(const Point& p) override {
    backend_ = kernels::parse_conv_backend(p.get_string("backend", "mmref"));
    const int64_t b = size(p, "batch", 8), cin = size(p, "in_channels", 256), cout = size(p, "out_channels", 256);
    const int64_t t = size(p, "length", 1024), k = size(p, "kernel_size", 7);
    opt_ = {};
    opt_.stride = size(p, "stride", 1);
    opt_.dilation = size(p, "dilation", 1);
    opt_.groups = size(p, "groups", 1);
    opt_.padding = point_int_at_least(p, name(), "padding", (k - 1) / 2 * opt_.dilation, 0);
    if (cin % opt_.groups != 0 || cout % opt_.groups != 0) {
      MMREF_FAIL("{}: in_channels ({}) and out_channels ({}) must be multiples of groups ({})", name(), cin, cout,
                 opt_.groups);
    }
    x_ = input({b, cin, t});
    w_ = input({cout, cin / opt_.groups, k});
    bias_ = input({cout});
    const int64_t t_out = (t + 2 * opt_.padding - opt_.dilation * (k - 1) - 1) / opt_.stride + 1;
    if (t_out < 1) MMREF_FAIL("{}: length {} is too short for kernel_size {} x dilation {}", name(), t, k, opt_.dilation);
    Work w;
    w.units = static_cast<double>(b * t);
    w.unit = "frames/s";
    w.flops = 2.0 * b * cout * t_out * (cin / opt_.groups) * k;
    return w;
  }
  at::Tensor forward() override { return kernels::conv1d(x_, w_, bias_, opt_, backend_); }

 private:
  kernels::ConvBackend backend_ = kernels::ConvBackend::kMmref;
  kernels::Conv1dOptions opt_;
  at::Tensor x_, w_, bias_;
};

template <class T>
TargetFactory factory() {
  return [] { return std::make_unique<T>(); };
}

}  // namespace

void register_kernel_targets() {
  register_target("kernel.attention", "scaled dot-product attention (kernels::attention), forward or train",
                  factory<AttentionTarget>());
  register_target("kernel.conv1d", "general conv1d with stride, dilation, groups (kernels::conv1d)",
                  factory<Conv1dTarget>());
  register_target("kernel.depthwise_conv1d", "depthwise conv1d, same/causal padding (kernels::depthwise_conv1d)",
                  factory<DepthwiseConv1dTarget>());
  register_target("kernel.group_norm_silu", "fused GroupNorm + SiLU (kernels::group_norm_silu)",
                  factory<GroupNormSiluTarget>());
}

}  // namespace mmref::bench
