// File-system helpers; see fs.h.
#include "core/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace mmref::fs {
namespace stdfs = std::filesystem;

namespace {

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void atomic_write(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const stdfs::path target(path);
  const stdfs::path dir = target.has_parent_path() ? target.parent_path() : stdfs::path(".");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) MMREF_FAIL("cannot write '{}': {} (check the folder exists and is writable)", tmp,
                           std::strerror(errno));
      write(out);
      out.flush();
      if (!out) MMREF_FAIL("writing '{}' failed: {} (disk full?)", tmp, std::strerror(errno));
    }
    fsync_path(tmp, /*directory=*/false);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      MMREF_FAIL("cannot rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
    }
    fsync_path(dir.string(), /*directory=*/true);
  } catch (...) {
    std::error_code ec;
    stdfs::remove(tmp, ec);
    throw;
  }
}

void atomic_write(const std::string& path, const std::string& bytes) {
  atomic_write(path, [&](std::ostream& out) { out.write(bytes.data(), bytes.size()); });
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) MMREF_FAIL("cannot open '{}': {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) MMREF_FAIL("cannot read '{}': {}", path, std::strerror(errno));
  return ss.str();
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  stdfs::create_directories(path, ec);
  if (ec) MMREF_FAIL("cannot create folder '{}': {}", path, ec.message());
}

bool exists(const std::string& path) {
  std::error_code ec;
  return stdfs::exists(path, ec);
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = stdfs::file_size(path, ec);
  if (ec) MMREF_FAIL("cannot stat '{}': {}", path, ec.message());
  return n;
}

std::string make_temp_dir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    MMREF_FAIL("cannot create a temporary folder under '{}': {}", tmpl, std::strerror(errno));
  }
  return std::string(buf.data());
}

}  // namespace mmref::fs
