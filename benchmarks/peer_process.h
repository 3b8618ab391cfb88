// Benchmarks that time a Python peer side by side run it as a child process and read the one JSON line
// it prints. run_peer returns that JSON, or a null json when the peer failed (the caller skips with a
// message naming the script).
#pragma once
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace mmref::bench {

inline nlohmann::json run_peer(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[1024];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (::pclose(p) != 0) return nullptr;
  }
  const auto brace = out.rfind('{');
  if (brace == std::string::npos) return nullptr;
  try {
    return nlohmann::json::parse(out.substr(brace));
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace mmref::bench
