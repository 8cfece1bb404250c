#include "quorumq/protocol/assert.h"

#include <cstdio>
#include <cstdlib>

namespace quorumq::detail {
void assert_fail(const char* expr, const char* file, int line, const char* msg) noexcept {
  std::fprintf(stderr, "quorumq: assertion failed: %s at %s:%d %s\n", expr, file, line, msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace quorumq::detail
