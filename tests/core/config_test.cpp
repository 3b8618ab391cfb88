// Config loading, composition, overrides and typed reading: each error gives its message.
#include <gtest/gtest.h>

#include <fstream>

#include "core/config.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"

namespace {

using mmref::ConfigError;
using mmref::config::Node;
using mmref::config::Range;
using mmref::config::Reader;

class Config : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = mmref::fs::make_temp_dir("mmref_config_"); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  // The message of the ConfigError that f throws (fails the test if none).
  template <class F>
  std::string error_of(F&& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no ConfigError thrown";
    return "";
  }
  std::string dir_;
};

struct Train {
  int64_t steps = 10;
  double lr = 1e-3;
  bool amp = false;
  std::string sched = "cosine";
  std::vector<int64_t> dims{1, 2};
};

void parse(Reader& r, Train& t) {
  r.opt("steps", t.steps, Range::between(1, 1e9));
  r.opt("lr", t.lr, Range::positive());
  r.opt("amp", t.amp);
  r.choice("sched", t.sched, {"constant", "cosine", "noam"});
  r.opt("dims", t.dims, Range::at_least(1));
  r.finish();
}

Train read(const Node& root, Node* effective = nullptr) {
  Reader r(&root, "", effective);
  auto c = r.child("train");
  Train t;
  parse(c, t);
  r.finish();
  return t;
}

TEST_F(Config, TypedValuesAndDefaults) {
  const Node root = mmref::config::parse_yaml("train:\n  steps: 500\n  lr: 3e-4\n  amp: yes\n", "t.yaml");
  Train t = read(root);
  EXPECT_EQ(t.steps, 500);
  EXPECT_DOUBLE_EQ(t.lr, 3e-4);
  EXPECT_TRUE(t.amp);
  EXPECT_EQ(t.sched, "cosine");  // default kept
  EXPECT_EQ(t.dims, (std::vector<int64_t>{1, 2}));
}

TEST_F(Config, SyntaxErrorNamesFileLineColumn) {
  const std::string msg = error_of([] { mmref::config::parse_yaml("a: 1\nb: [1, 2\n", "bad.yaml"); });
  EXPECT_NE(msg.find("bad.yaml:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("YAML syntax error"), std::string::npos) << msg;
}

TEST_F(Config, DuplicateKeyIsAnError) {
  const std::string msg = error_of([] { mmref::config::parse_yaml("a: 1\na: 2\n", "dup.yaml"); });
  EXPECT_NE(msg.find("dup.yaml:2:1: duplicate key 'a'"), std::string::npos) << msg;
}

TEST_F(Config, WrongTypeNamesKeyPathAndExpected) {
  const Node root = mmref::config::parse_yaml("train:\n  steps: ten\n", "c.yaml");
  EXPECT_EQ(error_of([&] { read(root); }), "c.yaml:2:10: train.steps: expected an integer, got 'ten'");
  const Node r2 = mmref::config::parse_yaml("train:\n  amp: 3\n", "c.yaml");
  EXPECT_EQ(error_of([&] { read(r2); }), "c.yaml:2:8: train.amp: expected true or false, got the value '3'");
  const Node r3 = mmref::config::parse_yaml("train:\n  lr: [1]\n", "c.yaml");
  EXPECT_EQ(error_of([&] { read(r3); }), "c.yaml:2:7: train.lr: expected a number, got a list");
  const Node r4 = mmref::config::parse_yaml("train: 5\n", "c.yaml");
  EXPECT_EQ(error_of([&] { read(r4); }), "c.yaml:1:8: train: expected a map of keys, got the value '5'");
  // A quoted number is a string, not a number.
  const Node r5 = mmref::config::parse_yaml("train:\n  steps: \"5\"\n", "c.yaml");
  EXPECT_NE(error_of([&] { read(r5); }).find("expected an integer"), std::string::npos);
}

TEST_F(Config, OutOfRange) {
  const Node root = mmref::config::parse_yaml("train:\n  lr: -1\n", "c.yaml");
  EXPECT_EQ(error_of([&] { read(root); }), "c.yaml:2:7: train.lr: must be > 0, got -1");
  const Node r2 = mmref::config::parse_yaml("train:\n  steps: 0\n", "c.yaml");
  EXPECT_EQ(error_of([&] { read(r2); }), "c.yaml:2:10: train.steps: must be between 1 and 1000000000, got 0");
  const Node r3 = mmref::config::parse_yaml("train:\n  dims: [4, 0]\n", "c.yaml");
  EXPECT_NE(error_of([&] { read(r3); }).find("train.dims: must be >= 1, got 0"), std::string::npos);
  const Node r4 = mmref::config::parse_yaml("train:\n  sched: cosin\n", "c.yaml");
  EXPECT_EQ(error_of([&] { read(r4); }),
            "c.yaml:2:10: train.sched: 'cosin' is not one of: constant, cosine, noam (did you mean 'cosine'?)");
}

TEST_F(Config, MissingRequiredKey) {
  const Node root = mmref::config::parse_yaml("model:\n  width: 3\n", "m.yaml");
  Reader r(&root, "", nullptr);
  auto m = r.child("model");
  std::string name;
  EXPECT_EQ(error_of([&] { m.req("name", name); }),
            "m.yaml:2:3: missing required key 'model.name' (expected a string)");
}

TEST_F(Config, UnknownKeySuggestsClosest) {
  const Node root = mmref::config::parse_yaml("train:\n  stesp: 5\n", "u.yaml");
  EXPECT_EQ(error_of([&] { read(root); }), "u.yaml:2:3: train.stesp: unknown key; did you mean 'steps'?");
  const Node r2 = mmref::config::parse_yaml("train:\n  zzzzzzzz: 5\n", "u.yaml");
  EXPECT_EQ(error_of([&] { read(r2); }),
            "u.yaml:2:3: train.zzzzzzzz: unknown key; known keys here: steps, lr, amp, sched, dims");
  const Node r3 = mmref::config::parse_yaml("trian: {}\n", "u.yaml");
  EXPECT_EQ(error_of([&] { read(r3); }), "u.yaml:1:1: trian: unknown key; did you mean 'train'?");
}

TEST_F(Config, BaseAndIncludeCompose) {
  mmref::fs::make_dirs(dir_ + "/models");
  write("models/small.yaml", "width: 64\ndepth: 2\nact: silu\n");
  write("base.yaml", "name: base\ntrain:\n  steps: 100\n  lr: 0.1\n");
  const std::string top = write("exp.yaml",
                                "base: base.yaml\nname: exp\ntrain:\n  lr: 0.01\nmodel:\n"
                                "  include: models/small.yaml\n  depth: 4\n");
  const Node root = mmref::config::load_file(top);
  EXPECT_EQ(root.find("name")->value(), "exp");                          // overlay wins
  EXPECT_EQ(root.find("train")->find("steps")->value(), "100");          // from base
  EXPECT_EQ(root.find("train")->find("lr")->value(), "0.01");            // overridden
  EXPECT_EQ(root.find("model")->find("width")->value(), "64");           // included
  EXPECT_EQ(root.find("model")->find("depth")->value(), "4");            // own key wins over include
  EXPECT_EQ(root.find("model")->find("include"), nullptr);
  EXPECT_EQ(root.find("base"), nullptr);
}

TEST_F(Config, MissingIncludeAndCycle) {
  const std::string p = write("a.yaml", "x: 1\nmodel:\n  include: nope.yaml\n");
  const std::string msg = error_of([&] { mmref::config::load_file(p); });
  EXPECT_NE(msg.find("a.yaml:3:12: include 'nope.yaml' not found"), std::string::npos) << msg;
  const std::string b = write("b.yaml", "base: missing_base.yaml\n");
  EXPECT_NE(error_of([&] { mmref::config::load_file(b); }).find("base config 'missing_base.yaml' not found"),
            std::string::npos);
  write("c1.yaml", "base: c2.yaml\n");
  const std::string c2 = write("c2.yaml", "base: c1.yaml\n");
  EXPECT_NE(error_of([&] { mmref::config::load_file(c2); }).find("include cycle"), std::string::npos);
  EXPECT_EQ(error_of([&] { mmref::config::load_file(dir_ + "/none.yaml"); }),
            "config file '" + dir_ + "/none.yaml' not found");
  EXPECT_EQ(error_of([&] { mmref::config::load_file(dir_); }),
            "'" + dir_ + "' is a folder; give the path of a YAML config file");
}

TEST_F(Config, OverridesTypedAndCreatingMaps) {
  Node root = mmref::config::parse_yaml("train:\n  steps: 5\n", "o.yaml");
  mmref::config::apply_override(root, "train.steps=50");
  mmref::config::apply_override(root, "train.dims=[3, 4]");
  mmref::config::apply_override(root, "train.sched=noam");
  Train t = read(root);
  EXPECT_EQ(t.steps, 50);
  EXPECT_EQ(t.dims, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(t.sched, "noam");
  mmref::config::apply_override(root, "new.section.key=1");
  EXPECT_EQ(root.find("new")->find("section")->find("key")->value(), "1");
  EXPECT_NE(error_of([&] { mmref::config::apply_override(root, "train.steps.x=1"); })
                .find("'train.steps' is the value '50', not a map"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mmref::config::apply_override(root, "novalue"); }).find("expected key.path=value"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mmref::config::apply_override(root, "a..b=1"); }).find("empty key"),
            std::string::npos);
  mmref::config::apply_override(root, "train.stepz=1");
  EXPECT_EQ(error_of([&] { read(root); }),
            "<command line>: train.stepz: unknown key; did you mean 'steps'?");
}

TEST_F(Config, EffectiveConfigHasDefaultsAndRoundTrips) {
  const Node root = mmref::config::parse_yaml("train:\n  steps: 7\n  sched: \"noam\"\n", "e.yaml");
  Node eff = Node::map();
  Train t = read(root, &eff);
  const std::string yaml = mmref::config::to_yaml(eff);
  EXPECT_NE(yaml.find("steps: 7"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("lr: 0.001"), std::string::npos) << yaml;   // default filled in
  EXPECT_NE(yaml.find("amp: false"), std::string::npos) << yaml;
  // Re-reading the emitted YAML gives the same struct.
  const std::string p = write("eff.yaml", yaml);
  Train t2 = read(mmref::config::load_file(p));
  EXPECT_EQ(t2.steps, t.steps);
  EXPECT_DOUBLE_EQ(t2.lr, t.lr);
  EXPECT_EQ(t2.sched, t.sched);
  EXPECT_EQ(t2.dims, t.dims);
  // A string that looks like a number stays a string through the round trip.
  Node e2 = Node::map();
  Reader r(nullptr, "", &e2);
  std::string s = "1e5";
  r.opt("name", s);
  EXPECT_NE(mmref::config::to_yaml(e2).find("\"1e5\""), std::string::npos);
}

TEST_F(Config, DidYouMeanDistance) {
  EXPECT_EQ(mmref::config::edit_distance("kitten", "sitting"), 3);
  EXPECT_EQ(mmref::config::closest("learnig_rate", {"lr", "learning_rate", "steps"}), "learning_rate");
  EXPECT_EQ(mmref::config::closest("zzz", {"learning_rate"}), "");
}

TEST_F(Config, ExperimentSharedSections) {
  const std::string p = write("x.yaml", "name: exp1\ntask: mlp_regression\nruntime: {threads: 2, seed: 7}\n"
                                        "other: {a: 1}\n");
  mmref::ExperimentConfig cfg;
  Reader root = mmref::load_experiment(p, {"run.keep_checkpoints=5"}, cfg);
  EXPECT_EQ(cfg.name, "exp1");
  EXPECT_EQ(cfg.task, "mlp_regression");
  EXPECT_EQ(cfg.runtime.threads, 2);
  EXPECT_EQ(cfg.runtime.seed, 7);
  EXPECT_EQ(cfg.run.keep_checkpoints, 5);
  root.allow("other");
  EXPECT_NO_THROW(root.finish());
  const std::string p2 = write("y.yaml", "name: e\nruntime: {device: gpu}\n");
  mmref::ExperimentConfig c2;
  EXPECT_NE(error_of([&] { mmref::load_experiment(p2, {}, c2); }).find("missing required key 'task'"),
            std::string::npos);
  const std::string p3 = write("z.yaml", "name: e\ntask: t\nruntime: {device: gpu}\n");
  mmref::ExperimentConfig c3;
  EXPECT_NE(error_of([&] { mmref::load_experiment(p3, {}, c3); })
                .find("runtime.device: 'gpu' is not one of: cpu, cuda, auto"),
            std::string::npos);
}

TEST_F(Config, ExperimentKernelsSectionSelectsBackends) {
  const std::string p = write("k.yaml", "name: e\ntask: t\nkernels: {attention: torch}\n");
  mmref::ExperimentConfig cfg;
  mmref::load_experiment(p, {"kernels.group_norm_silu=reference"}, cfg);
  EXPECT_EQ(cfg.kernels.attention, "torch");
  EXPECT_EQ(cfg.kernels.group_norm_silu, "reference");
  EXPECT_EQ(cfg.kernels.depthwise_conv1d, "mmref");  // default
  const Node* k = cfg.effective.find("kernels");
  ASSERT_NE(k, nullptr);
  ASSERT_NE(k->find("conv1d"), nullptr);
  EXPECT_EQ(k->find("conv1d")->value(), "mmref");
  const std::string bad = write("kb.yaml", "name: e\ntask: t\nkernels: {attention: flash}\n");
  mmref::ExperimentConfig c2;
  EXPECT_NE(error_of([&] { mmref::load_experiment(bad, {}, c2); })
                .find("kernels.attention: 'flash' is not one of: mmref, reference, torch"),
            std::string::npos);
  const std::string typo = write("kt.yaml", "name: e\ntask: t\nkernels: {atention: torch}\n");
  mmref::ExperimentConfig c3;
  EXPECT_NE(error_of([&] { mmref::load_experiment(typo, {}, c3); }).find("did you mean 'attention'"),
            std::string::npos);
}

}  // namespace
