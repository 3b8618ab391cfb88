// The evaluation harness; see harness.h.
#include "eval/harness.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <memory>
#include <sstream>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/utils.h>

#include "core/compat.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/state_dict.h"
#include "data/dataset/manifest.h"
#include "data/media/audio_io.h"
#include "data/media/image_io.h"
#include "eval/asr_transcriber.h"
#include "eval/digit_classifier.h"
#include "eval/frechet.h"
#include "eval/image_set.h"
#include "eval/inception_features.h"
#include "eval/pitch.h"
#include "eval/result.h"
#include "eval/scene_check.h"
#include "eval/speech_quality.h"
#include "eval/stats_hdf5.h"
#include "eval/wer.h"
#include "mmref/build_info.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_tokenizer.h"
#include "models/inception/fid_inception.h"
#include "models/mos/nisqa.h"

namespace mmref::eval {

namespace stdfs = std::filesystem;

namespace {

struct PerSample {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

struct Ctx {
  std::string out;
  int64_t batch_size = 32;
  int64_t bootstrap = 1000;
  uint64_t seed = 0;
  std::string cache_dir;
  std::map<std::string, models::FidInceptionV3> inception;  // by weights path
  std::map<std::string, std::string> sha;                   // by weights path

  void note(const std::string& s) const { std::cerr << "mmref eval: " << s << std::endl; }
  const std::string& hash(const std::string& path) {
    auto it = sha.find(path);
    if (it == sha.end()) it = sha.emplace(path, sha256_file(path)).first;
    return it->second;
  }
  models::FidInceptionV3& net(const std::string& weights) {
    auto it = inception.find(weights);
    if (it == inception.end()) {
      models::FidInceptionV3 n;
      n->load(weights);
      it = inception.emplace(weights, n).first;
    }
    return it->second;
  }
};

using Job = std::function<std::vector<MetricResult>(Ctx&, PerSample&)>;

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string num(double v) { return fmt::format("{:.10g}", v); }

void require_file(const std::string& key, const std::string& path) {
  if (path.empty()) throw ConfigError(fmt::format("{}: required (a file path)", key));
  if (!fs::exists(path)) MMREF_FAIL("{}: '{}' does not exist", key, path);
}

bool is_stats_file(const std::string& p) {
  return (p.size() > 4 && p.compare(p.size() - 4, 4, ".npz") == 0) || is_hdf5_stats_path(p);
}

// ---- image metrics ----

struct InceptionSpec {
  std::string weights, resize = "legacy";
  models::FidResize mode = models::FidResize::kLegacyBilinear;
};

void parse_inception(config::Reader& r, InceptionSpec& s) {
  r.req("weights", s.weights);
  r.choice("resize", s.resize, {"legacy", "antialias"});
  s.mode = parse_resize(s.resize);
}

InceptionFeatures features_of(Ctx& ctx, const InceptionSpec& spec, const std::string& where, const char* role,
                              bool logits, nlohmann::json& settings) {
  const ImageSet set = ImageSet::open(where);
  InceptionRunOptions o;
  o.weights_sha256 = ctx.hash(spec.weights);
  o.resize = spec.mode;
  o.batch_size = ctx.batch_size;
  o.cache_dir = ctx.cache_dir;
  o.want_logits = logits;
  ctx.note(fmt::format("{}: {} images from {}", role, set.size(), set.source()));
  InceptionFeatures f = extract_inception(set, ctx.net(spec.weights), o);
  if (set.grayscale_converted() > 0) {
    ctx.note(fmt::format("warning: {}: {} grayscale images were converted to RGB (gray replicated)", where,
                         set.grayscale_converted()));
  }
  if (set.alpha_dropped() > 0) {
    ctx.note(fmt::format("warning: {}: {} images had an alpha channel, which was dropped (not composited)", where,
                         set.alpha_dropped()));
  }
  settings[std::string("n_") + role] = set.size();
  settings[std::string(role) + "_cache_hits"] = f.cache_hits;
  settings[std::string(role) + "_images_per_s"] = f.seconds > 0 ? set.size() / f.seconds : 0.0;
  if (set.grayscale_converted() > 0) settings[std::string(role) + "_grayscale_converted"] = set.grayscale_converted();
  if (set.alpha_dropped() > 0) settings[std::string(role) + "_alpha_dropped"] = set.alpha_dropped();
  return f;
}

Job parse_fid(config::Reader& r, const std::string& name) {
  std::string real, fake, save_real, save_fake;
  int64_t bootstrap = 0;
  InceptionSpec spec;
  r.req("real", real);
  r.req("fake", fake);
  const bool need_net = !is_stats_file(real) || !is_stats_file(fake);
  if (need_net) {
    parse_inception(r, spec);
  } else {
    r.opt("weights", spec.weights);
    r.choice("resize", spec.resize, {"legacy", "antialias"});
  }
  r.opt("save_real_stats", save_real);
  r.opt("save_fake_stats", save_fake);
  r.opt("bootstrap", bootstrap, config::Range::between(0, 100000));
  r.finish();
  return [=](Ctx& ctx, PerSample&) {
    if (need_net) require_file(name + ".weights", spec.weights);
    nlohmann::json settings{{"real", real}, {"fake", fake}, {"resize", spec.resize},
                            {"feature", "pool3 2048 (pytorch-fid FID Inception-v3)"}};
    if (!spec.weights.empty()) settings["weights"] = spec.weights, settings["weights_sha256"] = ctx.hash(spec.weights);
    at::Tensor fake_feats;
    auto stats_of = [&](const std::string& where, const char* role, const std::string& save) {
      if (is_stats_file(where)) {
        FeatureStats s = load_feature_stats(where);
        settings[std::string(role) + "_stats"] = is_hdf5_stats_path(where) ? "precomputed (HDF5 mu/sigma)" : "precomputed (pytorch-fid .npz)";
        return s;
      }
      InceptionFeatures f = features_of(ctx, spec, where, role, false, settings);
      FeatureStats s = compute_feature_stats(f.pool3, where);
      if (!s.warning.empty()) ctx.note(fmt::format("warning: {} set '{}': {}", role, where, s.warning));
      if (!save.empty()) save_feature_stats(save, s), ctx.note(fmt::format("wrote {} statistics to {}", role, save));
      if (std::string(role) == "fake") fake_feats = f.pool3;
      return s;
    };
    const FeatureStats a = stats_of(real, "real", save_real);
    const FeatureStats b = stats_of(fake, "fake", save_fake);
    const FrechetResult fr = frechet_distance(a, b);
    MetricResult m;
    m.metric = "fid";
    m.value = fr.value;
    m.n = b.n;
    settings["sqrtm_path"] = fr.path;
    if (!fr.reason.empty()) settings["sqrtm_reason"] = fr.reason;
    m.settings = settings;
    m.extra = {{"mean_term", fr.mean_term}, {"trace_term", fr.tr_sigma1 + fr.tr_sigma2 - 2 * fr.tr_covmean}};
    if (bootstrap > 0 && fake_feats.defined()) {
      // Resample the generated set's images; the reference statistics stay fixed.
      m.ci = bootstrap_ci(
          fake_feats.size(0),
          [&](const std::vector<int64_t>& idx) {
            const at::Tensor rows = fake_feats.index_select(0, at::tensor(idx, at::kLong));
            return frechet_distance(a, compute_feature_stats(rows, fake)).value;
          },
          bootstrap, 0.95, ctx.seed);
    }
    return std::vector<MetricResult>{m};
  };
}

Job parse_kid(config::Reader& r, const std::string&) {
  std::string real, fake;
  InceptionSpec spec;
  KidOptions ko;
  r.req("real", real);
  r.req("fake", fake);
  parse_inception(r, spec);
  r.opt("subsets", ko.subsets, config::Range::between(1, 1e7));
  r.opt("subset_size", ko.subset_size, config::Range::between(2, 1e9));
  r.opt("degree", ko.degree, config::Range::between(1, 10));
  r.finish();
  return [=](Ctx& ctx, PerSample& ps) {
    nlohmann::json settings{{"real", real},           {"fake", fake},
                            {"resize", spec.resize},  {"weights", spec.weights},
                            {"subsets", ko.subsets},  {"degree", ko.degree},
                            {"kernel", "(x.y/d + 1)^degree, unbiased MMD^2 (torch-fidelity)"}};
    require_file("kid.weights", spec.weights);
    settings["weights_sha256"] = ctx.hash(spec.weights);
    const InceptionFeatures a = features_of(ctx, spec, real, "real", false, settings);
    const InceptionFeatures b = features_of(ctx, spec, fake, "fake", false, settings);
    const KidResult k = kernel_inception_distance(a.pool3, b.pool3, ko);
    MetricResult m;
    m.metric = "kid";
    m.value = k.mean;
    m.n = b.pool3.size(0);
    settings["subset_size"] = k.subset_size;
    m.settings = settings;
    m.extra = {{"std", k.std}};
    ps.columns = {"subset", "mmd2"};
    for (size_t i = 0; i < k.values.size(); ++i) ps.rows.push_back({std::to_string(i), num(k.values[i])});
    return std::vector<MetricResult>{m};
  };
}

Job parse_is(config::Reader& r, const std::string&) {
  std::string images;
  InceptionSpec spec;
  int64_t splits = 10;
  r.req("images", images);
  parse_inception(r, spec);
  r.opt("splits", splits, config::Range::between(1, 1000));
  r.finish();
  return [=](Ctx& ctx, PerSample& ps) {
    require_file("is.weights", spec.weights);
    nlohmann::json settings{{"images", images}, {"resize", spec.resize}, {"weights", spec.weights},
                            {"weights_sha256", ctx.hash(spec.weights)}, {"splits", splits},
                            {"logits", "1008-way fc of the FID Inception (torch-fidelity's isc)"}};
    if (!ctx.net(spec.weights)->has_logits()) {
      MMREF_FAIL("is: '{}' has no fc.weight/fc.bias; the Inception Score needs the full pt_inception-2015-12-05 "
                 "file",
                 spec.weights);
    }
    const InceptionFeatures f = features_of(ctx, spec, images, "images", true, settings);
    const InceptionScoreResult s = inception_score(f.logits, splits);
    MetricResult m;
    m.metric = "inception_score";
    m.value = s.mean;
    m.n = f.logits.size(0);
    m.settings = settings;
    m.extra = {{"std", s.std}};
    ps.columns = {"split", "is"};
    for (size_t i = 0; i < s.per_split.size(); ++i) ps.rows.push_back({std::to_string(i), num(s.per_split[i])});
    return std::vector<MetricResult>{m};
  };
}

// Captions for a set: JSONL {"path"|"image", "text"} matched by file name, or text lines in set order.
std::vector<std::string> captions_for(const std::string& file, const std::vector<std::string>& paths) {
  std::ifstream in(file);
  if (!in) MMREF_FAIL("captions '{}': cannot open", file);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(l);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::vector<std::string> out;
  const bool jsonl = !lines.empty() && !lines[0].empty() && lines[0][0] == '{';
  if (jsonl) {
    std::map<std::string, std::string> by_name;
    for (size_t i = 0; i < lines.size(); ++i) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(lines[i]);
      } catch (const std::exception& e) {
        MMREF_FAIL("captions '{}':{}: not JSON: {}", file, i + 1, e.what());
      }
      const std::string p = j.value("path", j.value("image", ""));
      if (p.empty() || !j.contains("text")) MMREF_FAIL("captions '{}':{}: needs \"path\" (or \"image\") and \"text\"", file, i + 1);
      by_name[stdfs::path(p).filename().string()] = j.at("text").get<std::string>();
    }
    for (const auto& p : paths) {
      auto it = by_name.find(stdfs::path(p).filename().string());
      if (it == by_name.end()) MMREF_FAIL("captions '{}': no caption for '{}'", file, p);
      out.push_back(it->second);
    }
  } else {
    if (lines.size() != paths.size()) {
      MMREF_FAIL("captions '{}': {} lines for {} images/videos (one caption per line, in sorted file order)", file,
                 lines.size(), paths.size());
    }
    out = lines;
  }
  return out;
}

Job parse_clip(config::Reader& r, const std::string& name) {
  std::string images, captions, weights, vocab, real;
  int64_t text_heads = 0, frame_stride = 1, bootstrap = 0;
  bool temporal = true;
  r.req("images", images);
  r.req("captions", captions);
  r.req("weights", weights);
  r.req("vocab", vocab);
  r.opt("text_heads", text_heads, config::Range::between(0, 1024));
  r.opt("frame_stride", frame_stride, config::Range::between(1, 100000));
  r.opt("temporal", temporal);
  r.opt("real", real);  // a reference image set: also clip_fid (Frechet distance of the image embeddings)
  r.opt("bootstrap", bootstrap, config::Range::between(0, 100000));
  r.finish();
  return [=](Ctx& ctx, PerSample& ps) {
    require_file("clip_score.weights", weights);
    require_file("clip_score.vocab", vocab);
    const auto sd = models::clip_openai_state_dict(load_weights(weights));
    models::ClipModel model(models::ClipConfig::infer(sd, text_heads));
    model->load(sd);
    const models::ClipTokenizer tok(vocab);
    ImageSetOptions so;
    so.frame_stride = frame_stride;
    const ImageSet set = ImageSet::open(images, so);
    const int64_t res = model->config().image_resolution;
    torch::NoGradGuard ng;
    // Image embeddings (encode_image's output, not normalised), in batches.
    auto embed = [&](const ImageSet& from) {
      std::vector<at::Tensor> emb;
      for (int64_t b = 0; b < from.size(); b += ctx.batch_size) {
        std::vector<at::Tensor> pre;
        for (const auto& im : from.load(b, ctx.batch_size)) pre.push_back(models::clip_preprocess(im.unsqueeze(0), res));
        emb.push_back(model->encode_image(at::cat(pre, 0)));
      }
      return at::cat(emb, 0);  // (N, E)
    };
    const at::Tensor raw = embed(set);
    const at::Tensor img = raw / raw.norm(2, -1, true);
    std::vector<std::string> units;          // one caption per image, or per video
    std::vector<std::vector<int64_t>> groups;
    if (set.is_video()) {
      groups = set.videos();
      for (const auto& g : groups) units.push_back(set.items()[static_cast<size_t>(g.front())].path);
    } else {
      for (int64_t i = 0; i < set.size(); ++i) units.push_back(set.items()[static_cast<size_t>(i)].path), groups.push_back({i});
    }
    const std::vector<std::string> caps = captions_for(captions, units);
    at::Tensor txt = model->encode_text(tok.tokenize(caps, model->config().context_length));
    txt = txt / txt.norm(2, -1, true);
    std::vector<double> score(units.size()), temporal_cos;
    ps.columns = {"item", "caption", "clip_score"};
    if (set.is_video() && temporal) ps.columns.push_back("temporal_consistency");
    for (size_t u = 0; u < units.size(); ++u) {
      double s = 0;
      for (int64_t i : groups[u]) s += std::max(0.0, 100.0 * (img[i] * txt[static_cast<int64_t>(u)]).sum().item<double>());
      score[u] = s / static_cast<double>(groups[u].size());
      std::vector<std::string> row{units[u], caps[u], num(score[u])};
      if (set.is_video() && temporal) {
        double c = 0;
        for (size_t k = 1; k < groups[u].size(); ++k) c += (img[groups[u][k]] * img[groups[u][k - 1]]).sum().item<double>();
        temporal_cos.push_back(groups[u].size() > 1 ? c / static_cast<double>(groups[u].size() - 1) : NAN);
        row.push_back(num(temporal_cos.back()));
      }
      ps.rows.push_back(std::move(row));
    }
    auto mean_of = [](const std::vector<double>& v, const std::vector<int64_t>& idx) {
      double s = 0;
      int64_t n = 0;
      for (int64_t i : idx) {
        if (std::isfinite(v[static_cast<size_t>(i)])) s += v[static_cast<size_t>(i)], ++n;
      }
      return n ? s / static_cast<double>(n) : NAN;
    };
    std::vector<int64_t> all(units.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    nlohmann::json settings{{"images", images},
                            {"captions", captions},
                            {"weights", weights},
                            {"weights_sha256", ctx.hash(weights)},
                            {"vocab", vocab},
                            {"image_resolution", res},
                            {"score", "100 * max(cos(image, text), 0), averaged"},
                            {"preprocess", "bicubic antialiased resize of the short side, center crop, CLIP mean/std"}};
    if (set.is_video()) settings["video"] = "per-frame scores averaged per video", settings["frame_stride"] = frame_stride;
    std::vector<MetricResult> out;
    MetricResult m;
    m.metric = "clip_score";
    m.value = mean_of(score, all);
    m.n = static_cast<int64_t>(units.size());
    m.settings = settings;
    m.ci = bootstrap_ci(m.n, [&](const std::vector<int64_t>& idx) { return mean_of(score, idx); }, ctx.bootstrap, 0.95,
                        ctx.seed);
    out.push_back(m);
    if (!real.empty()) {
      // clip_fid: Frechet distance between the Gaussians of the two sets' image embeddings.
      const ImageSet ref = ImageSet::open(real, so);
      const at::Tensor fa = embed(ref).to(at::kDouble), fb = raw.to(at::kDouble);
      ctx.note(fmt::format("{}: clip_fid of {} images against {} real from {}", name, fb.size(0), fa.size(0), real));
      const FeatureStats sa = compute_feature_stats(fa, real), sb = compute_feature_stats(fb, images);
      const FrechetResult fr = frechet_distance(sa, sb);
      MetricResult f;
      f.metric = "clip_fid";
      f.value = fr.value, f.n = sb.n, f.settings = settings;
      f.settings["real"] = real;
      f.settings["feature"] = fmt::format("CLIP encode_image output ({} dims, not normalised)", fa.size(1));
      f.extra = {{"mean_term", fr.mean_term}, {"trace_term", fr.tr_sigma1 + fr.tr_sigma2 - 2 * fr.tr_covmean},
                 {"n_real", sa.n}};
      if (bootstrap > 0) {
        f.ci = bootstrap_ci(fb.size(0), [&](const std::vector<int64_t>& idx) {
          return frechet_distance(sa, compute_feature_stats(fb.index_select(0, at::tensor(idx, at::kLong)), images)).value;
        }, bootstrap, 0.95, ctx.seed);
      }
      out.push_back(f);
    }
    if (!temporal_cos.empty()) {
      MetricResult t;
      t.metric = "clip_temporal_consistency";
      t.value = mean_of(temporal_cos, all);
      t.n = m.n;
      t.settings = settings;
      t.settings["score"] = "mean cosine of consecutive frames' CLIP image embeddings";
      t.ci = bootstrap_ci(t.n, [&](const std::vector<int64_t>& idx) { return mean_of(temporal_cos, idx); }, ctx.bootstrap,
                          0.95, ctx.seed);
      out.push_back(t);
    }
    return out;
  };
}

// ---- text metrics ----

struct Utterances {
  std::vector<std::string> ids, texts;
};

Utterances read_texts(const std::string& file) {
  std::ifstream in(file);
  if (!in) MMREF_FAIL("'{}': cannot open the transcript file", file);
  Utterances u;
  std::string first;
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(l);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  const bool jsonl = !lines.empty() && !lines[0].empty() && lines[0][0] == '{';
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!jsonl) {
      u.ids.push_back(std::to_string(i + 1)), u.texts.push_back(lines[i]);
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[i]);
    } catch (const std::exception& e) {
      MMREF_FAIL("'{}':{}: not JSON: {}", file, i + 1, e.what());
    }
    if (!j.contains("text") || !j["text"].is_string()) MMREF_FAIL("'{}':{}: no \"text\" string", file, i + 1);
    u.ids.push_back(j.value("id", j.value("path", std::to_string(i + 1))));
    u.texts.push_back(j["text"].get<std::string>());
  }
  return u;
}

// The files a manifest lists ({"path"|"id", ...} per line; "text" optional), or one path per line.
Utterances read_texts_or_paths(const std::string& file) {
  std::ifstream in(file);
  if (!in) MMREF_FAIL("'{}': cannot open the file list", file);
  Utterances u;
  int64_t n = 0;
  for (std::string l; std::getline(in, l);) {
    ++n;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.empty()) continue;
    if (l[0] != '{') {
      u.ids.push_back(l), u.texts.emplace_back();
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const std::exception& e) {
      MMREF_FAIL("'{}':{}: not JSON: {}", file, n, e.what());
    }
    const std::string p = j.value("path", j.value("id", ""));
    if (p.empty()) MMREF_FAIL("'{}':{}: no \"path\"", file, n);
    u.ids.push_back(p), u.texts.push_back(j.value("text", ""));
  }
  return u;
}

Job parse_wer(config::Reader& r, const std::string& name, bool chars) {
  std::string refs, hyps;
  WerNormalization norm;
  r.req("references", refs);
  r.req("hypotheses", hyps);
  parse(r, norm);  // finishes r
  return [=](Ctx& ctx, PerSample& ps) {
    const Utterances ref = read_texts(refs);
    Utterances hyp = read_texts(hyps);
    if (ref.texts.size() != hyp.texts.size()) {
      MMREF_FAIL("{}: {} has {} utterances but {} has {}; the sets must pair one to one", name, refs,
                 ref.texts.size(), hyps, hyp.texts.size());
    }
    // Pair by id when both files name their utterances, else by line.
    std::map<std::string, size_t> pos;
    for (size_t i = 0; i < hyp.ids.size(); ++i) pos[hyp.ids[i]] = i;
    bool by_id = pos.size() == hyp.ids.size();
    for (const auto& id : ref.ids) by_id = by_id && pos.count(id);
    std::vector<std::string> h(ref.texts.size());
    for (size_t i = 0; i < ref.texts.size(); ++i) h[i] = by_id ? hyp.texts[pos[ref.ids[i]]] : hyp.texts[i];
    const TextTransform t = chars ? make_char_transform(norm) : make_word_transform(norm);
    std::vector<ErrorCounts> utt;
    MetricResult m;
    std::string alignment;
    if (chars) {
      const CharacterOutput o = process_characters(ref.texts, h, t, t);
      m = to_metric_result(o), utt = o.utterances, alignment = visualize_alignment(o, {true, false, {}});
    } else {
      const WordOutput o = process_words(ref.texts, h, t, t);
      m = to_metric_result(o), utt = o.utterances, alignment = visualize_alignment(o, {true, false, {}});
    }
    m.settings = {{"references", refs},
                  {"hypotheses", hyps},
                  {"paired_by", by_id ? "id" : "line"},
                  {"case", norm.letter_case == WerNormalization::Case::kLower ? "lower" : "keep"},
                  {"remove_punctuation", norm.remove_punctuation},
                  {"normalize_whitespace", norm.normalize_whitespace},
                  {"expand_numbers", norm.expand_numbers},
                  {"corpus_level", "summed edits over summed reference units (jiwer)"}};
    m.ci = bootstrap_ci(static_cast<int64_t>(utt.size()),
                        [&](const std::vector<int64_t>& idx) { return error_rates(sum_counts(utt, idx)).wer; },
                        ctx.bootstrap, 0.95, ctx.seed);
    ps.columns = {"id", "reference", "hypothesis", chars ? "cer" : "wer", "hits", "substitutions", "deletions",
                  "insertions"};
    for (size_t i = 0; i < utt.size(); ++i) {
      const ErrorCounts& c = utt[i];
      ps.rows.push_back({ref.ids[i], ref.texts[i], h[i], num(error_rates(c).wer), std::to_string(c.hits),
                         std::to_string(c.substitutions), std::to_string(c.deletions), std::to_string(c.insertions)});
    }
    const std::string ap = fmt::format("{}/per_sample/{}.alignment.txt", ctx.out, name);
    fs::atomic_write(ap, alignment);
    m.settings["alignment_file"] = ap;
    return std::vector<MetricResult>{m};
  };
}

// ---- speech signal metrics ----

Job parse_speech(config::Reader& r, const std::string& name) {
  std::string ref_dir, syn_dir;
  std::vector<std::string> measures{"mcd", "f0", "lsd", "stoi", "si_sdr"};
  int64_t sample_rate = 0;
  McdOptions mcd_o;
  F0MetricsOptions f0_o;
  LsdOptions lsd_o;
  lsd_o.truncate = true;  // synthesized speech rarely has the reference's length
  StoiOptions stoi_o;
  r.req("reference", ref_dir);
  r.req("synthesized", syn_dir);
  r.opt("measures", measures);
  r.opt("sample_rate", sample_rate, config::Range::between(0, 384000));
  if (r.has("mcd")) {
    auto c = r.child("mcd");
    parse(c, mcd_o);
  }
  if (r.has("f0")) {
    auto c = r.child("f0");
    parse(c, f0_o);
  }
  if (r.has("lsd")) {
    auto c = r.child("lsd");
    parse(c, lsd_o);
  }
  if (r.has("stoi")) {
    auto c = r.child("stoi");
    parse(c, stoi_o);
  }
  r.finish();
  for (const auto& m : measures) {
    static const std::vector<std::string> known{"mcd", "f0", "lsd", "stoi", "si_sdr"};
    if (std::find(known.begin(), known.end(), m) == known.end()) {
      const std::string near = config::closest(m, known);
      throw ConfigError(fmt::format("{}.measures: unknown measure '{}'{}; known: {}", name, m,
                                    near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near), fmt::join(known, ", ")));
    }
  }
  return [=](Ctx& ctx, PerSample& ps) {
    std::vector<std::string> names;
    std::error_code ec;
    if (!stdfs::is_directory(ref_dir, ec)) MMREF_FAIL("{}.reference: '{}' is not a folder", name, ref_dir);
    if (!stdfs::is_directory(syn_dir, ec)) MMREF_FAIL("{}.synthesized: '{}' is not a folder", name, syn_dir);
    for (const auto& e : stdfs::directory_iterator(ref_dir, ec)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".wav" || ext == ".flac" || ext == ".mp3" || ext == ".ogg")) {
        names.push_back(e.path().filename().string());
      }
    }
    std::sort(names.begin(), names.end());
    if (names.empty()) MMREF_FAIL("{}.reference: no audio files in '{}'", name, ref_dir);
    std::vector<std::string> missing;
    for (const auto& n : names) {
      if (!fs::exists(syn_dir + "/" + n)) missing.push_back(n);
    }
    if (!missing.empty()) {
      MMREF_FAIL("{}: {} of {} reference files have no synthesized file of the same name in '{}' (first: {})", name,
                 missing.size(), names.size(), syn_dir, missing.front());
    }
    std::map<std::string, std::vector<double>> vals;
    std::map<std::string, int64_t> skipped;
    std::map<std::string, std::string> skip_reason;
    ps.columns = {"file"};
    for (const auto& m : measures) {
      if (m == "f0") {
        ps.columns.insert(ps.columns.end(), {"f0_rmse_hz", "f0_rmse_cents", "vde"});
      } else {
        ps.columns.push_back(m);
      }
    }
    for (const auto& n : names) {
      data::AudioOptions ao;
      ao.channels = 1;
      ao.sample_rate = static_cast<int>(sample_rate);
      int sr_a = 0, sr_b = 0;
      Waveform a{data::load_audio(ref_dir + "/" + n, ao, &sr_a).reshape({-1}), 0};
      Waveform b{data::load_audio(syn_dir + "/" + n, ao, &sr_b).reshape({-1}), 0};
      a.sample_rate = sr_a, b.sample_rate = sr_b;
      if (sr_a != sr_b) {
        MMREF_FAIL("{}: '{}' is {} Hz in the reference but {} Hz synthesized; set {}.sample_rate to resample both", name,
                   n, sr_a, sr_b, name);
      }
      std::vector<std::string> row{n};
      for (const auto& m : measures) {
        // A measure that cannot score this pair (e.g. SI-SDR on different lengths) gives NaN for it,
        // counted and reported, and the other files and measures go on.
        auto guarded = [&](const std::function<double()>& f) {
          try {
            return f();
          } catch (const std::exception& e) {
            if (skipped[m]++ == 0) skip_reason[m] = fmt::format("{}: {}", n, e.what());
            return static_cast<double>(NAN);
          }
        };
        if (m == "f0") {
          F0Metrics f;
          const double ok = guarded([&] { return f = f0_metrics(a, b, f0_o), 1.0; });
          if (!std::isfinite(ok)) f.rmse_hz = f.rmse_cents = f.vde = NAN;
          vals["f0_rmse_hz"].push_back(f.rmse_hz), vals["f0_rmse_cents"].push_back(f.rmse_cents), vals["vde"].push_back(f.vde);
          row.insert(row.end(), {num(f.rmse_hz), num(f.rmse_cents), num(f.vde)});
          continue;
        }
        double v = NAN;
        if (m == "mcd") {
          v = guarded([&] { return mcd(a, b, mcd_o).mcd; });
        } else if (m == "lsd") {
          v = guarded([&] { return lsd(a, b, lsd_o); });
        } else if (m == "stoi") {
          v = guarded([&] { return stoi(a, b, stoi_o); });
        } else {
          v = guarded([&] { return si_sdr(a, b); });
        }
        vals[m].push_back(v);
        row.push_back(num(v));
      }
      ps.rows.push_back(std::move(row));
    }
    std::vector<MetricResult> out;
    for (const auto& [k, v] : vals) {
      auto mean_of = [&v](const std::vector<int64_t>& idx) {
        double s = 0;
        int64_t c = 0;
        for (int64_t i : idx) {
          if (std::isfinite(v[static_cast<size_t>(i)])) s += v[static_cast<size_t>(i)], ++c;
        }
        return c ? s / static_cast<double>(c) : NAN;
      };
      std::vector<int64_t> all(v.size());
      for (size_t i = 0; i < v.size(); ++i) all[i] = static_cast<int64_t>(i);
      MetricResult m;
      m.metric = k;
      m.value = mean_of(all);
      m.n = static_cast<int64_t>(v.size());
      m.settings = {{"reference", ref_dir}, {"synthesized", syn_dir}, {"paired_by", "file name"},
                    {"mean_over", "files (non-finite values skipped)"}};
      const std::string base = k.rfind("f0", 0) == 0 || k == "vde" ? "f0" : k;
      if (skipped.count(base)) {
        m.settings["files_not_scored"] = skipped[base];
        m.settings["first_reason"] = skip_reason[base];
        ctx.note(fmt::format("warning: {}: {} of {} files not scored; first: {}", k, skipped[base], v.size(),
                             skip_reason[base]));
      }
      m.ci = bootstrap_ci(m.n, mean_of, ctx.bootstrap, 0.95, ctx.seed);
      out.push_back(m);
    }
    return out;
  };
}

// ---- TTS intelligibility: synthesized speech transcribed by an mmref Conformer-CTC checkpoint ----

bool is_audio_file(const stdfs::path& p) {
  static const std::set<std::string> ext{".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus"};
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext.count(e) > 0;
}

Job parse_intelligibility(config::Reader& r, const std::string& name) {
  std::string audio, texts, checkpoint;
  AsrDecodeConfig dc;
  dc.method = "beam";
  int64_t batch = 8;
  r.req("audio", audio);
  r.opt("texts", texts);
  r.req("checkpoint", checkpoint);
  r.choice("decode", dc.method, {"greedy", "beam"});
  r.opt("beam", dc.beam, config::Range::between(1, 10000));
  r.opt("chunk_size", dc.chunk_size, config::Range::at_least(0));
  r.opt("left_chunks", dc.left_chunks, config::Range::at_least(-1));
  r.opt("batch_size", batch, config::Range::between(1, 4096));
  r.finish();
  return [=](Ctx& ctx, PerSample& ps) {
    // (path, reference) pairs: a JSONL manifest with path + text, or a folder of audio files whose
    // texts come from `texts` (JSONL matched by file name, or one line per file in sorted order).
    std::vector<std::string> files, refs;
    std::error_code ec;
    if (stdfs::is_directory(audio, ec)) {
      for (const auto& e : stdfs::directory_iterator(audio)) {
        if (e.is_regular_file() && is_audio_file(e.path())) files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) MMREF_FAIL("{}.audio: no audio files (.wav, .flac, .mp3, ...) in '{}'", name, audio);
      if (texts.empty()) MMREF_FAIL("{}.texts: needed when audio is a folder ('{}')", name, audio);
      const Utterances u = read_texts(texts);
      std::map<std::string, std::string> by_name;
      for (size_t i = 0; i < u.ids.size(); ++i) by_name[stdfs::path(u.ids[i]).filename().string()] = u.texts[i];
      const bool named = std::all_of(files.begin(), files.end(), [&](const std::string& f) {
        return by_name.count(stdfs::path(f).filename().string()) > 0;
      });
      if (!named && u.texts.size() != files.size()) {
        MMREF_FAIL("{}: '{}' has {} audio files but '{}' has {} texts, not matched by file name", name, audio,
                   files.size(), texts, u.texts.size());
      }
      for (size_t i = 0; i < files.size(); ++i) {
        refs.push_back(named ? by_name[stdfs::path(files[i]).filename().string()] : u.texts[i]);
      }
    } else {
      require_file(name + ".audio", audio);
      const Utterances u = read_texts(audio);
      const stdfs::path base = stdfs::path(audio).parent_path();
      for (size_t i = 0; i < u.ids.size(); ++i) {
        const stdfs::path p(u.ids[i]);
        files.push_back(p.is_absolute() ? p.string() : (base / p).string());
        refs.push_back(u.texts[i]);
      }
      if (files.empty()) MMREF_FAIL("{}.audio: '{}' lists no utterances", name, audio);
    }
    require_file(name + ".checkpoint", checkpoint);
    ctx.note(fmt::format("{}: transcribing {} files with {}", name, files.size(), checkpoint));
    const std::vector<AsrTranscript> tr = transcribe_files(checkpoint, files, dc, batch);
    std::vector<std::string> ref_n, hyp;
    double audio_s = 0, decode_s = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      ref_n.push_back(normalize_transcript(refs[i]));
      hyp.push_back(tr[i].text);
      audio_s += tr[i].audio_seconds, decode_s += tr[i].decode_seconds;
    }
    const WerNormalization norm;  // both sides are already normalised as the recogniser was trained
    const TextTransform wt = make_word_transform(norm), ct = make_char_transform(norm);
    const WordOutput wo = process_words(ref_n, hyp, wt, wt);
    const CharacterOutput co = process_characters(ref_n, hyp, ct, ct);
    MetricResult w = to_metric_result(wo), c = to_metric_result(co);
    w.metric = "intelligibility_wer", c.metric = "intelligibility_cer";
    const std::string sha = ctx.hash(checkpoint);
    for (MetricResult* m : {&w, &c}) {
      m->settings = {{"audio", audio},
                     {"texts", texts},
                     {"recognizer", "mmref asr_conformer (Conformer-CTC)"},
                     {"checkpoint", checkpoint},
                     {"checkpoint_sha256", sha},
                     {"decode", dc.method},
                     {"beam", dc.beam},
                     {"normalization", "mmref ASR transcript normalisation (lower case, numbers as words, "
                                       "punctuation removed)"}};
      m->extra["audio_seconds"] = audio_s;
      m->extra["real_time_factor"] = audio_s > 0 ? decode_s / audio_s : 0.0;
    }
    w.ci = bootstrap_ci(static_cast<int64_t>(wo.utterances.size()),
                        [&](const std::vector<int64_t>& idx) { return error_rates(sum_counts(wo.utterances, idx)).wer; },
                        ctx.bootstrap, 0.95, ctx.seed);
    c.ci = bootstrap_ci(static_cast<int64_t>(co.utterances.size()),
                        [&](const std::vector<int64_t>& idx) { return error_rates(sum_counts(co.utterances, idx)).wer; },
                        ctx.bootstrap, 0.95, ctx.seed);
    ps.columns = {"path", "reference", "hypothesis", "wer", "cer"};
    for (size_t i = 0; i < files.size(); ++i) {
      ps.rows.push_back({files[i], ref_n[i], hyp[i], num(error_rates(wo.utterances[i]).wer),
                         num(error_rates(co.utterances[i]).wer)});
    }
    return std::vector<MetricResult>{w, c};
  };
}

// ---- learned MOS: NISQA (weights from a file) ----

Job parse_mos(config::Reader& r, const std::string& name) {
  std::string audio, weights, args;
  int64_t max_segments = 0;
  r.req("audio", audio);
  r.req("weights", weights);
  r.opt("args", args);
  r.opt("max_segments", max_segments, config::Range::at_least(0));
  r.finish();
  return [=](Ctx& ctx, PerSample& ps) {
    std::vector<std::string> files;
    std::error_code ec;
    if (stdfs::is_directory(audio, ec)) {
      for (const auto& e : stdfs::directory_iterator(audio)) {
        if (e.is_regular_file() && is_audio_file(e.path())) files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
    } else {
      require_file(name + ".audio", audio);
      const Utterances u = read_texts_or_paths(audio);
      const stdfs::path base = stdfs::path(audio).parent_path();
      for (const auto& id : u.ids) files.push_back(stdfs::path(id).is_absolute() ? id : (base / id).string());
    }
    if (files.empty()) MMREF_FAIL("{}.audio: no audio files (.wav, .flac, .mp3, ...) in '{}'", name, audio);
    require_file(name + ".weights", weights);
    models::Nisqa net = models::load_nisqa(weights, args);
    if (max_segments > 0) net->set_max_segments(max_segments);
    const bool dim = net->config().dim();
    ctx.note(fmt::format("{}: NISQA ({}) on {} files", name, net->config().model, files.size()));
    std::vector<std::vector<double>> v(dim ? 5 : 1);
    ps.columns = {"path", "mos"};
    if (dim) ps.columns.insert(ps.columns.end(), {"noi", "dis", "col", "loud"});
    torch::NoGradGuard ng;
    for (const auto& f : files) {
      data::AudioOptions ao;
      ao.channels = 1;
      int sr = 0;
      const at::Tensor wave = data::load_audio(f, ao, &sr).select(0, 0);
      models::MosPrediction p;
      try {
        p = models::predict(net, wave, sr);
      } catch (const Error& e) {
        MMREF_FAIL("{}: '{}': {}", name, f, e.what());
      }
      v[0].push_back(p.mos);
      std::vector<std::string> row{f, num(p.mos)};
      if (dim) {
        for (const auto& [k, x] : {std::pair{1, p.noi}, {2, p.dis}, {3, p.col}, {4, p.loud}}) {
          v[static_cast<size_t>(k)].push_back(x.value_or(NAN));
          row.push_back(num(x.value_or(NAN)));
        }
      }
      ps.rows.push_back(row);
    }
    static const char* kNames[] = {"mos_nisqa", "nisqa_noi", "nisqa_dis", "nisqa_col", "nisqa_loud"};
    std::vector<MetricResult> out;
    const std::string sha = ctx.hash(weights);
    for (size_t k = 0; k < v.size(); ++k) {
      MetricResult m;
      m.metric = kNames[k];
      m.n = static_cast<int64_t>(v[k].size());
      double sum = 0;
      for (const double x : v[k]) sum += x;
      m.value = sum / static_cast<double>(m.n);
      const auto& vals = v[k];
      m.ci = bootstrap_ci(m.n, [&](const std::vector<int64_t>& idx) {
        double a = 0;
        for (const auto i : idx) a += vals[static_cast<size_t>(i)];
        return a / static_cast<double>(idx.size());
      }, ctx.bootstrap, 0.95, ctx.seed);
      m.settings = {{"audio", audio}, {"weights", weights}, {"weights_sha256", sha}, {"model", net->config().model},
                    {"predictor", "NISQA (Mittag et al. 2021), mmref port; mean over files"},
                    {"channels", "mixed to mono"}};
      out.push_back(m);
    }
    return out;
  };
}

// ---- prompt adherence on the procedural shapes corpus (no weights): eval/scene_check.h ----

Job parse_scene(config::Reader& r, const std::string& name) {
  std::string images, captions;
  r.req("images", images);
  r.req("captions", captions);
  r.finish();
  return [=](Ctx& ctx, PerSample& ps) {
    const ImageSet set = ImageSet::open(images);
    if (set.is_video()) MMREF_FAIL("{}.images: '{}' holds videos; the scene checks take still images", name, images);
    std::vector<std::string> paths;
    for (const auto& it : set.items()) paths.push_back(it.path);
    const std::vector<std::string> caps = captions_for(captions, paths);
    static const char* kChecks[] = {"all", "colour", "count", "shape", "size", "position"};
    std::vector<std::vector<double>> pass(6);
    ps.columns = {"path", "caption", "all", "colour", "count", "shape", "size", "position"};
    for (int64_t b = 0; b < set.size(); b += ctx.batch_size) {
      const auto imgs = set.load(b, ctx.batch_size);
      for (size_t k = 0; k < imgs.size(); ++k) {
        const size_t i = static_cast<size_t>(b) + k;
        SceneCaption cap;
        try {
          cap = parse_scene_caption(caps[i]);
        } catch (const Error& e) {
          MMREF_FAIL("{}: {} (for '{}')", name, e.what(), paths[i]);
        }
        const SceneCheck c = check_scene(imgs[k], cap);
        const bool v[6] = {c.all(), c.colour, c.count, c.shape, c.size, c.position};
        std::vector<std::string> row{paths[i], caps[i]};
        for (int q = 0; q < 6; ++q) pass[static_cast<size_t>(q)].push_back(v[q]), row.push_back(v[q] ? "1" : "0");
        ps.rows.push_back(row);
      }
    }
    std::vector<MetricResult> out;
    for (size_t q = 0; q < 6; ++q) {
      MetricResult m;
      m.metric = std::string("scene_") + kChecks[q];
      m.n = static_cast<int64_t>(pass[q].size());
      double a = 0;
      for (const double x : pass[q]) a += x;
      m.value = a / static_cast<double>(std::max<int64_t>(1, m.n));
      const auto& vals = pass[q];
      m.ci = bootstrap_ci(m.n, [&](const std::vector<int64_t>& idx) {
        double t = 0;
        for (const auto i : idx) t += vals[static_cast<size_t>(i)];
        return t / static_cast<double>(idx.size());
      }, ctx.bootstrap, 0.95, ctx.seed);
      m.settings = {{"images", images}, {"captions", captions},
                    {"checker", "eval/scene_check.h: palette segmentation against the caption (shapes corpus)"}};
      out.push_back(m);
    }
    return out;
  };
}

// The images and labels of a digits set: a manifest ({"path", "text", extra "label"}) or a folder of
// images with a captions file (captions.jsonl of a run's final samples; label = the digit in the text).
struct LabelledImages {
  std::vector<std::string> paths;
  std::vector<at::Tensor> images;  // (C, H, W) float in [0, 1]
  std::vector<int64_t> labels;     // empty without captions
};

LabelledImages labelled_images(const std::string& key, const std::string& where, const std::string& captions) {
  LabelledImages L;
  const bool manifest = where.size() > 6 && where.compare(where.size() - 6, 6, ".jsonl") == 0;
  if (manifest) {
    require_file(key, where);
    for (const auto& e : data::read_manifest(where)) {
      L.paths.push_back(e.path);
      L.images.push_back(data::load_image(e.path).to(at::kFloat) / 255.0);
      L.labels.push_back(e.extra.is_object() && e.extra.contains("label") ? e.extra["label"].get<int64_t>()
                                                                           : digit_of_caption(e.text));
    }
    if (L.paths.empty()) MMREF_FAIL("{}: manifest '{}' lists no images", key, where);
    return L;
  }
  const ImageSet set = ImageSet::open(where);
  if (set.is_video()) MMREF_FAIL("{}: '{}' holds videos; the digits metrics take still images", key, where);
  for (const auto& it : set.items()) L.paths.push_back(it.path);
  L.images = set.load(0, set.size());
  if (!captions.empty()) {
    for (const auto& c : captions_for(captions, L.paths)) L.labels.push_back(digit_of_caption(c));
  }
  return L;
}

Job parse_digits(config::Reader& r, const std::string& name) {
  std::string real, fake, real_captions, captions, classifier;
  int64_t bootstrap = 0;
  r.req("real", real);
  r.req("fake", fake);
  r.opt("real_captions", real_captions);
  r.opt("captions", captions);
  r.req("classifier", classifier);
  r.opt("bootstrap", bootstrap, config::Range::between(0, 100000));
  r.finish();
  return [=](Ctx& ctx, PerSample& ps) {
    DigitClassifier net = load_digit_classifier(classifier);
    // A run's final_samples folder carries its captions.jsonl: use it when captions is not given.
    auto default_captions = [](const std::string& dir, const std::string& given) {
      if (!given.empty()) return given;
      const std::string c = dir + "/captions.jsonl";
      return fs::exists(c) ? c : std::string();
    };
    const LabelledImages a = labelled_images(name + ".real", real, default_captions(real, real_captions));
    const LabelledImages b = labelled_images(name + ".fake", fake, default_captions(fake, captions));
    ctx.note(fmt::format("{}: {} real images from {}, {} generated from {}", name, a.paths.size(), real,
                         b.paths.size(), fake));
    const DigitOutputs fa = classify_digits(net, a.images, ctx.batch_size);
    const DigitOutputs fb = classify_digits(net, b.images, ctx.batch_size);
    const nlohmann::json settings{{"real", real}, {"fake", fake}, {"classifier", classifier},
                                  {"classifier_sha256", ctx.hash(classifier)}, {"classifier_weights", net.weights},
                                  {"feature", "fc1 128 (pytorch/examples MNIST CNN), gray, bilinear to 28 px"}};
    std::vector<MetricResult> out;
    const FeatureStats sa = compute_feature_stats(fa.features, real);
    const FeatureStats sb = compute_feature_stats(fb.features, fake);
    const FrechetResult fr = frechet_distance(sa, sb);
    MetricResult fid;
    fid.metric = "digits_fid";
    fid.value = fr.value, fid.n = sb.n, fid.settings = settings;
    fid.extra = {{"mean_term", fr.mean_term}, {"trace_term", fr.tr_sigma1 + fr.tr_sigma2 - 2 * fr.tr_covmean},
                 {"n_real", sa.n}};
    if (bootstrap > 0) {
      fid.ci = bootstrap_ci(
          fb.features.size(0),
          [&](const std::vector<int64_t>& idx) {
            return frechet_distance(sa, compute_feature_stats(fb.features.index_select(0, at::tensor(idx, at::kLong)), fake)).value;
          },
          bootstrap, 0.95, ctx.seed);
    }
    out.push_back(fid);
    auto accuracy = [&](const char* metric, const LabelledImages& L, const DigitOutputs& o) {
      std::vector<double> hit;
      for (size_t i = 0; i < L.labels.size(); ++i) hit.push_back(o.predicted[i] == L.labels[i] ? 1.0 : 0.0);
      MetricResult m;
      m.metric = metric;
      m.n = static_cast<int64_t>(hit.size());
      for (const double h : hit) m.value += h;
      m.value /= static_cast<double>(std::max<int64_t>(1, m.n));
      m.ci = bootstrap_ci(m.n, [&](const std::vector<int64_t>& idx) {
        double t = 0;
        for (const auto i : idx) t += hit[static_cast<size_t>(i)];
        return t / static_cast<double>(idx.size());
      }, ctx.bootstrap, 0.95, ctx.seed);
      m.settings = settings;
      out.push_back(m);
    };
    if (!b.labels.empty()) accuracy("digits_accuracy", b, fb);
    else ctx.note(fmt::format("{}: no captions for the generated set, so no digits_accuracy", name));
    if (!a.labels.empty()) accuracy("digits_real_accuracy", a, fa);
    ps.columns = {"set", "path", "label", "predicted"};
    for (const auto* L : {&a, &b}) {
      const DigitOutputs& o = L == &a ? fa : fb;
      for (size_t i = 0; i < L->paths.size(); ++i) {
        ps.rows.push_back({L == &a ? "real" : "fake", L->paths[i], L->labels.empty() ? "" : std::to_string(L->labels[i]),
                           std::to_string(o.predicted[i])});
      }
    }
    return out;
  };
}

const std::vector<std::string>& metric_kinds() {
  static const std::vector<std::string> k{"fid", "kid", "is", "clip_score", "wer", "cer", "speech", "intelligibility", "mos", "scene", "digits"};
  return k;
}

Job parse_job(config::Reader& r, const std::string& name, const std::string& kind) {
  if (kind == "fid") return parse_fid(r, name);
  if (kind == "kid") return parse_kid(r, name);
  if (kind == "is") return parse_is(r, name);
  if (kind == "clip_score") return parse_clip(r, name);
  if (kind == "wer") return parse_wer(r, name, false);
  if (kind == "cer") return parse_wer(r, name, true);
  if (kind == "speech") return parse_speech(r, name);
  if (kind == "intelligibility") return parse_intelligibility(r, name);
  if (kind == "mos") return parse_mos(r, name);
  if (kind == "scene") return parse_scene(r, name);
  if (kind == "digits") return parse_digits(r, name);
  const std::string near = config::closest(kind, metric_kinds());
  throw ConfigError(fmt::format("metrics.{}: unknown metric '{}'{}; known: {}", name, kind,
                                near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near),
                                fmt::join(metric_kinds(), ", ")));
}

std::string markdown(const nlohmann::json& results) {
  std::string md = "| name | metric | value | 95% CI | n | notes |\n|---|---|---|---|---|---|\n";
  for (const auto& r : results) {
    if (r.contains("error")) {
      md += fmt::format("| {} | {} | failed | | | {} |\n", r.value("name", ""), r.value("metric", ""),
                        r.value("error", ""));
      continue;
    }
    std::string ci = r.contains("ci95") ? fmt::format("[{:.4g}, {:.4g}]", r["ci95"][0].get<double>(),
                                                       r["ci95"][1].get<double>())
                                         : "";
    std::string notes;
    if (r.contains("std")) notes += fmt::format("std {:.4g}", r["std"].get<double>());
    if (r.contains("hits")) {
      notes += fmt::format("H {} S {} D {} I {}", r["hits"].get<int64_t>(), r["substitutions"].get<int64_t>(),
                           r["deletions"].get<int64_t>(), r["insertions"].get<int64_t>());
    }
    md += fmt::format("| {} | {} | {:.6g} | {} | {} | {} |\n", r.value("name", ""), r.value("metric", ""),
                      r.value("value", 0.0), ci, r.value("n", 0), notes);
  }
  return md;
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

EvalRunSummary run_eval(const std::string& config_path, const std::vector<std::string>& overrides) {
  config::Node src = config::load_file(config_path);
  for (const auto& o : overrides) config::apply_override(src, o);
  config::Node effective = config::Node::map();
  config::Reader root(&src, "", &effective, config::Mark{config_path, 1, 1});
  Ctx ctx;
  int64_t threads = 0;
  {
    auto e = root.child("eval");
    ctx.out = "results/eval";
    e.opt("out", ctx.out);
    e.opt("batch_size", ctx.batch_size, config::Range::between(1, 1 << 16));
    e.opt("threads", threads, config::Range::between(0, 4096));
    e.opt("bootstrap", ctx.bootstrap, config::Range::between(0, 1000000));
    int64_t seed = 0;
    e.opt("seed", seed, config::Range::at_least(0));
    ctx.seed = static_cast<uint64_t>(seed);
    e.opt("cache_dir", ctx.cache_dir);
    e.finish();
  }
  const config::Node* metrics = root.raw("metrics");
  if (metrics == nullptr || !metrics->is_map() || metrics->entries().empty()) {
    throw ConfigError(fmt::format("{}: metrics: required, a map of name: {{metric: ..., ...}} (kinds: {})", config_path,
                                  fmt::join(metric_kinds(), ", ")));
  }
  std::vector<std::pair<std::string, std::pair<std::string, Job>>> jobs;
  {
    auto ms = root.child("metrics");
    for (const auto& [name, node] : metrics->entries()) {
      auto r = ms.child(name);
      std::string kind = name;
      r.opt("metric", kind);
      jobs.push_back({name, {kind, parse_job(r, name, kind)}});
    }
    ms.finish();
  }
  root.finish();
  if (ctx.cache_dir.empty()) ctx.cache_dir = ctx.out + "/cache";
  compat::set_intra_op_threads(threads > 0 ? static_cast<int>(threads) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  fs::make_dirs(ctx.out + "/per_sample");
  fs::atomic_write(ctx.out + "/config.yaml", config::to_yaml(effective));

  EvalRunSummary summary;
  summary.out_dir = ctx.out;
  summary.results = nlohmann::json::array();
  auto write_all = [&] {
    nlohmann::json doc{{"mmref", {{"version", MMREF_VERSION}, {"commit", MMREF_GIT_COMMIT}}},
                       {"config", config_path},
                       {"created", now_iso()},
                       {"results", summary.results}};
    fs::atomic_write(ctx.out + "/results.json", doc.dump(2) + "\n");
    fs::atomic_write(ctx.out + "/results.md", markdown(summary.results));
  };
  for (auto& [name, kj] : jobs) {
    const auto t0 = std::chrono::steady_clock::now();
    ctx.note(fmt::format("{} ({})", name, kj.first));
    PerSample ps;
    try {
      for (MetricResult& m : kj.second(ctx, ps)) {
        nlohmann::json j = m.to_json();
        j["name"] = name;
        j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!ps.rows.empty()) j["per_sample_csv"] = fmt::format("{}/per_sample/{}.csv", ctx.out, name);
        summary.results.push_back(j);
        ctx.note(fmt::format("  {} = {:.6g}{}", m.metric, m.value,
                             m.ci.resamples > 0 ? fmt::format("  (95% CI [{:.4g}, {:.4g}])", m.ci.low, m.ci.high) : ""));
      }
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      // Keep going: the other metrics still run, and this one's error is in the results.
      ++summary.failed;
      summary.results.push_back({{"name", name}, {"metric", kj.first}, {"error", e.what()}});
      ctx.note(fmt::format("  failed: {}", e.what()));
    }
    if (!ps.rows.empty()) {
      std::string csv;
      for (size_t i = 0; i < ps.columns.size(); ++i) csv += (i ? "," : "") + csv_field(ps.columns[i]);
      csv += "\n";
      for (const auto& row : ps.rows) {
        for (size_t i = 0; i < row.size(); ++i) csv += (i ? "," : "") + csv_field(row[i]);
        csv += "\n";
      }
      fs::atomic_write(fmt::format("{}/per_sample/{}.csv", ctx.out, name), csv);
    }
    write_all();
  }
  return summary;
}

}  // namespace mmref::eval
