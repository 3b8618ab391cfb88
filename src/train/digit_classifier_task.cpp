// Task digit_classifier; see digit_classifier_task.h.
#include "train/digit_classifier_task.h"

#include <filesystem>
#include <initializer_list>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <spdlog/logger.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/run.h"
#include "data/dataset/image_split.h"
#include "data/generators/corpus.h"
#include "models/classifier/digit_cnn.h"
#include "train/distributed.h"

namespace mmref::train {

void DigitClassifierTask::parse(config::Reader& root) {
  {
    auto r = root.child("data");
    r.opt("dir", data.dir);
    r.opt("size", data.size, config::Range::between(8, 1024));
    r.opt("train", data.train);
    r.opt("test", data.test);
    r.opt("make_if_missing", data.make_if_missing);
    r.opt("shift", data.shift, config::Range::between(0, 16));
    r.finish();
  }
  {
    auto r = root.child("train");
    train::parse(r, train);
  }
}

namespace {

// (N, 1, S, S) uint8 -> the CNN's normalised input.
at::Tensor net_input(const at::Tensor& pixels) { return models::DigitCnnImpl::preprocess(pixels.to(at::kFloat) / 255.0); }

class DigitTrainTask : public TrainTask {
 public:
  DigitTrainTask(models::DigitCnn net, data::ImageSplit train, const data::ImageSplit& test, int64_t batch,
                 int64_t shift, int64_t seed, const c10::Device& device)
      : net_(std::move(net)), train_(std::move(train)), batch_(batch), shift_(shift), seed_(seed), device_(device) {
    labels_ = at::tensor(train_.labels, at::kLong);
    test_x_ = net_input(test.pixels).to(device);
    test_y_ = at::tensor(test.labels, at::kLong).to(device);
  }
  std::string name() const override { return "digit_classifier"; }
  torch::nn::Module& model() override { return *net_; }

  TaskLoss loss(const MicroBatch& mb) override {
    // Indices and shifts depend only on (seed, step, micro); rank r takes its slice of the global batch.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(batch_seed(seed_, mb));
    const at::Tensor idx = at::randint(train_.size(), {batch_ * mb.world}, gen, at::kLong).narrow(0, batch_ * mb.rank, batch_);
    at::Tensor px = train_.pixels.index_select(0, idx);
    if (shift_ > 0) {
      // Random translation by up to `shift` pixels: zero-pad, then crop each image at its own offset.
      const int64_t S = px.size(2);
      const at::Tensor padded = at::constant_pad_nd(px, {shift_, shift_, shift_, shift_}, 0);
      const at::Tensor off = at::randint(2 * shift_ + 1, {batch_, 2}, gen, at::kLong);
      const auto o = off.accessor<int64_t, 2>();
      std::vector<at::Tensor> rows;
      for (int64_t i = 0; i < batch_; ++i) rows.push_back(padded[i].narrow(1, o[i][0], S).narrow(2, o[i][1], S));
      px = at::stack(rows);
    }
    // Drawn and shifted on the CPU (the generator's), then moved to the model's device.
    const at::Tensor y = labels_.index_select(0, idx).to(device_);
    const at::Tensor logits = net_->forward(net_input(px.to(device_)));
    const at::Tensor acc = logits.argmax(1).eq(y).to(at::kFloat).mean();
    return {at::cross_entropy_loss(logits, y), {{"train_accuracy", acc.item<double>()}}};
  }

  Metrics validate() override {
    const at::Tensor logits = net_->forward(test_x_);
    return {{"loss", at::cross_entropy_loss(logits, test_y_).item<double>()},
            {"accuracy", logits.argmax(1).eq(test_y_).to(at::kFloat).mean().item<double>()}};
  }

  double test_accuracy() {
    torch::NoGradGuard ng;
    net_->eval();
    return net_->forward(test_x_).argmax(1).eq(test_y_).to(at::kFloat).mean().item<double>();
  }
  int64_t test_size() const { return test_y_.size(0); }

 private:
  models::DigitCnn net_;
  data::ImageSplit train_;
  at::Tensor labels_, test_x_, test_y_;
  int64_t batch_, shift_, seed_;
  c10::Device device_;
};

}  // namespace

nlohmann::json DigitClassifierTask::run(TaskContext& ctx) {
  auto& log = ctx.run.log();
  const std::string train_path = path_in(data.dir, data.train);
  rank0_first(ctx.dist, [&] {
    if (!fs::exists(train_path) && data.make_if_missing) {
      data::CorpusOptions co;
      co.out = data.dir, co.quiet = true;
      log.info("digit_classifier: {}", data::make_corpus("digits", co));
    }
  });
  data::ImageSplitOptions o;
  o.size = data.size, o.channels = 1;
  const std::string hint = fmt::format("make it with `mmref data make digits --out {}`", data.dir);
  data::ImageSplit tr = data::load_image_split(train_path, o, hint);
  const data::ImageSplit te = data::load_image_split(path_in(data.dir, data.test), o, hint);
  for (const data::ImageSplit* s : std::initializer_list<const data::ImageSplit*>{&tr, &te}) {
    for (size_t i = 0; i < s->labels.size(); ++i) {
      if (s->labels[i] < 0 || s->labels[i] > 9) {
        MMREF_FAIL("digit_classifier: '{}' has no label 0-9 (extra.label) in its manifest", s->paths[i]);
      }
    }
  }
  models::DigitCnn net(10);
  log.info("digit_classifier: {} train / {} test digits at {} px (CNN input 28 px), shift +-{} px; {} steps, batch {}",
           tr.size(), te.size(), data.size, data.shift, train.steps, train.batch_size);
  DigitTrainTask task(net, std::move(tr), te, train.batch_size, data.shift, ctx.experiment.runtime.seed, train_device(ctx));
  Trainer trainer(train, ctx);
  const TrainResult r = trainer.fit(task);
  nlohmann::json s = trainer.summary(r, "digit_classifier");
  if (train.ema_decay > 0) trainer.copy_ema_to(*net), s["evaluated_with"] = "ema";
  s["test_accuracy"] = task.test_accuracy();
  s["n_test"] = task.test_size();
  if (ctx.run.primary()) log.info("digit_classifier: test accuracy {:.2f}% on {} digits", 100 * s["test_accuracy"].get<double>(), task.test_size());
  return s;
}

}  // namespace mmref::train
