// libtorch binding of the CUDA attention kernels (attention_cuda.h): checks the tensors with the shared
// rules (naming them), makes q/k/v/dout contiguous, turns the bias into an fp32 tensor read through its
// broadcast strides (never materialised at (B, H, Lq, Lk)), allocates outputs and fp32 accumulators with
// libtorch's caching allocator, and launches on the current stream. Compiled only with a CUDA libtorch
// (MMREF_CUDA_BINDINGS, the `cuda` preset); CPU builds syntax-check it (src/kernels/CMakeLists.txt).
#ifdef MMREF_CUDA_BINDINGS
#include <ATen/Functions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "core/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_common.h"
#include "kernels/attention/attention_cuda.h"

namespace mmref::kernels {
namespace {

KDType kdtype(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return KDType::kF32;
    case at::kHalf: return KDType::kF16;
    case at::kBFloat16: return KDType::kBF16;
    default:
      MMREF_FAIL("attention: the CUDA kernel takes fp32, fp16 or bf16, got {}", c10::toString(t.scalar_type()));
  }
}

void check(cudaError_t e, const char* op) {
  if (e != cudaSuccess) MMREF_FAIL("{}: CUDA kernel launch failed: {}", op, cudaGetErrorString(e));
}

// t viewed as 4-D (leading 1s) and expanded to (B, H, Lq, Lk): its element strides (0 on broadcast dims).
void broadcast_strides(const at::Tensor& t, const detail::AttentionShape& s, int64_t out[4]) {
  std::vector<int64_t> shape(4 - t.dim(), 1);
  for (int64_t d = 0; d < t.dim(); ++d) shape.push_back(t.size(d));
  const at::Tensor e = t.reshape(shape).expand({s.B, s.H, s.Lq, s.Lk});
  for (int d = 0; d < 4; ++d) out[d] = e.stride(d);
}

// Fills everything but the tensors' data pointers of the outputs. `keep` holds the converted tensors.
AttentionCudaParams make_params(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const AttentionOptions& opt, const detail::AttentionShape& s,
                                std::vector<at::Tensor>& keep) {
  AttentionCudaParams p;
  keep = {q.contiguous(), k.contiguous(), v.contiguous()};
  p.q = keep[0].data_ptr(), p.k = keep[1].data_ptr(), p.v = keep[2].data_ptr();
  if (opt.bias.has_value() && opt.bias->defined()) {
    keep.push_back(opt.bias->detach().to(at::kFloat).contiguous());
    p.bias = keep.back().data_ptr<float>();
    broadcast_strides(keep.back(), s, p.bias_stride);
  }
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(q.device());
  if (opt.q_lengths.has_value() && opt.q_lengths->defined()) {
    keep.push_back(opt.q_lengths->to(lopt).contiguous());
    p.q_lengths = keep.back().data_ptr<int64_t>();
  }
  if (opt.k_lengths.has_value() && opt.k_lengths->defined()) {
    keep.push_back(opt.k_lengths->to(lopt).contiguous());
    p.k_lengths = keep.back().data_ptr<int64_t>();
  }
  p.B = s.B, p.H = s.H, p.Hkv = s.Hkv, p.Lq = s.Lq, p.Lk = s.Lk, p.D = s.D;
  p.scale = static_cast<float>(s.scale);
  p.causal = opt.causal;
  p.dropout_p = static_cast<float>(opt.dropout_p);
  p.dropout_threshold = opt.dropout_p > 0 ? detail::dropout_threshold(opt.dropout_p) : 0;
  p.seed = opt.seed;
  p.dtype = kdtype(q);
  return p;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> attention_forward_gpu(const at::Tensor& q, const at::Tensor& k,
                                                        const at::Tensor& v, const AttentionOptions& opt) {
  const detail::AttentionShape s = detail::check_attention_args(q, k, v, opt);
  if (!attention_cuda_supports(q)) {
    MMREF_FAIL("attention: the CUDA kernel needs CUDA fp32/fp16/bf16 q with head_dim 32, 64, 96 or 128, got {} {} on {}",
               c10::toString(q.scalar_type()), detail::sz(q), q.device().str());
  }
  c10::cuda::CUDAGuard guard(q.device());
  std::vector<at::Tensor> keep;
  AttentionCudaParams p = make_params(q, k, v, opt, s, keep);
  at::Tensor out = at::empty({s.B, s.H, s.Lq, s.D}, q.options());
  at::Tensor lse = at::empty({s.B, s.H, s.Lq}, q.options().dtype(at::kFloat));
  p.out = out.data_ptr(), p.lse = lse.data_ptr<float>();
  check(attention_forward_cuda(p, c10::cuda::getCurrentCUDAStream(q.device().index()).stream()), "attention");
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> attention_backward_gpu(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const AttentionOptions& opt) {
  const detail::AttentionShape s = detail::check_attention_args(q, k, v, opt);
  if (!dout.sizes().equals(q.sizes()) || !out.sizes().equals(q.sizes())) {
    MMREF_FAIL("attention backward: dout {} and out {} must have q's shape {}", detail::sz(dout), detail::sz(out),
               detail::sz(q));
  }
  if (lse.dim() != 3 || lse.size(0) != s.B || lse.size(1) != s.H || lse.size(2) != s.Lq) {
    MMREF_FAIL("attention backward: lse {} must be ({}, {}, {})", detail::sz(lse), s.B, s.H, s.Lq);
  }
  for (const auto* t : {&dout, &out, &lse}) {
    if (t->device() != q.device()) {
      MMREF_FAIL("attention backward: dout, out and lse must be on q's device {}", q.device().str());
    }
  }
  c10::cuda::CUDAGuard guard(q.device());
  std::vector<at::Tensor> keep;
  AttentionCudaBackwardParams bp;
  bp.fwd = make_params(q, k, v, opt, s, keep);
  const at::Tensor outc = out.to(q.scalar_type()).contiguous(), lsec = lse.to(at::kFloat).contiguous();
  const at::Tensor doutc = dout.to(q.scalar_type()).contiguous();
  bp.fwd.out = const_cast<void*>(outc.data_ptr());
  bp.fwd.lse = const_cast<float*>(lsec.data_ptr<float>());
  bp.dout = doutc.data_ptr();
  const auto f32 = q.options().dtype(at::kFloat);
  at::Tensor delta = at::empty({s.B, s.H, s.Lq}, f32);
  at::Tensor dq_acc = at::zeros({s.B, s.H, s.Lq, s.D}, f32);
  at::Tensor dk = at::zeros_like(keep[1]), dv = at::zeros_like(keep[2]);  // Lq == 0 launches nothing
  bp.delta = delta.data_ptr<float>(), bp.dq_acc = dq_acc.data_ptr<float>();
  bp.dk = dk.data_ptr(), bp.dv = dv.data_ptr();
  at::Tensor dbias;
  const bool want_dbias = opt.bias.has_value() && opt.bias->defined() && opt.bias->requires_grad();
  if (want_dbias) {
    dbias = at::zeros(opt.bias->sizes(), f32);
    broadcast_strides(dbias, s, bp.dbias_stride);
    bp.dbias = dbias.data_ptr<float>();
  }
  check(attention_backward_cuda(bp, c10::cuda::getCurrentCUDAStream(q.device().index()).stream()),
        "attention backward");
  return {dq_acc.to(q.scalar_type()), dk, dv, want_dbias ? dbias.to(opt.bias->scalar_type()) : at::Tensor()};
}

}  // namespace mmref::kernels
#endif  // MMREF_CUDA_BINDINGS
