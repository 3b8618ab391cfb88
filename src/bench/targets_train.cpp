// Bench targets of the train family (register_train_targets(); target.h).
//
//   train.mlp_step  one training step of the default task's network, the "bare" loop of
//                   src/train/step_bench.h: zero_grad, forward, MSE, backward, clip_grad_norm_(1.0),
//                   AdamW (lr 1e-3, weight decay 0.01 on matrices) on a fixed random batch.
//                   Keys: batch (256), input_dim (64), hidden (512), layers (4), dtype (float32), seed (0).
//                   FLOPs 6 * batch * sum of Linear in x out (forward 2, backward 4 per weight and sample);
//                   unit steps/s (samples/s = batch x steps/s).
// Peer: benchmarks/peers/train_mlp_step.py, the same loop in eager PyTorch.
#include <memory>

#include <ATen/Functions.h>
#include <torch/types.h>  // before clip_grad.h, which uses torch::Tensor unqualified
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>

#include "bench/model_target_common.h"
#include "bench/target.h"
#include "train/mlp_regression.h"
#include "train/optimizer.h"

namespace mmref::bench {

namespace {

class MlpStepTarget : public Target {
 public:
  Work prepare(const Point& p) override {
    const std::string t = "train.mlp_step";
    const int64_t batch = point_int_at_least(p, t, "batch", 256, 1);
    const int64_t in = point_int_at_least(p, t, "input_dim", 64, 1);
    train::MlpConfig mc;
    mc.hidden = point_int_at_least(p, t, "hidden", 512, 1);
    mc.layers = point_int_at_least(p, t, "layers", 4, 1);
    mc.activation = "silu";
    const auto dtype = point_dtype(p);
    torch::manual_seed(static_cast<uint64_t>(p.get_int("seed", 0)));
    net_ = train::Mlp(in, 1, mc);
    net_->to(p.device, dtype);
    const auto opts = at::TensorOptions().dtype(dtype).device(p.device);
    x_ = at::randn({batch, in}, opts);
    y_ = at::randn({batch, 1}, opts);
    std::vector<std::pair<std::string, at::Tensor>> named;
    for (const auto& item : net_->named_parameters()) named.emplace_back(item.key(), item.value());
    groups_ = train::split_param_groups(named);
    opt_ = train::make_optimizer(train::OptimizerConfig{}, groups_, 1e-3);
    params_ = net_->parameters();
    double macs = 0;  // multiply-adds per sample of the Linear layers
    for (const auto& w : params_) {
      if (w.dim() == 2) macs += static_cast<double>(w.size(0) * w.size(1));
    }
    Work w;
    w.units = 1;
    w.unit = "steps/s";
    w.flops = 6.0 * macs * static_cast<double>(batch);
    return w;
  }

  void run() override {
    opt_->zero_grad();
    at::Tensor loss = at::mse_loss(net_->forward(x_), y_);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params_, 1.0);
    opt_->step();
  }

  PeerSpec peer(const Point& /*point*/) const override { return {"benchmarks/peers/train_mlp_step.py", {}}; }

 private:
  train::Mlp net_{nullptr};
  at::Tensor x_, y_;
  train::ParamGroups groups_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  std::vector<at::Tensor> params_;
};

}  // namespace

void register_train_targets() {
  register_target("train.mlp_step", "one MLP training step (the bare loop of mmref bench train-step)",
                  [] { return std::make_unique<MlpStepTarget>(); });
}

}  // namespace mmref::bench
