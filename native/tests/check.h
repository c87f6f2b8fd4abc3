// Minimal test helpers for the C++ tests (each test_*.cpp is one ctest executable).
// CHECK records a failure and continues; main returns test_exit_code().
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace el_test {
inline int& failures() { static int n = 0; return n; }
inline int test_exit_code() {
  if (failures()) std::fprintf(stderr, "%d check(s) failed\n", failures());
  else std::fprintf(stderr, "all checks passed\n");
  return failures() ? 1 : 0;
}
// Path of a file under the source tree (EL_SOURCE_DIR is set by ctest), e.g. "../shared/models/x".
inline std::string source_path(const std::string& rel) {
  const char* root = std::getenv("EL_SOURCE_DIR");
  return std::string(root ? root : ".") + "/" + rel;
}
}  // namespace el_test

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
      ++el_test::failures();                                                         \
    }                                                                                \
  } while (0)

#define CHECK_MSG(cond, ...)                                                         \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);  \
      std::fprintf(stderr, __VA_ARGS__);                                             \
      std::fprintf(stderr, "\n");                                                    \
      ++el_test::failures();                                                         \
    }                                                                                \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                        \
  CHECK_MSG(std::fabs(double(a) - double(b)) <= double(tol), "%g vs %g (tol %g)",    \
            double(a), double(b), double(tol))
