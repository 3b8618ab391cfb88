// `mmref bench report`: merging results from two fake devices, newest-wins, OOM/error cells, the
// python-eager ratio, --compare ratios on hand-computed values, plots (SVG well-formed, PNG decodable)
// and bad input. Fixtures are JSONL files written into a temp folder by each test.
#include <cmath>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/plot_png.h"
#include "bench/report.h"
#include "bench/svg_plot.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/media/image_io.h"

namespace mmref::bench {
namespace {

using nlohmann::json;

const json kCpuEnv = {{"device", "cpu"},
                      {"cpu_model", "Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz"},
                      {"threads", 2},
                      {"mmref_commit", "1111111aaaa"},
                      {"torch_version", "1.13.1"},
                      {"time_utc", "2026-12-01T10:00:00Z"}};
const json kGpuEnv = {{"device", "cuda"},
                      {"device_name", "NVIDIA H200"},
                      {"cuda_version", "12.4"},
                      {"mmref_commit", "1111111aaaa"},
                      {"time_utc", "2026-12-02T10:00:00Z"}};

// A record with the latency summary p50 = p50_ms and a spread around it.
json rec(const std::string& target, json point, const json& env, double p50_ms,
         const std::string& impl = "mmref") {
  return {{"schema", "mmref.bench.v1"},
          {"bench", "unit_sweep"},
          {"target", target},
          {"impl", impl},
          {"point", std::move(point)},
          {"status", "ok"},
          {"latency_ms",
           {{"mean", p50_ms},
            {"p50", p50_ms},
            {"p90", p50_ms * 1.2},
            {"p99", p50_ms * 1.3},
            {"min", p50_ms * 0.9},
            {"max", p50_ms * 1.4},
            {"std", p50_ms * 0.1},
            {"n", 20}}},
          {"throughput", {{"value", 1000.0 / p50_ms}, {"unit", "images/s"}}},
          {"memory", {{"peak_allocated_bytes", 64.0 * 1024 * 1024}, {"peak_rss_bytes", 300.0 * 1024 * 1024}}},
          {"env", env}};
}

void write_lines(const std::string& path, const std::vector<json>& lines) {
  fs::make_dirs(path.substr(0, path.rfind('/')));
  std::ofstream out(path);
  for (const auto& l : lines) out << l.dump() << "\n";
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no mmref::Error>";
}

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

class BenchReport : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("mmref_report_test_"); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(BenchReport, MergesTwoDevicesIntoColumns) {
  // Two machines' folders; the same two points on each.
  write_lines(dir_ + "/res/cpu/a.jsonl",
              {rec("kernel.attention", {{"batch", 1}, {"seq", 64}}, kCpuEnv, 2.0),
               rec("kernel.attention", {{"batch", 4}, {"seq", 64}}, kCpuEnv, 6.0)});
  write_lines(dir_ + "/res/h200/b.jsonl",
              {rec("kernel.attention", {{"batch", 1}, {"seq", 64}}, kGpuEnv, 0.05),
               rec("kernel.attention", {{"batch", 4}, {"seq", 64}}, kGpuEnv, 0.125)});
  int64_t files = 0;
  MergedRecords m = merge_newest(load_records({dir_ + "/res"}, &files));
  EXPECT_EQ(files, 2);
  ASSERT_EQ(m.records.size(), 4u);
  EXPECT_EQ(m.superseded, 0);
  const std::string md = markdown_tables(m);
  // Header: the varying key, then the GPU column before the CPU one; seq is constant -> "fixed:".
  EXPECT_NE(md.find("| batch | NVIDIA H200 | Intel Xeon Platinum 8488C x2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("fixed: seq=64"), std::string::npos) << md;
  // Row batch=1: 0.0500 ms at 20000 images/s on the GPU, 2 ms at 500 images/s on the CPU; both records
  // carry peak_allocated_bytes (64 MiB), which wins over peak RSS (300 MiB).
  EXPECT_NE(md.find("| 1 | 0.0500 ms (20.0k images/s), 64.0 MiB | 2.00 ms (500 images/s), 64.0 MiB |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 4 | 0.125 ms (8000 images/s), 64.0 MiB | 6.00 ms (167 images/s), 64.0 MiB |"),
            std::string::npos)
      << md;
}

TEST_F(BenchReport, NewestRecordWinsAndSupersededAreCounted) {
  json older = rec("kernel.conv", {{"batch", 2}}, kCpuEnv, 9.0);
  json newer = rec("kernel.conv", {{"batch", 2}}, kCpuEnv, 3.0);
  newer["env"]["time_utc"] = "2026-12-03T08:00:00Z";
  // The newer one comes first (file order must not matter), the older one in a later file.
  write_lines(dir_ + "/r/1.jsonl", {newer});
  write_lines(dir_ + "/r/2.jsonl", {older});
  ReportOptions o;
  o.inputs = {dir_ + "/r"};
  o.out_dir = dir_ + "/out";
  o.format = "md";
  ReportResult res = write_report(o);
  EXPECT_NE(res.markdown.find("1 older records superseded"), std::string::npos) << res.markdown;
  EXPECT_NE(res.markdown.find("3.00 ms"), std::string::npos) << res.markdown;
  EXPECT_EQ(res.markdown.find("9.00 ms"), std::string::npos) << res.markdown;
  EXPECT_EQ(fs::read_file(dir_ + "/out/report.md"), res.markdown);
  ASSERT_EQ(res.files.size(), 1u);  // md: no plots
}

TEST_F(BenchReport, OomAndErrorCells) {
  json oom = rec("model.unet", {{"batch", 64}}, kGpuEnv, 1.0);
  oom["status"] = "oom";
  oom.erase("latency_ms");
  json err = rec("model.unet", {{"batch", 128}}, kGpuEnv, 1.0);
  err["status"] = "error";
  err["error"] = "shape mismatch";
  write_lines(dir_ + "/x.jsonl", {rec("model.unet", {{"batch", 8}}, kGpuEnv, 4.0), oom, err});
  const std::string md = markdown_tables(merge_newest(load_records({dir_ + "/x.jsonl"})));
  EXPECT_NE(md.find("| 64 | OOM |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 128 | error |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 8 | 4.00 ms"), std::string::npos) << md;
  const std::string sum = markdown_summary(merge_newest(load_records({dir_ + "/x.jsonl"})));
  EXPECT_NE(sum.find("| model.unet | NVIDIA H200 | 1 | 1 | 1 | - |"), std::string::npos) << sum;
}

TEST_F(BenchReport, EagerRatioColumn) {
  // mmref 2 ms, python-eager 5 ms at batch 1 -> 2.50x; batch 2 carries peer_ratio 3.1 itself.
  json with_peer = rec("train.step", {{"batch", 2}}, kCpuEnv, 4.0);
  with_peer["peer_ratio"] = 3.1;
  write_lines(dir_ + "/e.jsonl",
              {rec("train.step", {{"batch", 1}}, kCpuEnv, 2.0),
               rec("train.step", {{"batch", 1}}, kCpuEnv, 5.0, "python-eager"), with_peer});
  const std::string md = markdown_tables(merge_newest(load_records({dir_ + "/e.jsonl"})));
  EXPECT_NE(md.find("| batch | impl | Intel Xeon Platinum 8488C x2 | vs eager |\n|---|---|---:|---:|"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 1 | mmref | 2.00 ms (500 images/s), 64.0 MiB | 2.50x |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | python-eager | 5.00 ms (200 images/s), 64.0 MiB |  |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 2 | mmref | 4.00 ms (250 images/s), 64.0 MiB | 3.10x |"), std::string::npos) << md;
  // Summary: 2 mmref points, ratios 2.5 and 3.1 -> geomean sqrt(7.75) = 2.78.
  const std::string sum = markdown_summary(merge_newest(load_records({dir_ + "/e.jsonl"})));
  EXPECT_NE(sum.find("| train.step | Intel Xeon Platinum 8488C x2 | 2 | 0 | 0 | 2.78x (2.50 .. 3.10, 2) |"),
            std::string::npos)
      << sum;
}

TEST_F(BenchReport, CompareRatiosOnHandComputedValues) {
  // A = backend mmref: p50 2.0, min 1.8, p90 2.4, std 0.2, n 20
  // B = backend torch: p50 3.0, min 2.7, p90 3.6, std 0.3, n 20  (rec() spreads: p90 1.2x, min 0.9x, std
  // 0.1x)
  //   ratio  = 3.0 / 2.0                         = 1.5
  //   range  = [2.7 / 2.4, 3.6 / 1.8]            = [1.125, 2.0]
  //   sA = sB = 1.2533 * 0.1 / sqrt(20)          = 0.0280246
  //   half   = 1.96 * sqrt(2) * 0.0280246        = 0.0776816
  //   ci95   = 1.5 * exp(-+half)                 = [1.38789, 1.62118]
  write_lines(dir_ + "/c.jsonl",
              {rec("kernel.attention", {{"batch", 1}, {"backend", "mmref"}}, kCpuEnv, 2.0),
               rec("kernel.attention", {{"batch", 1}, {"backend", "torch"}}, kCpuEnv, 3.0),
               rec("kernel.attention", {{"batch", 2}, {"backend", "mmref"}}, kCpuEnv, 4.0),
               rec("kernel.attention", {{"batch", 2}, {"backend", "reference"}}, kCpuEnv, 40.0)});
  const CompareSpec spec = parse_compare("backend=mmref,torch");
  const auto rows = compare_records(load_records({dir_ + "/c.jsonl"}), spec);
  ASSERT_EQ(rows.size(), 2u);  // batch 1 paired; batch 2 has only A (reference is neither side)
  const CompareRow& r = rows[0];
  EXPECT_EQ(r.point, json({{"batch", 1}}));
  EXPECT_NEAR(r.ratio, 1.5, 1e-12);
  EXPECT_NEAR(r.range_lo, 1.125, 1e-12);
  EXPECT_NEAR(r.range_hi, 2.0, 1e-12);
  EXPECT_NEAR(r.ci_lo, 1.38789, 1e-4);
  EXPECT_NEAR(r.ci_hi, 1.62118, 1e-4);
  EXPECT_TRUE(rows[1].a.has_value());
  EXPECT_FALSE(rows[1].b.has_value());
  EXPECT_LT(rows[1].ratio, 0);
  const std::string md = markdown_compare(rows, spec);
  EXPECT_NE(
      md.find("| kernel.attention | batch=1 | Intel Xeon Platinum 8488C x2 | mmref | 2.00 | 3.00 | 1.500 | "
              "1.125 .. 2.000 | 1.388 .. 1.621 |"),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("- kernel.attention on Intel Xeon Platinum 8488C x2 (mmref): geometric mean B/A 1.500 "
                    "over 1 point(s)"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("batch=2"), std::string::npos) << md;  // unpaired: counted, not listed
  EXPECT_NE(md.find("Unpaired (not listed): 1 point(s) with only backend=mmref, 0 with only backend=torch."),
            std::string::npos)
      << md;
  // A side value nobody has: a usage error listing what exists.
  EXPECT_NE(error_of([&] {
              compare_records(load_records({dir_ + "/c.jsonl"}), parse_compare("backend=mmref,tvm"));
            }).find("no record has backend 'tvm' (values seen: mmref, reference, torch)"),
            std::string::npos);
}

TEST_F(BenchReport, CompareCommitsSeesBothRecordsOfOneCell) {
  // Two commits of the same point are one table cell (the newer wins) but both sides of a comparison.
  json a = rec("kernel.gn", {{"batch", 8}}, kGpuEnv, 1.0);
  json b = rec("kernel.gn", {{"batch", 8}}, kGpuEnv, 0.8);
  a["env"]["mmref_commit"] = "abc1234def";
  b["env"]["mmref_commit"] = "def5678abc";
  b["env"]["time_utc"] = "2026-12-03T00:00:00Z";
  write_lines(dir_ + "/g.jsonl", {a, b});
  ReportOptions o;
  o.inputs = {dir_ + "/g.jsonl"};
  o.out_dir = dir_ + "/out";
  o.format = "md";
  o.compare = parse_compare("commit=abc123,def567");
  const ReportResult res = write_report(o);
  EXPECT_NE(res.markdown.find("| kernel.gn | batch=8 | NVIDIA H200 | mmref | 1.00 | 0.800 | 0.800 |"),
            std::string::npos)
      << res.markdown;
  EXPECT_NE(res.markdown.find("1 older records superseded"), std::string::npos);
}

TEST_F(BenchReport, ParseCompareRejectsMalformedSpecs) {
  EXPECT_EQ(parse_compare("impl=mmref,python-eager").b, "python-eager");
  for (const char* bad : {"backend", "backend=mmref", "=a,b", "k=a,", "k=a,b,c", "k=a,a"}) {
    EXPECT_THROW(parse_compare(bad), UsageError) << bad;
  }
}

TEST(BenchReportLabels, DeviceLabels) {
  // env                                                        -> column
  // cuda, device_name "NVIDIA H200"                            -> NVIDIA H200
  // cuda, no name                                              -> cuda
  // cpu "Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz", 2 thr -> Intel Xeon Platinum 8488C x2
  // cpu "AMD EPYC 7R13 Processor", no threads, 16 cores        -> AMD EPYC 7R13 x16
  // cpu "AMD Ryzen 9 7950X 16-Core Processor", 32 threads      -> AMD Ryzen 9 7950X x32
  // cpu, nothing                                               -> CPU
  EXPECT_EQ(device_label({{"device", "cuda"}, {"device_name", "NVIDIA H200"}}), "NVIDIA H200");
  EXPECT_EQ(device_label({{"device", "cuda"}}), "cuda");
  EXPECT_EQ(device_label(kCpuEnv), "Intel Xeon Platinum 8488C x2");
  EXPECT_EQ(device_label({{"device", "cpu"}, {"cpu_model", "AMD EPYC 7R13 Processor"}, {"cpu_cores", 16}}),
            "AMD EPYC 7R13 x16");
  EXPECT_EQ(device_label({{"cpu_model", "AMD Ryzen 9 7950X 16-Core Processor"}, {"threads", 32}}),
            "AMD Ryzen 9 7950X x32");
  EXPECT_EQ(device_label(json::object()), "CPU");
}

TEST_F(BenchReport, WritesWellFormedSvgPlotsPerTargetAndMetric) {
  std::vector<json> cpu, gpu;
  for (int b : {1, 2, 4, 8}) {
    cpu.push_back(rec("kernel.attention", {{"batch", b}, {"seq", 128}}, kCpuEnv, 1.5 * b));
    gpu.push_back(rec("kernel.attention", {{"batch", b}, {"seq", 128}}, kGpuEnv, 0.1 + 0.01 * b));
  }
  write_lines(dir_ + "/cpu.jsonl", cpu);
  write_lines(dir_ + "/gpu.jsonl", gpu);
  ReportOptions o;
  o.inputs = {dir_ + "/cpu.jsonl", dir_ + "/gpu.jsonl"};
  o.out_dir = dir_ + "/out";
  const ReportResult res = write_report(o);
  ASSERT_EQ(res.files.size(), 4u);  // report.md + latency, throughput, memory
  for (const char* metric : {"latency", "throughput", "memory"}) {
    const std::string path = dir_ + "/out/kernel.attention-" + metric + ".svg";
    ASSERT_TRUE(fs::exists(path)) << path;
    const std::string svg = fs::read_file(path);
    EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u) << metric;
    EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
    EXPECT_EQ(count_of(svg, "<polyline"), 2u) << metric;  // one per device
    EXPECT_NE(svg.find(">NVIDIA H200</text>"), std::string::npos);
    EXPECT_NE(svg.find(">Intel Xeon Platinum 8488C x2</text>"), std::string::npos);
    EXPECT_NE(svg.find("batch (log2)"), std::string::npos);  // 1..8 spans 8x
    EXPECT_EQ(count_of(svg, "<text"), count_of(svg, "</text>"));
    EXPECT_NE(res.markdown.find(std::string("![kernel.attention-") + metric + ".svg]"), std::string::npos);
  }
  // The latency polyline of each device has 4 points.
  const std::string lat = fs::read_file(dir_ + "/out/kernel.attention-latency.svg");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(lat, m, std::regex("<polyline[^>]*points=\"([^\"]*)\"")));
  EXPECT_EQ(count_of(m[1].str(), ","), 4u);
}

TEST_F(BenchReport, PngPlotsDecode) {
  std::vector<json> lines;
  for (int s : {64, 128, 256}) lines.push_back(rec("model.asr", {{"seq", s}}, kGpuEnv, 0.01 * s));
  write_lines(dir_ + "/a.jsonl", lines);
  ReportOptions o;
  o.inputs = {dir_ + "/a.jsonl"};
  o.out_dir = dir_ + "/png";
  o.format = "png";
  const ReportResult res = write_report(o);
  ASSERT_EQ(res.files.size(), 4u);
  const at::Tensor img = data::load_image(dir_ + "/png/model.asr-latency.png");
  ASSERT_EQ(img.dim(), 3);
  EXPECT_EQ(img.size(1), 440 * 2);
  EXPECT_EQ(img.size(2), 760 * 2);
  // Mostly white background with drawn (dark and coloured) pixels.
  const double dark = (img.to(at::kFloat).mean(0) < 128).to(at::kFloat).mean().item<double>();
  EXPECT_GT(dark, 0.002);
  EXPECT_LT(dark, 0.2);
}

TEST_F(BenchReport, SeriesAreCappedByHoldingAKey) {
  // x = batch; seq has 4 values (kept in the series), dtype 3 more (4 x 3 = 12 > 10: held at bfloat16).
  std::vector<json> lines;
  for (int b : {1, 2}) {
    for (int s : {64, 128, 256, 512}) {
      for (const char* d : {"bfloat16", "float16", "float32"}) {
        lines.push_back(
            rec("kernel.attention", {{"batch", b}, {"seq", s}, {"dtype", d}}, kGpuEnv, 1.0 + b + s / 64.0));
      }
    }
  }
  write_lines(dir_ + "/s.jsonl", lines);
  const auto plots = build_plots(merge_newest(load_records({dir_ + "/s.jsonl"})));
  ASSERT_EQ(plots.size(), 3u);
  EXPECT_EQ(plots[0].first, "kernel.attention-latency");
  // dtype comes first alphabetically: 3 series fit, then seq would make 12 -> seq is held at 64.
  EXPECT_EQ(plots[0].second.series.size(), 3u);
  EXPECT_EQ(plots[0].second.subtitle, "held at seq=64");
  EXPECT_EQ(plots[0].second.series[0].name, "NVIDIA H200, dtype=bfloat16");
  // Memory goes against seq (the length key): batch x dtype = 6 series fit, nothing held.
  EXPECT_EQ(plots[2].first, "kernel.attention-memory");
  EXPECT_EQ(plots[2].second.x_label, "seq");
  EXPECT_EQ(plots[2].second.series.size(), 6u);
  EXPECT_EQ(plots[2].second.subtitle, "");
}

TEST_F(BenchReport, KeysOnlySomePointsHaveMakeTheirOwnSeries) {
  // A sweep over seq plus one explicit point {seq: 128, causal: true}: two series, the explicit point is
  // not joined to the sweep's line.
  write_lines(dir_ + "/p.jsonl", {rec("kernel.attention", {{"seq", 64}}, kCpuEnv, 1.0),
                                  rec("kernel.attention", {{"seq", 128}}, kCpuEnv, 2.0),
                                  rec("kernel.attention", {{"seq", 128}, {"causal", true}}, kCpuEnv, 1.5)});
  const auto plots = build_plots(merge_newest(load_records({dir_ + "/p.jsonl"})));
  ASSERT_FALSE(plots.empty());
  const PlotSpec& lat = plots[0].second;
  ASSERT_EQ(lat.series.size(), 2u);
  EXPECT_EQ(lat.series[0].name, "Intel Xeon Platinum 8488C x2");
  EXPECT_EQ(lat.series[0].points.size(), 2u);
  EXPECT_EQ(lat.series[1].name, "Intel Xeon Platinum 8488C x2, causal=true");
  EXPECT_EQ(lat.series[1].points, (std::vector<std::pair<double, double>>{{128, 1.5}}));
  // The table gives causal its own column, empty where the point does not set it.
  const std::string md = markdown_tables(merge_newest(load_records({dir_ + "/p.jsonl"})));
  EXPECT_NE(md.find("| causal | seq | Intel Xeon Platinum 8488C x2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("|  | 64 | 1.00 ms"), std::string::npos) << md;
  EXPECT_NE(md.find("| true | 128 | 1.50 ms"), std::string::npos) << md;
}

TEST_F(BenchReport, FixedSettingsTellPointsApart) {
  // Bench "small" (heads 4) and "big" (heads 8) both sweep seq: same "point", different measurements ->
  // two rows with a heads column. Bench "attn_gpu" ran the heads-8 settings on the H200: same row as "big".
  auto with_config = [](json r, const json& settings) {
    json c = settings;
    c.update(r["point"]);
    c["device"] = r["env"]["device"], c["threads"] = 2, c["warmup"] = {{"count", 2}};
    r["config"] = c;
    return r;
  };
  json small =
      with_config(rec("kernel.attention", {{"seq", 64}}, kCpuEnv, 1.0), {{"heads", 4}, {"dtype", "float32"}});
  json big =
      with_config(rec("kernel.attention", {{"seq", 64}}, kCpuEnv, 3.0), {{"heads", 8}, {"dtype", "float32"}});
  json gpu =
      with_config(rec("kernel.attention", {{"seq", 64}}, kGpuEnv, 0.5), {{"heads", 8}, {"dtype", "float32"}});
  small["bench"] = "small", big["bench"] = "big", gpu["bench"] = "attn_gpu";
  gpu["config"]["peer_command"] = "python3 peer.py --point ...";  // runner detail: not part of the point
  write_lines(dir_ + "/f.jsonl", {small, big, gpu});
  const MergedRecords m = merge_newest(load_records({dir_ + "/f.jsonl"}));
  EXPECT_EQ(m.superseded, 0);
  ASSERT_EQ(m.records.size(), 3u);
  const std::string md = markdown_tables(m);
  EXPECT_NE(md.find("bench: attn_gpu, big, small; fixed: dtype=float32, seq=64"), std::string::npos) << md;
  EXPECT_NE(md.find("| heads | NVIDIA H200 | Intel Xeon Platinum 8488C x2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 4 | - | 1.00 ms"), std::string::npos) << md;
  EXPECT_NE(md.find("| 8 | 0.500 ms (2000 images/s), 64.0 MiB | 3.00 ms"), std::string::npos) << md;
  // A swept thread count is a device column ("x1", "x2"), not a row key.
  json t1 = rec("train.step", {{"batch", 8}, {"threads", 1}}, kCpuEnv, 2.0);
  t1["env"]["threads"] = 1;
  write_lines(dir_ + "/t.jsonl", {t1, rec("train.step", {{"batch", 8}, {"threads", 2}}, kCpuEnv, 1.0)});
  const std::string tmd = markdown_tables(merge_newest(load_records({dir_ + "/t.jsonl"})));
  EXPECT_NE(tmd.find("| point | Intel Xeon Platinum 8488C x1 | Intel Xeon Platinum 8488C x2 |"),
            std::string::npos)
      << tmd;
  EXPECT_NE(tmd.find("| batch=8 | 2.00 ms (500 images/s), 64.0 MiB | 1.00 ms (1000 images/s), 64.0 MiB |"),
            std::string::npos)
      << tmd;
  // The record's own swept keys are kept apart for the comparison table.
  EXPECT_EQ(m.records[0].swept, json({{"seq", 64}}));
}

TEST(BenchReportPlot, TicksAndLabels) {
  EXPECT_EQ(linear_ticks(0, 9.3), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(log2_ticks(1, 64), (std::vector<double>{1, 2, 4, 8, 16, 32, 64}));
  EXPECT_EQ(log2_ticks(1, 4096).size(), 7u);  // 13 powers -> every other
  EXPECT_EQ(log10_ticks(1, 1000), (std::vector<double>{1, 10, 100, 1000}));
  EXPECT_EQ(log10_ticks(1, 100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(tick_label(0.25), "0.25");
  EXPECT_EQ(tick_label(128), "128");
  EXPECT_EQ(tick_label(12000), "12k");
  EXPECT_EQ(tick_label(1.5e6), "1.5M");
  PlotSpec bad;
  bad.title = "t";
  bad.log2_x = true;
  bad.series.push_back({"s", {{0, 1}, {2, 3}}});
  EXPECT_NE(error_of([&] { layout_plot(bad); }).find("plot 't': log x axis needs values > 0"),
            std::string::npos);
  PlotSpec empty;
  empty.title = "e";
  EXPECT_NE(error_of([&] { layout_plot(empty); }).find("no series has a finite point"), std::string::npos);
}

TEST_F(BenchReport, BadInputNamesFileAndLine) {
  const std::string f = dir_ + "/bad.jsonl";
  {
    std::ofstream out(f);
    out << rec("k", {{"batch", 1}}, kCpuEnv, 1.0).dump() << "\n\n{not json\n";
  }
  EXPECT_NE(error_of([&] { load_records({f}); }).find(f + ":3: not a JSON line"), std::string::npos)
      << error_of([&] { load_records({f}); });
  {
    std::ofstream out(f);
    out << "[1, 2]\n";
  }
  EXPECT_NE(error_of([&] { load_records({f}); }).find(f + ":1: not a JSON object"), std::string::npos);
  {
    std::ofstream out(f);
    json r = rec("k", {{"batch", 1}}, kCpuEnv, 1.0);
    r["latency_ms"]["p50"] = "fast";
    out << r.dump() << "\n";
    json s = rec("k", {{"batch", 1}}, kCpuEnv, 1.0);
    s["schema"] = "other.v2";
    out << s.dump() << "\n";
  }
  EXPECT_NE(
      error_of([&] { load_records({f}); }).find(f + ":1: 'latency_ms.p50' must be a number, got \"fast\""),
      std::string::npos)
      << error_of([&] { load_records({f}); });
  json other = rec("k", {{"batch", 1}}, kCpuEnv, 1);
  other["schema"] = "x";
  EXPECT_NE(
      error_of([&] { parse_record(other.dump(), "f", 7); }).find("f:7: schema 'x' is not mmref.bench.v1"),
      std::string::npos);
  EXPECT_NE(
      error_of([&] { parse_record("{\"status\":\"ok\"}", "f", 2); }).find("f:2: record has no 'target'"),
      std::string::npos);
  fs::make_dirs(dir_ + "/empty/sub");
  EXPECT_NE(error_of([&] {
              load_records({dir_ + "/empty"});
            }).find("no .jsonl results files under '" + dir_ + "/empty'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_records({dir_ + "/nope"}); }).find("'" + dir_ + "/nope' does not exist"),
            std::string::npos);
  {
    std::ofstream out(dir_ + "/blank.jsonl");
    out << "\n  \n";
  }
  EXPECT_NE(error_of([&] { load_records({dir_ + "/blank.jsonl"}); }).find("no records in 1 file(s)"),
            std::string::npos);
  // Missing optional fields are fine: a bare record has the defaults.
  const BenchRecord r = parse_record("{\"target\":\"k\",\"memory\":null}", "f", 1);
  EXPECT_EQ(r.impl, "mmref");
  EXPECT_EQ(r.status, "ok");
  EXPECT_FALSE(r.latency.present);
  EXPECT_EQ(r.device_label, "CPU");
  EXPECT_LT(r.peak_memory_bytes(), 0);
}

}  // namespace
}  // namespace mmref::bench
