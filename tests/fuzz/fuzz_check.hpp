// FUZZ_CHECK(cond): the fuzz targets' assertion. libFuzzer reports a crash,
// so a broken invariant aborts with the condition and line on stderr, and
// the input that broke it is saved as a reproducer.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                         \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)
