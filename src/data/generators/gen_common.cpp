// Shared plumbing of the corpus generators; see gen_common.h.
#include "data/generators/gen_common.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/fs.h"

extern char** environ;

namespace mmref::data::gen {

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t derive_seed(uint64_t seed, uint64_t stream, uint64_t index) {
  Rng a(seed ^ 0x6A09E667F3BCC909ULL);
  uint64_t h = a.next();
  Rng b(h ^ (stream * 0xD1B54A32D192ED03ULL));
  h = b.next();
  Rng c(h ^ (index * 0x9E3779B97F4A7C15ULL + 0x243F6A8885A308D3ULL));
  return c.next();
}

std::string find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0 ? program : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string full = dir + "/" + program;
    struct stat st {};
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(full.c_str(), X_OK) == 0)
      return full;
  }
  return "";
}

namespace {

std::string tail_lines(const std::string& s, int n) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  size_t pos = t.size();
  for (int i = 0; i < n && pos != std::string::npos && pos > 0; ++i) pos = t.rfind('\n', pos - 1);
  std::string out = (pos == std::string::npos || pos == 0) ? t : t.substr(pos + 1);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out.size() > 400 ? out.substr(out.size() - 400) : out;
}

std::string command_text(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a.find(' ') != std::string::npos ? "'" + a + "'" : a;
  }
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

}  // namespace

void run_program(const std::vector<std::string>& argv, double timeout_s, const std::string& stdin_path) {
  MMREF_CHECK(!argv.empty(), "run_program needs a program");
  const std::string exe = find_program(argv[0]);
  if (exe.empty()) MMREF_FAIL("program '{}' not found on PATH", argv[0]);

  const char* tmpbase = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpbase && *tmpbase ? tmpbase : "/tmp") + "/mmref_gen_outXXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkstemp(buf.data());
  if (fd < 0) MMREF_FAIL("cannot create a temp file under '{}': {}", tmpl, std::strerror(errno));
  const std::string log_path(buf.data());
  ::close(fd);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY,
                                   0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    std::remove(log_path.c_str());
    MMREF_FAIL("cannot start '{}': {}", command_text(argv), std::strerror(rc));
  }
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  bool timed_out = false;
  int sleep_us = 500;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (el > timeout_s) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min(sleep_us * 2, 20000);
  }
  std::string log;
  {
    std::ifstream in(log_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    log = ss.str();
  }
  std::remove(log_path.c_str());
  if (timed_out) MMREF_FAIL("'{}' ran longer than {} s and was killed", command_text(argv), timeout_s);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    MMREF_FAIL("'{}' failed ({} {}): {}", command_text(argv), WIFEXITED(status) ? "exit status" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail_lines(log, 3));
  }
}

void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  int t = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  t = static_cast<int>(std::min<int64_t>(t, n));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex mu;
  auto work = [&] {
    for (;;) {
      if (failed.load()) return;
      int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  if (t == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int k = 0; k < t; ++k) pool.emplace_back(work);
    for (auto& th : pool) th.join();
  }
  if (first) std::rethrow_exception(first);
}

void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& rows) {
  fs::atomic_write(path, [&](std::ostream& os) {
    for (const auto& r : rows) os << r.dump() << '\n';
  });
}

std::vector<std::string> dpkg_files(const std::string& package) {
  // dpkg's own list file: same content as `dpkg -L`, without running a program.
  for (const std::string arch : {"", ":amd64", ":arm64", ":all"}) {
    std::ifstream in("/var/lib/dpkg/info/" + package + arch + ".list");
    if (!in) continue;
    std::vector<std::string> files;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) files.push_back(line);
    }
    return files;
  }
  return {};
}

}  // namespace mmref::data::gen
