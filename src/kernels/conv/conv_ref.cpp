// Plain libtorch references of the conv-family kernels (what tests run in float64), the libtorch ops
// they replace (backend "torch"), and the argument checks every backend shares. See conv.h.
#include <ATen/Functions.h>

#include "core/error.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_common.h"

namespace mmref::kernels {

namespace detail {

namespace {
void check_float(const at::Tensor& t, const char* op, const char* name) {
  if (!at::isFloatingType(t.scalar_type())) {
    MMREF_FAIL("{}: {} must be a floating tensor (fp32, fp64, fp16, bf16), got {}", op, name,
               c10::toString(t.scalar_type()));
  }
}
}  // namespace

DepthwiseShape check_depthwise_args(const at::Tensor& x, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  const char* op = "depthwise_conv1d";
  if (!x.defined() || x.dim() != 3) MMREF_FAIL("{}: x must be (B, C, T), got {}", op, x.defined() ? sz(x) : "undefined");
  DepthwiseShape s;
  s.B = x.size(0), s.C = x.size(1), s.T = x.size(2);
  if (!weight.defined() || weight.dim() != 3 || weight.size(0) != s.C || weight.size(1) != 1) {
    MMREF_FAIL("{}: weight must be (C, 1, K) = ({}, 1, K) for x {}, got {}", op, s.C, sz(x),
               weight.defined() ? sz(weight) : "undefined");
  }
  s.K = weight.size(2);
  if (s.K < 1) MMREF_FAIL("{}: weight {} has kernel size 0", op, sz(weight));
  check_float(x, op, "x");
  check_float(weight, op, "weight");
  if (weight.device() != x.device()) MMREF_FAIL("{}: weight must be on x's device {}", op, x.device().str());
  if (has(bias)) {
    if (bias->dim() != 1 || bias->size(0) != s.C) MMREF_FAIL("{}: bias must be ({}), got {}", op, s.C, sz(*bias));
    check_float(*bias, op, "bias");
    if (bias->device() != x.device()) MMREF_FAIL("{}: bias must be on x's device {}", op, x.device().str());
  }
  if (opt.dilation < 1) MMREF_FAIL("{}: dilation must be >= 1, got {}", op, opt.dilation);
  if (opt.pad_left < 0 || opt.pad_right < 0) {
    MMREF_FAIL("{}: padding must be >= 0, got ({}, {})", op, opt.pad_left, opt.pad_right);
  }
  s.T_out = s.T + opt.pad_left + opt.pad_right - opt.dilation * (s.K - 1);
  if (s.T_out < 0) {
    MMREF_FAIL("{}: input length {} with padding ({}, {}) is shorter than the dilated kernel ({})", op, s.T,
               opt.pad_left, opt.pad_right, opt.dilation * (s.K - 1) + 1);
  }
  return s;
}

GroupNormShape check_group_norm_args(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                     const std::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  const char* op = "group_norm_silu";
  if (!x.defined() || x.dim() < 2) MMREF_FAIL("{}: x must be (N, C, *), got {}", op, x.defined() ? sz(x) : "undefined");
  check_float(x, op, "x");
  GroupNormShape s;
  s.N = x.size(0), s.C = x.size(1), s.G = opt.groups;
  s.S = 1;
  for (int64_t d = 2; d < x.dim(); ++d) s.S *= x.size(d);
  if (s.G < 1 || s.C % s.G != 0) MMREF_FAIL("{}: {} channels cannot form {} groups", op, s.C, s.G);
  if (!(opt.eps > 0)) MMREF_FAIL("{}: eps must be > 0, got {}", op, opt.eps);
  for (const auto* p : {&gamma, &beta}) {
    if (!has(*p)) continue;
    const char* name = p == &gamma ? "gamma" : "beta";
    if ((*p)->dim() != 1 || (*p)->size(0) != s.C) MMREF_FAIL("{}: {} must be ({}), got {}", op, name, s.C, sz(**p));
    check_float(**p, op, name);
    if ((*p)->device() != x.device()) MMREF_FAIL("{}: {} must be on x's device {}", op, name, x.device().str());
  }
  return s;
}

}  // namespace detail

ConvBackend parse_conv_backend(const std::string& name) {
  if (name == "mmref") return ConvBackend::kMmref;
  if (name == "reference") return ConvBackend::kReference;
  if (name == "torch") return ConvBackend::kTorch;
  MMREF_FAIL("conv backend '{}' is unknown: use mmref, reference or torch", name);
}

const char* conv_backend_name(ConvBackend backend) {
  switch (backend) {
    case ConvBackend::kMmref: return "mmref";
    case ConvBackend::kReference: return "reference";
    case ConvBackend::kTorch: return "torch";
  }
  return "?";
}

DepthwiseConv1dOptions DepthwiseConv1dOptions::padding(const std::string& mode, int64_t kernel_size,
                                                       int64_t dilation) {
  if (kernel_size < 1 || dilation < 1) {
    MMREF_FAIL("depthwise_conv1d: kernel size {} and dilation {} must be >= 1", kernel_size, dilation);
  }
  DepthwiseConv1dOptions o;
  o.dilation = dilation;
  const int64_t total = dilation * (kernel_size - 1);
  if (mode == "same") {
    o.pad_left = total / 2;
    o.pad_right = total - o.pad_left;
  } else if (mode == "causal") {
    o.pad_left = total;
    o.pad_right = 0;
  } else {
    MMREF_FAIL("depthwise_conv1d: padding '{}' is unknown: use same or causal", mode);
  }
  return o;
}

at::Tensor depthwise_conv1d_reference(const at::Tensor& x, const at::Tensor& weight,
                                      const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  const detail::DepthwiseShape s = detail::check_depthwise_args(x, weight, bias, opt);
  // Explicit zero padding, then windows of the dilated kernel: (B, C, T_out, K) * (C, K) summed over K.
  const at::Tensor xp = at::constant_pad_nd(x, {opt.pad_left, opt.pad_right}, 0);
  const int64_t span = opt.dilation * (s.K - 1) + 1;
  const at::Tensor win = xp.unfold(/*dimension=*/2, /*size=*/span, /*step=*/1)
                             .slice(/*dim=*/3, 0, span, opt.dilation);  // (B, C, T_out, K)
  at::Tensor out = (win * weight.view({1, s.C, 1, s.K}).to(x.scalar_type())).sum(-1);
  if (detail::has(bias)) out = out + bias->view({1, s.C, 1}).to(x.scalar_type());
  return out;
}

at::Tensor depthwise_conv1d_torch(const at::Tensor& x, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  const detail::DepthwiseShape s = detail::check_depthwise_args(x, weight, bias, opt);
  at::Tensor xp = x;
  int64_t pad = 0;
  if (opt.pad_left == opt.pad_right) pad = opt.pad_left;  // conv1d pads symmetrically itself
  else xp = at::constant_pad_nd(x, {opt.pad_left, opt.pad_right}, 0);
  const at::Tensor b = detail::has(bias) ? *bias : at::Tensor();
  return at::conv1d(xp, weight, b, /*stride=*/1, /*padding=*/pad, /*dilation=*/opt.dilation, /*groups=*/s.C);
}

at::Tensor group_norm_silu_reference(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                     const std::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  const detail::GroupNormShape s = detail::check_group_norm_args(x, gamma, beta, opt);
  const at::Tensor xg = x.reshape({s.N, s.G, -1});
  const at::Tensor mean = xg.mean(-1, /*keepdim=*/true);
  const at::Tensor var = (xg - mean).pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor z = ((xg - mean) / (var + opt.eps).sqrt()).reshape({s.N, s.C, s.S});
  if (detail::has(gamma)) z = z * gamma->view({1, s.C, 1}).to(x.scalar_type());
  if (detail::has(beta)) z = z + beta->view({1, s.C, 1}).to(x.scalar_type());
  if (opt.silu) z = z * at::sigmoid(z);
  return z.reshape(x.sizes());
}

at::Tensor group_norm_silu_torch(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                 const std::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  detail::check_group_norm_args(x, gamma, beta, opt);
  const at::Tensor g = detail::has(gamma) ? *gamma : at::Tensor();
  const at::Tensor b = detail::has(beta) ? *beta : at::Tensor();
  at::Tensor y = at::group_norm(x, opt.groups, g, b, opt.eps, /*cudnn_enabled=*/true);
  return opt.silu ? at::silu(y) : y;
}

at::Tensor conv1d_reference(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            const Conv1dOptions& opt) {
  if (x.dim() != 3 || weight.dim() != 3) {
    MMREF_FAIL("conv1d: x must be (B, Cin, T) and weight (Cout, Cin/groups, K), got {} and {}", detail::sz(x),
               detail::sz(weight));
  }
  const int64_t B = x.size(0), Cin = x.size(1), Cout = weight.size(0), K = weight.size(2), G = opt.groups;
  if (G < 1 || Cin % G != 0 || Cout % G != 0 || weight.size(1) != Cin / G) {
    MMREF_FAIL("conv1d: weight {} does not fit x {} with {} groups", detail::sz(weight), detail::sz(x), G);
  }
  if (opt.stride < 1 || opt.dilation < 1 || opt.padding < 0) {
    MMREF_FAIL("conv1d: stride {} / dilation {} must be >= 1 and padding {} >= 0", opt.stride, opt.dilation,
               opt.padding);
  }
  const at::Tensor xp = at::constant_pad_nd(x, {opt.padding, opt.padding}, 0);
  const int64_t span = opt.dilation * (K - 1) + 1;
  if (xp.size(2) < span) MMREF_FAIL("conv1d: input {} is shorter than the dilated kernel ({})", detail::sz(x), span);
  // (B, Cin, T_out, K) windows -> (B, G, T_out, Cin/G * K) @ (G, Cin/G * K, Cout/G)
  const at::Tensor win = xp.unfold(2, span, opt.stride).slice(3, 0, span, opt.dilation);
  const int64_t T_out = win.size(2), Cg = Cin / G, Og = Cout / G;
  const at::Tensor cols = win.reshape({B, G, Cg, T_out, K}).permute({0, 1, 3, 2, 4}).reshape({B, G, T_out, Cg * K});
  const at::Tensor w = weight.reshape({G, Og, Cg * K}).transpose(1, 2).to(x.scalar_type());  // (G, Cg*K, Og)
  at::Tensor out = at::matmul(cols, w).permute({0, 1, 3, 2}).reshape({B, Cout, T_out});
  if (detail::has(bias)) out = out + bias->view({1, Cout, 1}).to(x.scalar_type());
  return out;
}

}  // namespace mmref::kernels
