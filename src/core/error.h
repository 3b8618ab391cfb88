// mmref's error types. Library code throws; only main() turns an error into a message and an exit code
// (STYLE.md rule 10). Messages are one line that names the thing at fault and what to do about it.
//
//   UsageError  -> exit 2  (bad command line)
//   ConfigError -> exit 2  (bad YAML, wrong type, unknown key, value out of range, missing include)
//   Error       -> exit 1  (runtime failure: missing or corrupt file, NaN loss, ...)
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace mmref {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UsageError : public Error {
 public:
  using Error::Error;
};

class ConfigError : public Error {
 public:
  using Error::Error;
};

// A run stopped by SIGINT/SIGTERM after writing its checkpoint -> exit 130 (as a shell reports Ctrl-C).
class Interrupted : public Error {
 public:
  using Error::Error;
};

// Throws mmref::Error with a formatted message: MMREF_FAIL("cannot open '{}': {}", path, why).
#define MMREF_FAIL(...) throw ::mmref::Error(::fmt::format(__VA_ARGS__))

// Internal invariant (a bug, not bad input): the message carries file and line.
#define MMREF_CHECK(cond, ...)                                                                 \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      throw ::mmref::Error(::fmt::format("{}:{}: check '{}' failed: {}", __FILE__, __LINE__, \
                                         #cond, ::fmt::format(__VA_ARGS__)));                  \
    }                                                                                          \
  } while (0)

}  // namespace mmref
