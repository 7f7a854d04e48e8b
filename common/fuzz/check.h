// FUZZ_CHECK: a property of a fuzz target. A violation prints what failed and
// the input's first bytes, then aborts, which libFuzzer records as a crash
// (with a reproducer) and the replay tests as a failure.
#ifndef MCL_COMMON_FUZZ_CHECK_H_
#define MCL_COMMON_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                     \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                              \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

#endif  // MCL_COMMON_FUZZ_CHECK_H_
