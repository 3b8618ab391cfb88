// The task registry; see task.h.
#include <fmt/ranges.h>

#include "core/error.h"
#include "train/asr_task.h"
#include "train/clip_task.h"
#include "train/diffusion_task.h"
#include "train/digit_classifier_task.h"
#include "train/mlp_regression.h"
#include "train/task.h"

namespace mmref::train {

namespace {

struct Planned {
  const char* name;
  const char* what;
};
// Families on the roadmap that do not train in this build yet: named so the error is plain about it.
constexpr Planned kPlanned[] = {
    {"dit_video", "DiT video diffusion"},
    {"tts_tacotron2", "Tacotron 2 speech synthesis"},
    {"tts_vits", "VITS speech synthesis"},
};

}  // namespace

std::vector<std::string> task_names() { return {"mlp_regression", "asr_conformer", "diffusion_unet", "digit_classifier", "clip_contrastive"}; }

std::unique_ptr<Task> make_task(const std::string& name) {
  if (name == "mlp_regression") return std::make_unique<MlpRegressionTask>();
  if (name == "asr_conformer") return std::make_unique<AsrConformerTask>();
  if (name == "diffusion_unet") return std::make_unique<DiffusionUnetTask>();
  if (name == "digit_classifier") return std::make_unique<DigitClassifierTask>();
  if (name == "clip_contrastive") return std::make_unique<ClipTask>();
  for (const auto& p : kPlanned) {
    if (name == p.name) {
      throw ConfigError(fmt::format(
          "task '{}' ({}) is not implemented in this build of mmref yet; tasks that train now: {}",
          name, p.what, fmt::join(task_names(), ", ")));
    }
  }
  std::vector<std::string> all = task_names();
  for (const auto& p : kPlanned) all.emplace_back(p.name);
  const std::string near = config::closest(name, all);
  throw ConfigError(fmt::format("task: unknown task '{}'{}; tasks that train now: {}", name,
                                near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near),
                                fmt::join(task_names(), ", ")));
}

}  // namespace mmref::train
