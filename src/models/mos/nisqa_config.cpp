// NisqaConfig from and to a checkpoint's args (NISQA_model.py _loadModel reads the same keys); see nisqa.h.
#include "models/mos/nisqa.h"

#include <cmath>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mmref::models {

using nlohmann::json;

namespace {

[[noreturn]] void bad_arg(const std::string& where, const std::string& key, const std::string& what) {
  throw ConfigError(fmt::format("NISQA args in {}: '{}' {}", where, key, what));
}

// Reads args[key] into `out` when present; null (Python None) keeps the default unless noted.
class ArgReader {
 public:
  ArgReader(const json& a, std::string where) : a_(a), where_(std::move(where)) {}
  const json* find(const std::string& key) const {
    const auto it = a_.find(key);
    return it == a_.end() ? nullptr : &*it;
  }
  bool is_null(const std::string& key) const {
    const json* v = find(key);
    return v == nullptr || v->is_null();
  }
  void num(const std::string& key, double& out) const {
    const json* v = find(key);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_number()) bad_arg(where_, key, "must be a number, got " + v->dump());
    out = v->get<double>();
  }
  int64_t to_int(const std::string& key, const json& v) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
        std::abs(v.get<double>()) < 1e15)
      return static_cast<int64_t>(v.get<double>());
    bad_arg(where_, key, "must be an integer, got " + v.dump());
  }
  void integer(const std::string& key, int64_t& out) const {
    const json* v = find(key);
    if (v == nullptr || v->is_null()) return;
    out = to_int(key, *v);
  }
  void opt_integer(const std::string& key, std::optional<int64_t>& out) const {
    const json* v = find(key);
    if (v == nullptr) return;
    if (v->is_null() || (v->is_boolean() && !v->get<bool>())) {
      out.reset();
      return;
    }
    out = to_int(key, *v);
  }
  void flag(const std::string& key, bool& out) const {  // Python truthiness of None/bool/int
    const json* v = find(key);
    if (v == nullptr || v->is_null()) return;
    if (v->is_boolean()) {
      out = v->get<bool>();
    } else if (v->is_number_integer()) {
      out = v->get<int64_t>() != 0;
    } else {
      bad_arg(where_, key, "must be true, false or null, got " + v->dump());
    }
  }
  void str(const std::string& key, std::string& out, const std::string& if_null) const {
    const json* v = find(key);
    if (v == nullptr) return;
    if (v->is_null()) {
      out = if_null;
    } else if (v->is_string()) {
      out = v->get<std::string>();
    } else {
      bad_arg(where_, key, "must be a string, got " + v->dump());
    }
  }
  void pair(const std::string& key, std::array<int64_t, 2>& out, bool allow_scalar) const {
    const json* v = find(key);
    if (v == nullptr || v->is_null()) return;
    if (allow_scalar && v->is_number()) {
      out[0] = out[1] = to_int(key, *v);
    } else if (v->is_array() && v->size() == 2) {
      out = {to_int(key, (*v)[0]), to_int(key, (*v)[1])};
    } else {
      bad_arg(where_, key,
              std::string("must be a pair [height, width]") + (allow_scalar ? " or an integer" : "") +
                  ", got " + v->dump());
    }
  }

 private:
  const json& a_;
  std::string where_;
};

void read_self_att(const ArgReader& r, const std::string& prefix, NisqaConfig::SelfAtt& s) {
  r.integer(prefix + "d_model", s.d_model);
  r.integer(prefix + "nhead", s.nhead);
  r.integer(prefix + "num_layers", s.num_layers);
  r.integer(prefix + "h", s.h);
  r.flag(prefix + "pos_enc", s.pos_enc);
  r.num(prefix + "dropout", s.dropout);
}

void self_att_args(const std::string& prefix, const NisqaConfig::SelfAtt& s, json& a) {
  a[prefix + "d_model"] = s.d_model;
  a[prefix + "nhead"] = s.nhead;
  a[prefix + "num_layers"] = s.num_layers;
  a[prefix + "h"] = s.h;
  a[prefix + "pos_enc"] = s.pos_enc;
  a[prefix + "dropout"] = s.dropout;
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

void NisqaConfig::validate() const {
  auto fail = [](const std::string& key, const std::string& what) {
    throw ConfigError(fmt::format("NISQA config: '{}' {}", key, what));
  };
  if (model != "NISQA" && model != "NISQA_DIM")
    fail("model",
         "is '" + model + "'; supported: NISQA, NISQA_DIM (the double-ended NISQA_DE is not ported)");
  if (ms_sr && (*ms_sr <= 0 || std::floor(*ms_sr) != *ms_sr))
    fail("ms_sr", "must be a positive whole rate in Hz or null");
  if (ms_fmax <= 0) fail("ms_fmax", "must be > 0");
  if (ms_n_fft < 2) fail("ms_n_fft", "must be >= 2");
  if (ms_hop_length <= 0 || ms_win_length <= 0) fail("ms_hop_length/ms_win_length", "must be > 0 seconds");
  if (ms_n_mels < 1) fail("ms_n_mels", "must be >= 1");
  if (ms_seg_length < 1 || ms_seg_length % 2 == 0)
    fail("ms_seg_length", "must be odd (segment_specs requires it)");
  if (ms_seg_hop_length < 1) fail("ms_seg_hop_length", "must be >= 1");
  if (cnn_model != "adapt")
    fail("cnn_model", "is '" + cnn_model + "'; supported: adapt (standard, dff and skip are not ported)");
  if (cnn_c_out_1 < 1 || cnn_c_out_2 < 1 || cnn_c_out_3 < 1) fail("cnn_c_out_*", "must be >= 1");
  if (cnn_kernel_size[0] != 3 || (cnn_kernel_size[1] != 3 && cnn_kernel_size[1] != 1))
    fail("cnn_kernel_size", "must be [3, 3] or [3, 1] (AdaptCNN's fixed padding assumes a height of 3)");
  for (const auto& p : {cnn_pool_1, cnn_pool_2, cnn_pool_3}) {
    if (p[0] < 1 || p[1] < 1) fail("cnn_pool_*", "must be positive [height, width] pairs");
  }
  if (cnn_fc_out_h && *cnn_fc_out_h < 1) fail("cnn_fc_out_h", "must be >= 1 or null");
  auto check_td = [&](const std::string& key, const std::string& td_v, const SelfAtt& s) {
    if (td_v == "skip") return;
    if (td_v != "self_att") fail(key, "is '" + td_v + "'; supported: self_att, skip (lstm is not ported)");
    if (s.d_model < 1 || s.nhead < 1 || s.d_model % s.nhead != 0)
      fail(key + "_sa_d_model", "must be a positive multiple of " + key + "_sa_nhead");
    if (s.num_layers < 0 || s.h < 1) fail(key + "_sa_num_layers/h", "must be >= 0 and >= 1");
  };
  check_td("td", td, td_sa);
  if (!dim()) check_td("td_2", td_2, td_2_sa);
  if (pool != "att") fail("pool", "is '" + pool + "'; supported: att (avg, max, last_step are not ported)");
  if (pool_att_h && *pool_att_h < 1) fail("pool_att_h", "must be >= 1 or null");
}

NisqaConfig NisqaConfig::from_args(const json& args, const std::string& where) {
  if (!args.is_object())
    throw ConfigError(fmt::format("NISQA args in {}: expected a dict of options", where));
  static const std::set<std::string> kKnown = {"model",
                                               "dim",
                                               "double_ended",
                                               "ms_sr",
                                               "ms_fmax",
                                               "ms_n_fft",
                                               "ms_hop_length",
                                               "ms_win_length",
                                               "ms_n_mels",
                                               "ms_seg_length",
                                               "ms_seg_hop_length",
                                               "ms_max_segments",
                                               "ms_channel",
                                               "cnn_model",
                                               "cnn_c_out_1",
                                               "cnn_c_out_2",
                                               "cnn_c_out_3",
                                               "cnn_kernel_size",
                                               "cnn_dropout",
                                               "cnn_pool_1",
                                               "cnn_pool_2",
                                               "cnn_pool_3",
                                               "cnn_fc_out_h",
                                               "td",
                                               "td_sa_d_model",
                                               "td_sa_nhead",
                                               "td_sa_pos_enc",
                                               "td_sa_num_layers",
                                               "td_sa_h",
                                               "td_sa_dropout",
                                               "td_lstm_h",
                                               "td_lstm_num_layers",
                                               "td_lstm_dropout",
                                               "td_lstm_bidirectional",
                                               "td_2",
                                               "td_2_sa_d_model",
                                               "td_2_sa_nhead",
                                               "td_2_sa_pos_enc",
                                               "td_2_sa_num_layers",
                                               "td_2_sa_h",
                                               "td_2_sa_dropout",
                                               "td_2_lstm_h",
                                               "td_2_lstm_num_layers",
                                               "td_2_lstm_dropout",
                                               "td_2_lstm_bidirectional",
                                               "pool",
                                               "pool_att_h",
                                               "pool_att_dropout",
                                               "de_align",
                                               "de_align_apply",
                                               "de_fuse_dim",
                                               "de_fuse"};
  for (const auto& [k, v] : args.items()) {
    const bool model_key = k == "td" || k == "pool" || starts_with(k, "ms_") || starts_with(k, "cnn_") ||
                           starts_with(k, "td_") || starts_with(k, "pool_") || starts_with(k, "de_");
    if (model_key && kKnown.count(k) == 0)
      bad_arg(where, k,
              "is not a NISQA option this port knows (a newer NISQA version?); remove it or update mmref");
  }
  const ArgReader r(args, where);
  NisqaConfig c;
  r.str("model", c.model, c.model);
  if (const json* d = r.find("double_ended"); d != nullptr && d->is_boolean() && d->get<bool>())
    bad_arg(where, "double_ended", "is true: the double-ended NISQA_DE model is not ported");
  if (const json* d = r.find("dim");
      d != nullptr && d->is_boolean() && d->get<bool>() != (c.model == "NISQA_DIM"))
    bad_arg(where, "dim",
            fmt::format("is {} but model is '{}' (dim is true exactly for NISQA_DIM)", d->dump(), c.model));
  if (r.is_null("ms_sr")) {
    c.ms_sr.reset();
  } else {
    double sr = 0;
    r.num("ms_sr", sr);
    c.ms_sr = sr;
  }
  r.num("ms_fmax", c.ms_fmax);
  r.integer("ms_n_fft", c.ms_n_fft);
  r.num("ms_hop_length", c.ms_hop_length);
  r.num("ms_win_length", c.ms_win_length);
  r.integer("ms_n_mels", c.ms_n_mels);
  r.integer("ms_seg_length", c.ms_seg_length);
  r.integer("ms_seg_hop_length", c.ms_seg_hop_length);
  if (r.find("ms_max_segments") != nullptr && r.is_null("ms_max_segments")) {
    c.ms_max_segments = 0;  // None: no padding limit
  } else {
    r.integer("ms_max_segments", c.ms_max_segments);
  }
  r.str("cnn_model", c.cnn_model, "skip");
  r.integer("cnn_c_out_1", c.cnn_c_out_1);
  r.integer("cnn_c_out_2", c.cnn_c_out_2);
  r.integer("cnn_c_out_3", c.cnn_c_out_3);
  r.pair("cnn_kernel_size", c.cnn_kernel_size, /*allow_scalar=*/true);
  r.num("cnn_dropout", c.cnn_dropout);
  r.pair("cnn_pool_1", c.cnn_pool_1, false);
  r.pair("cnn_pool_2", c.cnn_pool_2, false);
  r.pair("cnn_pool_3", c.cnn_pool_3, false);
  r.opt_integer("cnn_fc_out_h", c.cnn_fc_out_h);
  r.str("td", c.td, "skip");
  if (c.td == "self_att") read_self_att(r, "td_sa_", c.td_sa);
  r.str("td_2", c.td_2, "skip");
  if (c.td_2 == "self_att") read_self_att(r, "td_2_sa_", c.td_2_sa);
  r.str("pool", c.pool, c.pool);
  r.opt_integer("pool_att_h", c.pool_att_h);
  r.num("pool_att_dropout", c.pool_att_dropout);
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{} (args in {})", e.what(), where));
  }
  return c;
}

json NisqaConfig::to_args() const {
  json a = json::object();
  a["model"] = model;
  a["dim"] = dim();
  a["ms_sr"] = ms_sr ? json(*ms_sr) : json(nullptr);
  a["ms_fmax"] = ms_fmax;
  a["ms_n_fft"] = ms_n_fft;
  a["ms_hop_length"] = ms_hop_length;
  a["ms_win_length"] = ms_win_length;
  a["ms_n_mels"] = ms_n_mels;
  a["ms_seg_length"] = ms_seg_length;
  a["ms_seg_hop_length"] = ms_seg_hop_length;
  a["ms_max_segments"] = ms_max_segments > 0 ? json(ms_max_segments) : json(nullptr);
  a["cnn_model"] = cnn_model;
  a["cnn_c_out_1"] = cnn_c_out_1;
  a["cnn_c_out_2"] = cnn_c_out_2;
  a["cnn_c_out_3"] = cnn_c_out_3;
  a["cnn_kernel_size"] = cnn_kernel_size;
  a["cnn_dropout"] = cnn_dropout;
  a["cnn_pool_1"] = cnn_pool_1;
  a["cnn_pool_2"] = cnn_pool_2;
  a["cnn_pool_3"] = cnn_pool_3;
  a["cnn_fc_out_h"] = cnn_fc_out_h ? json(*cnn_fc_out_h) : json(nullptr);
  a["td"] = td;
  self_att_args("td_sa_", td_sa, a);
  a["td_2"] = td_2;
  self_att_args("td_2_sa_", td_2_sa, a);
  a["pool"] = pool;
  a["pool_att_h"] = pool_att_h ? json(*pool_att_h) : json(nullptr);
  a["pool_att_dropout"] = pool_att_dropout;
  return a;
}

}  // namespace mmref::models
