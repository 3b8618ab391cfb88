// The sweep runner; see runner.h.
#include "bench/runner.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <ostream>
#include <sstream>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "bench/environment.h"
#include "bench/memory.h"
#include "bench/peer.h"
#include "bench/records.h"
#include "bench/stats.h"
#include "bench/target.h"
#include "core/compat.h"
#include "core/error.h"
#include "core/nvtx.h"

namespace mmref::bench {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One line of an exception's message (c10 errors without their backtrace).
std::string message_of(const std::exception& e) {
  std::string m = e.what();
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) m = ce->what_without_backtrace();
  const auto nl = m.find('\n');
  if (nl != std::string::npos) m = m.substr(0, nl);
  if (m.size() > 600) m = m.substr(0, 600) + "...";
  return m;
}

// Synchronises the device so that a CPU-side clock or the next phase sees finished work.
void sync(const c10::Device& d) {
  if (d.is_cuda()) compat::cuda_synchronize(d.has_index() ? d.index() : 0);
}

// Times one target at one point; fills everything except the peer.
struct PointRun {
  Measurement m;
  Work work;
  PeerSpec peer;
};

PointRun measure(const BenchSpec& spec, const Point& point) {
  PointRun pr;
  Measurement& m = pr.m;
  std::unique_ptr<Target> target;
  std::vector<double> times;
  try {
    target = make_target(spec.target);
    pr.peer = target->peer(point);
    // Cached blocks of earlier points would count as this point's reserved memory: hand them back first.
    if (point.device.is_cuda()) compat::cuda_empty_cache();
    const PeakMemoryProbe probe(point.device);
    {
      MMREF_NVTX_RANGE("bench.prepare");
      pr.work = target->prepare(point);
      sync(point.device);
    }
    {
      MMREF_NVTX_RANGE("bench.warmup");
      const auto t0 = Clock::now();
      while (m.warmup_count < spec.warmup.count || seconds_since(t0) < spec.warmup.seconds) {
        target->run();
        sync(point.device);
        ++m.warmup_count;
      }
      m.warmup_seconds = seconds_since(t0);
    }
    {
      MMREF_NVTX_RANGE("bench.timed");
      std::unique_ptr<compat::CudaEventTimer> timer;
      if (point.device.is_cuda()) {
        timer = std::make_unique<compat::CudaEventTimer>(point.device.has_index() ? point.device.index() : 0);
      }
      const auto t0 = Clock::now();
      while (static_cast<int64_t>(times.size()) < spec.repeats.count ||
             (seconds_since(t0) < spec.repeats.seconds && static_cast<int64_t>(times.size()) < spec.repeats.max)) {
        MMREF_NVTX_RANGE("bench.call");
        if (timer) {
          timer->start();
          target->run();
          timer->stop();
          times.push_back(timer->elapsed_ms());
        } else {
          const auto c0 = Clock::now();
          target->run();
          times.push_back(1e3 * seconds_since(c0));
        }
      }
    }
    m.memory = probe.read();
    m.latency = summarize(times);
  } catch (const std::exception& e) {
    const bool oom = compat::is_out_of_memory(e);
    m.status = oom ? "oom" : "error";
    const std::string sizes = point.values.dump();
    m.error = oom ? fmt::format("out of memory at {}: {}", sizes, message_of(e)) : message_of(e);
    m.latency = {};
  }
  target.reset();  // free the model and inputs before the next point (and the peer)
  if (m.status == "oom") compat::cuda_empty_cache();
  return pr;
}

std::string human_bytes(int64_t b) {
  if (b < 0) return "-";
  const double v = static_cast<double>(b);
  if (v >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", v / (1024.0 * 1024 * 1024));
  return fmt::format("{:.1f} MiB", v / (1024.0 * 1024));
}

// "backend=mmref seq=512": the point's keys whose value differs from the bench's settings.
std::string point_label(const nlohmann::json& point, const nlohmann::json& settings) {
  std::string out;
  for (auto it = point.begin(); it != point.end(); ++it) {
    const auto s = settings.find(it.key());
    if (s != settings.end() && *s == it.value()) continue;
    out += (out.empty() ? "" : " ") + it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
  }
  return out.empty() ? "-" : out;
}

std::string console_line(size_t i, size_t n, const nlohmann::json& rec, const nlohmann::json& settings) {
  const std::string point = point_label(rec["point"], settings);
  std::string line = fmt::format("  [{:>3}/{}] {:<12} {:<40} {:<5}", i + 1, n, rec["impl"].get<std::string>(),
                                 point.size() > 40 ? point.substr(0, 37) + "..." : point,
                                 rec["status"].get<std::string>());
  if (rec["status"] != "ok") return line + " " + rec["error"].get<std::string>();
  const auto& l = rec["latency_ms"];
  line += fmt::format(" p50 {:9.3f} ms  mean {:9.3f}  p90 {:9.3f}  n {:>4}", l["p50"].get<double>(),
                      l["mean"].get<double>(), l["p90"].get<double>(), l["n"].get<int64_t>());
  if (rec["throughput"].is_object()) {
    line += fmt::format("  {:10.4g} {}", rec["throughput"]["value"].get<double>(),
                        rec["throughput"]["unit"].get<std::string>());
  }
  const auto& mem = rec["memory"];
  const int64_t peak = mem["peak_allocated_bytes"].is_number() ? mem["peak_allocated_bytes"].get<int64_t>()
                       : mem["peak_rss_bytes"].is_number()     ? mem["peak_rss_bytes"].get<int64_t>()
                                                               : -1;
  line += "  mem " + human_bytes(peak);
  if (rec["tflops"].is_number()) line += fmt::format("  {:.3g} TFLOP/s", rec["tflops"].get<double>());
  if (rec["mfu"].is_number()) line += fmt::format("  MFU {:.1f}%", 100 * rec["mfu"].get<double>());
  if (rec["peer_ratio"].is_number()) line += fmt::format("  python/mmref {:.2f}x", rec["peer_ratio"].get<double>());
  return line;
}

std::string sanitize(std::string s) {
  for (auto& c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  }
  return s;
}

}  // namespace

c10::Device resolve_device(const std::string& name) {
  const bool have_gpu = compat::torch_cuda_device_count() > 0;
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda") {
    if (!have_gpu) {
      MMREF_FAIL("bench: device 'cuda' requested but libtorch sees no GPU (built with CUDA: {}); use device: "
                 "cpu or auto, or --set device=cpu",
                 compat::torch_built_with_cuda() ? "yes" : "no");
    }
    return c10::Device(c10::kCUDA, 0);
  }
  if (name == "auto") return have_gpu ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  throw ConfigError("bench: device must be cpu, cuda or auto, got '" + name + "'");
}

std::string describe_points(const BenchFile& file) {
  std::ostringstream os;
  size_t total = 0;
  for (const auto& b : file.benches) {
    os << fmt::format("{}: target {}, device {}, {} point(s), warmup {} / {} s, repeats {} / {} s / max {}{}\n",
                      b.name, b.target, b.device, b.points.size(), b.warmup.count, b.warmup.seconds,
                      b.repeats.count, b.repeats.seconds, b.repeats.max, b.peer ? ", peer" : "");
    for (size_t i = 0; i < b.points.size(); ++i) {
      os << fmt::format("  [{:>3}] {}  threads {}\n", i + 1, b.points[i].dump(), b.threads_for(i));
    }
    total += b.points.size();
  }
  os << fmt::format("{} bench(es), {} point(s)\n", file.benches.size(), total);
  return os.str();
}

RunSummary run_bench_file(const BenchFile& file, const RunOptions& opt) {
  // Fail early, before any file is written: unknown targets, a cuda bench on a CPU machine.
  std::vector<c10::Device> devices;
  for (const auto& b : file.benches) {
    make_target(b.target);
    devices.push_back(resolve_device(b.device));
  }
  const std::string root = opt.repo_root.empty() ? repo_root() : opt.repo_root;
  const HostInfo host = collect_host_info(root);
  RunSummary sum;
  sum.jsonl_path = !opt.jsonl_path.empty()
                       ? opt.jsonl_path
                       : fmt::format("{}/{}-{}-{}.jsonl", opt.out_dir, sanitize(file.name), utc_now_compact(),
                                     sanitize(host.hostname));
  JsonlWriter out(sum.jsonl_path);
  const int default_threads = compat::intra_op_threads();
  for (size_t bi = 0; bi < file.benches.size(); ++bi) {
    const BenchSpec& spec = file.benches[bi];
    const c10::Device device = devices[bi];
    if (opt.console) {
      *opt.console << fmt::format("bench {} ({}, {}, {} points)\n", spec.name, spec.target, device.str(),
                                  spec.points.size());
    }
    for (size_t i = 0; i < spec.points.size(); ++i) {
      const int want = spec.threads_for(i);
      const int threads = compat::set_intra_op_threads(want > 0 ? want : default_threads);
      Point point;
      point.values = spec.points[i];
      point.device = device;
      PointRun pr = measure(spec, point);
      ++sum.points;
      (pr.m.status == "ok" ? sum.ok : pr.m.status == "oom" ? sum.oom : sum.error) += 1;

      nlohmann::json config = spec.points[i];
      config["device"] = device.str();
      config["threads"] = threads;
      config["warmup"] = {{"count", spec.warmup.count}, {"seconds", spec.warmup.seconds}};
      config["repeats"] = {{"count", spec.repeats.count}, {"seconds", spec.repeats.seconds},
                           {"max", spec.repeats.max}};
      const nlohmann::json point_keys = spec.point_keys(i);
      const nlohmann::json env = environment_json(host, device, threads);
      const std::string dtype = point.get_string("dtype", "float32");
      const double peak = device.is_cuda() ? peak_dense_tflops(env["device_name"].get<std::string>(), dtype) : 0;

      // The peer, on the same point, after the mmref target has been freed.
      std::vector<nlohmann::json> recs;
      double peer_p50 = 0;
      nlohmann::json peer_record;
      if (spec.peer && !pr.peer.script.empty()) {
        MMREF_NVTX_RANGE("bench.peer");
        PeerRequest req;
        req.script = pr.peer.script;
        req.point = spec.points[i];
        for (auto it = pr.peer.args.begin(); it != pr.peer.args.end(); ++it) req.point[it.key()] = it.value();
        req.device = device.is_cuda() ? "cuda" : "cpu";
        req.warmup = std::max<int64_t>(pr.m.warmup_count, spec.warmup.count);
        req.repeats = pr.m.latency.n > 0 ? pr.m.latency.n : spec.repeats.count;
        req.threads = threads;
        const PeerResult p = run_peer_script(req, opt.python, root);
        Measurement pm;
        pm.impl = "python-eager";
        pm.status = p.status;
        pm.error = p.error;
        pm.warmup_count = req.warmup;
        if (p.status == "ok") {
          pm.latency = summarize(p.times_ms);
          pm.memory.rss_bytes = p.peak_rss_bytes;
          pm.memory.allocated_bytes = p.peak_allocated_bytes;
          peer_p50 = pm.latency.p50;
          ++sum.peers_ok;
        } else {
          ++sum.peers_failed;
        }
        nlohmann::json penv = env;
        if (!p.torch_version.empty()) penv["torch_version"] = p.torch_version;
        nlohmann::json pconfig = config;
        pconfig["peer_command"] = p.command;
        peer_record = make_record(spec.name, spec.target, point_keys, pconfig, pm, pr.work, penv, peak, 0);
      }
      recs.push_back(make_record(spec.name, spec.target, point_keys, config, pr.m, pr.work, env, peak, peer_p50));
      if (!peer_record.is_null()) recs.push_back(std::move(peer_record));
      for (auto& r : recs) {
        out.write(r);
        if (opt.console) *opt.console << console_line(i, spec.points.size(), r, spec.settings) << std::endl;
        sum.records.push_back(std::move(r));
      }
    }
  }
  compat::set_intra_op_threads(default_threads);
  if (opt.console) {
    *opt.console << fmt::format("bench {}: {} point(s): {} ok, {} oom, {} error", file.name, sum.points, sum.ok,
                                sum.oom, sum.error);
    if (sum.peers_ok + sum.peers_failed > 0) {
      *opt.console << fmt::format("; peers {} ok, {} failed", sum.peers_ok, sum.peers_failed);
    }
    *opt.console << "\nwrote " << sum.jsonl_path << std::endl;
  }
  return sum;
}

}  // namespace mmref::bench
