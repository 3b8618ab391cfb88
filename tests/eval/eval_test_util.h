// Shared helpers of the eval tests: the text of the mmref::Error a statement throws.
#pragma once
#include <string>

#include "core/error.h"

namespace mmref::eval::test {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const mmref::Error& e) {
    return e.what();
  }
  return "<no mmref::Error>";
}

}  // namespace mmref::eval::test

#define EXPECT_ERROR_HAS(stmt, text)                                            \
  do {                                                                          \
    const std::string _msg = mmref::eval::test::error_of([&] { (void)(stmt); }); \
    EXPECT_NE(_msg.find(text), std::string::npos) << _msg;                      \
  } while (0)
