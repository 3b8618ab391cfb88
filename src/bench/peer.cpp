// Python peer processes; see peer.h.
#include "bench/peer.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"

namespace mmref::bench {

namespace {

// Single-quoted for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string last_lines(const std::string& text, size_t max_chars) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.size() > max_chars) t = "..." + t.substr(t.size() - max_chars);
  for (auto& c : t) {
    if (c == '\n') c = '|';
  }
  return t;
}

}  // namespace

PeerResult parse_peer_output(const std::string& output) {
  std::string t = output;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  const auto nl = t.rfind('\n');
  const std::string last = nl == std::string::npos ? t : t.substr(nl + 1);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(last);
  } catch (const std::exception&) {
    MMREF_FAIL("the last output line is not JSON: {}", last_lines(last, 300));
  }
  if (!j.is_object() || !j.contains("times_ms") || !j["times_ms"].is_array() || j["times_ms"].empty()) {
    MMREF_FAIL("the last output line has no non-empty \"times_ms\" list: {}", last_lines(last, 300));
  }
  PeerResult r;
  for (const auto& v : j["times_ms"]) {
    if (!v.is_number()) MMREF_FAIL("\"times_ms\" holds a non-number: {}", v.dump());
    r.times_ms.push_back(v.get<double>());
  }
  if (j.contains("peak_rss_bytes") && j["peak_rss_bytes"].is_number()) {
    r.peak_rss_bytes = j["peak_rss_bytes"].get<int64_t>();
  }
  if (j.contains("peak_allocated_bytes") && j["peak_allocated_bytes"].is_number()) {
    r.peak_allocated_bytes = j["peak_allocated_bytes"].get<int64_t>();
  }
  if (j.contains("torch_version") && j["torch_version"].is_string()) r.torch_version = j["torch_version"];
  r.status = "ok";
  return r;
}

PeerResult run_peer_script(const PeerRequest& req, const std::string& python_in, const std::string& root) {
  std::string python = python_in;
  if (python.empty()) {
    const char* env = std::getenv("MMREF_PYTHON");
    python = env && *env ? env : "/usr/bin/python3";
  }
  const std::filesystem::path script =
      std::filesystem::path(req.script).is_absolute() ? std::filesystem::path(req.script)
                                                      : std::filesystem::path(root) / req.script;
  PeerResult r;
  r.command = fmt::format("{} {} --point {} --device {} --warmup {} --repeats {} --threads {}", shell_quote(python),
                          shell_quote(script.string()), shell_quote(req.point.dump()), req.device, req.warmup,
                          req.repeats, req.threads);
  if (!std::filesystem::exists(script)) {
    r.error = fmt::format("peer script '{}' does not exist", script.string());
    return r;
  }
  std::string out;
  int status = -1;
  if (FILE* p = ::popen((r.command + " 2>&1 < /dev/null").c_str(), "r")) {
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    status = ::pclose(p);
  }
  if (status != 0) {
    const int code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.error = fmt::format("peer {} exited with {}: {}", script.filename().string(), code, last_lines(out, 400));
    return r;
  }
  try {
    PeerResult parsed = parse_peer_output(out);
    parsed.command = r.command;
    return parsed;
  } catch (const Error& e) {
    r.error = fmt::format("peer {}: {}", script.filename().string(), e.what());
    return r;
  }
}

}  // namespace mmref::bench
